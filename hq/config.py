"""dock-hq's settings: one table of names, so a TOML file and the command line agree.

Every setting is a command-line option (``--tls-ca``) and a key of the ``--config`` file
(``tls_ca``); the command line wins over the file, the file over the defaults. A key
the table does not know is an error naming it: a misspelt threshold silently falling
back to its default would hide the very alerts it was meant to tune.

The broker password is never an option (command lines are visible to every user of the
machine): it comes from ``$DOCK_HQ_PASSWORD`` or from ``password_file``.
"""

from __future__ import annotations

import os
import ssl
import tomllib
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hq.alerts import Thresholds

PASSWORD_ENV = "DOCK_HQ_PASSWORD"
CONFIG_ENV = "DOCK_HQ_CONFIG"


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")


_T = Thresholds()
BROKER = (
    Setting("host", str, "127.0.0.1", "MQTT broker host"),
    Setting("port", int, None, "broker port (default 8883 with TLS, else 1883)"),
    Setting("tls_ca", str, None, "CA certificate file; turns TLS on"),
    Setting("tls_cert", str, None, "client certificate file (TLS)"),
    Setting("tls_key", str, None, "client private key file (TLS)"),
    Setting("username", str, None, "broker user name"),
    Setting("password_file", str, None, f"file holding the broker password (or ${PASSWORD_ENV})"),
    Setting("name", str, "main", "headquarters name; the MQTT client id is hq-NAME"),
)
DATABASE = (Setting("db", str, "/var/lib/dock-hq/fleet.sqlite3", "SQLite fleet database"),)
MONITOR = (
    Setting("signing_key", str, None, "Ed25519 key (PEM) to sign resend commands"),
    Setting("health_interval", float, _T.health_interval_s, "docks' health interval, s"),
    Setting("silent_intervals", float, _T.silent_intervals, "missed intervals: dock silent"),
    Setting("battery_health_min", float, _T.battery_health_min_pct, "battery health bound, %"),
    Setting("drift_max", float, _T.drift_max_s, "clock drift bound for a docked device, s"),
    Setting("device_failures", int, _T.device_failures, "failed checks of a device in window"),
    Setting("dock_refusals", int, _T.dock_refusals, "refused check-outs at a dock in window"),
    Setting("failure_window", float, _T.failure_window_s, "window for the two counts above, s"),
    Setting("session_expiry", int, 7 * 24 * 3600, "broker keeps hq's session this long, s"),
    Setting("log_level", str, "INFO", "DEBUG, INFO, WARNING or ERROR"),
)
ALL = {s.name: s for s in (*BROKER, *DATABASE, *MONITOR)}


def load_file(path: str) -> dict[str, Any]:
    """The TOML file's settings, checked against the table (names and types)."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path}: {exc}") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8; an editor may have saved GBK
        byte = exc.object[exc.start : exc.start + 1].hex()
        raise ConfigError(
            f"config {path}: not UTF-8 text (byte 0x{byte} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        setting = ALL.get(name)
        if setting is None:
            known = ", ".join(sorted(ALL))
            raise ConfigError(f"config {path}: unknown key {key!r} (known: {known})")
        ok = isinstance(value, setting.type) and not isinstance(value, bool)
        if setting.type is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise ConfigError(f"config {path}: {key} must be a {setting.type.__name__}")
        out[name] = value
    return out


def merge(cli: dict[str, Any], file: dict[str, Any]) -> dict[str, Any]:
    """Defaults < file < command line (options left unset on the command line are None)."""
    merged = {name: s.default for name, s in ALL.items()}
    merged.update(file)
    merged.update({k: v for k, v in cli.items() if k in ALL and v is not None})
    return merged


def thresholds(settings: dict[str, Any]) -> Thresholds:
    t = Thresholds(
        health_interval_s=settings["health_interval"],
        silent_intervals=settings["silent_intervals"],
        battery_health_min_pct=settings["battery_health_min"],
        drift_max_s=settings["drift_max"],
        device_failures=settings["device_failures"],
        dock_refusals=settings["dock_refusals"],
        failure_window_s=settings["failure_window"],
    )
    for name in ("health_interval_s", "silent_intervals", "failure_window_s"):
        if getattr(t, name) <= 0:
            raise ConfigError(f"{name} must be positive")
    if t.device_failures < 1 or t.dock_refusals < 1:
        raise ConfigError("device_failures and dock_refusals must be at least 1")
    return t


@dataclass(frozen=True)
class BrokerSettings:
    host: str = "127.0.0.1"
    port: int | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30

    @property
    def tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert)

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else (8883 if self.tls else 1883)

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> BrokerSettings:
        return cls(
            host=settings["host"],
            port=settings["port"],
            tls_ca=settings["tls_ca"],
            tls_cert=settings["tls_cert"],
            tls_key=settings["tls_key"],
            username=settings["username"],
            password=read_password(settings["password_file"]),
        )


def read_password(password_file: str | None) -> str | None:
    """``$DOCK_HQ_PASSWORD`` if set, else the first line of ``password_file``, else None."""
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not password_file:
        return None
    try:
        with open(password_file, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"password_file {password_file}: {exc.strerror}") from None


def mqtt_client(broker: BrokerSettings, client_id: str, *, manual_ack: bool = False) -> mqtt.Client:
    """An MQTT 5 paho client for ``broker``, with TLS and credentials set (not connected)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if broker.tls:
        client.tls_set(
            ca_certs=broker.tls_ca,
            certfile=broker.tls_cert,
            keyfile=broker.tls_key,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    return client
