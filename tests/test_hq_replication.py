"""dock-hq and a dock's replication backlog (issue 16), end to end through a real
mosquitto: a health whose oldest waiting package is past the dock's deadline opens
``replication_backlog``, a health within it closes it, a ``replication.failed`` event
opens ``replication_failed``; ``dock-hq fleet`` shows the backlog. Every wait bounded."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hq.alerts import AlertKind, replication_rule
from hq.config import BrokerSettings
from hq.monitor import Monitor
from mqtt_contract import contract
from tests.broker import find_mosquitto
from tests.test_hq_monitor import WAIT, FakeDock, K, committed, open_alerts, rows, wait_until

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto binary")

HOUR = 3600.0


@pytest.fixture
def dock(mosquitto) -> Iterator[FakeDock]:
    made = FakeDock(mosquitto)
    yield made
    made.close()


@pytest.fixture
def monitor(mosquitto, tmp_path) -> Iterator[Monitor]:
    running = Monitor(str(tmp_path / "fleet.sqlite3"), BrokerSettings(port=mosquitto.port))
    running.start()
    try:
        assert running.wait_subscribed(WAIT), "monitor did not subscribe"
        yield running
    finally:
        running.stop()


def replication(now: float, oldest_age_h: float | None, *, pending: int = 3, failed: int = 0):
    oldest = None if oldest_age_h is None else contract.utc(now - oldest_age_h * HOUR)
    return {
        "deadline_hours": 24,
        "targets": [
            {
                "name": "nas",
                "pending": pending if oldest is not None else 0,
                "sending": 0,
                "failed": failed,
                "replicated_24h": 5,
                "oldest_pending_at": oldest,
                "last_success_at": contract.utc(now - 30 * HOUR),
                "last_error": "connection refused" if failed else None,
            }
        ],
    }


def send_health(dock: Any, seq: int, rep: dict | None, at: float) -> None:
    body: dict[str, Any] = {
        "boot": dock.boot,
        "seq": seq,
        "time": contract.utc(at),
        "dock": {"uptime_s": 1.0, "outbox_pending": 0},
        "slots": [],
    }
    if rep is not None:
        body["replication"] = rep
    dock.publish(K.HEALTH, body)


def fleet_text(tmp_path: Any) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hq.cli", "fleet", "--db", str(tmp_path / "fleet.sqlite3")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_an_old_backlog_opens_the_alert_and_clearing_it_closes_it(dock, monitor, tmp_path):
    t = time.time()
    send_health(dock, 1, replication(t, 2.0), t)  # within the deadline: no alert
    wait_until(committed(monitor, 1), "the first health")
    assert not open_alerts(tmp_path, "replication_backlog")
    [row] = rows(tmp_path, "SELECT * FROM replication")
    assert (row["target"], row["pending"], row["deadline_hours"]) == ("nas", 3, 24.0)

    send_health(dock, 2, replication(t, 30.0, pending=7, failed=2), t)
    wait_until(lambda: open_alerts(tmp_path, "replication_backlog"), "the backlog alert")
    [alert] = open_alerts(tmp_path, "replication_backlog")
    assert "within 24 h" in alert["detail"] and "nas: 7 waiting" in alert["detail"]
    out = fleet_text(tmp_path)
    assert "REPL" in out and "7! 2F" in out
    assert max(len(line) for line in out.splitlines()) <= 80

    send_health(dock, 3, replication(t, None), t)  # everything replicated
    wait_until(lambda: not open_alerts(tmp_path, "replication_backlog"), "the alert closed")
    [closed] = rows(tmp_path, "SELECT closed_at FROM alerts WHERE kind='replication_backlog'")
    assert closed["closed_at"] is not None
    assert " 0 " in fleet_text(tmp_path).splitlines()[1] + " "


def test_a_dock_that_stops_reporting_replication_closes_its_alert(dock, monitor, tmp_path):
    t = time.time()
    send_health(dock, 1, replication(t, 48.0), t)
    wait_until(lambda: open_alerts(tmp_path, "replication_backlog"), "the backlog alert")
    send_health(dock, 2, None, t)  # an older software, or the targets were removed
    wait_until(committed(monitor, 2), "the second health")
    wait_until(lambda: not open_alerts(tmp_path, "replication_backlog"), "the alert closed")
    assert rows(tmp_path, "SELECT * FROM replication") == []
    assert "  -  " in fleet_text(tmp_path)


def test_a_failure_event_opens_an_alert_until_acknowledged(dock, monitor, tmp_path):
    dock.event(
        1, "replication.failed", package="BAG-1", target="nas", reason="wrong password", attempts=5
    )
    wait_until(lambda: open_alerts(tmp_path, "replication_failed"), "the failure alert")
    [alert] = open_alerts(tmp_path, "replication_failed")
    assert alert["subject"] == "nas/BAG-1"
    assert "wrong password" in alert["detail"] and "5 attempt" in alert["detail"]
    send_health(dock, 1, replication(time.time(), None), time.time())
    wait_until(committed(monitor, 2), "a health after it")
    assert open_alerts(tmp_path, "replication_failed")  # a person must look at it


def test_a_backlog_out_of_bounds_is_refused_and_nothing_stored(dock, monitor, tmp_path):
    bad = replication(time.time(), 30.0)
    bad["targets"][0]["last_error"] = "x" * 1000
    body = {"schema": 1, "boot": "b", "seq": 1, "time": contract.utc(time.time())}
    raw = json.dumps({**body, "dock": {}, "slots": [], "replication": bad})
    dock.send(dock.topic(K.HEALTH), raw.encode())
    wait_until(lambda: monitor.stats()["counts"]["rejected"] >= 1, "the refusal")
    assert rows(tmp_path, "SELECT * FROM replication") == []


@pytest.mark.parametrize(
    ("age_h", "is_open"), [(None, False), (23.9, False), (24.1, True), (1000.0, True)]
)
def test_the_deadline_is_measured_by_the_healths_own_time(age_h, is_open) -> None:
    t = 1_800_000_000.0
    health = {"time": contract.utc(t), "replication": replication(t, age_h)}
    d = replication_rule("s", "d", health)
    assert bool(d.open) is is_open and bool(d.close) is not is_open
    assert all(a.key.kind is AlertKind.REPLICATION_BACKLOG for a in d.open)


def test_a_real_docks_backlog_and_failure_reach_dock_hq(make_dock, mosquitto, tmp_path) -> None:
    """The dock's own reporter (paho, outbox, the daemon's health reading) into dock-hq:
    a package failing at its target is an alert, and so is its backlog once past the
    deadline; when it is copied and verified, the backlog alert closes by itself."""
    import dataclasses

    from dock.config import MqttConfig
    from dock.reporting.health import replication_health
    from dock.reporting.outbox import Outbox
    from dock.reporting.paho_link import PahoLink
    from dock.reporting.reporter import Reporter
    from dock.services.replication_status import replication_summary
    from tests.replica_fake import FolderTarget
    from tests.test_replication import engine, sealed_dock

    svc, _ = sealed_dock(make_dock)
    monitor = Monitor(str(tmp_path / "fleet.sqlite3"), BrokerSettings(port=mosquitto.port))
    monitor.start()
    mqtt = dataclasses.replace(
        MqttConfig(host=mosquitto.host, port=mosquitto.port, site="s1"), health_interval_s=0.5
    )
    reporter = Reporter(
        link=PahoLink(mqtt, client_id="dock-s1-d1"), outbox=Outbox(str(tmp_path / "out.db")),
        service=svc, cfg=mqtt, dock_id="d1", software="t", config_hash="h",
        state_dir=str(tmp_path), evidence_dir=str(tmp_path),
        replication=lambda now: replication_health(
            replication_summary(svc.store, now, ["fake"]), 24
        ),
    )  # fmt: skip
    try:
        assert monitor.wait_subscribed(WAIT)
        reporter.start()
        target = FolderTarget(str(tmp_path / "central"))
        target.down = True
        eng = engine(svc, target)
        eng.run_once()  # fails: an audit entry, so an event
        wait_until(lambda: open_alerts(tmp_path, "replication_failed"), "the failure alert")
        [failed] = open_alerts(tmp_path, "replication_failed")
        assert failed["dock"] == "d1" and "connection refused" in failed["detail"]
        wait_until(
            lambda: rows(tmp_path, "SELECT * FROM replication WHERE failed = 1"), "the backlog"
        )
        assert not open_alerts(tmp_path, "replication_backlog")  # sealed just now

        db = svc.store._db()
        with db:  # as if sealed 30 h ago (the dock was offline since)
            db.execute("UPDATE replication_queue SET sealed_at = sealed_at - ?", (30 * HOUR,))
        wait_until(lambda: open_alerts(tmp_path, "replication_backlog"), "the backlog alert")

        target.down = False
        eng.retry(None)
        eng.run_once()
        wait_until(lambda: not open_alerts(tmp_path, "replication_backlog"), "closed by itself")
        [row] = rows(tmp_path, "SELECT * FROM replication")
        assert (row["pending"], row["replicated_24h"], row["last_error"]) == (0, 1, None)
        assert open_alerts(tmp_path, "replication_failed")  # stays until acknowledged
    finally:
        reporter.stop()
        monitor.stop()
