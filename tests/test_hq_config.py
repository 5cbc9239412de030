"""dock-hq's settings: the TOML file and the command line agree, and mistakes are named."""

from __future__ import annotations

import pytest

from hq import config


def write(tmp_path, text: str) -> str:
    path = tmp_path / "hq.toml"
    path.write_text(text)
    return str(path)


def test_file_then_command_line_win_over_defaults(tmp_path):
    file = config.load_file(write(tmp_path, 'port = 8884\nname = "east"\ndrift-max = 3\n'))
    merged = config.merge({"port": 9000, "host": None}, file)
    assert merged["port"] == 9000  # command line
    assert merged["name"] == "east" and merged["drift_max"] == 3.0  # file; ints are floats
    assert merged["host"] == "127.0.0.1"  # default
    assert config.thresholds(merged).drift_max_s == 3.0


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("prot = 1883\n", "prot"),
        ('port = "1883"\n', "port"),
        ("device_failures = true\n", "device_failures"),
        ("port = \n", "hq.toml"),
    ],
)
def test_mistakes_are_named(tmp_path, text, named):
    with pytest.raises(config.ConfigError, match=named):
        config.load_file(write(tmp_path, text))


def test_thresholds_must_make_sense():
    with pytest.raises(config.ConfigError, match="health_interval"):
        config.thresholds(config.merge({"health_interval": 0.0}, {}))
    with pytest.raises(config.ConfigError, match="device_failures"):
        config.thresholds(config.merge({"device_failures": 0}, {}))


def test_password_from_env_before_file(tmp_path, monkeypatch):
    pw = tmp_path / "pw"
    pw.write_text("from-file\n")
    monkeypatch.delenv(config.PASSWORD_ENV, raising=False)
    assert config.read_password(str(pw)) == "from-file"
    assert config.read_password(None) is None
    monkeypatch.setenv(config.PASSWORD_ENV, "from-env")
    assert config.read_password(str(pw)) == "from-env"


def test_tls_port_default():
    assert config.BrokerSettings().effective_port == 1883
    assert config.BrokerSettings(tls_ca="ca.crt").effective_port == 8883
    assert config.BrokerSettings(tls_ca="ca.crt", port=1).effective_port == 1


# --- one [mqtt] table, read the same by the dock and by dock-hq --------------------

DOCK_TOML = """
[dock]
id = "d1"
site = "Site"
unit = "Unit"

[[slot]]
id = "1"
port = "/dev/ttyACM0"

{table}
site = "xh"
"""


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.delenv(config.PASSWORD_ENV, raising=False)
    names = {}
    for name in ("ca", "crt", "key", "pw"):
        path = tmp_path / name
        path.write_text("secret\n" if name == "pw" else "pem\n")
        names[name] = str(path)
    return names


def read_by_dock(tmp_path, table: str):
    """(broker values, None) or (None, the [mqtt] problems) as the dock reads ``table``."""
    from dock.config import ConfigError as DockConfigError
    from dock.config import load_config, read_password

    path = tmp_path / "dock.toml"
    path.write_text(DOCK_TOML.format(table=table), encoding="utf-8")
    try:
        mqtt = load_config(str(path), env={}).mqtt
    except DockConfigError as exc:
        return None, [p for p in exc.problems if p.startswith("mqtt.")]
    return (
        mqtt.host,
        mqtt.broker_port,
        mqtt.ca_file or None,
        mqtt.cert_file or None,
        mqtt.key_file or None,
        mqtt.username or None,
        read_password(mqtt),
        mqtt.keepalive_s,
    ), None


def read_by_hq(tmp_path, table: str):
    """The same, as dock-hq reads ``table`` in hq.toml and then connects with it."""
    path = tmp_path / "hq.toml"
    path.write_text(table, encoding="utf-8")
    try:
        b = config.BrokerSettings.from_settings(config.merge({}, config.load_file(str(path))))
    except config.ConfigError as exc:
        return None, exc.problems
    return (
        b.host,
        b.effective_port,
        b.tls_ca,
        b.tls_cert,
        b.tls_key,
        b.username,
        b.password,
        b.keepalive_s,
    ), None


GOOD_TABLES = [
    '[mqtt]\nhost = "b.example"\nca_file = "{ca}"\ncert_file = "{crt}"\nkey_file = "{key}"\n',
    '[mqtt]\nhost = "b.example"\nport = 1884\nusername = "u"\npassword_file = "{pw}"\n',
    '[mqtt]\nhost = "b.example"\nport = 8884\ntls_ca = "{ca}"\nkeepalive_s = 20\n',
]
BAD_TABLES = [
    ('[mqtt]\nhost = "b"\nport = 70000\n', ["mqtt.port: 70000 is not a whole number"]),
    ('[mqtt]\nhost = "b"\nport = "1883"\n', ["mqtt.port: '1883' is not a whole number"]),
    ('[mqtt]\nhost = "b"\nkeepalive_s = 1\n', ["mqtt.keepalive_s: 1 is not a whole number"]),
    ('[mqtt]\nhost = "b"\nusername = 5\n', ["mqtt.username: must be a string, not int"]),
    ('[mqtt]\nhost = "b"\nprot = 1\n', ['mqtt.prot: unknown key — did you mean "port"?']),
    (
        '[mqtt]\nhost = "b"\ncert_file = "{crt}"\n',
        ["mqtt.cert_file: cert_file and key_file go together", "mqtt.ca_file: a client cert"],
    ),
    ('[mqtt]\nhost = "b"\npassword_file = "{pw}"\n', ["mqtt.username: password_file without"]),
    (
        '[mqtt]\nhost = "b"\ntls_ca = "{ca}"\nca_file = "{ca}"\n',
        ["mqtt.tls_ca: is the old name of ca_file, which is also given — remove tls_ca"],
    ),
]


@pytest.mark.parametrize("table", GOOD_TABLES)
def test_the_dock_and_dock_hq_read_the_same_broker_table_alike(tmp_path, files, table):
    table = table.format(**files)
    by_dock, dock_problems = read_by_dock(tmp_path, table)
    by_hq, hq_problems = read_by_hq(tmp_path, table)
    assert dock_problems is None and hq_problems is None, (dock_problems, hq_problems)
    assert by_dock == by_hq
    assert by_dock[0] == "b.example"


@pytest.mark.parametrize(("table", "starts"), BAD_TABLES)
def test_the_dock_and_dock_hq_refuse_a_broker_table_in_the_same_words(
    tmp_path, files, table, starts
):
    table = table.format(**files)
    _, dock_problems = read_by_dock(tmp_path, table)
    _, hq_problems = read_by_hq(tmp_path, table)
    assert dock_problems == hq_problems, (dock_problems, hq_problems)
    assert len(hq_problems) == len(starts)
    for problem, start in zip(hq_problems, starts, strict=True):
        assert problem.startswith(start) and " — " in problem and "\n" not in problem


def test_old_names_are_read_with_a_warning_naming_the_new_key(tmp_path, files, caplog):
    """A deployed hq.toml (every key at the top, tls_ca ...) keeps working."""
    old = write(
        tmp_path,
        f'host = "b.example"\ntls-ca = "{files["ca"]}"\ntls_cert = "{files["crt"]}"\n'
        f'tls_key = "{files["key"]}"\ndrift-max = 2\n',
    )
    with caplog.at_level("WARNING", logger="hq.config"):
        settings = config.merge({}, config.load_file(old))
    broker = config.BrokerSettings.from_settings(settings)
    assert (broker.tls_ca, broker.tls_cert, broker.tls_key) == (
        files["ca"],
        files["crt"],
        files["key"],
    )
    assert settings["drift_max"] == 2.0
    said = [r.getMessage() for r in caplog.records]
    for old_name, new in (
        ("tls-ca", "ca_file"),
        ("tls_cert", "cert_file"),
        ("drift-max", "drift_max"),
    ):
        assert any(f"{old_name}: is an old name — write {new} instead" in s for s in said), said
    assert any("host, ca_file, cert_file, key_file under [mqtt]" in s for s in said), said
    assert any("drift_max under [alerts]" in s for s in said), said
    # the old option names are still options
    args = build_run_args(["--tls-ca", "x.crt"])
    assert config.merge(vars(args), {})["ca_file"] == "x.crt"


def build_run_args(argv: list[str]):
    from hq.cli import build_parser

    return build_parser().parse_args(["run", *argv])


def test_the_dock_warns_of_an_old_name_in_its_mqtt_table_too(tmp_path, files, caplog):
    table = f'[mqtt]\nhost = "b.example"\ntls_ca = "{files["ca"]}"\n'
    with caplog.at_level("WARNING", logger="dock.config.load"):
        by_dock, problems = read_by_dock(tmp_path, table)
    assert problems is None and by_dock[2] == files["ca"]
    said = [r.getMessage() for r in caplog.records]
    assert any("mqtt.tls_ca: is an old name — write ca_file instead" in s for s in said), said


def test_the_new_layout_has_no_warning(tmp_path, caplog):
    path = write(
        tmp_path,
        '[mqtt]\nhost = "b"\nport = 1884\n[hq]\nname = "east"\n[alerts]\ndrift_max = 3\n',
    )
    with caplog.at_level("WARNING", logger="hq.config"):
        merged = config.merge({}, config.load_file(path))
    assert caplog.records == []
    assert (merged["host"], merged["port"], merged["name"], merged["drift_max"]) == (
        "b",
        1884,
        "east",
        3.0,
    )
    with pytest.raises(config.ConfigError, match=r"alerts\.drift-max: unknown key"):
        config.load_file(write(tmp_path, "[alerts]\ndrift-max = 3\n"))
