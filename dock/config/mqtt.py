"""``[mqtt]``: reporting to headquarters. Parsed here, wired into ``dock.config.load``.

Without ``host`` the dock reports nothing and works as before; events still wait in
the outbox once reporting is turned on (from that moment on).
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, fields
from typing import Any

from mqtt_contract.contract import ID_RE

MQTT_ID_RE = ID_RE  # dock, site and slot ids must each be one topic level


@dataclass(frozen=True)
class MqttConfig:
    #: Broker host name or address; empty: no reporting.
    host: str = ""
    #: 0: 8883 with TLS (ca_file set), 1883 without.
    port: int = 0
    #: The site's id in topics (one topic level: letters, digits, "_", "-", ".").
    site: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    username: str = ""
    #: A file holding the password (mode 0600); never the password itself here.
    password_file: str = ""
    keepalive_s: int = 30
    health_interval_s: float = 60.0
    #: Headquarters' Ed25519 public keys (base64 of 32 bytes) allowed to send commands.
    hq_public_keys: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @property
    def tls(self) -> bool:
        return bool(self.ca_file)

    @property
    def broker_port(self) -> int:
        return self.port or (8883 if self.tls else 1883)

    def public_keys(self) -> list[bytes]:
        return [base64.b64decode(k) for k in self.hq_public_keys]


MQTT_KEYS = tuple(f.name for f in fields(MqttConfig))

Problem = tuple[str, str, str]  # (key, what is wrong, how to fix it)


def parse_mqtt(table: dict[str, Any], dock_id: Any) -> tuple[MqttConfig | None, list[Problem]]:
    """Check ``[mqtt]``; unknown keys are reported by the caller."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}

    def bad(key: str, what: str, fix: str) -> None:
        problems.append((f"mqtt.{key}", what, fix))

    for name in ("host", "site", "ca_file", "cert_file", "key_file", "username", "password_file"):
        if name in table:
            if not isinstance(table[name], str):
                bad(name, f"must be a string, not {type(table[name]).__name__}", f'{name} = "…"')
            else:
                values[name] = table[name]
    for name, lo, hi in (("port", 1, 65535), ("keepalive_s", 5, 3600)):
        if name in table:
            v = table[name]
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                bad(name, f"{v!r} is not a whole number from {lo} to {hi}", f"{name} = {lo}…{hi}")
            else:
                values[name] = v
    if "health_interval_s" in table:
        v = table["health_interval_s"]
        if isinstance(v, bool) or not isinstance(v, int | float) or not 5 <= v <= 3600:
            bad("health_interval_s", f"{v!r} is not 5 to 3600 seconds", "health_interval_s = 60")
        else:
            values["health_interval_s"] = float(v)
    if "hq_public_keys" in table:
        keys = table["hq_public_keys"]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            bad("hq_public_keys", "must be a list of strings", 'hq_public_keys = ["base64…"]')
        else:
            for k in keys:
                try:
                    raw = base64.b64decode(k, validate=True)
                except (binascii.Error, ValueError):
                    raw = b""
                if len(raw) != 32:
                    bad(
                        "hq_public_keys",
                        f"{k[:16]!r}… is not an Ed25519 public key (base64 of 32 bytes)",
                        "paste what `dock-hq keygen` printed",
                    )
            values["hq_public_keys"] = tuple(keys)
    cfg = MqttConfig(**values)
    if cfg.enabled:
        if not cfg.site or not ID_RE.match(cfg.site):
            bad(
                "site",
                f"{cfg.site!r} cannot be a topic level" if cfg.site else "missing",
                'name the site with letters, digits, "_", "-" or ".", e.g. site = "hz-xh"',
            )
        if isinstance(dock_id, str) and not ID_RE.match(dock_id):
            problems.append(
                (
                    "dock.id",
                    f"{dock_id!r} cannot be an MQTT topic level",
                    'with [mqtt], use letters, digits, "_", "-" or "."',
                )
            )
        if bool(cfg.cert_file) != bool(cfg.key_file):
            bad("cert_file", "cert_file and key_file go together", "give both or neither")
        if (cfg.cert_file or cfg.key_file) and not cfg.ca_file:
            bad("ca_file", "a client certificate needs TLS", "give the broker's CA as ca_file")
        if cfg.password_file and not cfg.username:
            bad("username", "password_file without a username", 'username = "dock01"')
        for name in ("ca_file", "cert_file", "key_file", "password_file"):
            path = getattr(cfg, name)
            if path and not os.access(path, os.R_OK):
                bad(name, f"{path}: cannot be read", "check the path and its permissions")
    elif table:
        bad("host", "the [mqtt] table has settings but no host", 'host = "broker.example"')
    return (None if problems else cfg), problems


def read_password(cfg: MqttConfig) -> str | None:
    if not cfg.password_file:
        return None
    with open(cfg.password_file, encoding="utf-8") as f:
        return f.read().strip()
