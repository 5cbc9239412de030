"""docs/MQTT-DEPLOYMENT.md works as written: its certificate commands, its mosquitto.conf,
its ACL and its bridge, run here against real Mosquitto brokers and MQTT 5 clients; and
docs/hq.example.toml is a configuration dock-hq accepts.

The document marks each block a test uses with a file name after the language of its
fence, e.g. ```conf title="acl"```. The tests substitute only paths, the port and the
broker's host name (each substitution must find its text, so a changed document fails
here rather than silently testing something else).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dock.config import parse_mqtt
from hq import config as hq_config

from .broker import HOST, find_mosquitto, free_port
from .conftest import write_dock_config

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "MQTT-DEPLOYMENT.md"
HQ_EXAMPLE = ROOT / "docs" / "hq.example.toml"
HQ_UNIT = ROOT / "systemd" / "dock-hq.service"
WAIT = 10.0  # seconds: the bound of every wait below
BROKER_NAME = "mqtt.hq.example"

needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto binary")
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")

_BLOCK = re.compile(r'^```(\w+) title="([^"]+)"\n(.*?)^```$', re.MULTILINE | re.DOTALL)


def doc_blocks() -> dict[str, str]:
    """The document's titled code blocks: title -> text."""
    blocks: dict[str, str] = {}
    for _lang, title, body in _BLOCK.findall(DOC.read_text(encoding="utf-8")):
        assert title not in blocks, f"two blocks titled {title!r} in {DOC.name}"
        blocks[title] = body
    return blocks


def _sub(text: str, old: str, new: str) -> str:
    assert old in text, f"{old!r} is no longer in the document's block; update this test"
    return text.replace(old, new)


# ---------------------------------------------------------------------- certificates


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CA, the broker's certificate and client certificates, made by the document's
    own openssl commands (the broker's name extended with 127.0.0.1 for the tests)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl")
    blocks = doc_blocks()
    d = tmp_path_factory.mktemp("pki")

    def sh(script: str) -> None:
        done = subprocess.run(
            ["bash", "-euc", script], cwd=d, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, f"{script}\n{done.stderr}"

    sh(blocks["make-ca"])
    sh(
        _sub(
            blocks["make-broker-cert"],
            f'"subjectAltName=DNS:{BROKER_NAME}"',
            f'"subjectAltName=DNS:{BROKER_NAME},IP:{HOST}"',
        )
    )
    for name in ("d1", "d2", "hq-main", "bridge-east"):
        sh(_sub(blocks["make-client-cert"], "name=d1\n", f"name={name}\n"))
    return d


# ---------------------------------------------------------------------- brokers


class DocBroker:
    """mosquitto started with the document's mosquitto.conf (paths moved into ``root``)."""

    def __init__(
        self,
        root: Path,
        pki: Path,
        acl: str,
        bridge: str | None = None,
        edit: Callable[[str], str] | None = None,
    ) -> None:
        self.root = root
        root.mkdir(parents=True)
        (root / "data").mkdir()
        (root / "conf.d").mkdir()
        self.port = free_port()
        self.log = root / "mosquitto.log"
        blocks = doc_blocks()
        (root / "acl").write_text(acl)
        conf = blocks["mosquitto.conf"]
        conf = _sub(conf, "/etc/mosquitto/certs/", f"{pki}/")
        conf = _sub(conf, "acl_file /etc/mosquitto/acl", f"acl_file {root}/acl")
        conf = _sub(conf, "/var/lib/mosquitto/", f"{root}/data/")
        conf = _sub(conf, "include_dir /etc/mosquitto/conf.d", f"include_dir {root}/conf.d")
        conf = _sub(conf, "log_dest syslog", f"log_dest file {self.log}")
        conf = _sub(conf, "listener 8883\n", f"listener {self.port} {HOST}\n")
        if edit is not None:
            conf = edit(conf)
        if os.geteuid() == 0:
            # As root mosquitto would become the user "mosquitto", who cannot read the
            # test's directories (and the document says why the key must be readable).
            conf += f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
        self.conf = root / "mosquitto.conf"
        self.conf.write_text(conf)
        if bridge is not None:
            (root / "conf.d" / "bridge.conf").write_text(bridge)
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None

    def start(self) -> DocBroker:
        binary = find_mosquitto()
        assert binary is not None
        self._stderr = open(self.root / "stderr.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        offset = len(self.log_text())  # a restart appends to the same log
        wait_until(lambda: " running" in self.log_text()[offset:] or self.proc.poll() is not None)
        assert self.proc.poll() is None, f"mosquitto did not start:\n{self.failure()}"
        return self

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def failure(self) -> str:
        err = (self.root / "stderr.log").read_text(errors="replace")
        return err + self.log_text()[-3000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def wait_until(check: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


class Client:
    """An MQTT 5 client with the document's certificate ``name``; records what it gets
    and the broker's answer (PUBACK reason) to each of its publishes."""

    def __init__(
        self,
        broker: DocBroker,
        pki: Path,
        name: str,
        client_id: str,
        persistent: bool = False,
        password: str | None = None,
    ) -> None:
        self.received: list[tuple[str, bytes, bool]] = []
        self.acks: dict[int, bool] = {}
        self.expiry: dict[str, int | None] = {}  # topic -> message expiry of the last one
        self.granted: list[Any] = []
        self.refused: Any = None  # the CONNACK's reason when the broker refused us
        self._lock = threading.Lock()
        self._connected = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if password is None:  # a client certificate with CN=name
            c.tls_set(
                ca_certs=str(pki / "ca.crt"),
                certfile=str(pki / f"{name}.crt"),
                keyfile=str(pki / f"{name}.key"),
            )
        else:  # TLS checks the broker only; the user name and password say who we are
            c.tls_set(ca_certs=str(pki / "ca.crt"))
            c.username_pw_set(name, password)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_subscribe = lambda _c, _u, _mid, reasons, _p: self.granted.extend(reasons)
        props = Properties(PacketTypes.CONNECT)
        if persistent:  # the broker keeps the session (subscriptions, queue) for an hour
            props.SessionExpiryInterval = 3600
        c.connect(HOST, broker.port, keepalive=10, clean_start=not persistent, properties=props)
        c.loop_start()
        self.client = c
        if not self._connected.wait(WAIT) or self.refused is not None:
            self.close()
            raise AssertionError(f"{name} could not connect ({self.refused}):\n{broker.failure()}")

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.refused = reason if reason.is_failure else None
        self._connected.set()

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        with self._lock:
            self.received.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self.expiry[msg.topic] = getattr(msg.properties, "MessageExpiryInterval", None)

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self._lock:
            self.acks[mid] = not reason.is_failure

    def subscribe(self, topic: str) -> None:
        before = len(self.granted)
        self.client.subscribe(topic, qos=1)
        assert wait_until(lambda: len(self.granted) > before), f"no SUBACK for {topic}"

    def publish(
        self, topic: str, payload: str, retain: bool = False, expiry: int | None = None
    ) -> bool:
        """Publish at QoS 1 and return whether the broker accepted it (its PUBACK)."""
        props = None
        if expiry is not None:
            props = Properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = expiry
        return self.accepted(
            self.client.publish(topic, payload, qos=1, retain=retain, properties=props).mid
        )

    def send(self, topic: str, payload: str) -> int:
        """Publish at QoS 1 without waiting; :meth:`accepted` tells the broker's answer."""
        return self.client.publish(topic, payload, qos=1).mid

    def accepted(self, mid: int) -> bool:
        assert wait_until(lambda: mid in self.acks), f"no PUBACK for message {mid}"
        return self.acks[mid]

    def got(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.received if t == topic]

    def wait_for(self, topic: str, payload: str) -> None:
        assert wait_until(lambda: payload.encode() in self.got(topic)), (
            f"{payload!r} on {topic} never arrived; got {self.received}"
        )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def started() -> Iterator[list[Any]]:
    """Everything a test starts (brokers, clients); all stopped at the end, whatever happens."""
    things: list[Any] = []
    try:
        yield things
    finally:
        for thing in reversed(things):
            with contextlib.suppress(Exception):  # keep stopping the others
                thing.stop() if isinstance(thing, DocBroker) else thing.close()


# ---------------------------------------------------------------------- the broker


@needs_mosquitto
@needs_openssl
def test_the_documented_broker_keeps_each_dock_to_its_own_topics(tmp_path, pki, started) -> None:
    """004 att.2 §9: the documented broker keeps each dock to its own topics."""
    broker = DocBroker(tmp_path / "central", pki, doc_blocks()["acl"]).start()
    started.append(broker)
    hq = Client(broker, pki, "hq-main", "hq-main")
    d1 = Client(broker, pki, "d1", "dock-s1-d1")
    d2 = Client(broker, pki, "d2", "dock-s1-d2")
    started += [hq, d1, d2]
    hq.subscribe("bwc/v1/docks/#")

    # d1 publishes under its own id: headquarters receives it
    assert d1.publish("bwc/v1/docks/s1/d1/event/checkin", "mine")
    hq.wait_for("bwc/v1/docks/s1/d1/event/checkin", "mine")
    # d1 under d2's id, or a command to itself: refused, and never delivered (the later
    # legitimate message proves headquarters would have had the forged one by now)
    refused = [
        d1.send("bwc/v1/docks/s1/d2/event/checkin", "forged"),
        d1.send("bwc/v1/docks/s1/d2/state", "forged-state"),
        d1.send("bwc/v1/docks/s1/d1/cmd/status", "self-command"),
        d1.send("bwc/v1/hq/status", "fake-hq"),
    ]
    marker = d1.send("bwc/v1/docks/s1/d1/health", "marker")
    assert [d1.accepted(mid) for mid in refused] == [False] * 4
    assert d1.accepted(marker)
    hq.wait_for("bwc/v1/docks/s1/d1/health", "marker")
    assert not hq.got("bwc/v1/docks/s1/d2/event/checkin")
    assert not hq.got("bwc/v1/docks/s1/d2/state")
    assert not hq.got("bwc/v1/docks/s1/d1/cmd/status")

    # commands: d1 gets its own, never d2's, even when it subscribes to them
    d1.subscribe("bwc/v1/docks/+/d1/cmd/+")
    d1.subscribe("bwc/v1/docks/s1/d2/cmd/+")
    d2.subscribe("bwc/v1/docks/+/d2/cmd/+")
    d1.subscribe("bwc/v1/hq/status")
    assert hq.publish("bwc/v1/docks/s1/d2/cmd/flag", "for-d2")
    assert hq.publish("bwc/v1/docks/s1/d1/cmd/status", "for-d1")
    assert hq.publish("bwc/v1/hq/status", "online", retain=True)
    d2.wait_for("bwc/v1/docks/s1/d2/cmd/flag", "for-d2")
    d1.wait_for("bwc/v1/docks/s1/d1/cmd/status", "for-d1")
    d1.wait_for("bwc/v1/hq/status", "online")
    assert not d1.got("bwc/v1/docks/s1/d2/cmd/flag")
    # a dock reads no other dock's traffic either
    assert not [t for t, _, _ in d1.received if "/d2/" in t]


@needs_mosquitto
@needs_openssl
@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="no mosquitto_passwd")
def test_passwords_instead_of_certificates_as_documented(tmp_path, pki, started) -> None:
    passwd = tmp_path / "passwd"
    for i, (user, password) in enumerate((("hq-main", "pw-hq"), ("d1", "pw-d1"))):
        create = ["-c"] if i == 0 else []
        subprocess.run(
            ["mosquitto_passwd", "-b", *create, str(passwd), user, password],
            check=True,
            timeout=10,
        )

    def edit(conf: str) -> str:  # what the document says to change
        conf = _sub(conf, "require_certificate true\n", "")
        return _sub(conf, "use_identity_as_username true\n", f"password_file {passwd}\n")

    broker = DocBroker(tmp_path / "central", pki, doc_blocks()["acl"], edit=edit).start()
    started.append(broker)
    hq = Client(broker, pki, "hq-main", "hq-main", password="pw-hq")
    d1 = Client(broker, pki, "d1", "dock-s1-d1", password="pw-d1")
    started += [hq, d1]
    hq.subscribe("bwc/v1/docks/#")
    forged, mine = (d1.send(f"bwc/v1/docks/s1/{d}/event/checkin", d) for d in ("d2", "d1"))
    assert not d1.accepted(forged) and d1.accepted(mine)
    hq.wait_for("bwc/v1/docks/s1/d1/event/checkin", "d1")
    assert not hq.got("bwc/v1/docks/s1/d2/event/checkin")
    with pytest.raises(AssertionError, match="could not connect"):
        started.append(Client(broker, pki, "d1", "dock-s1-d1x", password="wrong"))


@needs_mosquitto
@needs_openssl
def test_the_dock_reports_with_the_documented_mqtt_section(tmp_path, pki, started) -> None:
    """The real dock reporter, configured with the document's [mqtt] block, is accepted by
    the documented broker and headquarters receives its birth and ready state."""
    from dock.config import load_config
    from dock.daemon.composition import build_reporter, build_service

    broker = DocBroker(tmp_path / "central", pki, doc_blocks()["acl"]).start()
    started.append(broker)
    hq = Client(broker, pki, "hq-main", "hq-main")
    started.append(hq)
    hq.subscribe("bwc/v1/docks/#")

    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    section = doc_blocks()["dock.toml"]
    section = _sub(section, "/etc/dock/mqtt/", f"{pki}/")
    section = _sub(section, f'host = "{BROKER_NAME}"', f'host = "{HOST}"\nport = {broker.port}')
    section = _sub(section, "PUBLIC-KEY-PRINTED-BY-DOCK-HQ-KEYGEN", base64.b64encode(key).decode())
    (tmp_path / "dock").mkdir()
    path, _, _ = write_dock_config(tmp_path / "dock", "tcp://127.0.0.1:9", "d1")
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n" + section)
    cfg = load_config(path, env={})
    reporter = build_reporter(cfg, build_service(cfg))
    reporter.start()
    try:
        base = "bwc/v1/docks/xh/d1"
        assert wait_until(lambda: hq.got(f"{base}/birth")), broker.failure()
        assert wait_until(
            lambda: [p for p in hq.got(f"{base}/state") if json.loads(p)["state"] == "ready"]
        )
    finally:
        reporter.stop()
    assert reporter.stats["refused"] == 0


@needs_openssl
def test_the_documented_mqtt_section_parses_as_written(pki) -> None:
    """Unchanged but for the key placeholder and paths: no problem, TLS on port 8883."""
    import tomllib

    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    section = _sub(doc_blocks()["dock.toml"], "/etc/dock/mqtt/", f"{pki}/")
    section = _sub(section, "PUBLIC-KEY-PRINTED-BY-DOCK-HQ-KEYGEN", base64.b64encode(key).decode())
    cfg, problems = parse_mqtt(tomllib.loads(section)["mqtt"], "d1")
    assert problems == []
    assert cfg is not None and cfg.tls and cfg.broker_port == 8883 and cfg.host == BROKER_NAME


# ---------------------------------------------------------------------- the bridge


@needs_mosquitto
@needs_openssl
def test_a_regional_broker_bridged_as_documented(tmp_path, pki, started) -> None:
    blocks = doc_blocks()
    central = DocBroker(tmp_path / "central", pki, blocks["acl"] + "\n" + blocks["acl-bridge"])
    started.append(central.start())
    bridge = _sub(
        blocks["bridge.conf"], f"address {BROKER_NAME}:8883", f"address {HOST}:{central.port}"
    )
    bridge = bridge.replace("/etc/mosquitto/certs/", f"{pki}/")
    regional = DocBroker(tmp_path / "regional", pki, blocks["acl"], bridge=bridge)
    started.append(regional.start())

    hq = Client(central, pki, "hq-main", "hq-main")
    started.append(hq)
    hq.subscribe("bwc/v1/docks/#")
    assert hq.publish("bwc/v1/hq/status", "online", retain=True)
    d1 = Client(regional, pki, "d1", "dock-s1-d1", persistent=True)
    started.append(d1)
    d1.subscribe("bwc/v1/docks/+/d1/cmd/+")
    d1.subscribe("bwc/v1/hq/status")
    # headquarters' retained status crossing the bridge shows its subscriptions are live
    d1.wait_for("bwc/v1/hq/status", "online")

    # dock -> regional -> central -> headquarters
    assert d1.publish("bwc/v1/docks/s1/d1/event/checkin", "via-bridge")
    hq.wait_for("bwc/v1/docks/s1/d1/event/checkin", "via-bridge")
    # headquarters -> central -> regional -> dock
    assert hq.publish("bwc/v1/docks/s1/d1/cmd/status", "cmd-via-bridge")
    d1.wait_for("bwc/v1/docks/s1/d1/cmd/status", "cmd-via-bridge")
    # the per-dock ACL still holds on the regional broker
    forged, marker = (d1.send(f"bwc/v1/docks/s1/{d}/health", d) for d in ("d2", "d1"))
    assert not d1.accepted(forged) and d1.accepted(marker)
    hq.wait_for("bwc/v1/docks/s1/d1/health", "d1")
    assert not hq.got("bwc/v1/docks/s1/d2/health")
    # nothing loops: the command came back to headquarters only as its own publish, once
    assert hq.got("bwc/v1/docks/s1/d1/cmd/status") == [b"cmd-via-bridge"]
    assert hq.got("bwc/v1/docks/s1/d1/event/checkin") == [b"via-bridge"]

    # the link is down (the regional broker restarts): the central broker keeps the
    # bridge's session and delivers what headquarters sent meanwhile
    d1.close()
    regional.stop()
    assert hq.publish("bwc/v1/docks/s1/d1/cmd/flag", "while-link-down")
    regional.start()
    d1 = Client(regional, pki, "d1", "dock-s1-d1", persistent=True)
    started.append(d1)
    d1.wait_for("bwc/v1/docks/s1/d1/cmd/flag", "while-link-down")


# ---------------------------------------------------------------------- dock-hq


def test_the_example_hq_configuration_is_accepted() -> None:
    settings = hq_config.merge({}, hq_config.load_file(str(HQ_EXAMPLE)))
    hq_config.thresholds(settings)  # raises ConfigError on a bad value
    broker = hq_config.BrokerSettings.from_settings(settings)
    assert broker.tls and broker.effective_port == 8883 and broker.host == BROKER_NAME
    assert settings["db"].startswith("/var/lib/dock-hq/")
    assert settings["name"] == "main"  # client id hq-main, the ACL's user in the document
    assert "user hq-main" in doc_blocks()["acl"]
    # every key the file sets is one `dock-hq run` has as an option
    help_text = subprocess.run(
        [sys.executable, "-m", "hq.cli", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    for key in hq_config.load_file(str(HQ_EXAMPLE)):
        assert "--" + key.replace("_", "-") in help_text


def test_the_hq_unit_runs_the_example_configuration() -> None:
    unit = HQ_UNIT.read_text()
    assert re.search(r"^ExecStart=\S+/dock-hq run --config /etc/dock-hq/hq\.toml$", unit, re.M)
    assert "StateDirectory=dock-hq" in unit
    assert "/etc/dock-hq/hq.toml" in HQ_EXAMPLE.read_text()
