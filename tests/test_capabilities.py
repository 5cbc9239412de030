"""A recorder that is honest but different (issue 9 section 3): optional capabilities
missing, or an old recorder speaking only protocol version 1 (PROTOCOL.md 6.7).

The dock offloads everything it can read, keeps on the device what it may not erase
and says so, hands out a device it cannot write the officer into (saying so), checks
the runtime of a battery that does not report its health conservatively, and checks a
clock it cannot set by what it measures. Never a traceback, never a loop.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys

from dock.domain.slot_state import SlotState
from dock.storage.store import Store
from firmware_protocol.messages import Capability, ErrorCode
from hardware.emulator.recorder import RecorderError
from hardware.emulator.recorder_model import ALL_CAPABILITIES

from .conftest import PIN, SECRET, archived_bytes, write_dock_config

WITHOUT_ERASE = ALL_CAPABILITIES & ~Capability.ERASE
WITHOUT_ASSIGN = ALL_CAPABILITIES & ~Capability.ASSIGN
WITHOUT_HEALTH = ALL_CAPABILITIES & ~Capability.BATTERY_HEALTH
OLD = (1,)  # protocol versions of an old recorder

EMULATOR = [sys.executable, "-m", "hardware.emulator.cli"]
DOCK = [sys.executable, "-m", "dock.cli.main"]
#: A log line as the dock writes it into a pipe (common/logsetup.py): its UTC time first.
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def old_dock(make_dock, spec: dict, **kw):
    """A dock with one version-1 recorder it enrolled before protocol version 2 (the
    dock never enrols one now: see test_enrolling_an_old_recorder_is_refused...)."""
    svc, recs = make_dock({"protocol_versions": OLD, "secret": SECRET, **spec}, enrol=False, **kw)
    m = recs[0].model
    svc.store.enrol_device(m.serial, m.state["model"], m.state["firmware"], SECRET)
    return svc, recs


def kinds(svc) -> list[str]:
    return [e.kind for e in svc.audit.entries()]


def entries(svc, kind: str) -> list:
    return [e for e in svc.audit.entries() if e.kind == kind]


def check_kept_offload(svc, model, reason_part: str) -> None:
    """Everything archived, verified and sealed; everything still on the device; said
    once in the audit; the slot done (not failed), then READY."""
    expected = {r.id: r.sha256 for r in model.recordings.values()}
    assert len(expected) == 3
    svc.sweep()  # docking: identify, then offload
    assert {k: hashlib.sha256(v).digest() for k, v in archived_bytes(svc).items()} == expected
    assert {r.id: r.sha256 for r in model.recordings.values()} == expected  # all kept
    assert all(e["erased_at"] is None for e in svc.store.archive_entries())
    assert "erase" not in kinds(svc) and "offload_failed" not in kinds(svc)
    skipped = entries(svc, "erase_skipped")
    assert len(skipped) == 1, skipped
    assert skipped[0].data["count"] == 3 and reason_part in skipped[0].data["reason"]
    assert sorted(skipped[0].data["recordings"]) == sorted(expected)
    seal = entries(svc, "seal")
    assert len(seal) == 1 and sorted(seal[0].data["recordings"]) == sorted(expected)
    assert svc.slot_status["1"].state is not SlotState.FAULT
    svc.sweep()  # in full again: the kept footage is archived, nothing pending
    assert svc.slot_status["1"].state is SlotState.READY, svc.views["1"].failures
    # A rerun copies nothing again, erases nothing, audits no second skip, fails nothing.
    report = svc.offload("1")
    assert report.ok and report.archived == [] and report.erased == []
    assert sorted(report.already_archived) == sorted(expected) == sorted(report.kept)
    assert all(reason_part in why for why in report.kept.values())
    assert len(entries(svc, "erase_skipped")) == 1
    assert kinds(svc).count("offload_file") == 3


# --- 1. ERASE -------------------------------------------------------------------------


def test_without_erase_everything_is_offloaded_and_kept_on_the_device(make_dock) -> None:
    """001 art.19(4): a recorder that cannot erase is offloaded and verified, its footage kept on
    it."""
    svc, recs = make_dock(
        {"battery_percent": 95.0, "recordings": 3, "recording_mb": 0.1,
         "capabilities": WITHOUT_ERASE}
    )  # fmt: skip
    check_kept_offload(svc, recs[0].model, "no ERASE capability")
    assert svc.checkout("1001", PIN).granted  # kept footage does not block the next shift


def test_an_old_recorder_is_offloaded_over_the_protocol_and_never_erased(make_dock) -> None:
    """001 art.19(4); 003 art.11: an old recorder is offloaded and verified, never erased."""
    svc, recs = old_dock(make_dock, {"battery_percent": 95.0, "recordings": 3, "recording_mb": 0.1})
    check_kept_offload(svc, recs[0].model, "protocol version 1")
    # It offers mass storage, but that is privileged: read over the protocol instead.
    assert Capability.MASS_STORAGE in recs[0].model.capabilities
    assert {e.data["via"] for e in entries(svc, "offload_file")} == {"protocol"}
    assert not os.path.exists(os.path.join(recs[0].data_dir, "mass-storage"))


def test_a_policy_that_keeps_footage_until_a_second_copy_does_not_block(make_dock) -> None:
    """004 att.3 art.5: a policy keeping footage on the recorder until a second copy exists does
    not block the check-out."""
    svc, recs = make_dock(
        {"battery_percent": 95.0, "recordings": 3, "recording_mb": 0.1},
        policy={"erase_on_device": "after_second_copy"},
    )
    check_kept_offload(svc, recs[0].model, "second copy")


def test_an_erase_the_recorder_refuses_does_not_stop_the_offload(make_dock) -> None:
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 3, "recording_mb": 0.1})
    model = recs[0].model

    def refuse(**_fields):
        raise RecorderError(ErrorCode.UNSUPPORTED, "erasing is switched off on this unit")

    recs[0].server.firmware._on_erase = refuse
    svc.sweep()
    assert len(svc.store.archive_entries()) == 3 and len(model.recordings) == 3
    refused = entries(svc, "erase_refused")
    assert len(refused) == 3 and "switched off" in refused[0].data["error"]
    assert len(entries(svc, "seal")) == 1
    assert svc.slot_status["1"].state is not SlotState.FAULT
    svc.sweep()
    assert svc.slot_status["1"].state is SlotState.READY, svc.views["1"].failures


def test_verified_footage_left_on_an_erasing_recorder_is_erased_at_the_next_docking(
    make_dock,
) -> None:
    """001 art.19(4): verified footage left on a recorder is erased at the next docking, and only
    that."""
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.1})
    model = recs[0].model
    svc.offloader.erase_after_verify = False  # as if cut off between copy and erase
    svc.sweep()
    assert len(svc.store.archive_entries()) == 2 and len(model.recordings) == 2
    svc.offloader.erase_after_verify = True
    svc.taken("1")  # undocked, docked again: nothing new to copy, two erasures owed
    svc.sweep()
    assert model.recordings == {} and kinds(svc).count("erase") == 2
    assert kinds(svc).count("offload_file") == 2  # not copied again
    svc.sweep()
    assert svc.slot_status["1"].state is SlotState.READY


# --- 2. ASSIGN ------------------------------------------------------------------------


def test_without_assign_checkout_is_granted_and_says_the_officer_is_not_on_it(
    make_dock,
) -> None:
    svc, recs = make_dock({"battery_percent": 95.0, "capabilities": WITHOUT_ASSIGN})
    d = svc.checkout("1001", PIN)
    assert d.granted, d
    assert d.as_dict()["assigned_on_device"] is False
    assert "no ASSIGN capability" in d.as_dict()["not_assigned_why"]
    assert recs[0].model.officer_id() is None
    assert svc.store.open_custody_of_officer("1001").serial == d.device
    (entry,) = entries(svc, "checkout")
    assert entry.data["assigned_on_device"] is False
    assert "no ASSIGN capability" in entry.data["why"]


def test_an_old_recorder_is_checked_out_without_writing_to_it(make_dock) -> None:
    svc, recs = old_dock(make_dock, {"battery_percent": 95.0, "clock_offset_s": 0.2})
    d = svc.checkout("1001", PIN)
    assert d.granted, d
    (entry,) = entries(svc, "checkout")
    assert entry.data["assigned_on_device"] is False
    assert "protocol version 1" in entry.data["why"]
    assert recs[0].model.officer_id() is None
    # 4. its clock was not set (it cannot be): measured within the limit, and audited
    assert "clock_set" not in kinds(svc)
    (unset,) = entries(svc, "clock_not_set")
    assert "protocol version 1" in unset.data["reason"]
    assert abs(unset.data["offset_s"]) <= 1.0 and unset.data["max_s"] == 1.0


def test_an_old_recorder_still_naming_another_officer_is_not_handed_out(make_dock) -> None:
    # Assigned to 1002 before protocol version 2: it would stamp 1002 on 1001's footage.
    """003 art.21(2): a recorder still naming another officer is not handed out."""
    svc, _ = old_dock(make_dock, {"battery_percent": 95.0, "officer_id": "1002"})
    d = svc.checkout("1001", PIN)
    assert not d.granted
    assert {"no_device_ready", "officer_on_device"} <= {r.code for r in d.reasons}
    assert svc.store.open_custody_of_officer("1001") is None
    d = svc.checkout("1002", PIN)  # the officer it names may have it
    assert d.granted and d.assigned_on_device is False


def test_another_officer_gets_the_next_ready_recorder_instead(make_dock) -> None:
    svc, recs = make_dock(
        {"battery_percent": 99.0, "officer_id": "1002", "capabilities": WITHOUT_ASSIGN},
        {"battery_percent": 90.0},
    )
    d = svc.checkout("1001", PIN)
    assert d.granted and d.device == recs[1].model.serial and d.assigned_on_device is True


def test_a_good_device_records_that_the_officer_was_written(make_dock) -> None:
    """003 art.21(2): the audit entry of a check-out says the officer was written on the
    recorder."""
    svc, _ = make_dock({"battery_percent": 95.0})
    assert svc.checkout("1001", PIN).as_dict()["assigned_on_device"] is True
    assert entries(svc, "checkout")[0].data["assigned_on_device"] is True


# --- 3. BATTERY_HEALTH ----------------------------------------------------------------


def test_without_battery_health_a_full_battery_passes_and_a_marginal_one_fails(
    make_dock,
) -> None:
    svc, _ = make_dock(
        {"battery_percent": 100.0, "capabilities": WITHOUT_HEALTH},
        {"battery_percent": 86.0, "capabilities": WITHOUT_HEALTH},
    )
    svc.sweep()
    full = {r.code: r for r in svc.views["1"].results}["battery_runtime"]
    assert full.passed and full.detail["health_assumed"] is True
    assert full.detail["health_percent"] == svc.policy.assumed_battery_health_percent == 80
    marginal = {r.code: r for r in svc.views["2"].results}["battery_runtime"]
    assert not marginal.passed and marginal.detail["health_assumed"] is True
    assert svc.views["1"].ready and not svc.views["2"].ready


# --- 4. clock -------------------------------------------------------------------------


def test_an_old_recorder_whose_clock_is_off_fails_the_check_without_a_fault(make_dock) -> None:
    """004 att.3 art.9; 004 att.3 art.10: a recorder whose clock the dock cannot set fails the
    clock check when it is off."""
    svc, recs = old_dock(make_dock, {"battery_percent": 95.0, "clock_offset_s": 5.0})
    svc.sweep()
    view = svc.views["1"]
    assert view.error is None and svc.slot_status["1"].state is SlotState.FAILED_CHECK
    drift = {r.code: r for r in view.results}["clock_drift"]
    assert not drift.passed and drift.detail["offset_s"] > 4
    assert "protocol version 1" in drift.detail["not_set"]
    assert drift.message_in("en").startswith("Unset clock +")
    assert abs(recs[0].model.device_time() - __import__("time").time()) > 4  # untouched
    assert not svc.checkout("1001", PIN).granted


def test_a_recorder_that_refuses_set_time_is_checked_by_its_measured_offset(make_dock) -> None:
    """004 att.3 art.9: a recorder that refuses SET_TIME is judged by its measured clock offset."""
    svc, recs = make_dock({"battery_percent": 95.0, "clock_offset_s": 0.3})

    def refuse(**_fields):
        raise RecorderError(ErrorCode.UNSUPPORTED, "clock is set by GNSS only")

    recs[0].server.firmware._on_set_time = refuse
    svc.sweep()
    assert svc.slot_status["1"].state is SlotState.READY, svc.views["1"].failures
    (unset,) = entries(svc, "clock_not_set")
    assert "GNSS" in unset.data["reason"]
    svc.inspection.full_at.clear()
    svc.sweep()  # looked at in full again: the same reason is not audited twice
    assert len(entries(svc, "clock_not_set")) == 1


def test_assign_answered_unsupported_grants_and_any_other_refusal_refuses(make_dock) -> None:
    """003 art.21(2): a recorder that cannot take the officer's name (it answers ASSIGN
    with UNSUPPORTED) is still handed out, the custody ledger naming the officer and the
    check-out entry saying why; one that refuses ASSIGN for any other reason is not
    handed out (its footage would not be stamped with the officer who carries it)."""
    svc, recs = make_dock({"battery_percent": 95.0}, {"battery_percent": 90.0})

    def unsupported(**_fields):
        raise RecorderError(ErrorCode.UNSUPPORTED, "the officer is set by the vendor's app")

    def broken(**_fields):
        raise RecorderError(ErrorCode.STORAGE, "cannot write the officer")

    for rec in recs:
        rec.server.firmware._on_assign = broken
    d = svc.checkout("1001", PIN)
    assert not d.granted and "device_unreachable" in {r.code for r in d.reasons}
    assert svc.store.open_custody_of_officer("1001") is None
    for rec in recs:
        rec.server.firmware._on_assign = unsupported
    d = svc.checkout("1001", PIN)
    assert d.granted and d.assigned_on_device is False
    (entry,) = entries(svc, "checkout")
    assert entry.data["assigned_on_device"] is False
    assert "refused ASSIGN" in entry.data["why"] and "vendor" in entry.data["why"]


# --- the commands, as an operator runs them -------------------------------------------


def emulator_proc(tmp_path, *args: str) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen(
        [*EMULATOR, "--data-dir", str(tmp_path / "rec"), "--listen", "tcp://127.0.0.1:0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    url = p.stdout.readline().strip()
    assert url, p.stderr.read() if p.stderr else ""
    return p, url


def dock(cfg: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DOCK, "--config", cfg, *args], capture_output=True, text=True, timeout=90, input=stdin
    )


def stop(p: subprocess.Popen) -> None:
    p.terminate()
    try:
        p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()


def test_dock_offload_without_erase_says_kept_on_the_device(tmp_path) -> None:
    p, url = emulator_proc(tmp_path, "--recordings", "3", "--recording-mb", "0.1",
                           "--without", "erase")  # fmt: skip
    try:
        cfg, _state, _evidence = write_dock_config(tmp_path, url)
        assert dock(cfg, "device", "enrol", "--slot", "1").returncode == 0
        out = dock(cfg, "offload", "--slot", "1", "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads(out.stdout)
        assert len(report["archived"]) == 3 and report["erased"] == [] and not report["failed"]
        assert sorted(report["kept_on_device"]) == sorted(report["archived"])
        assert "recorder cannot erase" in report["kept_reason"]
        text = dock(cfg, "offload", "--slot", "1")  # a rerun: nothing copied again
        assert text.returncode == 0, text.stdout + text.stderr
        assert "0 archived" in text.stdout and "FAILED" not in text.stdout
        assert "3 kept on the device: recorder cannot erase" in text.stdout
    finally:
        stop(p)


def test_dock_checkout_of_an_old_recorder_is_granted_and_says_so(tmp_path) -> None:
    p, url = emulator_proc(tmp_path, "--recordings", "0", "--battery", "95",
                           "--protocol-version", "1", "--secret", SECRET.hex())  # fmt: skip
    try:
        cfg, state, _evidence = write_dock_config(tmp_path, url)
        store = Store(str(state / "dock.db"))
        store.enrol_device("EMU0001", "BWC-EMU-1", "1.4.2", SECRET)  # enrolled long ago
        add = dock(cfg, "officer", "add", "1001", "--name", "Wang Wei", "--unit", "T3",
                   "--pin", PIN)  # fmt: skip
        assert add.returncode == 0, add.stderr
        out = dock(cfg, "checkout", "--officer", "1001", "--pin", PIN)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "granted" in out.stdout
        assert "officer not written to the recorder" in out.stdout
        assert "protocol version 1" in out.stdout
    finally:
        stop(p)


def test_dock_checkout_without_assign_json(tmp_path) -> None:
    p, url = emulator_proc(tmp_path, "--recordings", "0", "--battery", "95",
                           "--without", "assign")  # fmt: skip
    try:
        cfg, _state, _evidence = write_dock_config(tmp_path, url)
        assert dock(cfg, "device", "enrol", "--slot", "1").returncode == 0
        add = dock(cfg, "officer", "add", "1001", "--name", "Wang Wei", "--unit", "T3",
                   "--pin", PIN)  # fmt: skip
        assert add.returncode == 0, add.stderr
        out = dock(cfg, "checkout", "--officer", "1001", "--pin", PIN, "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        decision = json.loads(out.stdout)
        assert decision["granted"] and decision["assigned_on_device"] is False
        assert "no ASSIGN capability" in decision["not_assigned_why"]
    finally:
        stop(p)


def test_enrolling_an_old_recorder_is_refused_with_one_clear_line(tmp_path) -> None:
    p, url = emulator_proc(tmp_path, "--protocol-version", "1")
    try:
        cfg, _state, _evidence = write_dock_config(tmp_path, url)
        out = dock(cfg, "device", "enrol", "--slot", "1")
        assert out.returncode == 1, out.stdout + out.stderr
        # Log lines in a pipe start with their UTC time; the refusal is the one other line.
        lines = [ln for ln in out.stderr.splitlines() if ln and not LOG_LINE.match(ln)]
        assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
        assert lines[0].startswith("dock device: enrol refused: ")
        assert "protocol version 1" in lines[0] and "in clear" in lines[0]
        assert json.loads(dock(cfg, "device", "list", "--json").stdout) == []
    finally:
        stop(p)
    with open(tmp_path / "rec" / "state.json", encoding="utf-8") as f:
        state = json.load(f)["state"]
    assert not state.get("secret") and not state.get("pending_secret")  # nothing sent
