"""``[replication]`` and ``[[replication.target]]``: where sealed packages go after the
dock (the unit's central storage), when uploads may run, and how fast.

The schedule is a list of *allowed* windows in the dock's local time (``allowed =
["00:00-06:30", "08:30-17:30"]``): outside them no file starts (a running file
finishes), so a unit forbids uploads during shift change by leaving that hour out. A
window may cross midnight (``"22:00-06:00"``); no ``allowed`` key means at any time.
Credentials are never in the file: each is a path to a file readable only by the dock
(``key_file``, ``password_file``, ``access_key_file`` + ``secret_key_file``);
docs/CONFIG.md documents each key, docs/SECURITY.md the files.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.checker import (
    INVALID,
    Bad,
    Checker,
    as_str,
    choice,
    int_range,
    kind,
    nonempty,
    positive_float,
    show,
)

KINDS = ("sftp", "smb", "s3")
DEFAULT_PORTS = {"sftp": 22, "smb": 445, "s3": 443}
SCHEME_PORTS = {("s3", "http"): 80}
#: How a copy is verified: every byte read back and hashed by the dock (default), or,
#: SFTP only, the target's own ``sha256sum`` of the stored file (docs/SECURITY.md).
VERIFY_MODES = ("read-back", "remote-sha256sum")
SSH_CLIENTS = ("auto", "openssh", "paramiko")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_WINDOW = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")


@dataclass(frozen=True)
class TargetConfig:
    """One ``[[replication.target]]``."""

    name: str
    kind: str
    host: str
    port: int = 0  # 0: the kind's usual port
    #: SFTP/SMB: the folder at the target (SMB: inside ``share``); S3: the key prefix.
    path: str = ""
    share: str = ""  # SMB
    bucket: str = ""  # S3
    user: str = ""
    key_file: str = ""  # SFTP: the dock's private key
    password_file: str = ""  # SFTP (instead of a key) or SMB
    access_key_file: str = ""  # S3
    secret_key_file: str = ""  # S3
    known_hosts_file: str = ""  # SFTP: the server's host key, checked (never learnt)
    #: S3: "https" (default) or "http" for a server on the unit's own network.
    scheme: str = "https"
    ca_file: str = ""  # S3 over https / SMB: a private CA
    region: str = ""  # S3
    connect_timeout_s: float = 15.0
    io_timeout_s: float = 60.0
    verify: str = "read-back"  # or "remote-sha256sum" (SFTP, an account that may run it)
    #: SFTP: the SSH layer under the session: OpenSSH's client where it can serve
    #: ("auto": installed, and the target logs in with a key), or always one of the two.
    ssh_client: str = "auto"

    @property
    def effective_port(self) -> int:
        # an S3 target over plain http is on the scheme's own port, as its client dials
        by_scheme = SCHEME_PORTS.get((self.kind, self.scheme))
        return self.port or by_scheme or DEFAULT_PORTS.get(self.kind, 0)


@dataclass(frozen=True)
class ReplicationConfig:
    """``[replication]``: targets and when and how fast packages go to them."""

    targets: tuple[TargetConfig, ...] = ()
    #: Allowed windows, local time, as ((start minute, end minute), ...); () = always.
    allowed: tuple[str, ...] = ()
    #: Upload rate limit in KiB/s for the whole dock (0: none).
    bandwidth_kib_s: int = 0
    #: A package not replicated this long after its seal is overdue (the regulations ask
    #: for storage at the unit's designated place within 24 h).
    deadline_hours: int = 24
    #: The local copy may be freed this many days after a verified replica (0: never by
    #: this rule); retention, holds and purges still decide (docs/OPERATIONS.md).
    free_local_after_days: int = 0
    #: Sends of one file before the package is marked failed (verification included).
    max_attempts: int = 5

    @property
    def enabled(self) -> bool:
        return bool(self.targets)


REPLICATION_KEYS = ("target", "allowed", "bandwidth_kib_s", "deadline_hours",
                    "free_local_after_days", "max_attempts")  # fmt: skip
TARGET_KEYS = tuple(f.name for f in dataclasses.fields(TargetConfig))


def window_minutes(text: str) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` -> (start, end) minutes after local midnight; ValueError else."""
    m = _WINDOW.fullmatch(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"{text!r}: not a time of day")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValueError(f"{text!r} is empty")
    return start, end


def _windows(value: Any) -> tuple[str, ...]:
    example = 'allowed = ["00:00-06:30", "08:30-17:30"]'
    if not isinstance(value, list) or not value:
        raise Bad(f"{show(value)} is not a list of windows", f"e.g. {example}")
    out = []
    for item in value:
        try:
            window_minutes(as_str(item, example))
        except ValueError as exc:
            raise Bad(str(exc), f"write local times HH:MM-HH:MM, e.g. {example}") from None
        out.append(item.strip())
    return tuple(out)


def _name(value: Any) -> str:
    text = as_str(value, 'name = "hq-sftp"')
    if not _NAME.fullmatch(text):
        raise Bad(f"{show(text)} is not a target name", "1 to 40 letters, digits, . _ -")
    return text


def _abs_file(example: str) -> Any:
    def check(value: Any) -> str:
        text = as_str(value, example)
        if not os.path.isabs(text):
            raise Bad(f"{show(text)} is not an absolute path", f"e.g. {example}")
        return os.path.normpath(text)

    return check


def _remote_path(value: Any) -> str:
    text = as_str(value, 'path = "/srv/evidence"').strip()
    if "\x00" in text or any(p == ".." for p in text.split("/")):
        raise Bad(f"{show(text)} is not a plain folder", 'e.g. path = "/srv/evidence"')
    return text


def _check_target(ck: Checker, where: str, table: Mapping[str, Any]) -> dict[str, Any]:
    ck.unknown_keys(where, table, TARGET_KEYS)
    get = functools.partial(ck.get, table, where)
    f = _abs_file
    v: dict[str, Any] = {
        "name": get("name", _name, missing_fix='e.g. name = "hq-sftp"'),
        "kind": get("kind", choice(KINDS, 'kind = "sftp"'), missing_fix='e.g. kind = "sftp"'),
        "host": get("host", nonempty('host = "10.1.2.3"'), missing_fix='e.g. host = "10.1.2.3"'),
        "port": get("port", int_range(1, 65535, "port"), 0),
        "path": get("path", _remote_path, ""),
        "share": get("share", nonempty('share = "evidence"'), ""),
        "bucket": get("bucket", nonempty('bucket = "bwc-evidence"'), ""),
        "user": get("user", nonempty('user = "dock01"'), ""),
        "key_file": get("key_file", f('key_file = "/etc/dock/replica_ed25519"'), ""),
        "password_file": get("password_file", f('password_file = "/etc/dock/replica.pw"'), ""),
        "access_key_file": get("access_key_file", f('access_key_file = "/etc/dock/s3.id"'), ""),
        "secret_key_file": get("secret_key_file", f('secret_key_file = "/etc/dock/s3.key"'), ""),
        "known_hosts_file": get(
            "known_hosts_file", f('known_hosts_file = "/etc/dock/replica_known_hosts"'), ""
        ),
        "scheme": get("scheme", choice(("https", "http"), 'scheme = "https"'), "https"),
        "ca_file": get("ca_file", f('ca_file = "/etc/dock/unit-ca.pem"'), ""),
        "region": get("region", nonempty('region = "us-east-1"'), ""),
        "connect_timeout_s": get(
            "connect_timeout_s", positive_float("connect_timeout_s", 15.0), 15.0
        ),
        "io_timeout_s": get("io_timeout_s", positive_float("io_timeout_s", 60.0), 60.0),
        "verify": get("verify", choice(VERIFY_MODES, 'verify = "read-back"'), "read-back"),
        "ssh_client": get("ssh_client", choice(SSH_CLIENTS, 'ssh_client = "auto"'), "auto"),
    }
    k = v["kind"]
    need: tuple[tuple[str, str], ...] = ()
    if k == "sftp":
        need = (
            ("user", 'user = "dock01"'),
            ("known_hosts_file", 'known_hosts_file = "/etc/dock/replica_known_hosts"'),
        )
        if not v["key_file"] and not v["password_file"]:
            ck.problem(f"{where}.key_file", "an SFTP target needs key_file or password_file",
                       'e.g. key_file = "/etc/dock/replica_ed25519"')  # fmt: skip
    elif k == "smb":
        need = (("share", 'share = "evidence"'), ("user", 'user = "dock01"'),
                ("password_file", 'password_file = "/etc/dock/smb.pw"'))  # fmt: skip
    elif k == "s3":
        need = (("bucket", 'bucket = "bwc-evidence"'),
                ("access_key_file", 'access_key_file = "/etc/dock/s3.id"'),
                ("secret_key_file", 'secret_key_file = "/etc/dock/s3.key"'))  # fmt: skip
    if v["ssh_client"] != "auto" and k != "sftp":
        ck.problem(f"{where}.ssh_client", f'ssh_client is for SFTP targets, not "{k}"',
                   "remove it")  # fmt: skip
    if v["ssh_client"] == "openssh" and not v["key_file"]:
        ck.problem(f"{where}.ssh_client", "OpenSSH's client logs in only with key_file here",
                   'set key_file, or ssh_client = "auto" for a password')  # fmt: skip
    if v["verify"] == "remote-sha256sum" and k != "sftp":
        ck.problem(f"{where}.verify", f'"remote-sha256sum" is for SFTP targets, not "{k}"',
                   'remove it (verify = "read-back")')  # fmt: skip
    for key, example in need:
        if v[key] == "":
            ck.problem(f"{where}.{key}", f'kind = "{k}" needs it', f"e.g. {example}")
    return v


def check_replication(ck: Checker, table: Mapping[str, Any]) -> ReplicationConfig | None:
    """``[replication]``'s values; None when a problem was recorded."""
    ck.unknown_keys("replication", table, REPLICATION_KEYS)
    get = functools.partial(ck.get, table, "replication")
    values = {
        "allowed": get("allowed", _windows, ()),
        "bandwidth_kib_s": get("bandwidth_kib_s", int_range(0, 10_000_000, "bandwidth_kib_s"), 0),
        "deadline_hours": get("deadline_hours", int_range(1, 24 * 365, "deadline_hours"), 24),
        "free_local_after_days": get(
            "free_local_after_days", int_range(0, 36500, "free_local_after_days"), 0
        ),
        "max_attempts": get("max_attempts", int_range(1, 100, "max_attempts"), 5),
    }
    raw = table.get("target", [])
    targets: list[dict[str, Any]] = []
    if not isinstance(raw, list):
        ck.problem("replication.target", f"expected [[replication.target]] tables, got "
                   f"{kind(raw)}", "write [[replication.target]]")  # fmt: skip
        raw = []
    names: set[str] = set()
    for n, t in enumerate(raw, start=1):
        where = f"replication.target[{n}]"
        if not isinstance(t, dict):
            ck.problem(where, f"expected a table, got {kind(t)}", "write [[replication.target]]")
            continue
        v = _check_target(ck, where, t)
        if v["name"] is not INVALID:
            if v["name"] in names:
                ck.problem(f"{where}.name", f"{show(v['name'])} is named twice",
                           "give each target its own name")  # fmt: skip
            names.add(v["name"])
        targets.append(v)
    bad = any(x is INVALID for x in values.values()) or any(
        x is INVALID for t in targets for x in t.values()
    )
    if bad:
        return None
    return ReplicationConfig(targets=tuple(TargetConfig(**t) for t in targets), **values)
