"""``[mqtt]``: reporting to headquarters.

Without ``host`` the dock reports nothing and works as before; events still wait in
the outbox once reporting is turned on (from that moment on). The broker settings are
read by ``mqtt_contract.broker_settings``, as dock-hq reads them; the keys here are the
dock's own (its site, how often it reports, whose commands it obeys).
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass, fields
from typing import Any

from common.checker import INVALID, Bad, Checker, Problem
from mqtt_contract import broker_settings
from mqtt_contract.contract import ID_RE

log = logging.getLogger("dock.config.load")

MQTT_ID_RE = ID_RE  # dock, site and slot ids must each be one topic level


@dataclass(frozen=True)
class MqttConfig(broker_settings.BrokerTable):
    """``[mqtt]``: the broker settings dock-hq reads the same way, and the dock's own."""

    #: The site's id in topics (one topic level: letters, digits, "_", "-", ".").
    site: str = ""
    health_interval_s: float = 60.0
    #: Headquarters' Ed25519 public keys (base64 of 32 bytes) allowed to send commands.
    hq_public_keys: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @property
    def broker(self) -> broker_settings.BrokerTable:
        """The broker settings alone, as dock-hq would read the same table."""
        names = broker_settings.BROKER_KEYS
        return broker_settings.BrokerTable(**{k: getattr(self, k) for k in names})

    def public_keys(self) -> list[bytes]:
        return [base64.b64decode(k) for k in self.hq_public_keys]


MQTT_KEYS = tuple(f.name for f in fields(MqttConfig))


def _site(value: Any) -> str:
    if not isinstance(value, str):
        raise Bad(f"must be a string, not {type(value).__name__}", 'site = "…"')
    return value


def _health_interval(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 5 <= value <= 3600:
        raise Bad(f"{value!r} is not 5 to 3600 seconds", "health_interval_s = 60")
    return float(value)


def _hq_public_keys(ck: Checker, table: dict[str, Any]) -> tuple[str, ...] | Any:
    keys = table["hq_public_keys"]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        ck.problem(
            "mqtt.hq_public_keys", "must be a list of strings", 'hq_public_keys = ["base64…"]'
        )
        return INVALID
    for k in keys:
        try:
            raw = base64.b64decode(k, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            ck.problem(
                "mqtt.hq_public_keys",
                f"{k[:16]!r}… is not an Ed25519 public key (base64 of 32 bytes)",
                "paste what `dock-hq keygen` printed",
            )
    return tuple(keys)


def check_mqtt(ck: Checker, table: dict[str, Any], dock_id: Any) -> MqttConfig | None:
    """Check ``[mqtt]`` (old key names already under their new names; unknown keys are
    reported by the caller); None if anything in it was refused."""
    before = len(ck.issues)
    values = broker_settings.read_broker(ck, "mqtt", table)
    if "site" in table:
        values["site"] = ck.get(table, "mqtt", "site", _site)
    if "health_interval_s" in table:
        values["health_interval_s"] = ck.get(table, "mqtt", "health_interval_s", _health_interval)
    if "hq_public_keys" in table:
        values["hq_public_keys"] = _hq_public_keys(ck, table)
    cfg = MqttConfig(**{k: v for k, v in values.items() if v is not INVALID})
    if cfg.enabled:
        if not cfg.site or not ID_RE.match(cfg.site):
            ck.problem(
                "mqtt.site",
                f"{cfg.site!r} cannot be a topic level" if cfg.site else "missing",
                'name the site with letters, digits, "_", "-" or ".", e.g. site = "hz-xh"',
            )
        if isinstance(dock_id, str) and not ID_RE.match(dock_id):
            ck.problem(
                "dock.id",
                f"{dock_id!r} cannot be an MQTT topic level",
                'with [mqtt], use letters, digits, "_", "-" or "."',
            )
        broker_settings.check_broker(ck, "mqtt", cfg.broker)
        broker_settings.check_files(ck, "mqtt", cfg.broker)
    elif table:
        ck.problem(
            "mqtt.host", "the [mqtt] table has settings but no host", 'host = "broker.example"'
        )
    return None if len(ck.issues) > before else cfg


def parse_mqtt(table: dict[str, Any], dock_id: Any) -> tuple[MqttConfig | None, list[Problem]]:
    """Check ``[mqtt]`` alone (unknown keys are not looked for); old key names are
    logged as warnings."""
    ck = Checker()
    cfg = check_mqtt(ck, broker_settings.with_new_names(ck, "mqtt", table), dock_id)
    for text in ck.warnings:
        log.warning("%s", text)
    return cfg, ck.issues


def read_password(cfg: MqttConfig) -> str | None:
    if not cfg.password_file:
        return None
    with open(cfg.password_file, encoding="utf-8") as f:
        return f.read().strip()
