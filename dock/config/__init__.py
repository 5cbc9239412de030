"""The dock's configuration (dock.toml), one module per table over one shared checker.

Callers import from here; ``dock.config.load`` reads the file and puts the tables
together, ``common.checker`` and ``mqtt_contract.broker_settings`` are the
checker and the ``[mqtt]`` broker settings dock-hq reads the same way.
"""

from common.checker import not_utf8
from dock.config.badge import BADGE_KEYS, BADGE_READERS, BAUDRATES, BadgeConfig
from dock.config.clock import CLOCK_KEYS, CLOCK_SOURCES, ClockConfig
from dock.config.hardware import (
    GPIO_KEYS,
    GPIO_PINS,
    HD44780_KEYS,
    HD44780_PINS,
    SCREENS,
    GpioConfig,
    Hd44780Pins,
)
from dock.config.load import (
    DEFAULT_PATH,
    ENV_VAR,
    SECTIONS,
    ConfigError,
    DockConfig,
    config_hash,
    emulated_config,
    load_config,
)
from dock.config.mqtt import MQTT_ID_RE, MQTT_KEYS, MqttConfig, parse_mqtt, read_password
from dock.config.officers import OFFICERS_KEYS, OfficersConfig
from dock.config.policy import LAXER, POLICY_FIELDS, POLICY_KEYS
from dock.config.scanner import ScannerConfig
from dock.config.slots import EMULATED_SCHEME, PORT_EXAMPLES, SLOT_KEYS, SlotConfig
from dock.config.station import DOCK_KEYS, LOCALES, DockSettings

__all__ = [
    "BADGE_KEYS",
    "BADGE_READERS",
    "BAUDRATES",
    "CLOCK_KEYS",
    "CLOCK_SOURCES",
    "DEFAULT_PATH",
    "DOCK_KEYS",
    "EMULATED_SCHEME",
    "ENV_VAR",
    "GPIO_KEYS",
    "GPIO_PINS",
    "HD44780_KEYS",
    "HD44780_PINS",
    "LAXER",
    "LOCALES",
    "MQTT_ID_RE",
    "MQTT_KEYS",
    "OFFICERS_KEYS",
    "POLICY_FIELDS",
    "POLICY_KEYS",
    "PORT_EXAMPLES",
    "SCREENS",
    "SECTIONS",
    "SLOT_KEYS",
    "BadgeConfig",
    "ClockConfig",
    "ConfigError",
    "DockConfig",
    "DockSettings",
    "GpioConfig",
    "Hd44780Pins",
    "MqttConfig",
    "OfficersConfig",
    "ScannerConfig",
    "SlotConfig",
    "config_hash",
    "emulated_config",
    "load_config",
    "not_utf8",
    "parse_mqtt",
    "read_password",
]
