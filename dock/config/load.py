"""The dock's configuration: one TOML file, checked in full at start.

``load_config()`` reads the file (argument, else ``$DOCK_CONFIG``, else
``/etc/dock/dock.toml``), checks every key and raises one ``ConfigError`` listing
every problem found, each as ``key: what is wrong — how to fix it``. Unknown keys are
errors (a typo must never be silently ignored). Settings that are allowed but weaken
the dock (a policy laxer than its preset, a trusted clock) are logged as warnings and
kept in ``DockConfig.warnings``. docs/CONFIG.md is the reference for every key.

Each table is checked by its own module (``dock.config.station`` for ``[dock]``,
``slots``, ``policy``, ``clock``, ``hardware``, ``badge``, ``officers``, ``scanner``,
``mqtt``) with the one checker of ``common.checker``; this module reads the file
and puts the tables together.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import logging
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.checker import Checker, not_utf8
from dock.config.badge import BADGE_KEYS, BadgeConfig, check_badge
from dock.config.clock import CLOCK_KEYS, ClockConfig, check_clock
from dock.config.hardware import (
    GPIO_KEYS,
    GpioConfig,
    check_gpio,
    check_pin_clashes,
    check_screen_locale,
    gpio_config,
)
from dock.config.models import MODEL_KEYS, ModelConfig, check_models
from dock.config.mqtt import MQTT_ID_RE, MQTT_KEYS, MqttConfig, check_mqtt
from dock.config.officers import OFFICERS_KEYS, OfficersConfig, check_officers
from dock.config.policy import POLICY_KEYS, check_policy
from dock.config.replication import REPLICATION_KEYS, ReplicationConfig, check_replication
from dock.config.scanner import SCANNER_KEYS, ScannerConfig, check_scanner
from dock.config.slots import EMULATED_SCHEME, SLOT_KEYS, SlotConfig, check_slots
from dock.config.station import DOCK_KEYS, DockSettings, check_dock
from dock.config.web import WEB_KEYS, WebConfig, check_web
from dock.domain.policy import Policy
from mqtt_contract import broker_settings

log = logging.getLogger("dock.config.load")

DEFAULT_PATH = "/etc/dock/dock.toml"
ENV_VAR = "DOCK_CONFIG"


class ConfigError(ValueError):
    """The configuration cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[str], path: str | None = None) -> None:
        self.problems = list(problems)
        self.path = path
        where = path or "configuration"
        n = len(self.problems)
        head = f"{where}: {n} problem{'s' if n != 1 else ''}"
        super().__init__(head + "".join(f"\n  - {p}" for p in self.problems))


@dataclass(frozen=True)
class DockConfig:
    dock: DockSettings
    policy: Policy
    slots: tuple[SlotConfig, ...]
    clock: ClockConfig = field(default_factory=ClockConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)
    badge: BadgeConfig = field(default_factory=BadgeConfig)
    officers: OfficersConfig = field(default_factory=OfficersConfig)
    scanner: ScannerConfig = field(default_factory=ScannerConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    web: WebConfig = field(default_factory=WebConfig)
    #: ``[[model]]``: cameras of other drivers (mass storage), by name.
    models: tuple[ModelConfig, ...] = ()
    #: ``[replication]``: sealed packages to the unit's central storage (none: off).
    replication: ReplicationConfig = field(default_factory=ReplicationConfig)
    #: Names of the policy fields the file overrides (informational).
    policy_overrides: tuple[str, ...] = ()
    #: Allowed but weakening settings, already logged; for the status page / audit.
    warnings: tuple[str, ...] = field(default=(), compare=False)
    #: The file this came from; None for emulated_config().
    path: str | None = field(default=None, compare=False)

    @property
    def slot_ports(self) -> dict[str, str]:
        """Slot id -> port, in file order."""
        return {s.id: s.port for s in self.slots}


SECTIONS = (
    "dock", "policy", "slot", "clock", "gpio", "badge", "officers", "scanner", "mqtt", "web",
    "model", "replication",
)  # fmt: skip
#: The keys each table accepts (docs/CONFIG.md documents each).
_SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "dock": DOCK_KEYS,
    "policy": POLICY_KEYS,
    "slot": SLOT_KEYS,
    "clock": CLOCK_KEYS,
    "gpio": GPIO_KEYS,
    "badge": BADGE_KEYS,
    "officers": OFFICERS_KEYS,
    "scanner": SCANNER_KEYS,
    "mqtt": MQTT_KEYS,
    "web": WEB_KEYS,
    "model": MODEL_KEYS,
    "replication": REPLICATION_KEYS,
}


# --- public entry points --------------------------------------------------------


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] = os.environ
) -> DockConfig:
    """Read and check the configuration; ConfigError lists every problem."""
    if path is None:
        path = env.get(ENV_VAR) or DEFAULT_PATH
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(
            [
                f"{path}: no such file — copy docs/dock.example.toml there and edit it, "
                f"or point {ENV_VAR} at your file"
            ],
            path,
        ) from None
    except OSError as exc:
        raise ConfigError(
            [f"{path}: cannot read ({exc.strerror or exc}) — check the path and permissions"],
            path,
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            [f"{path}: not valid TOML ({exc}) — fix the syntax at that line"], path
        ) from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8; an editor may have saved GBK
        raise ConfigError([f"{path}: {not_utf8(exc)}"], path) from None
    return _build(data, path=path, allow_emulated=False)


def emulated_config(count: int, state_dir: str) -> DockConfig:
    """A valid configuration for ``dock run --emulate N``.

    Slots are ``"1"``..``"N"`` on placeholder ports ``emulated:1``..``emulated:N``
    that the caller replaces with the emulators' URLs (``dataclasses.replace``). The
    clock is trusted (there is no real recorder to mis-set); files may not do this
    with ``emulated:`` ports.
    """
    if count < 1:
        raise ValueError(f"emulated_config: count must be at least 1, got {count}")
    state_dir = os.path.abspath(state_dir)
    data = {
        "dock": {
            "id": "emulated",
            "site": "emulated",
            "unit": "emulated",
            "state_dir": state_dir,
            "evidence_dir": os.path.join(state_dir, "evidence"),
        },
        "slot": [{"id": str(i), "port": f"{EMULATED_SCHEME}{i}"} for i in range(1, count + 1)],
        "clock": {"source": "trusted"},
    }
    return _build(data, path=None, allow_emulated=True)


def config_hash(cfg: DockConfig) -> str:
    """SHA-256 (hex) of a canonical JSON rendering of the resolved configuration.

    Resolved values, not the file's text: key order, comments, spelling out a
    default, and the order of the ``[[slot]]`` tables (sorted by id here) do not
    change it. ``path``, ``warnings`` and ``policy_overrides`` are left out.
    """
    canonical = {
        "dock": dataclasses.asdict(cfg.dock),
        "policy": dataclasses.asdict(cfg.policy),
        "slots": sorted((_slot_canon(s) for s in cfg.slots), key=lambda s: s["id"]),
        "clock": dataclasses.asdict(cfg.clock),
        "gpio": dataclasses.asdict(cfg.gpio),
        "badge": dataclasses.asdict(cfg.badge),
        "officers": dataclasses.asdict(cfg.officers),
        "scanner": list(cfg.scanner.command),
        "mqtt": dataclasses.asdict(cfg.mqtt),
        "web": dataclasses.asdict(cfg.web),
    }
    if cfg.models:  # absent before [[model]] existed: the hash of those files is unchanged
        canonical["models"] = [dataclasses.asdict(m) for m in cfg.models]
    if cfg.replication != ReplicationConfig():  # likewise: absent before [replication]
        canonical["replication"] = dataclasses.asdict(cfg.replication)
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _slot_canon(slot: SlotConfig) -> dict[str, Any]:
    """A slot's values, less the driver keys left at their defaults (so a file written
    before they existed hashes as it did)."""
    values = dataclasses.asdict(slot)
    for key, default in (("driver", "protocol"), ("model", None), ("disk", None)):
        if values[key] == default:
            del values[key]
    return values


# --- the whole file -------------------------------------------------------------


def _check_top(ck: Checker, data: Mapping[str, Any]) -> None:
    for name in data:
        if name in SECTIONS:
            continue
        homes = [s for s, keys in _SECTION_KEYS.items() if name in keys]
        if homes:
            ck.problem(name, "is outside any table", f"move it under [{homes[0]}]")
            continue
        match = difflib.get_close_matches(name, SECTIONS, n=1, cutoff=0.6)
        if match:
            ck.problem(name, "unknown table", f'did you mean "{match[0]}"?')
        else:
            ck.problem(name, "unknown table", f"remove it; the tables are {', '.join(SECTIONS)}")


def _check_slot_topics(ck: Checker, slots: list[dict[str, Any]]) -> None:
    """With [mqtt], every slot id is a topic level."""
    for s in slots:
        if isinstance(s.get("id"), str) and not MQTT_ID_RE.match(s["id"]):
            ck.problem(
                f"slot {s['id']!r}",
                "with [mqtt] a slot id is a topic level",
                'use letters, digits, "_", "-" or ".", starting with a letter or digit',
            )


def _check_slot_models(
    ck: Checker, slots: list[dict[str, Any]], models: list[dict[str, Any]]
) -> None:
    """A slot's ``model`` names a ``[[model]]``."""
    names = {m["name"] for m in models}
    for s in slots:
        if isinstance(s.get("model"), str) and s["model"] not in names:
            ck.problem(
                f"slot {s['id']!r}.model",
                f"no [[model]] is named {s['model']!r}",
                "add a [[model]] table with that name (docs/CONFIG.md)",
            )


def _build(data: Mapping[str, Any], path: str | None, allow_emulated: bool) -> DockConfig:
    ck = Checker()
    _check_top(ck, data)
    dock = check_dock(ck, ck.table(data, "dock"))
    policy, overridden = check_policy(ck, ck.table(data, "policy"))
    pins: list[tuple[str, int]] = []
    slots = check_slots(ck, data, allow_emulated, pins)
    clock = check_clock(ck, ck.table(data, "clock"))
    gpio = check_gpio(ck, ck.table(data, "gpio"), pins)
    check_pin_clashes(ck, pins)
    check_screen_locale(ck, gpio["screen"], dock["locale"])
    badge = check_badge(ck, ck.table(data, "badge"))
    officers = check_officers(ck, ck.table(data, "officers"))
    scanner = check_scanner(ck, ck.table(data, "scanner"))
    web = check_web(ck, ck.table(data, "web"))
    models = check_models(ck, data)
    _check_slot_models(ck, slots, models)
    replication = check_replication(ck, ck.table(data, "replication"))

    mqtt_t = broker_settings.with_new_names(ck, "mqtt", ck.table(data, "mqtt"))
    ck.unknown_keys("mqtt", mqtt_t, MQTT_KEYS)
    mqtt = check_mqtt(ck, {k: v for k, v in mqtt_t.items() if k in MQTT_KEYS}, dock["id"])
    if mqtt is not None and mqtt.enabled:
        _check_slot_topics(ck, slots)

    if ck.problems or policy is None:
        raise ConfigError(ck.problems, path)
    for text in ck.warnings:
        log.warning("%s%s", f"{path}: " if path else "", text)
    return DockConfig(
        dock=DockSettings(**dock),
        policy=policy,
        slots=tuple(SlotConfig(**s) for s in slots),
        clock=ClockConfig(**clock),
        gpio=gpio_config(gpio),
        badge=BadgeConfig(**badge),
        officers=OfficersConfig(**officers),
        scanner=ScannerConfig(command=tuple(scanner)),
        mqtt=mqtt or MqttConfig(),
        web=WebConfig(**web),
        models=tuple(ModelConfig(**m) for m in models),
        replication=replication or ReplicationConfig(),
        policy_overrides=overridden,
        warnings=tuple(ck.warnings),
        path=path,
    )
