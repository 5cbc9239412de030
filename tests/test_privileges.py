"""Root becomes the service user before it touches anything (common/privileges.py), so no
command typed as root on an installed dock leaves root-owned files in the state directory
(issue 13: ``dock status`` as root made a root-owned signing.key, and the service died).

Each switch happens in a forked child or a subprocess, with a real system user made for
the test and removed after it."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.privileges import SERVICE_UMASK, PrivilegeError, drop_to, service_user
from tests.service_user import ServiceUser, as_entry_point, shared_tmp, throwaway_user

BIN = Path(sys.executable).parent


def in_child(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``work()``'s result, run in a forked child (whose privileges may change)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running pytest's exit
        os.close(read_end)
        try:
            result = work()
        except BaseException as exc:
            result = {"raised": f"{type(exc).__name__}: {exc}"}
        with os.fdopen(write_end, "w") as out:
            json.dump(result, out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as got:
        text = got.read()
    os.waitpid(pid, 0)
    result: dict[str, Any] = json.loads(text)
    return result


def _regain(attempt: Callable[[], None]) -> str:
    try:
        attempt()
    except PermissionError:
        return "refused"
    return "regained"


def test_root_becomes_the_user_with_its_groups_and_cannot_come_back() -> None:
    with throwaway_user() as user, shared_tmp() as tmp:
        os.chown(tmp, user.uid, user.gid)

        def work() -> dict[str, Any]:
            entry = drop_to(user.name)
            made = os.path.join(tmp, "made-after-the-switch")
            with open(made, "w") as f:
                f.write("x")
            st = os.stat(made)
            return {
                "entry": entry.pw_name if entry else None,
                "resuid": os.getresuid(),
                "resgid": os.getresgid(),
                "groups": sorted(os.getgroups()),
                "home": os.environ.get("HOME"),
                "file": [st.st_uid, st.st_gid, st.st_mode & 0o777],
                "setuid0": _regain(lambda: os.setuid(0)),
                "seteuid0": _regain(lambda: os.seteuid(0)),
                "setgroups0": _regain(lambda: os.setgroups([0])),
            }

        got = in_child(work)
        home = pwd.getpwnam(user.name).pw_dir
    assert "raised" not in got, got
    assert got["entry"] == user.name
    assert got["resuid"] == [user.uid] * 3
    assert got["resgid"] == [user.gid] * 3
    assert got["groups"] == sorted({user.gid, user.extra_gid})  # root's group 0 is gone
    assert got["home"] == home
    assert got["file"] == [user.uid, user.gid, 0o666 & ~SERVICE_UMASK]
    assert got["setuid0"] == got["seteuid0"] == got["setgroups0"] == "refused"


def test_without_the_user_root_runs_as_it_is() -> None:
    """A developer's machine or CI: no such user, nothing changes."""
    got = in_child(
        lambda: {"entry": repr(drop_to("bwc-no-such-user")), "uid": os.geteuid(), "um": _umask()}
    )
    assert got == {"entry": "None", "uid": os.geteuid(), "um": _umask()}


def test_a_root_user_is_refused() -> None:
    if os.geteuid() != 0:
        pytest.skip("the switch is tried only by root")
    with pytest.raises(PrivilegeError, match="cannot be the service user"):
        drop_to("root")
    assert os.geteuid() == 0  # refused before anything changed


def test_not_root_nothing_changes() -> None:
    with throwaway_user() as user:

        def work() -> dict[str, Any]:
            os.setresgid(user.gid, user.gid, user.gid)
            os.setresuid(user.uid, user.uid, user.uid)
            return {"entry": repr(drop_to("root")), "uid": os.getuid()}

        assert in_child(work) == {"entry": "None", "uid": user.uid}


def test_the_user_comes_from_its_variable() -> None:
    assert service_user("DOCK_SERVICE_USER", "dock", {}) == "dock"
    assert service_user("DOCK_SERVICE_USER", "dock", {"DOCK_SERVICE_USER": ""}) == "dock"
    assert service_user("DOCK_SERVICE_USER", "dock", {"DOCK_SERVICE_USER": "svc"}) == "svc"


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


# --- the command lines -------------------------------------------------------------


def _write_config(tmp: str, state: str) -> str:
    path = os.path.join(tmp, "dock.toml")
    with open(path, "w") as f:
        f.write(
            f'[dock]\nid = "d1"\nsite = "s"\nunit = "u"\nstate_dir = "{state}"\n'
            f'evidence_dir = "{state}/evidence"\n\n[[slot]]\nid = "1"\nport = "tcp://127.0.0.1:9"\n'
        )
    os.chmod(path, 0o644)
    return path


def _run(cmd: list[str], user: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "DOCK_SERVICE_USER": user, "DOCK_HQ_SERVICE_USER": user, **env}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=environ)


def _owners(top: str) -> dict[str, int]:
    return {
        os.path.relpath(os.path.join(d, n), top): os.lstat(os.path.join(d, n)).st_uid
        for d, dirs, files in os.walk(top)
        for n in dirs + files
    }


def test_dock_as_root_leaves_no_root_owned_state(service_dir: tuple[ServiceUser, str]) -> None:
    """OPERATIONS step 3 as it was: a command typed as root on an installed dock."""
    user, tmp = service_dir
    state = os.path.join(tmp, "state")
    config = _write_config(tmp, state)
    done = _run([*as_entry_point("dock.cli.main"), "--config", config, "device", "list"], user.name)
    assert done.returncode == 0, done.stderr
    owners = _owners(state)
    assert "signing.key" in owners and "dock.db" in owners, owners
    assert set(owners.values()) == {user.uid}, owners


def test_dock_hq_as_root_writes_as_its_user(service_dir: tuple[ServiceUser, str]) -> None:
    user, tmp = service_dir
    key = os.path.join(tmp, "state", "signing.key")
    done = _run([*as_entry_point("hq.cli"), "keygen", "--out", key], user.name)
    assert done.returncode == 0, done.stderr
    assert os.stat(key).st_uid == user.uid


@pytest.mark.parametrize("prog", ["dock", "dock-web", "dock-hq"])
def test_a_failed_switch_is_one_line_and_no_start(prog: str, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the switch is tried only by root")
    args = {"dock": ["status"], "dock-web": [], "dock-hq": ["fleet"]}[prog]
    done = _run([str(BIN / prog), *args], "root", DOCK_CONFIG=str(tmp_path / "none.toml"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"sudo -u root {prog} …" in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def service_dir() -> Any:
    """A throwaway service user and a shared folder whose ``state`` it owns (0700)."""
    with throwaway_user() as user, shared_tmp() as tmp:
        state = os.path.join(tmp, "state")
        os.mkdir(state, 0o700)
        os.chown(state, user.uid, user.gid)
        yield user, tmp
