"""The dock reporting to a real Mosquitto: birth, state, health and events arrive; a killed
dock is seen lost; nothing is lost across broker restarts; ACLs and TLS hold."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from dock.config import load_config
from dock.daemon.composition import build_reporter, build_service
from mqtt_contract.contract import Kind, decode, signing_bytes, utc

from .broker import Broker, find_mosquitto
from .conftest import write_dock_config
from .mqtt_listener import Listener

DOCK = [sys.executable, "-m", "dock.cli.main"]

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto binary")


def _dock_config(tmp_path: Any, broker: Broker, dock_id: str = "d1", **mqtt: Any) -> str:
    path, _, _ = write_dock_config(tmp_path, "tcp://127.0.0.1:9", dock_id)
    lines = ["", "[mqtt]", f'host = "{broker.host}"', f"port = {broker.port}", 'site = "s1"']
    lines += ["health_interval_s = 5"]
    for key, value in mqtt.items():
        lines.append(f"{key} = {json.dumps(value)}")
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _reporter(config_path: str) -> tuple[Any, Any]:
    cfg = load_config(config_path, env={})
    svc = build_service(cfg)
    return svc, build_reporter(cfg, svc)


def _events(listener: Listener, kind: str = "checkout.refused") -> list[dict[str, Any]]:
    return [p for t, p, _ in listener.received if t.endswith(f"/event/{kind}")]


def _unique(events: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(e["boot"], e["seq"]): e for e in events}


def test_daemon_reports_birth_state_health_events_and_stopped(tmp_path, mosquitto) -> None:
    hq = Listener(mosquitto.host, mosquitto.port)
    state = tmp_path / "dock"
    daemon = subprocess.Popen(
        [*DOCK, "run", "--emulate", "3", "--state-dir", str(state), "--interval", "0.3",
         "--mqtt", f"{mosquitto.host}:{mosquitto.port}", "--health-interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = "bwc/v1/docks/emulated/emulated"
    try:
        birth = hq.wait_for(lambda: hq.on(f"{base}/birth"), timeout=30)[0]
        decode(Kind.BIRTH, json.dumps(birth))
        assert birth["slots"] == ["1", "2", "3"] and birth["software"]
        assert hq.wait_for(lambda: [p for p in hq.on(f"{base}/state") if p["state"] == "ready"])
        # health: the dock and each slot, once the first sweep has identified the recorders
        health = hq.wait_for(
            lambda: [h for h in hq.on(f"{base}/health") if h["slots"][0]["serial"]], timeout=30
        )[0]
        decode(Kind.HEALTH, json.dumps(health))
        assert health["dock"]["memory_used_pct"] > 0 and health["dock"]["uptime_s"] > 0
        assert [s["slot"] for s in health["slots"]] == ["1", "2", "3"]
        assert health["slots"][0]["battery_pct"] == 96
        slot1 = hq.wait_for(lambda: [p for p in hq.on(f"{base}/slot/1") if p["serial"]])[-1]
        assert slot1["serial"] == "EMU0001"

        env = {**os.environ, "DOCK_CONFIG": str(state / "dock.toml")}
        out = subprocess.run(
            [*DOCK, "checkout", "--officer", "1001", "--pin", "246810", "--json"],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        granted = hq.wait_for(lambda: hq.on(f"{base}/event/checkout.granted"))[0]
        assert granted["data"]["officer"] == "1001" and granted["subject"] == "EMU0001"
        assert granted["boot"] == birth["boot"] and granted["seq"] >= 1
        refused = subprocess.run(
            [*DOCK, "checkout", "--officer", "1001", "--pin", "246810", "--json"],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert refused.returncode == 1
        event = hq.wait_for(lambda: hq.on(f"{base}/event/checkout.refused"))[0]
        assert event["data"]["reasons"] == ["officer_has_device"]
        assert event["seq"] > granted["seq"]
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    assert hq.wait_for(lambda: [p for p in hq.on(f"{base}/state") if p["state"] == "stopped"])
    hq.close()


def test_kill_minus_9_makes_headquarters_see_lost(tmp_path, mosquitto) -> None:
    hq = Listener(mosquitto.host, mosquitto.port)
    daemon = subprocess.Popen(
        [*DOCK, "run", "--emulate", "1", "--state-dir", str(tmp_path / "dock"),
         "--mqtt", f"{mosquitto.host}:{mosquitto.port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = "bwc/v1/docks/emulated/emulated"
    try:
        hq.wait_for(lambda: [p for p in hq.on(f"{base}/state") if p["state"] == "ready"], 30)
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=30)
    lost = hq.wait_for(lambda: [p for p in hq.on(f"{base}/state") if p["state"] == "lost"])
    assert lost[0]["boot"] == hq.on(f"{base}/birth")[0]["boot"]
    hq.close()
    # the retained state a monitor starting now reads is "lost" too
    late = Listener(mosquitto.host, mosquitto.port, f"{base}/state", client_id="late")
    assert late.wait_for(lambda: late.on("/state"))[-1]["state"] == "lost"
    late.close()
    # and dock-hq, started now, raises the alarm from that retained state
    hq_db = str(tmp_path / "hq.db")
    monitor = subprocess.Popen(
        [sys.executable, "-m", "hq.cli", "run", "--host", mosquitto.host,
         "--port", str(mosquitto.port), "--db", hq_db],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        alerts: list = []
        while time.monotonic() < deadline and not alerts:
            time.sleep(0.3)
            out = subprocess.run(
                [sys.executable, "-m", "hq.cli", "alerts", "--json", "--db", hq_db],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            if out.returncode == 0 and out.stdout.strip():
                alerts = [a for a in json.loads(out.stdout) if a["kind"] == "dock_lost"]
    finally:
        monitor.terminate()
        monitor.wait(timeout=30)
    assert alerts and alerts[0]["dock"] == "emulated"


def test_broker_restarts_during_a_stream_lose_no_event(tmp_path, mosquitto) -> None:
    """Events appended while the broker goes away and comes back three times all reach
    headquarters; after dropping duplicates by (boot, seq) each is there exactly once."""
    hq = Listener(mosquitto.host, mosquitto.port)
    svc, reporter = _reporter(_dock_config(tmp_path, mosquitto))
    reporter.start()
    total = 150
    done = threading.Event()

    def produce() -> None:
        for i in range(total):
            svc.audit.append("checkout_refused", f"o{i}", "", {"reasons": ["officer_unknown"]})
            time.sleep(0.01)
        done.set()

    producer = threading.Thread(target=produce)
    try:
        hq.wait_for(lambda: hq.on("/birth"))
        producer.start()
        for _ in range(3):
            time.sleep(0.3)
            mosquitto.stop()
            time.sleep(0.5)  # events keep coming while the broker is away
            mosquitto.restart()
        assert done.wait(60)
        got = hq.wait_for(
            lambda: len(_unique(_events(hq))) >= total and _unique(_events(hq)), timeout=60
        )
    finally:
        producer.join(timeout=60)
        reporter.stop()
    events = _events(hq)
    unique = _unique(events)
    assert len(got) == total and len(unique) == total
    checkpoints = _unique(_events(hq, "audit.checkpoint"))  # one per 100 entries, signed
    assert sorted(seq for _, seq in [*got, *checkpoints]) == list(range(1, total + 2))
    assert sorted(e["actor"] for e in unique.values()) == sorted(f"o{i}" for i in range(total))
    assert reporter.outbox.count_pending() == 0
    hq.close()


def test_events_wait_in_the_outbox_without_a_broker_and_keep_their_boot(tmp_path) -> None:
    broker = Broker(tmp_path)  # not started: nobody listens on its port yet
    config = _dock_config(tmp_path, broker)
    svc, reporter = _reporter(config)
    reporter.start()
    for i in range(5):
        svc.audit.append("checkout_refused", f"o{i}", "", {"reasons": ["officer_unknown"]})
    deadline = time.monotonic() + 10
    while reporter.outbox.count_pending() < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reporter.outbox.count_pending() == 5
    first_boot = reporter.boot
    reporter.stop()
    svc.store.close()
    shown = subprocess.run(
        [*DOCK, "--config", config, "outbox", "--json"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["pending"] == 5 and report["last_sent"] is None and report["reporting"]
    with broker:
        hq = Listener(broker.host, broker.port)
        _, reporter2 = _reporter(config)  # the dock restarted: a new boot
        assert reporter2.boot != first_boot
        reporter2.start()
        try:
            got = hq.wait_for(lambda: len(_events(hq)) >= 5 and _events(hq))
        finally:
            reporter2.stop()
        assert {e["boot"] for e in got} == {first_boot}
        assert sorted(e["seq"] for e in got) == [1, 2, 3, 4, 5]
        assert reporter2.outbox.count_pending() == 0
        hq.close()


def test_a_dock_cannot_write_under_another_docks_id(tmp_path) -> None:
    """004 att.2 §9: the network the dock reports on is locked down: a dock cannot write under
    another dock's id."""
    acl = (
        "user hq\ntopic read bwc/#\ntopic write bwc/v1/hq/#\n\n"
        "pattern write bwc/v1/docks/+/%u/#\npattern read bwc/v1/docks/+/%u/cmd/#\n"
        "pattern read bwc/v1/hq/status\n"
    )
    passwords = {"hq": "hq-pass", "dockA": "a-pass"}
    with Broker(tmp_path, acl=acl, passwords=passwords) as broker:
        hq = Listener(broker.host, broker.port, client_id="hq-acl", credentials=("hq", "hq-pass"))
        secret = tmp_path / "dock.pass"
        secret.write_text("a-pass\n")
        os.chmod(secret, 0o600)
        # a dock logged in as dockA but configured as dockB: every publish is refused
        svc, reporter = _reporter(
            _dock_config(tmp_path, broker, "dockB", username="dockA", password_file=str(secret))
        )
        reporter.start()
        try:
            svc.audit.append("checkout_refused", "x", "", {"reasons": ["officer_unknown"]})
            deadline = time.monotonic() + 15
            while reporter.stats["refused"] < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            reporter.stop()
        assert reporter.stats["refused"] >= 2  # birth/state/health and the event
        assert not [t for t, _, _ in hq.received if "/dockB/" in t]
        assert reporter.outbox.count_pending() == 1  # refused is not sent: it waits
        hq.close()


def test_tls_with_client_certificates(tmp_path) -> None:
    """004 att.2 §9: the dock reports over TLS with client certificates."""
    acl = "user hq\ntopic read bwc/#\n\npattern write bwc/v1/docks/+/%u/#\n"
    with Broker(tmp_path, tls=True, acl=acl) as broker:
        hq_cert, hq_key = broker.client_cert("hq")
        hq = Listener(
            broker.host, broker.port, client_id="hq-tls", tls=(str(broker.ca_path), hq_cert, hq_key)
        )
        cert, key = broker.client_cert("d1")
        _, reporter = _reporter(
            _dock_config(
                tmp_path, broker, "d1", ca_file=str(broker.ca_path), cert_file=cert, key_file=key
            )
        )
        reporter.start()
        try:
            birth = hq.wait_for(lambda: hq.on("/s1/d1/birth"))[0]
        finally:
            reporter.stop()
        assert birth["dock"] == "d1"
        assert hq.wait_for(lambda: [p for p in hq.on("/d1/state") if p["state"] == "stopped"])
        hq.close()


def _command(
    key: Ed25519PrivateKey, name: str, args: dict, issued: float | None = None, dock: str = "d1"
) -> dict:
    cmd = {
        "schema": 1,
        "id": str(uuid.uuid4()),
        "site": "s1",
        "dock": dock,
        "command": name,
        "issued": utc(time.time() if issued is None else issued),
        "by": "duty officer",
        "args": args,
    }
    cmd["sig"] = base64.b64encode(key.sign(signing_bytes(cmd))).decode()
    return cmd


def test_commands_are_obeyed_only_when_signed_fresh_and_new(tmp_path, mosquitto) -> None:
    """004 att.2 §9; 000 §10: commands from headquarters are obeyed only when signed, fresh and
    new."""
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    config = _dock_config(tmp_path, mosquitto, hq_public_keys=[public.decode()])
    svc, reporter = _reporter(config)
    svc.store.enrol_device("BWC-7", "M1", "2.0.0", b"\0" * 32)
    hq = Listener(mosquitto.host, mosquitto.port)
    reporter.start()
    base = "bwc/v1/docks/s1/d1"

    def send(cmd: dict) -> dict:
        def answers() -> list[dict]:
            return [r for r in hq.on(f"{base}/reply") if r["id"] == cmd["id"]]

        before = len(answers())
        hq.client.publish(f"{base}/cmd/{cmd['command']}", json.dumps(cmd), qos=1)
        return hq.wait_for(lambda: len(answers()) > before and answers())[-1]

    try:
        hq.wait_for(lambda: hq.on(f"{base}/birth"))
        lost = _command(key, "lost", {"serial": "BWC-7", "note": "reported stolen"})
        assert send(lost)["ok"]
        assert svc.store.device("BWC-7").lost
        assert send(lost)["error"] == "replayed"
        stranger = _command(
            Ed25519PrivateKey.generate(), "flag", {"serial": "BWC-7", "maintenance": True}
        )
        assert send(stranger)["error"] == "unauthorised"
        stale = _command(key, "flag", {"serial": "BWC-7", "maintenance": True}, time.time() - 900)
        assert send(stale)["error"] == "stale"
        forged = _command(key, "flag", {"serial": "BWC-7", "maintenance": True})
        forged["args"]["maintenance"] = False  # changed after signing
        assert send(forged)["error"] == "unauthorised"
        assert not svc.store.device("BWC-7").maintenance
        unknown = _command(key, "flag", {"serial": "NOPE", "maintenance": True})
        assert send(unknown)["error"] == "unknown device"
        births = len(hq.on(f"{base}/birth"))
        assert send(_command(key, "status", {}))["ok"]
        hq.wait_for(lambda: len(hq.on(f"{base}/birth")) > births)
        # every command is audited and reported, obeyed or not
        reported = hq.wait_for(lambda: len(hq.on(f"{base}/event/command")) >= 7 and
                               hq.on(f"{base}/event/command"))  # fmt: skip
        assert [e["data"]["accepted"] for e in reported] == [
            True, False, False, False, False, False, True
        ]  # fmt: skip
        flagged = hq.wait_for(lambda: hq.on(f"{base}/event/device.flagged"))[0]
        assert flagged["data"]["lost"] is True and flagged["data"]["by"] == "hq:duty officer"
        # signed for another dock and replayed here: refused
        elsewhere = _command(key, "flag", {"serial": "BWC-7", "maintenance": True}, dock="d2")
        assert send(elsewhere)["error"] == "not for this dock"
        # text that cannot be stored as UTF-8 (a lone surrogate): refused, audited, answered
        odd = _command(key, "status", {})
        odd["by"] = "\ud800"
        assert send(odd)["error"] == "unauthorised"
        # not even a command: no id to answer, but audited
        hq.client.publish(f"{base}/cmd/status", b"not json", qos=1)
        hq.wait_for(lambda: len(hq.on(f"{base}/event/command")) >= 10)
    finally:
        reporter.stop()
        hq.close()
    audited = [e for e in svc.audit.entries() if e.kind == "hq_command"]
    assert len(audited) == 10 and svc.audit.verify().ok
    assert audited[-1].data["error"].startswith("unreadable") and audited[-1].actor == "hq:?"
    assert audited[-2].actor == "hq:?"  # the surrogate, replaced
    assert not svc.store.device("BWC-7").maintenance


def test_dock_to_dock_hq_exactly_once_across_broker_restarts(tmp_path, mosquitto) -> None:
    """The real reporter into the real monitor: the broker stops and comes back three
    times during a stream of events (and dock-hq once more); the monitor's database ends
    with every event exactly once, and the fleet view shows the dock."""
    import sqlite3

    from hq.config import BrokerSettings
    from hq.monitor import Monitor

    db = str(tmp_path / "hq.db")
    monitor = Monitor(db, BrokerSettings(host=mosquitto.host, port=mosquitto.port)).start()
    assert monitor.wait_subscribed(15)
    svc, reporter = _reporter(_dock_config(tmp_path, mosquitto))
    reporter.start()
    total = 120
    done = threading.Event()

    def produce() -> None:
        for i in range(total):
            svc.audit.append("checkout_refused", f"o{i}", "", {"reasons": ["pin_wrong"]})
            time.sleep(0.01)
        done.set()

    producer = threading.Thread(target=produce)
    try:
        producer.start()
        for _ in range(3):
            time.sleep(0.3)
            mosquitto.stop()
            time.sleep(0.4)
            mosquitto.restart()
        monitor.stop()  # headquarters away for a while too: its session queues
        assert done.wait(60)
        monitor = Monitor(db, BrokerSettings(host=mosquitto.host, port=mosquitto.port)).start()
        deadline = time.monotonic() + 60
        count = 0
        while time.monotonic() < deadline:
            with sqlite3.connect(db) as conn:
                count = conn.execute(
                    "SELECT count(*) FROM events WHERE type = 'checkout.refused'"
                ).fetchone()[0]
            if count >= total and reporter.outbox.count_pending() == 0:
                break
            time.sleep(0.2)
    finally:
        producer.join(timeout=60)
        reporter.stop()
        monitor.stop()
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT boot, seq, payload FROM events WHERE type = 'checkout.refused' ORDER BY seq"
        ).fetchall()
    assert len(rows) == total == len({(b, s) for b, s, _ in rows})
    assert sorted(json.loads(p)["actor"] for _, _, p in rows) == sorted(
        f"o{i}" for i in range(total)
    )
    fleet = subprocess.run(
        [sys.executable, "-m", "hq.cli", "fleet", "--json", "--db", db],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert fleet.returncode == 0, fleet.stderr
    assert "d1" in fleet.stdout


def _fast_reporter(config_path: str, health_s: float) -> tuple[Any, Any]:
    import dataclasses

    cfg = load_config(config_path, env={})
    cfg = dataclasses.replace(cfg, mqtt=dataclasses.replace(cfg.mqtt, health_interval_s=health_s))
    svc = build_service(cfg)
    return svc, build_reporter(cfg, svc)


def test_health_waiting_for_the_broker_is_coalesced_to_the_newest(tmp_path) -> None:
    broker = Broker(tmp_path)  # not started yet
    _, reporter = _fast_reporter(_dock_config(tmp_path, broker), 0.1)
    reporter.start()
    try:
        time.sleep(1.0)  # about ten health intervals with no broker
        with broker:
            hq = Listener(broker.host, broker.port)
            first = hq.wait_for(lambda: hq.on("/health"))[0]
            hq.wait_for(lambda: len(hq.on("/health")) >= 3)
            seqs = [h["seq"] for h in hq.on("/health")]
            hq.close()
    finally:
        reporter.stop()
    assert first["seq"] >= 5  # the newest, not the first of the backlog
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))  # older ones were dropped


def test_dock_republishes_birth_when_headquarters_comes_online(tmp_path, mosquitto) -> None:
    _, reporter = _reporter(_dock_config(tmp_path, mosquitto))
    hq = Listener(mosquitto.host, mosquitto.port)
    reporter.start()
    try:
        hq.wait_for(lambda: hq.on("/d1/birth"))
        before = len(hq.on("/d1/birth"))
        hq.client.publish("bwc/v1/hq/status", json.dumps({"schema": 1, "state": "online"}), 1)
        hq.wait_for(lambda: len(hq.on("/d1/birth")) > before)
        hq.wait_for(lambda: len(hq.on("/d1/slot/1")) >= 2)  # slots come again too
    finally:
        reporter.stop()
        hq.close()


def test_reconnect_delays_grow_are_capped_and_jittered() -> None:
    import random

    from dock.reporting.paho_link import RECONNECT_MAX_S, RECONNECT_MIN_S, backoff

    rng = random.Random(5)
    delays = [[backoff(attempt, rng) for attempt in range(12)] for _ in range(50)]
    for attempt in range(12):
        ceiling = min(RECONNECT_MAX_S, RECONNECT_MIN_S * 2**attempt)
        column = [d[attempt] for d in delays]
        assert all(ceiling / 2 <= d <= ceiling for d in column)
        assert len(set(column)) > 40  # docks that lost the same broker do not come back together
    assert backoff(10_000, rng) <= RECONNECT_MAX_S


def test_only_one_process_reports_for_a_state_directory(tmp_path, mosquitto) -> None:
    config = _dock_config(tmp_path, mosquitto)
    _, first = _reporter(config)
    _, second = _reporter(config)  # e.g. `dock run` started twice
    assert first is not None and second is None
    first.lock.close()  # as when that process ends
    _, third = _reporter(config)  # the first one is gone: reporting may start again
    assert third is not None


def test_a_bad_slot_id_is_a_configuration_error_when_reporting(tmp_path, mosquitto) -> None:
    from dock.config import ConfigError

    path = _dock_config(tmp_path, mosquitto)
    from pathlib import Path

    Path(path).write_text(Path(path).read_text().replace('id = "1"', 'id = "_1"'))
    with pytest.raises(ConfigError, match="slot '_1'"):
        load_config(path, env={})


def test_events_a_crashed_broker_lost_are_asked_for_and_sent_again(tmp_path) -> None:
    """Headquarters is away, the broker holds 30 events for it and dies (kill -9, nothing
    saved). When both are back, dock-hq sees the hole (in seq, and in the dock's last
    seq in its health), signs a resend, and the dock sends those events again from its
    outbox: in the end every event is stored, each once."""
    import sqlite3

    from hq.commands import generate_key, load_key
    from hq.config import BrokerSettings
    from hq.monitor import Monitor

    key_path = str(tmp_path / "hq.pem")
    public = generate_key(key_path)
    db = str(tmp_path / "hq.db")

    def count() -> int:
        with sqlite3.connect(db) as conn:
            return conn.execute(
                "SELECT count(*) FROM events WHERE type = 'checkout.refused'"
            ).fetchone()[0]

    def until(check: Any, what: str) -> None:
        deadline = time.monotonic() + 30
        while not check():
            assert time.monotonic() < deadline, what
            time.sleep(0.1)

    def acknowledged() -> int:
        return reporter.outbox._db.execute(
            "SELECT count(*) FROM events WHERE type = 'checkout.refused' AND sent IS NOT NULL"
        ).fetchone()[0]

    with Broker(tmp_path, persistence=False) as mosquitto:
        settings = BrokerSettings(host=mosquitto.host, port=mosquitto.port)
        monitor = Monitor(db, settings, signing_key=load_key(key_path), tick_s=0.5).start()
        assert monitor.wait_subscribed(15)
        svc, reporter = _fast_reporter(
            _dock_config(tmp_path, mosquitto, hq_public_keys=[public]), 0.3
        )
        reporter.start()
        n = 0

        def events(k: int) -> None:
            nonlocal n
            for _ in range(k):
                n += 1
                svc.audit.append("checkout_refused", f"o{n}", "", {"reasons": ["pin_wrong"]})

        try:
            events(30)
            until(lambda: count() == 30, "first 30 stored")
            monitor.stop()  # headquarters away: the broker queues for its session
            events(30)
            until(lambda: acknowledged() == 60, "the broker took the next 30")
            mosquitto.kill()  # and loses them
            mosquitto.restart()
            monitor = Monitor(db, settings, signing_key=load_key(key_path), tick_s=0.5).start()
            assert monitor.wait_subscribed(15)
            assert count() == 30  # the 30 the broker held are gone
            events(30)
            until(lambda: count() == 90, "all 90 stored after the resend")
        finally:
            reporter.stop()
            monitor.stop()
    with sqlite3.connect(db) as conn:
        seqs = [r[0] for r in conn.execute(
            "SELECT seq FROM events WHERE type = 'checkout.refused' ORDER BY seq"
        )]  # fmt: skip
    assert len(seqs) == 90 == len(set(seqs))
    resends = [e for e in svc.audit.entries() if e.kind == "hq_command" and e.data["accepted"]]
    assert resends and all(e.data["command"] == "resend" for e in resends)


def test_a_long_backlog_of_unreported_entries_does_not_hide_a_later_event(
    tmp_path, monkeypatch
) -> None:
    """Thousands of entries headquarters never hears of (officers added while the dock's
    service was stopped, say), then one it does: the reporter works through them over
    several turns, with no new write to wake it, and queues the event."""
    from dock.reporting import feed as feed_module

    broker = Broker(tmp_path)  # never started: the outbox only fills
    config = _dock_config(tmp_path, broker)
    svc, reporter = _reporter(config)
    reporter.start()  # reporting begins here
    reporter.stop()
    for i in range(2500):
        svc.audit.append("officer_add", "admin", f"o{i}", {"role": "officer"})
    svc.audit.append("checkout_refused", "x", "", {"reasons": ["pin_wrong"]})
    monkeypatch.setattr(feed_module, "BATCH", 10)  # 1,000 entries a turn: three turns
    _, reporter = _reporter(config)
    reporter.start()

    def queued() -> list[str]:  # signed checkpoints (one per 100 entries), then the event
        return [p.type for p in reporter.outbox.pending(1000)]

    try:
        deadline = time.monotonic() + 20
        while "checkout.refused" not in queued() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        reporter.stop()
    assert queued()[-1] == "checkout.refused"
