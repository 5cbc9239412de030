"""The configuration file: the example loads, and every mistake names its key and fix."""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import re
import textwrap
import tomllib

import pytest

from dock.config import (
    LAXER,
    POLICY_FIELDS,
    SECTIONS,
    ConfigError,
    DockConfig,
    config_hash,
    emulated_config,
    load_config,
)
from dock.config.web import WEB_KEYS
from dock.domain.policy import DEFAULT_PRESET, PRESETS

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
EXAMPLE = DOCS / "dock.example.toml"

MINIMAL = """
[dock]
id = "dock-01"
site = "Site"
unit = "Unit"

[[slot]]
id = "1"
port = "/dev/ttyACM0"
"""


def write(tmp_path: pathlib.Path, text: str, name: str = "dock.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def problems(tmp_path: pathlib.Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert all(" — " in p for p in info.value.problems), info.value.problems
    return info.value.problems


def one_problem(tmp_path: pathlib.Path, text: str, key: str) -> str:
    found = [p for p in problems(tmp_path, text) if p.startswith(f"{key}: ")]
    assert len(found) == 1, found
    return found[0]


# --- the example and the defaults --------------------------------------------------


def test_example_loads_without_warnings(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="dock.config.load"):
        cfg = load_config(str(EXAMPLE), env={})
    # The one warning: its HD44780 shows English although the dock's locale is Chinese.
    assert [w.split(":")[0] for w in cfg.warnings] == ["gpio.screen"]
    assert [r.getMessage() for r in caplog.records] == [f"{EXAMPLE}: {cfg.warnings[0]}"]
    assert cfg.dock.id == "xh-scjg-dock01"
    assert [s.id for s in cfg.slots] == ["1", "2", "3", "4"]
    assert cfg.slots[1].port == "usb:1-1.2"
    assert cfg.gpio.screen == "hd44780" and cfg.gpio.hd44780 is not None
    assert cfg.policy == PRESETS["strictest"]
    assert cfg.path == str(EXAMPLE)


def test_minimal_file_gets_the_documented_defaults(tmp_path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL), env={})
    assert cfg.dock.state_dir == "/var/lib/dock"
    assert cfg.dock.evidence_dir == "/srv/evidence"
    assert cfg.dock.locale == "zh"
    assert cfg.dock.timezone == "Asia/Shanghai"
    assert cfg.dock.tz.key == "Asia/Shanghai"
    assert cfg.policy == PRESETS[DEFAULT_PRESET]
    assert cfg.clock.source == "system" and cfg.clock.max_offset_s == 0.5
    assert cfg.gpio.buzzer is None and cfg.gpio.screen == "console"
    assert cfg.badge.reader == "none" and cfg.badge.baudrate == 9600
    assert cfg.officers.min_pin_length == 6
    assert cfg.slot_ports == {"1": "/dev/ttyACM0"}


# --- where the file comes from -----------------------------------------------------


def test_dock_config_env_is_honoured(tmp_path) -> None:
    path = write(tmp_path, MINIMAL.replace("dock-01", "from-env"))
    assert load_config(env={"DOCK_CONFIG": path}).dock.id == "from-env"


def test_argument_beats_env(tmp_path) -> None:
    env_path = write(tmp_path, MINIMAL.replace("dock-01", "from-env"), "env.toml")
    arg_path = write(tmp_path, MINIMAL.replace("dock-01", "from-arg"), "arg.toml")
    assert load_config(arg_path, env={"DOCK_CONFIG": env_path}).dock.id == "from-arg"


def test_default_path_when_nothing_is_given(tmp_path, monkeypatch) -> None:
    from dock.config import load as config

    assert config.DEFAULT_PATH == "/etc/dock/dock.toml"
    path = write(tmp_path, MINIMAL.replace("dock-01", "from-default"))
    monkeypatch.setattr(config, "DEFAULT_PATH", path)
    assert load_config(env={}).dock.id == "from-default"
    assert load_config(env={"DOCK_CONFIG": ""}).dock.id == "from-default"


def test_missing_file_and_bad_toml(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"no such file — copy docs/dock\.example\.toml"):
        load_config(str(tmp_path / "absent.toml"), env={})
    with pytest.raises(ConfigError, match=r"not valid TOML .*line 2"):
        load_config(write(tmp_path, "[dock]\nid = \n"), env={})


# --- each kind of mistake ----------------------------------------------------------


def test_missing_dock_id(tmp_path) -> None:
    text = MINIMAL.replace('id = "dock-01"\n', "")
    p = one_problem(tmp_path, text, "dock.id")
    assert p.startswith("dock.id: missing — ") and 'id = "' in p


def test_invalid_dock_id(tmp_path) -> None:
    p = one_problem(tmp_path, MINIMAL.replace("dock-01", "dock 01!"), "dock.id")
    assert "1 to 32 letters" in p


def test_missing_port_names_the_slot_and_the_forms(tmp_path) -> None:
    text = MINIMAL + '\n[[slot]]\nid = "2"\n'
    p = one_problem(tmp_path, text, "slot[2].port")
    assert p == (
        "slot[2].port: missing — give a device path such as /dev/ttyACM0, "
        "tcp://HOST:PORT or usb:1-1.2"
    )


@pytest.mark.parametrize(
    ("port", "fix"),
    [
        ("ttyACM0", "write /dev/ttyACM0"),
        ("1-1.2", "write usb:1-1.2"),
        ("usb:1-", "usb:BUS-PORT[.PORT...]"),
        ("usb:0-1", "1..255"),
        ("tcp://localhost", "tcp://HOST:PORT"),
        ("tcp://localhost:99999", "tcp://HOST:PORT"),
        ("ftp://x:1", "unknown scheme"),
        ("/home/x/tty", "under /dev"),
        ("emulated:1", "dock run --emulate N"),
        ("", "give a device path"),
    ],
)
def test_bad_port(tmp_path, port, fix) -> None:
    p = one_problem(tmp_path, MINIMAL.replace("/dev/ttyACM0", port), "slot[1].port")
    assert fix in p


@pytest.mark.parametrize(
    "port",
    [
        "/dev/ttyACM0",
        "/dev/serial/by-path/platform-xhci-hcd.0-usb-0:1.2:1.0",
        "tcp://127.0.0.1:7000",
        "socket://localhost:7000?logging=debug",
        "rfc2217://10.0.0.2:2217",
        "loop://",
        "usb:1-1.2",
        "usb:3-1.4.2.1",
    ],
)
def test_good_ports(tmp_path, port) -> None:
    cfg = load_config(write(tmp_path, MINIMAL.replace("/dev/ttyACM0", port)), env={})
    assert cfg.slots[0].port == port


def test_duplicate_slot_id(tmp_path) -> None:
    text = MINIMAL + '\n[[slot]]\nid = "1"\nport = "/dev/ttyACM1"\n'
    p = one_problem(tmp_path, text, "slot[2].id")
    assert '"1" is already the id of slot[1]' in p and "its own id" in p


def test_integer_and_string_slot_ids_collide(tmp_path) -> None:
    text = MINIMAL + '\n[[slot]]\nid = 1\nport = "/dev/ttyACM1"\n'
    assert "already the id of slot[1]" in one_problem(tmp_path, text, "slot[2].id")


def test_duplicate_port_even_when_spelled_differently(tmp_path) -> None:
    text = MINIMAL.replace("/dev/ttyACM0", "usb:1-1.2") + (
        '\n[[slot]]\nid = "2"\nport = "usb:1-01.2"\n'
    )
    p = one_problem(tmp_path, text, "slot[2].port")
    assert "already the port of slot[1]" in p and "its own port" in p


def test_pin_clash_between_led_and_buzzer(tmp_path) -> None:
    text = MINIMAL + "led_green = 17\nled_red = 27\n\n[gpio]\nbuzzer = 17\n"
    p = one_problem(tmp_path, text, "gpio.buzzer")
    assert "GPIO 17 is already used by slot[1].led_green" in p and "its own GPIO" in p


def test_pin_clash_with_lcd_and_within_a_slot(tmp_path) -> None:
    text = MINIMAL + (
        "led_green = 5\nled_red = 5\n\n"
        '[gpio]\nscreen = "hd44780"\n\n'
        "[gpio.hd44780]\nrs = 25\ne = 24\nd4 = 23\nd5 = 17\nd6 = 27\nd7 = 25\n"
    )
    found = problems(tmp_path, text)
    assert any(
        p.startswith("slot[1].led_red: GPIO 5 is already used by slot[1].led_green") for p in found
    )
    assert any(
        p.startswith("gpio.hd44780.d7: GPIO 25 is already used by gpio.hd44780.rs") for p in found
    )


def test_pin_out_of_range(tmp_path) -> None:
    p = one_problem(tmp_path, MINIMAL + "led_green = 40\n", "slot[1].led_green")
    assert "BCM GPIO number from 0 to 27" in p


def test_hd44780_needs_its_pins_and_only_with_that_screen(tmp_path) -> None:
    p = one_problem(tmp_path, MINIMAL + '[gpio]\nscreen = "hd44780"\n', "gpio.hd44780")
    assert "rs, e, d4, d5, d6, d7" in p
    text = MINIMAL + '[gpio]\nscreen = "hd44780"\n[gpio.hd44780]\nrs = 25\ne = 24\n'
    assert "LCD's D4 pin" in one_problem(tmp_path, text, "gpio.hd44780.d4")
    text = MINIMAL + "[gpio.hd44780]\nrs = 25\n"
    assert 'set screen = "hd44780"' in one_problem(tmp_path, text, "gpio.hd44780")


@pytest.mark.parametrize(
    ("table", "typo", "key", "suggestion"),
    [
        ("dock", 'sitee = "x"', "dock.sitee", "site"),
        ("policy", "min_batery_percent = 90", "policy.min_batery_percent", "min_battery_percent"),
        ("clock", "max_ofset_s = 0.2", "clock.max_ofset_s", "max_offset_s"),
        ("badge", "baudrat = 9600", "badge.baudrat", "baudrate"),
        ("officers", "min_pin_lenght = 8", "officers.min_pin_lenght", "min_pin_length"),
    ],
)
def test_unknown_key_with_suggestion(tmp_path, table, typo, key, suggestion) -> None:
    if table == "dock":
        text = MINIMAL.replace('unit = "Unit"', f'unit = "Unit"\n{typo}')
    else:
        text = MINIMAL + f"\n[{table}]\n{typo}\n"
    p = one_problem(tmp_path, text, key)
    assert p == f'{key}: unknown key — did you mean "{suggestion}"?'


def test_unknown_key_in_a_slot_and_unknown_table(tmp_path) -> None:
    text = MINIMAL + "led_gren = 5\n\n[offcers]\nmin_pin_length = 8\n"
    found = problems(tmp_path, text)
    assert 'slot[1].led_gren: unknown key — did you mean "led_green"?' in found
    assert 'offcers: unknown table — did you mean "officers"?' in found


def test_unknown_key_without_a_close_match_lists_the_known_ones(tmp_path) -> None:
    p = one_problem(tmp_path, MINIMAL + "\n[clock]\nzzz = 1\n", "clock.zzz")
    assert "remove it; [clock] knows source, max_offset_s" in p


def test_key_outside_any_table(tmp_path) -> None:
    p = one_problem(tmp_path, 'timezone = "UTC"\n' + MINIMAL, "timezone")
    assert "move it under [dock]" in p


def test_slot_written_as_a_single_table(tmp_path) -> None:
    text = MINIMAL.replace("[[slot]]", "[slot]")
    assert "[[slot]] (double brackets)" in one_problem(tmp_path, text, "slot")


def test_no_slots(tmp_path) -> None:
    text = MINIMAL.split("[[slot]]")[0]
    assert "add one [[slot]] table" in one_problem(tmp_path, text, "slot")


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ('min_battery_percent = "90"', "expected an integer, got a string"),
        ("min_battery_percent = 90.5", "expected an integer, got a number"),
        ("retention_days = true", "expected an integer, got a boolean"),
        ('offload_deadline_hours = "12"', "expected a number"),
        ('supervisor_override_allowed = "no"', "expected a boolean"),
        ('allowed_firmware = "1.2.0"', "expected an array of strings"),
        ("allowed_firmware = [1, 2]", "an integer (1) in the array"),
        ("min_battery_percent = 120", "is not a percentage"),
        ("retention_days = 0", "is not positive"),
        ("offload_deadline_working_days = -1", "is negative"),
    ],
)
def test_wrong_type_or_value_for_an_override(tmp_path, line, expect) -> None:
    key = "policy." + line.split(" =")[0]
    p = one_problem(tmp_path, MINIMAL + f"\n[policy]\n{line}\n", key)
    assert expect in p


def test_wrong_type_fix_shows_the_corrected_line(tmp_path) -> None:
    p = one_problem(
        tmp_path, MINIMAL + '\n[policy]\nmin_battery_percent = "90"\n', "policy.min_battery_percent"
    )
    assert p.endswith("remove the quotes: min_battery_percent = 90")


def test_policy_name_is_not_settable(tmp_path) -> None:
    p = one_problem(tmp_path, MINIMAL + '\n[policy]\nname = "mine"\n', "policy.name")
    assert "preset" in p


def test_unknown_preset(tmp_path) -> None:
    p = one_problem(tmp_path, MINIMAL + '\n[policy]\npreset = "guangdon"\n', "policy.preset")
    assert 'did you mean "guangdong"?' in p
    for name in PRESETS:
        assert f'"{name}"' in p


def test_bad_timezone(tmp_path) -> None:
    text = MINIMAL.replace('unit = "Unit"', 'unit = "Unit"\ntimezone = "Asia/Shanghia"')
    p = one_problem(tmp_path, text, "dock.timezone")
    assert "not an IANA time zone" in p and 'did you mean "Asia/Shanghai"?' in p


@pytest.mark.parametrize("tz", ["../etc/passwd", "/etc/localtime", "", "Mars/Olympus"])
def test_timezones_that_are_not_zones(tmp_path, tz) -> None:
    text = MINIMAL.replace('unit = "Unit"', f'unit = "Unit"\ntimezone = "{tz}"')
    assert "not an IANA time zone" in one_problem(tmp_path, text, "dock.timezone")


@pytest.mark.parametrize(
    ("table", "line", "key", "expect"),
    [
        ("dock", 'locale = "fr"', "dock.locale", 'use "zh" or "en"'),
        ("dock", 'state_dir = "var/lib/dock"', "dock.state_dir", "absolute path"),
        ("clock", 'source = "ntp"', "clock.source", 'use "system" or "trusted"'),
        ("clock", "max_offset_s = -1", "clock.max_offset_s", "above 0"),
        ("gpio", 'screen = "oled"', "gpio.screen", 'use "console" or "hd44780"'),
        ("badge", 'reader = "keybord"', "badge.reader", 'did you mean "keyboard"?'),
        ("badge", 'reader = "usb:1-1.3"', "badge.reader", "serial port"),
        ("badge", "baudrate = 9601", "badge.baudrate", "standard baud rate"),
        ("officers", "min_pin_length = 3", "officers.min_pin_length", "from 4 to 32"),
    ],
)
def test_other_bad_values(tmp_path, table, line, key, expect) -> None:
    if table == "dock":
        text = MINIMAL.replace('unit = "Unit"', f'unit = "Unit"\n{line}')
    else:
        text = MINIMAL + f"\n[{table}]\n{line}\n"
    assert expect in one_problem(tmp_path, text, key)


def test_several_problems_are_reported_together(tmp_path) -> None:
    text = """
    [dock]
    site = "Site"
    unit = "Unit"
    timezone = "Asia/Shanghia"

    [policy]
    preset = "nowhere"
    min_battery_percent = "high"

    [[slot]]
    id = "1"
    port = "/dev/ttyACM0"
    led_green = 17

    [[slot]]
    id = "1"
    port = "/dev/ttyACM0"

    [[slot]]
    id = "3"

    [gpio]
    buzzer = 17
    scren = "console"
    """
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    keys = [p.split(":")[0] for p in info.value.problems]
    assert sorted(keys) == sorted(
        [
            "dock.id",
            "dock.timezone",
            "policy.preset",
            "policy.min_battery_percent",
            "slot[2].id",
            "slot[2].port",
            "slot[3].port",
            "gpio.scren",
            "gpio.buzzer",
        ]
    )
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'dock.toml'}: 9 problems\n  - ")
    assert all(p in message for p in info.value.problems)


# --- presets and overrides ---------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "hours", "working_days", "retention"),
    [
        ("strictest", 24.0, None, 1095),
        ("qiannan", 24.0, None, 730),
        ("pishan", 24.0, 1, 1095),
        ("guangdong", 24.0, None, 365),
        ("tanghe", 24.0, None, 365),
        ("jingzhou", 48.0, None, 183),
    ],
)
def test_presets_set_deadline_and_retention(
    tmp_path, preset, hours, working_days, retention
) -> None:
    """003 art.13; 001 art.19(3); 004 att.1 art.5; 003 art.15; 000 §14.3; 001 art.20: each
    regulation's named preset sets its offload deadline and its retention."""
    cfg = load_config(write(tmp_path, MINIMAL + f'\n[policy]\npreset = "{preset}"\n'), env={})
    assert cfg.policy.name == preset
    assert cfg.policy.offload_deadline_hours == hours
    assert cfg.policy.offload_deadline_working_days == working_days
    assert cfg.policy.retention_days == retention


def test_stricter_override_is_silent(tmp_path, caplog) -> None:
    text = (
        MINIMAL
        + '\n[policy]\npreset = "jingzhou"\nretention_days = 400\nmin_battery_percent = 90\n'
    )
    with caplog.at_level(logging.WARNING, logger="dock.config.load"):
        cfg = load_config(write(tmp_path, text), env={})
    assert cfg.policy.retention_days == 400 and cfg.policy.min_battery_percent == 90
    assert cfg.policy.offload_deadline_hours == 48.0
    assert cfg.policy_overrides == ("min_battery_percent", "retention_days")
    assert cfg.warnings == () and caplog.records == []


def test_laxer_override_is_allowed_but_warned(tmp_path, caplog) -> None:
    text = MINIMAL + (
        "\n[policy]\nmin_battery_percent = 50\nretention_days = 183\n"
        'offload_deadline_hours = 48\nnever_overridable = ["device_lost"]\n'
    )
    with caplog.at_level(logging.WARNING, logger="dock.config.load"):
        cfg = load_config(write(tmp_path, text), env={})
    assert cfg.policy.min_battery_percent == 50
    assert cfg.policy.offload_deadline_hours == 48.0
    assert isinstance(cfg.policy.offload_deadline_hours, float)
    assert cfg.policy.never_overridable == ("device_lost",)
    warned = "\n".join(cfg.warnings)
    assert 'policy.min_battery_percent: 50 is laxer than preset "strictest" (80)' in warned
    assert "policy.retention_days: 183 is laxer" in warned
    assert "offload deadline 48 h is laxer" in warned
    assert "policy.never_overridable" in warned
    assert len(caplog.records) == len(cfg.warnings) == 4


def test_working_days_can_be_set_and_unset(tmp_path) -> None:
    cfg = load_config(
        write(tmp_path, MINIMAL + "\n[policy]\noffload_deadline_working_days = 2\n"), env={}
    )
    assert cfg.policy.offload_deadline_working_days == 2
    assert any("offload deadline 2 working days is laxer" in w for w in cfg.warnings)
    text = MINIMAL + (
        '\n[policy]\npreset = "pishan"\noffload_deadline_working_days = 0\n'
        "offload_deadline_hours = 12\n"
    )
    cfg = load_config(write(tmp_path, text), env={})
    assert cfg.policy.offload_deadline_working_days is None
    assert cfg.policy.offload_deadline_hours == 12.0
    assert cfg.warnings == ()


def test_hours_without_unsetting_working_days_is_an_error(tmp_path) -> None:
    text = MINIMAL + '\n[policy]\npreset = "pishan"\noffload_deadline_hours = 12\n'
    p = one_problem(tmp_path, text, "policy.offload_deadline_hours")
    assert "has no effect" in p and "offload_deadline_working_days = 0" in p


def test_every_policy_field_has_a_laxness_rule_and_a_doc_row() -> None:
    assert set(LAXER) == set(POLICY_FIELDS)
    doc = (DOCS / "CONFIG.md").read_text(encoding="utf-8")
    for name in POLICY_FIELDS:
        assert f"| `{name}` |" in doc, name


def test_trusted_clock_warns(tmp_path) -> None:
    """004 att.3 art.9: a dock clock trusted by configuration alone is warned of: for tests and
    emulation only."""
    cfg = load_config(write(tmp_path, MINIMAL + '\n[clock]\nsource = "trusted"\n'), env={})
    assert cfg.clock.source == "trusted"
    assert any(w.startswith("clock.source:") and "tests and emulation" in w for w in cfg.warnings)


# --- the reference stays in step with the code -------------------------------------


def _all_keys() -> list[tuple[str, str]]:
    import dock.config as config
    from dock.config.models import MODEL_KEYS
    from dock.config.replication import REPLICATION_KEYS, TARGET_KEYS

    tables = {
        "dock": config.DOCK_KEYS,
        "policy": ("preset",),
        "slot": config.SLOT_KEYS,
        "clock": config.CLOCK_KEYS,
        "gpio": tuple(k for k in config.GPIO_KEYS if k != "hd44780"),  # a table of its own
        "gpio.hd44780": config.HD44780_KEYS,
        "badge": config.BADGE_KEYS,
        "officers": config.OFFICERS_KEYS,
        "web": WEB_KEYS,
        "model": MODEL_KEYS,
        "replication": tuple(k for k in REPLICATION_KEYS if k != "target"),
        "replication.target": TARGET_KEYS,
    }
    return [(t, k) for t, keys in tables.items() for k in keys]


def test_config_md_documents_every_key_and_table() -> None:
    doc = (DOCS / "CONFIG.md").read_text(encoding="utf-8")
    sections = re.findall(r"^##+ `\[+([a-z0-9.]+)\]+`", doc, flags=re.M)
    assert set(sections) == {*SECTIONS, "gpio.hd44780", "replication.target"}
    for table, key in _all_keys():
        assert f"| `{key}` |" in doc, f"{table}.{key}"


def test_config_md_presets_table_matches_policy() -> None:
    doc = (DOCS / "CONFIG.md").read_text(encoding="utf-8")
    for name, policy in PRESETS.items():
        rows = [line for line in doc.splitlines() if line.startswith(f"| `{name}`")]
        assert len(rows) == 1, name
        row = rows[0]
        assert f"{policy.retention_days} days" in row, name
        if policy.offload_deadline_working_days is not None:
            assert f"{policy.offload_deadline_working_days} working day" in row, name
        else:
            assert f"{policy.offload_deadline_hours:g} h" in row, name


def _as_toml(value: object) -> object:
    # How CONFIG.md and the example write a Policy default: no null in TOML, 0 = unset.
    if value is None:
        return 0
    return list(value) if isinstance(value, tuple) else value


def test_config_md_policy_table_shows_the_strictest_values() -> None:
    doc = (DOCS / "CONFIG.md").read_text(encoding="utf-8")
    strictest = PRESETS["strictest"]
    for name in POLICY_FIELDS:
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{name}` |"))
        shown = re.search(r"`([^`]*)`", row.split("|")[3])
        assert shown is not None, name
        value = tomllib.loads(f"v = {shown.group(1)}")["v"]
        assert value == _as_toml(getattr(strictest, name)), name


def test_example_comments_show_the_strictest_values() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    strictest = PRESETS["strictest"]
    for name in POLICY_FIELDS:
        m = re.search(rf"^# ({name} = .*?)(?:  +#.*)?$", text, flags=re.M)
        assert m is not None, name
        assert tomllib.loads(m.group(1))[name] == _as_toml(getattr(strictest, name)), name


def test_example_sets_every_key_at_least_in_a_comment() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for table, key in _all_keys():
        assert re.search(rf"^#? ?{key} = ", text, flags=re.M), f"{table}.{key}"
    for name in POLICY_FIELDS:
        assert re.search(rf"^# {name} = ", text, flags=re.M), name


# --- emulation and the hash --------------------------------------------------------


def test_emulated_config(tmp_path) -> None:
    cfg = emulated_config(3, str(tmp_path))
    assert isinstance(cfg, DockConfig)
    assert [(s.id, s.port) for s in cfg.slots] == [
        ("1", "emulated:1"),
        ("2", "emulated:2"),
        ("3", "emulated:3"),
    ]
    assert cfg.dock.state_dir == str(tmp_path)
    assert cfg.dock.evidence_dir == str(tmp_path / "evidence")
    assert cfg.clock.source == "trusted"
    assert cfg.path is None
    filled = dataclasses.replace(
        cfg, slots=tuple(dataclasses.replace(s, port=f"/dev/pts/{s.id}") for s in cfg.slots)
    )
    assert filled.slot_ports == {"1": "/dev/pts/1", "2": "/dev/pts/2", "3": "/dev/pts/3"}
    with pytest.raises(ValueError):
        emulated_config(0, str(tmp_path))


def test_config_hash_is_stable_across_key_and_slot_order(tmp_path) -> None:
    a = """
    [dock]
    id = "dock-01"
    site = "Site"
    unit = "Unit"

    [policy]
    preset = "tanghe"
    min_battery_percent = 85

    [[slot]]
    id = "1"
    port = "usb:1-1.1"
    led_green = 5

    [[slot]]
    id = "2"
    port = "usb:1-1.2"

    [clock]
    source = "system"
    """
    b = """
    [[slot]]
    port = "usb:1-1.2"
    id = "2"

    [[slot]]
    led_green = 5
    port = "usb:1-1.1"
    id = "1"

    [policy]
    min_battery_percent = 85
    preset = "tanghe"

    [dock]
    unit = "Unit"
    locale = "zh"
    site = "Site"
    id = "dock-01"
    """
    ha = config_hash(load_config(write(tmp_path, a, "a.toml"), env={}))
    hb = config_hash(load_config(write(tmp_path, b, "b.toml"), env={}))
    assert ha == hb
    assert re.fullmatch(r"[0-9a-f]{64}", ha)
    c = a.replace("min_battery_percent = 85", "min_battery_percent = 86")
    assert config_hash(load_config(write(tmp_path, c, "c.toml"), env={})) != ha
    d = a.replace('preset = "tanghe"', 'preset = "guangdong"')
    assert config_hash(load_config(write(tmp_path, d, "d.toml"), env={})) != ha


def test_config_hash_ignores_where_the_file_is() -> None:
    # Two loads agree, and the hash does not depend on where the file is.
    one = load_config(str(EXAMPLE), env={})
    assert config_hash(one) == config_hash(dataclasses.replace(one, path="/elsewhere"))


def test_explain_manual_stops_is_a_checked_policy_key_off_by_default(tmp_path) -> None:
    """002 art.20; 001 art.19(2): explanations are owed for interruptions, and a manual
    stop ending one incident is not one (REQUIREMENTS §5): off in every preset; a unit may
    turn it on; a value that is not a boolean is refused at load."""
    assert all(p.explain_manual_stops is False for p in PRESETS.values())
    assert load_config(write(tmp_path, MINIMAL), env={}).policy.explain_manual_stops is False
    on = load_config(write(tmp_path, MINIMAL + "\n[policy]\nexplain_manual_stops = true\n"),
                     env={})  # fmt: skip
    assert on.policy.explain_manual_stops is True and on.warnings == ()
    p = one_problem(tmp_path, MINIMAL + '\n[policy]\nexplain_manual_stops = "yes"\n',
                    "policy.explain_manual_stops")  # fmt: skip
    assert "expected a boolean" in p and "true or false" in p


SFTP_TARGET = """
[[replication.target]]
name = "hq"
kind = "sftp"
host = "10.1.2.3"
user = "dock01"
key_file = "/etc/dock/replica_ed25519"
known_hosts_file = "/etc/dock/replica_known_hosts"
"""


def test_replication_verify_reads_back_unless_sftp_asks_the_server(tmp_path) -> None:
    [default] = load_config(write(tmp_path, MINIMAL + SFTP_TARGET), env={}).replication.targets
    assert default.verify == "read-back"
    text = MINIMAL + SFTP_TARGET + 'verify = "remote-sha256sum"\n'
    [remote] = load_config(write(tmp_path, text), env={}).replication.targets
    assert remote.verify == "remote-sha256sum"
    bad = one_problem(tmp_path, MINIMAL + SFTP_TARGET + 'verify = "size"\n',
                      "replication.target[1].verify")  # fmt: skip
    assert "read-back" in bad
    smb = (MINIMAL + SFTP_TARGET.replace('"sftp"', '"smb"') + 'share = "ev"\n'
           'password_file = "/etc/dock/smb.pw"\nverify = "remote-sha256sum"\n')  # fmt: skip
    assert "for SFTP targets" in one_problem(tmp_path, smb, "replication.target[1].verify")


def test_replication_ssh_client_is_openssh_where_it_can_serve_unless_chosen(tmp_path) -> None:
    [default] = load_config(write(tmp_path, MINIMAL + SFTP_TARGET), env={}).replication.targets
    assert default.ssh_client == "auto"
    for choice in ("openssh", "paramiko"):
        text = MINIMAL + SFTP_TARGET + f'ssh_client = "{choice}"\n'
        [chosen] = load_config(write(tmp_path, text), env={}).replication.targets
        assert chosen.ssh_client == choice
    where = "replication.target[1].ssh_client"
    assert "auto" in one_problem(tmp_path, MINIMAL + SFTP_TARGET + 'ssh_client = "putty"\n', where)
    password = SFTP_TARGET.replace('key_file = "/etc/dock/replica_ed25519"',
                                   'password_file = "/etc/dock/replica.pw"')  # fmt: skip
    assert password != SFTP_TARGET
    said = one_problem(tmp_path, MINIMAL + password + 'ssh_client = "openssh"\n', where)
    assert "key_file" in said
