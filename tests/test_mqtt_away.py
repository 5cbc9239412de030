"""The running daemon (`dock run`, its maintenance thread, its reporter) tells headquarters
over a real Mosquitto that a recorder kept away for days is overdue for its offload before
it is docked (REQUIREMENTS §4: 002 art.23) and not returned by the end of its shift
(REQUIREMENTS §8: 000 §14.1; 002 art.22; 003 art.21), once each. The check-out is written
three days back in the dock's database before the daemon starts: nothing waits."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from dock.config import load_config
from dock.daemon.composition import build_service
from mqtt_contract.contract import Kind, decode

from .broker import Broker, find_mosquitto
from .conftest import PIN, write_dock_config
from .mqtt_listener import Listener

DOCK = [sys.executable, "-m", "dock.cli.main"]
DAY = 86400.0
SERIAL = "BWC-AWAY01"

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto binary")


def _config(tmp_path: Any, broker: Broker) -> str:
    path, _, _ = write_dock_config(tmp_path, "tcp://127.0.0.1:9", "d1")
    with open(path, "a", encoding="utf-8") as f:
        f.write(f'\n[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nsite = "s1"\n')
    return path


def _checked_out_days_ago(config: str, days: float) -> None:
    """Officer 1001 took recorder SERIAL ``days`` ago and has not brought it back."""
    svc = build_service(load_config(config, env={}))
    then = time.time() - days * DAY
    svc.store._clock = lambda: then
    svc.store.enrol_device(SERIAL, "BWC-1", "1.0.0", b"\x01" * 32)
    svc.store.add_officer("1001", "Wang Wei", "Traffic 3", PIN)
    svc.store.open_custody(SERIAL, "1001", "1")
    svc.store.mark_taken("1")


def test_the_daemon_raises_a_recorder_away_to_headquarters(tmp_path, mosquitto) -> None:
    """002 art.23 (24 h from the recording; away, from the check-out): deadline.overdue
    with away true, before the recorder is docked; 000 §14.1, 002 art.22, 003 art.21:
    recorder.not_returned. Each once, from the daemon's own periodic work."""
    config = _config(tmp_path, mosquitto)
    _checked_out_days_ago(config, 3)
    hq = Listener(mosquitto.host, mosquitto.port)
    base = "bwc/v1/docks/s1/d1"
    daemon = subprocess.Popen(
        [*DOCK, "--config", config, "run", "--interval", "0.5"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        overdue = hq.wait_for(lambda: hq.on(f"{base}/event/deadline.overdue"), timeout=60)
        event = overdue[0]
        decode(Kind.EVENT, json.dumps(event))
        data = event["data"]
        assert event["subject"] == SERIAL and data["serial"] == SERIAL
        assert data["away"] is True and data["returned_at"] is None
        assert data["officer"] == "1001" and data["due"] == data["deadline_utc"]
        assert data["deadline_from"] == "recording" and data["state"] == "overdue"
        gone = hq.wait_for(lambda: hq.on(f"{base}/event/recorder.not_returned"), timeout=30)
        assert gone[0]["data"]["serial"] == SERIAL and gone[0]["data"]["officer"] == "1001"
        # at risk was passed on the way while nobody looked: only the state it is in now
        assert hq.on(f"{base}/event/deadline.at_risk") == []
        # once: the daemon keeps sweeping; a further look raises nothing new
        checked = hq.wait_for(lambda: len(hq.on(f"{base}/health")) >= 1, timeout=30)
        assert checked
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
        print(err[-3000:])
    assert len(hq.on(f"{base}/event/deadline.overdue")) == 1
    assert len(hq.on(f"{base}/event/recorder.not_returned")) == 1
    hq.close()
