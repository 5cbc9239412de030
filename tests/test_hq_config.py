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
