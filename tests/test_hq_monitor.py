"""dock-hq's monitor against a real mosquitto, with synthetic docks built on mqtt_contract.contract.

Every wait is bounded (WAIT); nothing asserts how long anything took.
"""

from __future__ import annotations

import base64
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from hq.alerts import Thresholds
from hq.commands import generate_key, load_key
from hq.config import BrokerSettings
from hq.monitor import Monitor
from hq.store import Store
from mqtt_contract import contract
from tests.broker import find_mosquitto

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto binary")

WAIT = 15.0  # seconds: the bound of every wait here
POLL = 0.05
K = contract.Kind


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``check`` until it returns something truthy (at most timeout / POLL times)."""
    for _ in range(int(timeout / POLL)):
        result = check()
        if result:
            return result
        time.sleep(POLL)
    raise AssertionError(f"timed out waiting for {what}")


def now() -> str:
    return contract.utc(time.time())


class FakeDock:
    """A paho client that publishes what a dock would, and answers commands if asked to."""

    def __init__(
        self, broker: Any, site: str = "s1", dock: str = "d1", boot: str = "boot-1"
    ) -> None:
        self.site, self.dock, self.boot = site, dock, boot
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"dock-{site}-{dock}", protocol=mqtt.MQTTv5
        )
        self.client.will_set(
            self.topic(K.STATE),
            contract.encode(K.STATE, {"state": "lost", "boot": boot, "time": now()}),
            qos=1,
            retain=True,
        )
        self.commands: queue.Queue[tuple[mqtt.MQTTMessage, dict]] = queue.Queue()
        self.reply_with: Callable[[dict], dict] | None = None
        self._ready = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(
            contract.dock_topic(site, dock, K.CMD, "x").rsplit("/", 1)[0] + "/+", qos=1
        )
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        assert self._ready.wait(WAIT), "fake dock did not connect"

    def topic(self, kind: contract.Kind, name: str = "") -> str:
        return contract.dock_topic(self.site, self.dock, kind, name)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        command = contract.decode(K.CMD, msg.payload)
        self.commands.put((msg, command))
        if self.reply_with is not None:
            body = self.reply_with(command)
            self.client.publish(self.topic(K.REPLY), contract.encode(K.REPLY, body), qos=1)

    def publish(self, kind: contract.Kind, body: dict, name: str = "", retain: bool = False):
        self.send(self.topic(kind, name), contract.encode(kind, body), retain)

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(WAIT)
        assert info.is_published()

    def state(self, state: str = "ready") -> None:
        self.publish(K.STATE, {"state": state, "boot": self.boot, "time": now()}, retain=True)

    def birth(self) -> None:
        self.publish(
            K.BIRTH,
            {
                "site": self.site,
                "dock": self.dock,
                "boot": self.boot,
                "time": now(),
                "started": now(),
                "software": "0.1.0",
                "config_hash": "ab" * 32,
                "slots": ["1", "2"],
                "policy": "strict",
            },
            retain=True,
        )

    def health(
        self,
        seq: int,
        slots: list[dict] | None = None,
        last_event: int | None = None,
        outbox_pending: int = 0,
        boots: list[dict] | None = None,
    ) -> None:
        part: dict[str, Any] = {"uptime_s": 10.0, "outbox_pending": outbox_pending}
        if last_event is not None:
            part["last_event"] = {"boot": self.boot, "seq": last_event}
        if boots is not None:
            part["boots"] = boots
        self.publish(
            K.HEALTH,
            {"boot": self.boot, "seq": seq, "time": now(), "dock": part, "slots": slots or []},
        )

    def event(self, seq: int, kind: str = "checkin", boot: str | None = None, **data: Any) -> None:
        body = {"type": kind, "boot": boot or self.boot, "seq": seq, "time": now(), "data": data}
        self.publish(K.EVENT, body, name=kind)

    def die_with_will(self) -> None:
        """MQTT 5 "disconnect with Will message": the broker publishes the Will, as when
        the dock dies, but without waiting 1.5 keep-alives."""
        self.client.disconnect(ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
        self.client.loop_stop()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def docks(mosquitto) -> Iterator[Callable[..., FakeDock]]:
    made: list[FakeDock] = []

    def make(**kw: Any) -> FakeDock:
        made.append(FakeDock(mosquitto, **kw))
        return made[-1]

    yield make
    for d in made:
        d.close()


@pytest.fixture
def start_monitor(mosquitto, tmp_path) -> Iterator[Callable[..., Monitor]]:
    running: list[Monitor] = []

    def start(**kw: Any) -> Monitor:
        kw.setdefault("name", "test")
        m = Monitor(str(tmp_path / "fleet.sqlite3"), BrokerSettings(port=mosquitto.port), **kw)
        m.start()
        running.append(m)
        assert m.wait_subscribed(WAIT), "monitor did not subscribe"
        return m

    yield start
    for m in running:
        m.stop()


def rows(tmp_path, sql: str, *args: Any) -> list[sqlite3.Row]:
    """Read the monitor's database the way dock-hq's read commands do: another connection."""
    store = Store(str(tmp_path / "fleet.sqlite3"))
    try:
        return store.db.execute(sql, args).fetchall()
    finally:
        store.close()


def open_alerts(tmp_path, kind: str) -> list[sqlite3.Row]:
    return rows(tmp_path, "SELECT * FROM alerts WHERE kind=? AND closed_at IS NULL", kind)


def committed(monitor: Monitor, n: int) -> Callable[[], bool]:
    return lambda: monitor.stats()["counts"]["committed"] >= n


# ---------------------------------------------------------------------- tests


def test_presence_online_then_offline_on_clean_exit(mosquitto, start_monitor):
    seen: queue.Queue[bytes] = queue.Queue()
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_connect = lambda c, *_: c.subscribe(contract.HQ_STATUS, qos=1)
    watcher.on_message = lambda _c, _u, msg: seen.put(msg.payload)
    watcher.connect(mosquitto.host, mosquitto.port)
    watcher.loop_start()
    try:
        monitor = start_monitor()
        states = []
        for _ in range(10):
            states.append(json.loads(seen.get(timeout=WAIT))["state"])
            if states[-1] == "online":
                break
        assert states[-1] == "online"
        monitor.stop()
        for _ in range(10):
            if json.loads(seen.get(timeout=WAIT))["state"] == "offline":
                break
        else:
            raise AssertionError("no offline status")
    finally:
        watcher.disconnect()
        watcher.loop_stop()


def test_same_event_twice_and_after_restart_is_stored_once(docks, start_monitor, tmp_path):
    monitor = start_monitor()
    dock = docks()
    dock.event(1, serial="X", officer="1001", slot="1", custody="c")
    dock.event(1, serial="X", officer="1001", slot="1", custody="c")
    wait_until(committed(monitor, 2), "two messages committed")
    assert monitor.stats()["counts"]["duplicates"] == 1
    monitor.stop()
    monitor = start_monitor()
    dock.event(1, serial="X", officer="1001", slot="1", custody="c")
    wait_until(committed(monitor, 1), "the copy after the restart")
    [(count,)] = rows(tmp_path, "SELECT count(*) FROM events")
    assert count == 1
    assert monitor.stats()["counts"]["duplicates"] == 1


def test_events_sent_while_hq_is_away_arrive_after_restart(docks, start_monitor, tmp_path):
    start_monitor().stop()  # creates the persistent session, then leaves
    dock = docks()
    for seq in range(1, 6):
        dock.event(seq, serial="X")
    monitor = start_monitor()
    wait_until(committed(monitor, 5), "the queued events")
    [(count,)] = rows(tmp_path, "SELECT count(*) FROM events")
    assert count == 5
    assert not open_alerts(tmp_path, "events_missing")


def test_will_raises_lost_and_ready_clears_it(mosquitto, docks, start_monitor, tmp_path):
    monitor = start_monitor()
    dock = docks()
    dock.state("ready")
    wait_until(committed(monitor, 1), "ready")
    dock.die_with_will()
    alert = wait_until(lambda: open_alerts(tmp_path, "dock_lost"), "the lost alert")
    assert alert[0]["site"] == "s1" and alert[0]["dock"] == "d1"
    [(state,)] = rows(tmp_path, "SELECT state FROM docks")
    assert state == "lost"
    back = FakeDock(mosquitto)
    try:
        back.state("ready")
        wait_until(lambda: not open_alerts(tmp_path, "dock_lost"), "lost cleared")
    finally:
        back.close()
    [closed] = rows(tmp_path, "SELECT * FROM alerts WHERE kind='dock_lost'")
    assert closed["closed_at"] is not None


def test_malformed_payloads_are_counted_and_ignored(docks, start_monitor, tmp_path):
    monitor = start_monitor()
    dock = docks()
    dock.send(dock.topic(K.HEALTH), b"{not json")
    dock.send(dock.topic(K.EVENT, "checkin"), b'{"schema":1,"type":"checkin"}')  # no seq
    dock.send(dock.topic(K.EVENT, "checkin"), json.dumps({"schema": 2}).encode())
    dock.send(contract.DOCKS + "/s1/d1/nonsense", b"{}")
    dock.event(1, serial="X")
    wait_until(committed(monitor, 5), "all five")
    counts = monitor.stats()["counts"]
    assert counts["rejected"] == 4
    [(count,)] = rows(tmp_path, "SELECT count(*) FROM events")
    assert count == 1


def test_hole_in_seq_raises_missing_and_asks_for_the_events(docks, start_monitor, tmp_path):
    key_path = str(tmp_path / "hq.pem")
    public = base64.b64decode(generate_key(key_path))
    monitor = start_monitor(signing_key=load_key(key_path))
    dock = docks()
    for seq in (1, 2, 5):
        dock.event(seq, serial="X")
    wait_until(lambda: open_alerts(tmp_path, "events_missing"), "events missing alert")
    msg, command = dock.commands.get(timeout=WAIT)
    assert command["command"] == "resend"
    assert command["args"] == {"boot": "boot-1", "from_seq": 3, "to_seq": 4}
    verify(public, command)
    assert msg.properties.MessageExpiryInterval <= 300
    # the dock resends them: the alert clears
    dock.event(3, serial="X")
    dock.event(4, serial="X")
    wait_until(lambda: not open_alerts(tmp_path, "events_missing"), "missing cleared")
    # a health saying the dock sent more than arrived (outbox empty) is a hole too
    dock.health(1, last_event=7)
    wait_until(lambda: open_alerts(tmp_path, "events_missing"), "last_event ahead")
    _msg, command = dock.commands.get(timeout=WAIT)
    assert command["args"] == {"boot": "boot-1", "from_seq": 6, "to_seq": 7}
    verify(public, command)
    assert monitor.stats()["counts"]["commands_sent"] == 2


def test_events_lost_at_the_end_of_an_earlier_boot_are_noticed(docks, start_monitor, tmp_path):
    """Boot 1 sent 1..5 but only 1..3 arrived (a broker crash), then the dock restarted:
    the new boot's health names boot 1's last seq, and that hole opens an alert."""
    monitor = start_monitor()
    dock = docks()
    for seq in (1, 2, 3):
        dock.event(seq, serial="X")
    dock.boot = "boot-2"
    dock.event(1, serial="X")
    dock.health(1, last_event=1, boots=[{"boot": "boot-2", "seq": 1}, {"boot": "boot-1", "seq": 5}])
    wait_until(committed(monitor, 5), "events and health")
    alerts = open_alerts(tmp_path, "events_missing")
    assert [a["subject"] for a in alerts] == ["boot-1"]


def test_missing_events_are_asked_for_again_with_no_new_traffic(
    docks, start_monitor, tmp_path, monkeypatch
):
    """The dock restarted (its old boot never sends again) and the first resend was lost:
    the periodic check asks again, without waiting for a message about that boot."""
    import hq.ingest

    monkeypatch.setattr(hq.ingest, "RESEND_RETRY_S", 0.0)
    key_path = str(tmp_path / "hq.pem")
    generate_key(key_path)
    start_monitor(signing_key=load_key(key_path), tick_s=0.2)
    dock = docks()
    for seq in (1, 3):
        dock.event(seq, serial="X")
    first = dock.commands.get(timeout=WAIT)[1]
    again = dock.commands.get(timeout=WAIT)[1]  # no message in between: the tick asked
    assert first["args"] == again["args"] == {"boot": "boot-1", "from_seq": 2, "to_seq": 2}
    assert first["id"] != again["id"]


def test_asking_for_missing_events_stops_after_a_few_tries(
    docks, start_monitor, tmp_path, monkeypatch
):
    """A dock that no longer has the events (kept 30 days) is not asked for ever; the
    alert stays open for a person to look at."""
    import hq.ingest

    monkeypatch.setattr(hq.ingest, "RESEND_RETRY_S", 0.0)
    monkeypatch.setattr(hq.ingest, "RESEND_MAX_ATTEMPTS", 2)
    key_path = str(tmp_path / "hq.pem")
    generate_key(key_path)
    start_monitor(signing_key=load_key(key_path), tick_s=0.1)
    dock = docks()
    for seq in (1, 3):
        dock.event(seq, serial="X")
    asked = [dock.commands.get(timeout=WAIT)[1] for _ in range(2)]
    assert all(c["args"]["from_seq"] == 2 for c in asked)
    with pytest.raises(queue.Empty):
        dock.commands.get(timeout=1.5)  # fifteen more periodic checks: no third request
    assert open_alerts(tmp_path, "events_missing")


def test_last_event_ahead_while_outbox_busy_is_not_a_hole(docks, start_monitor, tmp_path):
    monitor = start_monitor()
    dock = docks()
    dock.event(1, serial="X")
    dock.health(1, last_event=9, outbox_pending=8)
    wait_until(committed(monitor, 2), "event and health")
    assert not open_alerts(tmp_path, "events_missing")


def test_health_fills_the_fleet_and_raises_device_alerts(docks, start_monitor, tmp_path):
    monitor = start_monitor()
    dock = docks()
    dock.birth()
    dock.state("ready")
    slot = {"slot": "1", "state": "ready", "serial": "BWC-1", "battery_pct": 90}
    dock.publish(K.SLOT, {**slot, "time": now(), "failed": []}, name="1", retain=True)
    dock.health(1, slots=[{**slot, "battery_health_pct": 60, "drift_s": 0.01}])
    for seq in range(1, 4):
        dock.event(seq, "checks.failed", serial="BWC-2", slot="2", failed=["battery_low"])
    wait_until(committed(monitor, 7), "seven messages")
    kinds = {r["kind"]: r for r in rows(tmp_path, "SELECT * FROM alerts")}
    assert kinds["battery_health"]["subject"] == "BWC-1"
    assert kinds["checks_failing"]["subject"] == "BWC-2"
    lag = monitor.stats()["lag_receive_s"]
    assert lag["count"] >= 7 and lag["max"] >= lag["p50"] >= 0


def test_silent_dock_is_reported(docks, start_monitor, tmp_path):
    th = Thresholds(health_interval_s=0.2, silent_intervals=2)
    monitor = start_monitor(thresholds=th, tick_s=0.1)
    dock = docks()
    dock.state("ready")
    dock.health(1)
    wait_until(committed(monitor, 2), "health")
    wait_until(lambda: open_alerts(tmp_path, "dock_silent"), "silent alert")
    dock.health(2)
    wait_until(lambda: not open_alerts(tmp_path, "dock_silent"), "silence cleared")


def verify(public: bytes, command: dict) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    Ed25519PublicKey.from_public_bytes(public).verify(
        base64.b64decode(command["sig"]), contract.signing_bytes(command)
    )


def test_verify_rejects_a_changed_command():
    from cryptography.exceptions import InvalidSignature

    from hq.commands import sign_command

    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    command = sign_command(
        key, "flag", {"serial": "X", "maintenance": True}, "me", site="s", dock="d", now=0.0
    )
    verify(public, command)
    with pytest.raises(InvalidSignature):
        verify(public, {**command, "args": {"serial": "Y", "maintenance": True}})


def test_broker_restart_keeps_the_session_and_hq_reconnects(mosquitto, start_monitor, tmp_path):
    monitor = start_monitor()
    mosquitto.restart()  # SIGTERM: mosquitto saves hq's session and its subscription
    dock = FakeDock(mosquitto, dock="d2")  # may well publish before hq is back
    try:
        for seq in range(1, 4):
            dock.event(seq, serial="X")
        wait_until(committed(monitor, 3), "events after the broker restart")
    finally:
        dock.close()
    assert monitor.stats()["counts"]["connects"] >= 2
    [(count,)] = rows(tmp_path, "SELECT count(*) FROM events WHERE dock='d2'")
    assert count == 3


def test_tls_with_a_client_certificate(tmp_path):
    from tests.broker import Broker

    with Broker(tmp_path / "tls", tls=True) as broker:
        cert, key = broker.client_cert("hq-test")
        settings = BrokerSettings(
            host=broker.host,
            port=broker.port,
            tls_ca=str(broker.ca_path),
            tls_cert=cert,
            tls_key=key,
        )
        monitor = Monitor(str(tmp_path / "tls.sqlite3"), settings, name="test").start()
        try:
            assert monitor.wait_subscribed(WAIT)
        finally:
            monitor.stop()
