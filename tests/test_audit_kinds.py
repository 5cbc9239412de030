"""Audit kinds (dock/domain/audit_kinds.py): one list, used everywhere, each decided.

Headquarters hears of audit entries by their kind (dock/reporting/events.py), so a kind
renamed or added in one place only would silently drop an event. These tests hold the
code to the list: every kind is either mapped to an event or listed in NOT_REPORTED with
its reason; no module in dock/ names a kind by a string literal; every member is written
somewhere; the log writes members only, stored as the same plain strings as before.
"""

from __future__ import annotations

import ast
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dock.domain.audit_kinds import AuditKind
from dock.reporting.events import (
    CHECKPOINT,
    NOT_REPORTED,
    AuditView,
    checkpoint_event,
    event_for,
)
from dock.storage.audit import AuditLog
from mqtt_contract.contract import EventType

DOCK_DIR = Path(__file__).resolve().parent.parent / "dock"
DRIFT_BOUND_S = 1.0

#: Data that makes an event of a kind reported only when it matters (the rest: {}).
SAMPLES: dict[AuditKind, dict[str, Any]] = {
    AuditKind.CHECKS: {"slot": "1", "passed": False, "failed": ["clock_drift"]},
    AuditKind.CLOCK_SET: {"slot": "1", "drift_before_s": 47.0, "after_s": 0.01},
}

#: String literals compared with some ``.kind`` in dock/ that is not an audit kind:
#: (module, literal) -> what that kind is.
NOT_AUDIT_KINDS = {
    ("daemon/service.py", "ack"): "sm.Buzz.kind (dock/domain/slot_state.py): a buzzer pattern",
}


def _view(kind: str, data: dict[str, Any]) -> AuditView:
    return AuditView(7, "2026-11-22T09:00:00.000Z", kind, "1001", "BWC-1", data)


def _event(kind: AuditKind, data: dict[str, Any] | None = None) -> EventType | None:
    found = event_for(_view(kind, SAMPLES.get(kind, {}) if data is None else data), DRIFT_BOUND_S)
    return None if found is None else found[0]


# --- every kind decided ------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(AuditKind), ids=str)
def test_every_kind_is_either_reported_or_listed_as_not_reported(kind: AuditKind) -> None:
    reported = _event(kind) is not None
    listed = kind in NOT_REPORTED
    assert reported != listed, (
        f"{kind.value}: " + ("both mapped by event_for and in NOT_REPORTED" if reported
                             else "neither mapped by event_for nor in NOT_REPORTED")
    )  # fmt: skip
    if listed:
        assert NOT_REPORTED[kind].strip(), f"{kind.value}: NOT_REPORTED gives no reason"
        for data in ({}, *SAMPLES.values(), {"passed": False, "drift_before_s": 1e9}):
            assert event_for(_view(kind, data), DRIFT_BOUND_S) is None


def test_not_reported_lists_audit_kinds_only() -> None:
    assert all(isinstance(k, AuditKind) for k in NOT_REPORTED)


def test_every_event_the_dock_sends_comes_from_a_kind_or_a_checkpoint() -> None:
    from_kinds = {_event(k) for k in AuditKind if k not in NOT_REPORTED}
    from_kinds |= {_event(AuditKind.DEADLINE_OVERDUE), _event(AuditKind.DEADLINE_AT_RISK)}
    checkpoint = checkpoint_event(_view(CHECKPOINT, {"head": "ab" * 32}))[0]
    assert checkpoint is EventType.AUDIT_CHECKPOINT
    assert EventType.AUDIT_CHECKPOINT not in from_kinds  # no entry can pose as a checkpoint
    assert from_kinds | {checkpoint} == set(EventType)


def test_the_conditional_kinds_are_reported_only_when_they_matter() -> None:
    assert _event(AuditKind.CHECKS, {"slot": "1", "passed": True, "failed": []}) is None
    assert _event(AuditKind.CLOCK_SET, {"drift_before_s": 0.4, "after_s": 0.0}) is None
    assert _event(AuditKind.DEADLINE_OVERDUE) is EventType.DEADLINE_OVERDUE
    assert _event(AuditKind.DEADLINE_AT_RISK) is EventType.DEADLINE_AT_RISK


def test_a_checkpoint_is_no_audit_kind_and_an_entry_named_so_is_not_reported() -> None:
    assert CHECKPOINT not in {k.value for k in AuditKind}
    assert event_for(_view(CHECKPOINT, {"head": "ab" * 32}), DRIFT_BOUND_S) is None


# --- the values themselves ---------------------------------------------------------------


def test_kind_values_are_unique_and_in_the_stored_format() -> None:
    values = [k.value for k in AuditKind]
    assert len(values) == len(set(values))
    for value in values:
        assert re.fullmatch(r"[a-z][a-z0-9_.]{0,63}", value), value
    for kind in AuditKind:
        assert kind.name == kind.value.upper().replace(".", "_")


# --- the code uses the list --------------------------------------------------------------


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(DOCK_DIR.rglob("*.py")):
        yield path.relative_to(DOCK_DIR).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _is_log_call(node: ast.Call) -> bool:
    """A call of AuditLog.append or .find: on something named audit, or shaped like one
    (append takes four arguments where list.append takes one; find takes data as
    keywords where str.find takes none)."""
    assert isinstance(node.func, ast.Attribute)
    method, receiver = node.func.attr, ast.unparse(node.func.value)
    if method not in ("append", "find") or not node.args:
        return False
    if "audit" in receiver.lower():
        return True
    if method == "append":
        return len(node.args) + len(node.keywords) >= 2
    return bool(node.keywords)


def _compared_texts(node: ast.Compare) -> Iterator[ast.expr]:
    """String literals compared with some ``.kind`` (alone or in a tuple, list or set)."""
    sides = [node.left, *node.comparators]
    if not any(isinstance(s, ast.Attribute) and s.attr == "kind" for s in sides):
        return
    for side in sides:
        items = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
        yield from (item for item in items if _is_text(item))


def _literal_kinds(name: str, tree: ast.Module) -> Iterator[tuple[int, str | None, str]]:
    """Where a module names an audit kind by a string literal: (line, the literal, None
    for an f-string; the code)."""
    for node in ast.walk(tree):
        found: list[tuple[ast.expr, ast.AST]] = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if _is_log_call(node) and _is_text(node.args[0]):
                found.append((node.args[0], node))
        elif isinstance(node, ast.Compare):
            found += [(text, node) for text in _compared_texts(node)]
        elif (
            isinstance(node, ast.Match)
            and isinstance(node.subject, ast.Attribute)
            and node.subject.attr == "kind"
        ):
            for case in node.cases:
                for sub in ast.walk(case.pattern):
                    if isinstance(sub, ast.MatchValue) and _is_text(sub.value):
                        found.append((sub.value, sub))
        for text, code in found:
            value = text.value if isinstance(text, ast.Constant) else None
            if (name, value) not in NOT_AUDIT_KINDS:
                yield text.lineno, value, ast.unparse(code)[:80]


def test_no_module_in_dock_names_a_kind_by_a_string_literal() -> None:
    found = [
        f"dock/{name}:{line}: {code}"
        for name, tree in _modules()
        for line, _, code in _literal_kinds(name, tree)
    ]
    assert found == [], "use AuditKind members:\n" + "\n".join(found)


def test_the_literal_check_catches_what_it_should() -> None:
    code = """
audit.append("checkout", "1001", "S", {})
self.parts.audit.append(f"deadline_{state}", "dock", "S", {})
log.append("seal", "dock", "S", data={})
self.audit.find("erase", serial, recording=rid)
if e.kind == "seal" or entry.kind != "purge" or e.kind in ("a", "b"):
    pass
match entry.kind:
    case "checkout":
        pass
"""
    found = sorted(
        (line, value or "") for line, value, _ in _literal_kinds("x.py", ast.parse(code))
    )
    assert found == [
        (2, "checkout"), (3, ""), (4, "seal"), (5, "erase"),
        (6, "a"), (6, "b"), (6, "purge"), (6, "seal"), (9, "checkout"),
    ]  # fmt: skip
    fine = 'lines.append("x")\nline.find("x")\nif a.kind is Kind.CMD or b.kind == Kind.X:\n    pass'
    assert list(_literal_kinds("x.py", ast.parse(fine))) == []
    assert list(_literal_kinds("daemon/service.py", ast.parse('a.kind == "ack"'))) == []


def test_tests_name_only_real_kinds() -> None:
    """Tests may name kinds by their values; a renamed kind must not leave a test
    matching (or writing) one that no longer exists."""
    values = {k.value for k in AuditKind}
    deliberate = {("test_audit.py", "Custody Change")}  # append refuses it
    found = [
        f"tests/{path.name}:{line}: {code}"
        for path in sorted(Path(__file__).resolve().parent.glob("test_*.py"))
        for line, value, code in _literal_kinds(path.name, ast.parse(path.read_text("utf-8")))
        if value not in values and (path.name, value) not in deliberate
    ]
    assert found == [], "not an audit kind:\n" + "\n".join(found)


def test_every_kind_is_written_somewhere_in_dock() -> None:
    decided_in = {"domain/audit_kinds.py", "reporting/events.py"}  # naming is not writing
    used: set[str] = set()
    for name, tree in _modules():
        if name in decided_in:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "AuditKind"
            ):
                used.add(node.attr)
    unused = sorted(k.name for k in AuditKind if k.name not in used)
    assert unused == [], f"members nothing in dock/ writes: {unused}"


# --- the log writes members only ---------------------------------------------------------


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(str(tmp_path / "audit.db"), Ed25519PrivateKey.generate(), "DOCK-1") as a:
        yield a


@pytest.mark.parametrize(
    "kind", ["custody", "Checkout", "checkout ", "checkpoint", "", None, 3, b"checkout"]
)
def test_append_refuses_anything_but_an_audit_kind(log: AuditLog, kind: Any) -> None:
    with pytest.raises(TypeError, match="not an audit kind") as err:
        log.append(kind, "dock", "S", {})
    assert "\n" not in str(err.value)
    with pytest.raises(TypeError, match="not an audit kind"):
        log.find(kind, "S")
    assert log.head()[0] == 0


def test_a_member_and_its_value_are_stored_as_the_same_plain_string(log: AuditLog) -> None:
    first = log.append(AuditKind.CHECKOUT, "1001", "S", {"slot": "1"})
    second = log.append("checkout", "1001", "S", {"slot": "1"})  # type: ignore[arg-type]
    assert log.find(AuditKind.CHECKOUT, "S", slot="1") == second
    conn = sqlite3.connect(log.db_path)
    try:
        rows = conn.execute("SELECT kind, typeof(kind) FROM entries ORDER BY seq").fetchall()
    finally:
        conn.close()
    assert rows == [("checkout", "text"), ("checkout", "text")]
    entries = list(log.entries())
    assert [e.seq for e in entries] == [first, second]
    assert all(type(e.kind) is str and e.kind == AuditKind.CHECKOUT for e in entries)
    assert log.verify().ok
