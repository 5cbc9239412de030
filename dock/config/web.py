"""``[web]``: the local site (``dock-web``): where it listens, TLS, how long a login
lasts, and who may open the kiosk without logging in. (How long a kiosk's grant waits
is ``[dock] grant_expiry_s``: the daemon expires grants, with or without the site.)"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.checker import INVALID, Bad, Checker, int_range, show


@dataclass(frozen=True)
class WebConfig:
    #: Addresses dock-web binds (localhost and the dock's LAN address, as the site names).
    listen: tuple[str, ...] = ("127.0.0.1",)
    port: int = 8080
    #: PEM certificate and key: both, or neither (plain HTTP; cookies then not Secure).
    tls_cert: str = ""
    tls_key: str = ""
    #: A login ends after this long without a request (the daemon forgets its token).
    session_idle_s: int = 1800
    #: Addresses that may open /kiosk without a login (the dock's own screen).
    kiosk_allowed_from: tuple[str, ...] = field(default=("127.0.0.1",))

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)


WEB_KEYS = tuple(f.name for f in dataclasses.fields(WebConfig))


def _addresses(example: str) -> Callable[[Any], tuple[str, ...]]:
    def check(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise Bad(f"{show(value)} is not a list of addresses", f"e.g. {example}")
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_address(item if isinstance(item, str) else "")))
            except ValueError:
                raise Bad(
                    f"{show(item)} is not an IP address", f"give addresses, e.g. {example}"
                ) from None
        return tuple(out)

    return check


def _pem_path(example: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not os.path.isabs(value):
            raise Bad(f"{show(value)} is not an absolute path", f"e.g. {example}")
        return os.path.normpath(value)

    return check


def check_web(ck: Checker, table: Mapping[str, Any]) -> dict[str, Any]:
    """``[web]``'s values; a certificate without its key (or the reverse) is a problem."""
    ck.unknown_keys("web", table, WEB_KEYS)
    web = {
        "listen": ck.get(
            table, "web", "listen", _addresses('listen = ["127.0.0.1", "192.168.1.20"]'),
            ("127.0.0.1",),
        ),
        "port": ck.get(table, "web", "port", int_range(1, 65535, "port"), 8080),
        "tls_cert": ck.get(
            table, "web", "tls_cert", _pem_path('tls_cert = "/etc/dock/web.crt"'), ""
        ),
        "tls_key": ck.get(table, "web", "tls_key", _pem_path('tls_key = "/etc/dock/web.key"'), ""),
        "session_idle_s": ck.get(
            table, "web", "session_idle_s", int_range(60, 86400, "session_idle_s"), 1800
        ),
        "kiosk_allowed_from": ck.get(
            table, "web", "kiosk_allowed_from", _addresses('kiosk_allowed_from = ["127.0.0.1"]'),
            ("127.0.0.1",),
        ),
    }  # fmt: skip
    cert, key = web["tls_cert"], web["tls_key"]
    if cert is not INVALID and key is not INVALID and bool(cert) != bool(key):
        ck.problem(
            "web.tls_cert" if key else "web.tls_key",
            "TLS needs both a certificate and its key",
            "give both tls_cert and tls_key, or neither (plain HTTP on a trusted network)",
        )
    return web
