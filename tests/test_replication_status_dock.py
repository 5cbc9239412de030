"""The dock's side of replication status (issue 16): the per-target summary the status
pages and health read, health's ``replication`` object within the contract, and the
engine's failure entry reported as ``replication.failed``. A real dock (emulated
recorder, real offload and seal) and the real engine against a folder target."""

from __future__ import annotations

import time

from dock.evidence.replication import ReplicationEngine
from dock.reporting.events import AuditView, event_for
from dock.reporting.health import replication_health
from dock.services.replication_status import backlog_line, replication_summary
from mqtt_contract import contract
from tests.replica_fake import FolderTarget
from tests.test_replication import engine, sealed_dock

K = contract.Kind


def health_with(rep: dict) -> dict:
    body = {"boot": "b", "seq": 1, "time": contract.utc(time.time()), "dock": {}, "slots": []}
    return contract.decode(K.HEALTH, contract.encode(K.HEALTH, {**body, "replication": rep}))


def failing_run(svc, tmp_path) -> tuple[ReplicationEngine, FolderTarget]:
    target = FolderTarget(str(tmp_path / "central"))
    target.down = True
    eng = engine(svc, target)
    eng.run_once()
    return eng, target


def test_a_failed_then_replicated_package_as_health_and_the_pages_see_it(make_dock, tmp_path):
    svc, _ = sealed_dock(make_dock)
    [before] = replication_summary(svc.store, time.time(), ["nas", "folder"])[:1]
    assert before["name"] == "nas" and before["pending"] == 0  # configured, nothing queued yet

    eng, target = failing_run(svc, tmp_path)
    now = time.time()
    summary = {t["name"]: t for t in replication_summary(svc.store, now)}
    [name] = summary
    failed = summary[name]
    assert (failed["pending"], failed["failed"], failed["replicated_24h"]) == (1, 1, 0)
    assert "connection refused" in failed["last_error"] and failed["last_success_at"] is None
    assert failed["oldest_pending_at"] <= now
    sent = health_with(replication_health(list(summary.values()), 24))["replication"]
    assert sent["targets"][0]["failed"] == 1 and sent["deadline_hours"] == 24
    assert contract.parse_utc(sent["targets"][0]["oldest_pending_at"]) <= now
    line = backlog_line(list(summary.values()), now + 25 * 3600, 24)
    assert line["waiting"] == 1 and line["late"] and line["oldest_age_h"] > 24

    target.down = False
    eng.retry(None)
    eng.run_once()
    [done] = replication_summary(svc.store, time.time())
    assert (done["pending"], done["failed"], done["replicated_24h"]) == (0, 0, 1)
    assert done["last_error"] is None and done["oldest_pending_at"] is None
    assert done["last_success_at"] is not None
    later = replication_summary(svc.store, time.time() + 25 * 3600)[0]
    assert later["replicated_24h"] == 0  # counted over the last 24 h only
    sent = health_with(replication_health([done], 24))["replication"]["targets"][0]
    assert sent["oldest_pending_at"] is None and sent["last_error"] is None
    assert not backlog_line([done], time.time(), 24)["late"]


def test_the_engines_failure_entry_goes_to_headquarters_as_replication_failed(make_dock, tmp_path):
    svc, _ = sealed_dock(make_dock)
    failing_run(svc, tmp_path)
    [entry] = [e for e in svc.audit.entries() if e.kind == "replication_failed"]
    view = AuditView(entry.seq, entry.time, entry.kind, entry.actor, entry.subject, entry.data)
    found = event_for(view, 1.0)
    assert found is not None and found[0] is contract.EventType.REPLICATION_FAILED
    body = {"type": found[0].value, "boot": "b", "seq": 1, "time": entry.time, "data": found[1]}
    data = contract.decode(K.EVENT, contract.encode(K.EVENT, body))["data"]
    assert data["package"] == entry.data["bag"] and data["target"] == entry.data["target"]
    assert "connection refused" in data["reason"] and data["attempts"] == 1


def test_health_never_carries_more_than_the_contract_allows() -> None:
    many = [
        {
            "name": f"t{i}" + "x" * 100,
            "pending": 1,
            "sending": 0,
            "failed": 1,
            "replicated_24h": 0,
            "oldest_pending_at": 1.0,
            "last_success_at": None,
            "last_error": "line\n" * 200,
        }
        for i in range(40)
    ]
    sent = health_with(replication_health(many, 24))["replication"]["targets"]
    assert len(sent) == contract.REPLICATION_MAX_TARGETS
    assert all(len(t["last_error"]) <= contract.REPLICATION_ERROR_MAX for t in sent)


def _reporter(tmp_path, svc, replication):
    import dataclasses

    from dock.config import MqttConfig
    from dock.reporting.outbox import Outbox
    from dock.reporting.reporter import Reporter
    from tests.test_reporting_outbox import ScriptedLink

    return Reporter(
        link=ScriptedLink(), outbox=Outbox(str(tmp_path / "outbox.db")), service=svc,
        cfg=dataclasses.replace(MqttConfig(host="x", site="s1"), health_interval_s=3600),
        dock_id="d1", software="t", config_hash="h",
        state_dir=str(tmp_path), evidence_dir=str(tmp_path), replication=replication,
    )  # fmt: skip


def test_the_reporters_health_carries_the_backlog_and_survives_a_queue_it_cannot_read(
    make_dock, tmp_path
):
    import sqlite3

    svc, _ = sealed_dock(make_dock)
    failing_run(svc, tmp_path)

    def reading(now: float) -> dict:
        return replication_health(replication_summary(svc.store, now, ["folder"]), 12)

    reporter = _reporter(tmp_path, svc, reading)
    reporter._health(time.time())  # not connected: the health waits, coalesced
    sent = contract.decode(K.HEALTH, reporter._waiting_health)
    [target] = [t for t in sent["replication"]["targets"] if t["failed"]]
    assert sent["replication"]["deadline_hours"] == 12 and target["pending"] == 1
    reporter._audit_probe.close()

    def broken(now: float) -> dict:
        raise sqlite3.OperationalError("database is locked")

    reporter = _reporter(tmp_path, svc, broken)
    reporter._health(time.time())
    sent = contract.decode(K.HEALTH, reporter._waiting_health)
    assert "replication" not in sent and sent["seq"] == 1  # the rest of the health still goes
    reporter._audit_probe.close()
    without = _reporter(tmp_path, svc, None)
    without._health(time.time())
    assert "replication" not in contract.decode(K.HEALTH, without._waiting_health)
    without._audit_probe.close()


def test_the_daemon_reports_replication_only_with_targets_configured(make_dock, tmp_path):
    import dataclasses

    from dock.config import emulated_config
    from dock.config.replication import ReplicationConfig, TargetConfig
    from dock.daemon.composition import replication_reading

    svc, _ = sealed_dock(make_dock)
    failing_run(svc, tmp_path)
    cfg = emulated_config(1, str(tmp_path / "state"))
    assert replication_reading(cfg, svc) is None  # no [replication]: health leaves it out
    rep = ReplicationConfig(
        targets=(TargetConfig(name="fake", kind="sftp", host="x"),), deadline_hours=6
    )
    reading = replication_reading(dataclasses.replace(cfg, replication=rep), svc)
    assert reading is not None
    sent = health_with(reading(time.time()))["replication"]
    assert sent["deadline_hours"] == 6
    assert [(t["name"], t["failed"]) for t in sent["targets"]] == [("fake", 1)]
