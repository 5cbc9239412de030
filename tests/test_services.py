"""The application layer: each service writes its audit entry with its change, in one
transaction (an audit append that fails leaves no change), and says no in one line."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

import pytest

from dock.config import emulated_config
from dock.daemon.composition import build_service
from dock.services import archive, audit, cases, devices, officers
from dock.services.errors import Refused, RequestError
from dock.services.requests import call
from hardware.screens import ConsoleScreen

PIN, SUP_PIN = "246810", "999000"


@pytest.fixture
def dock(tmp_path) -> Any:
    """A dock with one enrolled recorder, two officers, a supervisor, one archived file."""
    cfg = emulated_config(1, str(tmp_path / "state"))
    svc = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
    svc.store.enrol_device("EMU0001", "BWC-1", "1.0", b"\0" * 32)
    svc.store.add_officer("1001", "Wang Wei", "Traffic 3", PIN)
    svc.store.add_officer("1002", "Li Na", "Traffic 3", PIN)
    svc.store.add_officer("9001", "Zhao Min", "Traffic 3", SUP_PIN, role="supervisor")
    svc.store.add_archived("EMU0001", "REC000001", b"\1" * 32, 10, "/a/REC000001.mp4", "1001",
                           1_000, 2_000)  # fmt: skip
    return svc


def kinds(svc: Any, kind: str) -> list[Any]:
    return [e for e in svc.audit.entries() if e.kind == kind]


def failing(svc: Any, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """Make appending an entry of ``kind`` fail, as a full disk would."""
    real = svc.audit.append

    def append(k: str, *args: Any, **kw: Any) -> int:
        if k == kind:
            raise OSError(28, "No space left on device")
        return real(k, *args, **kw)

    monkeypatch.setattr(svc.audit, "append", append)


# (request, arguments, audit kind, whether the change is there)
CHANGES: list[tuple[str, dict[str, Any], str, Callable[[Any], bool]]] = [
    ("officer.add", {"officer_id": "5005", "name": "Sun Li", "unit": "T3", "pin": "258147"},
     "officer_add", lambda d: d.store.officer("5005") is not None),
    ("officer.disable", {"officer_id": "1002"}, "officer_disable",
     lambda d: d.store.officer("1002").disabled),
    ("device.flag", {"serial": "EMU0001", "lost": True, "note": "left in a car"},
     "device_flag", lambda d: d.store.device("EMU0001").lost),
    ("device.flag", {"serial": "EMU0001", "maintenance": True}, "device_flag",
     lambda d: d.store.device("EMU0001").maintenance),
    ("case.attach", {"case": "C-1", "recordings": ["EMU0001:REC000001"], "officer": "1001",
                     "pin": PIN},
     "case_attach", lambda d: len(d.store.case_recordings("C-1")) == 1),
    ("archive.confirm_copy", {"serial": "EMU0001", "recording": "REC000001", "where": "NAS"},
     "second_copy",
     lambda d: d.store.archived("EMU0001", "REC000001")["second_copy_at"] is not None),
]  # fmt: skip


@pytest.mark.parametrize(("name", "given", "kind", "changed"), CHANGES)
def test_each_change_comes_with_its_audit_entry(dock, name, given, kind, changed) -> None:
    """000 §10: every change the dock makes comes with its audit entry, naming who made it."""
    assert not changed(dock)
    call(dock, name, given, actor="clerk")
    assert changed(dock)
    (entry,) = kinds(dock, kind)
    assert entry.actor in ("clerk", given.get("officer"))


@pytest.mark.parametrize(("name", "given", "kind", "changed"), CHANGES)
def test_a_failed_audit_append_leaves_no_change(
    dock, monkeypatch, name, given, kind, changed
) -> None:
    """000 §10: a change whose audit entry cannot be written is not made."""
    failing(dock, monkeypatch, kind)
    with pytest.raises(OSError):
        call(dock, name, given, actor="clerk")
    assert not changed(dock)
    assert kinds(dock, kind) == []


def test_enable_and_unlock_are_audited_with_the_change(dock, monkeypatch) -> None:
    """000 §10: enabling an officer and unlocking a PIN are audited with the change, or not made."""
    dock.store.set_officer_disabled("1002", True)
    failing(dock, monkeypatch, "officer_enable")
    with pytest.raises(OSError):
        officers.enable(dock, "clerk", "1002")
    assert dock.store.officer("1002").disabled
    monkeypatch.undo()
    officers.enable(dock, "clerk", "1002")
    assert not dock.store.officer("1002").disabled and kinds(dock, "officer_enable")

    for _ in range(5):
        dock.store.verify_pin("1001", "000000")
    assert dock.store.pin_locked("1001")
    failing(dock, monkeypatch, "pin_unlocked")
    with pytest.raises(OSError):
        officers.unlock(dock, "clerk", "1001", "9001", SUP_PIN)
    assert dock.store.pin_locked("1001")
    monkeypatch.undo()
    done = officers.unlock(dock, "clerk", "1001", "9001", SUP_PIN)
    assert done.was_locked and not dock.store.pin_locked("1001")
    (entry,) = kinds(dock, "pin_unlocked")
    assert entry.data == {"officer": "1001", "supervisor": "9001", "by": "clerk",
                          "was_locked": True}  # fmt: skip


def test_refusals_are_audited_and_change_nothing(dock) -> None:
    """000 §10; 002 art.26: refused requests are audited and change nothing."""
    with pytest.raises(Refused):
        officers.unlock(dock, "clerk", "1001", "1002", PIN)  # not a supervisor
    assert kinds(dock, "pin_unlock_refused")[0].data["by"] == "clerk"
    with pytest.raises(Refused):
        cases.attach(dock, "clerk", "C-1", ["EMU0001:REC000001"], "1001", "000000")
    assert dock.store.case_recordings("C-1") == []
    assert kinds(dock, "case_attach_refused")[0].data["case"] == "C-1"


def test_bad_requests_say_why_and_change_nothing(dock) -> None:
    with pytest.raises(RequestError, match="no officer"):
        officers.disable(dock, "clerk", "7777")
    with pytest.raises(RequestError, match="not enrolled"):
        devices.flag(dock, "clerk", "NOPE", lost=True)
    with pytest.raises(RequestError, match="lost"):
        devices.flag(dock, "clerk", "EMU0001")
    with pytest.raises(RequestError, match="not in the archive"):
        archive.confirm_copy(dock, "clerk", "EMU0001", "REC999", "NAS")
    with pytest.raises(RequestError):
        officers.add(dock, "clerk", "1001", "Again", "T3", "258147")  # already registered
    assert [e.kind for e in dock.audit.entries() if e.actor == "clerk"] == []


def test_the_audit_export_is_audited_or_not_left_behind(dock, tmp_path, monkeypatch) -> None:
    """000 §10: an export of the audit log is itself audited, or not left behind."""
    path = str(tmp_path / "audit.jsonl")
    failing(dock, monkeypatch, "audit_export")
    with pytest.raises(OSError):
        audit.export(dock, "clerk", path)
    assert not os.path.exists(path)
    monkeypatch.undo()
    done = audit.export(dock, "clerk", path)
    assert os.path.exists(path) and done.path == path and done.entries >= 1
    (entry,) = kinds(dock, "audit_export")
    assert (entry.actor, entry.subject) == ("clerk", path)
