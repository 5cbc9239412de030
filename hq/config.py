"""dock-hq's settings: one table of names, so a TOML file and the command line agree.

hq.toml has three tables: ``[mqtt]`` (the broker, read by
``mqtt_contract.broker_settings`` exactly as the dock reads its own ``[mqtt]``), ``[hq]``
(this headquarters: its name, database, signing key) and ``[alerts]`` (thresholds).
Every setting is also a command-line option (``ca_file`` is ``--ca-file``); the command
line wins over the file, the file over the defaults. The file is checked in full with
the dock's checker (``common.checker``): a key no table knows is an error naming
it, as a misspelt threshold silently falling back to its default would hide the very
alerts it was meant to tune.

Files written before the tables existed (every key at the top, ``tls_ca`` for
``ca_file``, ``drift-max`` for ``drift_max``) are still read, with a warning saying
where each key now goes.

The broker password is never an option (command lines are visible to every user of the
machine): it comes from ``$DOCK_HQ_PASSWORD`` or from ``password_file``.
"""

from __future__ import annotations

import difflib
import logging
import os
import ssl
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from common.checker import INVALID, Checker, as_float, as_int, as_str, not_utf8
from hq.alerts import Thresholds
from mqtt_contract import broker_settings

log = logging.getLogger("hq.config")

PASSWORD_ENV = "DOCK_HQ_PASSWORD"
CONFIG_ENV = "DOCK_HQ_CONFIG"
SECTIONS = ("mqtt", "hq", "alerts")


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it (one line), ``problems``
    lists each problem of a file."""

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    #: The hq.toml table it belongs in.
    section: str = "hq"
    #: Names it had before: still read in a file (with a warning) and as options.
    old_names: tuple[str, ...] = ()

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def options(self) -> tuple[str, ...]:
        """The option, then its old spellings (still accepted)."""
        return (self.option, *("--" + n.replace("_", "-") for n in self.old_names))


_T = Thresholds()


def _old(name: str) -> tuple[str, ...]:
    return tuple(o for o, n in broker_settings.OLD_NAMES.items() if n == name)


BROKER = (
    Setting("host", str, "127.0.0.1", "MQTT broker host", "mqtt"),
    Setting("port", int, None, "broker port (default 8883 with TLS, else 1883)", "mqtt"),
    Setting("ca_file", str, None, "CA certificate file; turns TLS on", "mqtt", _old("ca_file")),
    Setting("cert_file", str, None, "client certificate file (TLS)", "mqtt", _old("cert_file")),
    Setting("key_file", str, None, "client private key file (TLS)", "mqtt", _old("key_file")),
    Setting("username", str, None, "broker user name", "mqtt"),
    Setting(
        "password_file",
        str,
        None,
        f"file holding the broker password (or ${PASSWORD_ENV})",
        "mqtt",
    ),
    Setting("keepalive_s", int, 30, "MQTT keep-alive, s", "mqtt"),
    Setting("name", str, "main", "headquarters name; the MQTT client id is hq-NAME"),
)
DATABASE = (Setting("db", str, "/var/lib/dock-hq/fleet.sqlite3", "SQLite fleet database"),)
MONITOR = (
    Setting("signing_key", str, None, "Ed25519 key (PEM) to sign resend commands"),
    Setting("health_interval", float, _T.health_interval_s, "docks' health interval, s", "alerts"),
    Setting(
        "silent_intervals", float, _T.silent_intervals, "missed intervals: dock silent", "alerts"
    ),
    Setting(
        "battery_health_min",
        float,
        _T.battery_health_min_pct,
        "battery health bound, %",
        "alerts",
    ),
    Setting(
        "drift_max", float, _T.drift_max_s, "clock drift bound for a docked device, s", "alerts"
    ),
    Setting(
        "device_failures", int, _T.device_failures, "failed checks of a device in window", "alerts"
    ),
    Setting(
        "dock_refusals", int, _T.dock_refusals, "refused check-outs at a dock in window", "alerts"
    ),
    Setting(
        "failure_window", float, _T.failure_window_s, "window for the two counts above, s", "alerts"
    ),
    Setting("session_expiry", int, 7 * 24 * 3600, "broker keeps hq's session this long, s"),
    Setting("log_level", str, "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Setting(
        "log_format", str, None, "auto, journal, text, terminal or json (else $DOCK_LOG_FORMAT)"
    ),
)
ALL = {s.name: s for s in (*BROKER, *DATABASE, *MONITOR)}
#: Each table's keys, in the order of the settings above.
SECTION_KEYS = {t: tuple(n for n, s in ALL.items() if s.section == t) for t in SECTIONS}
#: What a file written before the tables may spell differently: old or "-" -> name.
_LEGACY_NAMES = {
    **{o: s.name for s in ALL.values() for o in s.old_names},
    **{o.replace("_", "-"): s.name for s in ALL.values() for o in s.old_names},
    **{n.replace("_", "-"): n for n in ALL if "_" in n},
}


def _reader(setting: Setting) -> Callable[[Any], Any]:
    example = f"{setting.name} = {setting.default if setting.default is not None else 1}"
    if setting.type is int:
        return lambda v: as_int(v, example)
    if setting.type is float:
        return lambda v: as_float(v, example)
    return lambda v: as_str(v, f'{setting.name} = "{setting.default or "…"}"')


def _read_own(ck: Checker, where: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """hq's own settings in ``table`` (``[hq]``, ``[alerts]``, or the old top level)."""
    out: dict[str, Any] = {}
    for name, value in table.items():
        if name in ALL and ALL[name].section != "mqtt":
            value = ck.get(table, where, name, _reader(ALL[name]))
            if value is not INVALID:
                out[name] = value
    return out


def _read_legacy(ck: Checker, top: dict[str, Any]) -> dict[str, Any]:
    """Keys at the top of the file (hq.toml before its tables), each warned about."""
    flat = ck.renamed("", top, _LEGACY_NAMES)
    known = [n for n in ALL if n not in SECTIONS]
    for name in flat:
        if name not in known:
            match = difflib.get_close_matches(name, [*known, *SECTIONS], n=1, cutoff=0.6)
            fix = f'did you mean "{match[0]}"?' if match else "remove it; see docs/hq.example.toml"
            ck.problem(name, "unknown key", fix)
    flat = {k: v for k, v in flat.items() if k in known}
    out = broker_settings.read_broker(ck, "", flat)
    out.update(_read_own(ck, "", flat))
    if flat:
        homes = "; ".join(
            f"{', '.join(n for n in flat if ALL[n].section == t)} under [{t}]"
            for t in SECTIONS
            if any(ALL[n].section == t for n in flat)
        )
        ck.warn("top level", f"keys outside any table are the old layout — move {homes}")
    return out


def load_file(path: str) -> dict[str, Any]:
    """The TOML file's settings by name, checked in full (names, types, ranges)."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path}: {exc}") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8; an editor may have saved GBK
        raise ConfigError(f"config {path}: {not_utf8(exc)}") from None
    ck = Checker()
    top = {k: v for k, v in raw.items() if k not in SECTIONS}
    out = _read_legacy(ck, top)
    for table in SECTIONS:
        given = ck.table(raw, table)
        if table == "mqtt":
            given = broker_settings.with_new_names(ck, table, given)
        ck.unknown_keys(table, given, SECTION_KEYS[table])
        mine = {k: v for k, v in given.items() if k in SECTION_KEYS[table]}
        for name in mine:
            if name in out:
                ck.problem(f"{table}.{name}", "is also given outside the tables", f"remove {name}")
        if table == "mqtt":
            out.update(broker_settings.read_broker(ck, table, mine))
        else:
            out.update(_read_own(ck, table, mine))
    if ck.issues:
        raise ConfigError(f"config {path}: " + "; ".join(ck.problems), ck.problems)
    for text in ck.warnings:
        log.warning("config %s: %s", path, text)
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
    """How dock-hq reaches the broker (the password read, not its file)."""

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
        """From the merged settings, checked by the dock's rules for ``[mqtt]``."""
        ck = Checker()
        given = {k: settings[k] for k in broker_settings.BROKER_KEYS if settings.get(k) is not None}
        values = broker_settings.read_broker(ck, "mqtt", given)
        broker_settings.check_broker(ck, "mqtt", broker_settings.BrokerTable(**values))
        if ck.issues:
            raise ConfigError("; ".join(ck.problems), ck.problems)
        return cls(
            host=settings["host"],
            port=settings["port"],
            tls_ca=settings["ca_file"],
            tls_cert=settings["cert_file"],
            tls_key=settings["key_file"],
            username=settings["username"],
            password=read_password(settings["password_file"]),
            keepalive_s=settings["keepalive_s"],
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
