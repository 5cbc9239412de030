"""The test broker helper (tests/broker.py) against the real mosquitto, with paho-mqtt 2.x."""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field

import pytest

from tests.broker import Broker, BrokerError, find_mosquitto

mqtt = pytest.importorskip("paho.mqtt.client")
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto binary")

WAIT = 5.0  # seconds: every wait in this file is bounded by this

ACL = """\
user hq
topic read bwc/#

user dockA
topic write bwc/v1/docks/site/dockA/#

pattern write bwc/v1/docks/+/%u/#
"""


@dataclass
class Peer:
    """A paho client with its network loop running and what it has seen."""

    client: mqtt.Client
    connected: threading.Event = field(default_factory=threading.Event)
    settled: threading.Event = field(default_factory=threading.Event)  # CONNACK or lost
    connack: object = None
    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    received: threading.Condition = field(default_factory=threading.Condition)
    subscribed: threading.Event = field(default_factory=threading.Event)

    def wait_for(self, topic: str) -> mqtt.MQTTMessage:
        with self.received:
            ok = self.received.wait_for(
                lambda: any(m.topic == topic for m in self.messages), timeout=WAIT
            )
        assert ok, f"no message on {topic!r} within {WAIT} s; got {self.topics()}"
        return next(m for m in self.messages if m.topic == topic)

    def topics(self) -> list[str]:
        with self.received:
            return [m.topic for m in self.messages]

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos)
        assert self.subscribed.wait(WAIT), f"no SUBACK for {topic!r}"

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(WAIT)
        assert info.is_published(), f"publish to {topic!r} not acknowledged within {WAIT} s"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def peer(
    broker: Broker,
    client_id: str,
    *,
    username: str | None = None,
    password: str | None = None,
    cert: tuple[str, str] | None = None,
    expect_connect: bool = True,
) -> Peer:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
    )
    p = Peer(client)
    if username is not None:
        client.username_pw_set(username, password)
    if broker.tls:
        certfile, keyfile = cert if cert else (None, None)
        client.tls_set(ca_certs=str(broker.ca_path), certfile=certfile, keyfile=keyfile)

    def on_connect(_c, _u, _flags, reason_code, _props):
        p.connack = reason_code
        if not reason_code.is_failure:
            p.connected.set()
        p.settled.set()

    def on_disconnect(_c, _u, _flags, _reason_code, _props):
        p.settled.set()

    def on_message(_c, _u, message):
        with p.received:
            p.messages.append(message)
            p.received.notify_all()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_connect_fail = lambda _c, _u: p.settled.set()
    client.on_message = on_message
    client.on_subscribe = lambda *_args: p.subscribed.set()
    try:
        client.connect(broker.host, broker.port, keepalive=10)
    except (ssl.SSLError, OSError):
        if expect_connect:
            raise
        p.settled.set()
        return p
    client.loop_start()
    assert p.settled.wait(WAIT), f"{client_id}: neither CONNACK nor disconnect in {WAIT} s"
    if expect_connect:
        assert p.connected.is_set(), f"{client_id} refused: {p.connack}"
    else:
        client.loop_stop()  # no automatic reconnection attempts after the refusal
    return p


def test_fixture_broker_is_ours_and_answers(mosquitto: Broker) -> None:
    assert mosquitto.alive
    assert mosquitto.host == "127.0.0.1"
    assert mosquitto.port != 1883
    a = peer(mosquitto, "echo")
    try:
        a.subscribe("bwc/echo")
        a.publish("bwc/echo", b"hello")
        assert a.wait_for("bwc/echo").payload == b"hello"
    finally:
        a.close()
    assert "mosquitto version" in mosquitto.log_text()


def test_retained_message_survives_stop_and_restart(mosquitto: Broker) -> None:
    port = mosquitto.port
    a = peer(mosquitto, "writer")
    try:
        a.publish("bwc/v1/docks/site/d1/status", b"online", retain=True)
    finally:
        a.close()
    mosquitto.stop()
    assert not mosquitto.alive
    assert (mosquitto.data_dir / "mosquitto.db").is_file()

    mosquitto.restart()
    assert mosquitto.alive and mosquitto.port == port
    b = peer(mosquitto, "reader")
    try:
        b.subscribe("bwc/v1/docks/#")
        message = b.wait_for("bwc/v1/docks/site/d1/status")
        assert message.payload == b"online"
        assert message.retain
    finally:
        b.close()


def test_kill_then_restart_on_the_same_port(mosquitto: Broker) -> None:
    port, first_pid = mosquitto.port, mosquitto.pid
    mosquitto.kill()
    assert not mosquitto.alive
    mosquitto.restart()
    assert mosquitto.alive and mosquitto.port == port and mosquitto.pid != first_pid
    peer(mosquitto, "after-crash").close()


def test_restart_onto_a_taken_port_fails_with_the_log(tmp_path) -> None:
    broker = Broker(tmp_path)
    broker.start()
    broker.stop()
    try:
        with socket.socket() as squatter:
            squatter.bind((broker.host, broker.port))
            squatter.listen()
            with pytest.raises(BrokerError, match="Address already in use"):
                broker.start()
        assert not broker.alive
    finally:
        broker.stop()


def test_tls_client_with_issued_certificate_connects_and_one_without_is_refused(
    tmp_path,
) -> None:
    acl = "pattern readwrite bwc/v1/docks/+/%u/#\n"
    with Broker(tmp_path, tls=True, acl=acl) as broker:
        assert broker.ca_path is not None and broker.ca_path.is_file()
        dock = peer(broker, "dockA-client", cert=broker.client_cert("dockA"))
        try:
            # The CN is the username: the %u pattern lets dockA use its own subtree.
            dock.subscribe("bwc/v1/docks/site/dockA/#")
            dock.publish("bwc/v1/docks/site/dockA/status", b"tls")
            assert dock.wait_for("bwc/v1/docks/site/dockA/status").payload == b"tls"
        finally:
            dock.close()

        # TLS 1.3: connect() returns before the broker has checked (the absent)
        # client certificate; the refusal arrives as a TLS alert on the first read.
        stranger = peer(broker, "stranger", expect_connect=False)
        assert not stranger.connected.is_set()
        stranger.close()


def test_acl_stops_a_dock_publishing_into_another_docks_subtree(tmp_path) -> None:
    passwords = {"hq": "hq-secret", "dockA": "a-secret", "dockB": "b-secret"}
    with Broker(tmp_path, passwords=passwords, acl=ACL) as broker:
        hq = peer(broker, "hq", username="hq", password="hq-secret")
        dock_a = peer(broker, "dockA", username="dockA", password="a-secret")
        dock_b = peer(broker, "dockB", username="dockB", password="b-secret")
        acks: dict[int, int] = {}
        dock_a.client.on_publish = lambda _c, _u, mid, rc, _p: acks.__setitem__(mid, rc.value)
        try:
            hq.subscribe("bwc/#")
            # mosquitto 2.0.11 with MQTT 5: the denied QoS 1 publish is still
            # acknowledged, with PUBACK reason code 0x87 (135, Not authorized), and
            # paho's wait_for_publish()/is_published() count that as published; the
            # allowed one gets 0x10 (No matching subscribers) or 0. Only what hq
            # sees is asserted.
            dock_a.publish("bwc/v1/docks/site/dockB/status", b"forged")
            dock_a.publish("bwc/v1/docks/site/dockA/status", b"mine")
            dock_b.publish("bwc/v1/docks/site/dockB/status", b"own via %u pattern")
            # Same publisher, QoS 1, in order: once "mine" arrived, "forged" would have too.
            assert hq.wait_for("bwc/v1/docks/site/dockA/status").payload == b"mine"
            own = hq.wait_for("bwc/v1/docks/site/dockB/status")
            assert own.payload == b"own via %u pattern"
            assert [m.payload for m in hq.messages if m.payload == b"forged"] == []
        finally:
            for p in (hq, dock_a, dock_b):
                p.close()
        assert "Denied PUBLISH from dockA" in broker.log_text()


def test_wrong_password_is_refused(tmp_path) -> None:
    with Broker(tmp_path, passwords={"hq": "hq-secret"}) as broker:
        p = peer(broker, "hq", username="hq", password="wrong", expect_connect=False)
        assert not p.connected.is_set()
        assert p.connack is not None and p.connack.is_failure
        p.close()
