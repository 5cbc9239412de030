"""A throwaway system user and group on this machine, for the tests of the switch from
root to the service user (common/privileges.py): made with useradd, removed after."""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class ServiceUser:
    name: str
    uid: int
    gid: int
    #: A supplementary group the user is a member of.
    extra_gid: int


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=60)


@contextmanager
def throwaway_user() -> Iterator[ServiceUser]:
    """A new system user (no home, no shell) with its own group and one more group;
    skipped where this test process cannot make users (not root, no useradd)."""
    if os.geteuid() != 0:
        pytest.skip("making a system user needs root")
    if shutil.which("useradd") is None or shutil.which("groupadd") is None:
        pytest.skip("no useradd/groupadd here")
    name = f"bwc-test-{secrets.token_hex(3)}"
    extra = f"{name}-g"
    _run("groupadd", "--system", extra)
    try:
        _run(
            "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
            "--user-group", "--groups", extra, name,
        )  # fmt: skip
        try:
            entry = pwd.getpwnam(name)
            yield ServiceUser(name, entry.pw_uid, entry.pw_gid, grp.getgrnam(extra).gr_gid)
        finally:
            _run("userdel", name)  # its own group goes with it
    finally:
        _run("groupdel", extra)


@contextmanager
def shared_tmp() -> Iterator[str]:
    """A folder every user may reach (pytest's tmp_path is root's alone, mode 0700)."""
    path = tempfile.mkdtemp(prefix="bwc-priv-", dir="/tmp")
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _reachable(path: str) -> bool:
    """Whether every user may reach ``path`` (each folder above it searchable by others)."""
    parts = os.path.realpath(path).split(os.sep)
    folders = [os.sep.join(parts[:i]) or os.sep for i in range(1, len(parts) + 1)]
    return all(os.stat(f).st_mode & 0o001 for f in folders)


def as_entry_point(module: str) -> list[str]:
    """A command running ``module``'s ``main`` as the installed script would, by an
    interpreter whose standard library the service user can read after the switch: this
    one, or the system's Python of the same version when this one lives under a folder
    only root may enter (a pyenv build under /root), with this environment's packages."""
    exe = sys.executable
    if not _reachable(sysconfig.get_paths()["stdlib"]):
        exe = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
        if not os.path.exists(exe):
            pytest.skip("no Python here whose standard library another user can read")
    site = sysconfig.get_paths()["purelib"]
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for needed in (site, project):
        if not _reachable(needed):
            pytest.skip(f"{needed} is in a folder other users cannot enter")
    code = f"import site, sys; site.addsitedir({site!r}); from {module} import main; "
    return [exe, "-c", code + "sys.exit(main())"]
