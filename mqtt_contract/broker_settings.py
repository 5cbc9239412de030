"""The broker settings of an ``[mqtt]`` table, read the same way by the dock and dock-hq.

One name per setting in dock.toml and hq.toml: every path to a file ends in ``_file``
(``ca_file``, ``cert_file``, ``key_file``, ``password_file``). hq.toml used to say
``tls_ca``, ``tls_cert`` and ``tls_key``; those are still read, with a warning naming
the new key, so deployed files keep working. The checks on the values together
(``check_broker``) and on the files (``check_files``) are separate so that each side can
run them when it has the final values: the dock at start, dock-hq once the command line
has been merged over its file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from common.checker import INVALID, Bad, Checker, qualified

#: The names hq.toml used before the dock's names were adopted: old -> new.
OLD_NAMES: dict[str, str] = {"tls_ca": "ca_file", "tls_cert": "cert_file", "tls_key": "key_file"}
#: Settings that name a file to read.
FILE_KEYS = ("ca_file", "cert_file", "key_file", "password_file")
_RANGES = {"port": (1, 65535), "keepalive_s": (5, 3600)}


@dataclass(frozen=True)
class BrokerTable:
    """The broker settings as a file (or the command line) gives them."""

    #: Broker host name or address.
    host: str = ""
    #: 0: 8883 with TLS (ca_file set), 1883 without.
    port: int = 0
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    username: str = ""
    #: A file holding the password (mode 0600); never the password itself in a file.
    password_file: str = ""
    keepalive_s: int = 30

    @property
    def tls(self) -> bool:
        return bool(self.ca_file)

    @property
    def broker_port(self) -> int:
        return self.port or (8883 if self.tls else 1883)


BROKER_KEYS = tuple(f.name for f in fields(BrokerTable))


def _string(name: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Bad(f"must be a string, not {type(value).__name__}", f'{name} = "…"')
        return value

    return check


def _whole(name: str, lo: int, hi: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise Bad(f"{value!r} is not a whole number from {lo} to {hi}", f"{name} = {lo}…{hi}")
        return value

    return check


def with_new_names(ck: Checker, where: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """``table`` with old spellings (``tls_ca``) under their names (``ca_file``), warned."""
    return ck.renamed(where, table, OLD_NAMES)


def read_broker(ck: Checker, where: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """The broker settings ``table`` gives, each checked; refused ones are left out (and
    recorded in ``ck``). Other keys are the caller's: it knows what else its table holds.
    Give ``table`` through ``with_new_names`` first."""
    values: dict[str, Any] = {}
    for name in BROKER_KEYS:
        if name not in table:
            continue
        if name in _RANGES:
            value = ck.get(table, where, name, _whole(name, *_RANGES[name]))
        else:
            value = ck.get(table, where, name, _string(name))
        if value is not INVALID:
            values[name] = value
    return values


def check_broker(ck: Checker, where: str, broker: BrokerTable) -> None:
    """The rules on the settings together (TLS needs its CA, a password its user)."""
    if bool(broker.cert_file) != bool(broker.key_file):
        ck.problem(
            qualified(where, "cert_file"),
            "cert_file and key_file go together",
            "give both or neither",
        )
    if (broker.cert_file or broker.key_file) and not broker.ca_file:
        ck.problem(
            qualified(where, "ca_file"),
            "a client certificate needs TLS",
            "give the broker's CA as ca_file",
        )
    if broker.password_file and not broker.username:
        ck.problem(
            qualified(where, "username"), "password_file without a username", 'username = "dock01"'
        )


def check_files(ck: Checker, where: str, broker: BrokerTable) -> None:
    """Every file the settings name can be read by this process."""
    for name in FILE_KEYS:
        path = getattr(broker, name)
        if path and not os.access(path, os.R_OK):
            ck.problem(
                qualified(where, name),
                f"{path}: cannot be read",
                "check the path and its permissions",
            )
