"""Replication in the MQTT contract (issue 16): health's optional ``replication`` object
and the ``replication.failed`` event are bounded and checked on both sides; a health
message from an older dock (without the object) stays valid."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mqtt_contract.contract import (
    REPLICATION_ERROR_MAX,
    REPLICATION_MAX_TARGETS,
    ContractError,
    Kind,
    decode,
    encode,
    one_line,
)

T = "2026-11-30T08:00:00.000Z"


def health(**extra: Any) -> dict[str, Any]:
    return {"boot": "b", "seq": 1, "time": T, "dock": {}, "slots": [], **extra}


def target(**change: Any) -> dict[str, Any]:
    return {
        "name": "nas",
        "pending": 3,
        "sending": 1,
        "failed": 1,
        "replicated_24h": 7,
        "oldest_pending_at": T,
        "last_success_at": None,
        "last_error": "connection refused",
        **change,
    }


def test_an_older_docks_health_without_replication_is_valid() -> None:
    assert "replication" not in decode(Kind.HEALTH, encode(Kind.HEALTH, health()))


def test_replication_round_trips() -> None:
    rep = {"deadline_hours": 24, "targets": [target(), target(name="s3", oldest_pending_at=None)]}
    assert decode(Kind.HEALTH, encode(Kind.HEALTH, health(replication=rep)))["replication"] == rep


@pytest.mark.parametrize(
    ("rep", "why"),
    [
        ([], "must be an object"),
        ({"targets": []}, "deadline_hours"),
        ({"deadline_hours": 0, "targets": []}, "deadline_hours"),
        ({"deadline_hours": True, "targets": []}, "deadline_hours"),
        ({"deadline_hours": 24, "targets": [target()] * (REPLICATION_MAX_TARGETS + 1)}, "most 16"),
        ({"deadline_hours": 24, "targets": [target(pending=-1)]}, "pending"),
        ({"deadline_hours": 24, "targets": [target(failed=True)]}, "failed"),
        ({"deadline_hours": 24, "targets": [target(sending="1")]}, "sending"),
        ({"deadline_hours": 24, "targets": [target(oldest_pending_at="yesterday")]}, "ISO"),
        ({"deadline_hours": 24, "targets": [target(last_error="x" * 201)]}, "last_error"),
        ({"deadline_hours": 24, "targets": [target(last_error="a\nb")]}, "last_error"),
        ({"deadline_hours": 24, "targets": [target(name="n" * 65)]}, "name"),
        ({"deadline_hours": 24, "targets": ["nas"]}, "object"),
    ],
)
def test_replication_out_of_bounds_is_refused_on_both_sides(rep: Any, why: str) -> None:
    with pytest.raises(ContractError, match=why):
        encode(Kind.HEALTH, health(replication=rep))
    with pytest.raises(ContractError, match=why):
        decode(Kind.HEALTH, json.dumps({"schema": 1, **health(replication=rep)}))


def event(**data: Any) -> dict[str, Any]:
    return {"type": "replication.failed", "boot": "b", "seq": 5, "time": T, "data": data}


def test_replication_failed_round_trips() -> None:
    body = event(package="BAG-1", target="nas", reason="wrong credentials", attempts=3)
    assert decode(Kind.EVENT, encode(Kind.EVENT, body))["data"]["attempts"] == 3


@pytest.mark.parametrize(
    "data",
    [{"reason": "x" * 201}, {"reason": "two\nlines"}, {"attempts": -1}, {"package": 7}],
)
def test_replication_failed_out_of_bounds_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ContractError, match=r"replication\.failed"):
        decode(Kind.EVENT, json.dumps({"schema": 1, **event(**data)}))


def test_one_line_makes_any_server_error_fit() -> None:
    text = one_line("disk\r\nfull\x00" + "é" * 500)
    assert "\n" not in text and len(text) == REPLICATION_ERROR_MAX and text.endswith("…")
    assert one_line("  a \t b  ") == "a b"


def test_the_docks_failure_entry_becomes_an_event_in_bounds() -> None:
    from dock.reporting.events import AuditView, event_for

    entry = AuditView(
        seq=9,
        time=T,
        kind="replication_failed",
        actor="dock",
        subject="BAG-20261130-1",
        data={"target": "nas", "error": "Traceback?\n" + "no space " * 80, "attempts": 5},
    )
    found = event_for(entry, 1.0)
    assert found is not None
    etype, data = found
    body = {"type": etype.value, "boot": "b", "seq": 1, "time": T, "data": data}
    sent = decode(Kind.EVENT, encode(Kind.EVENT, body))["data"]
    assert sent["package"] == "BAG-20261130-1" and sent["target"] == "nas"
    assert sent["attempts"] == 5 and sent["reason"].startswith("Traceback? no space")
    assert len(sent["reason"]) == REPLICATION_ERROR_MAX
