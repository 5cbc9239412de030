"""Retention and holds (REQUIREMENTS.md §6) as a table, one row per branch, plus the
properties that make a wrong purge impossible to reach by adding data or waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dock.evidence.retention import (
    STANDARD,
    Decision,
    Hold,
    HoldKind,
    RetentionClass,
    decide,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)  # recording start
DAYS = 365
END = T0 + timedelta(days=DAYS)  # 2024-12-31: policy retention ends
LATER = END + timedelta(days=30)  # retention over
DAY = timedelta(days=1)
LONG = RetentionClass("accident", 2 * DAYS)  # a class longer than the policy
END2 = T0 + 2 * DAYS * DAY  # its retention ends


def hold(kind: Any = HoldKind.COMPLAINT, placed: Any = T0 + DAY, **kw: Any) -> Hold:
    kw.setdefault("reference", "C-17")
    kw.setdefault("placed_by", "sup-7")
    return Hold(kind, placed_at=placed, **kw)


def released(at: Any = END - DAY, reason: str | None = "complaint withdrawn", **kw: Any) -> Hold:
    return hold(released_at=at, release_reason=reason, **kw)


def case(closed_at: Any, days: int) -> dict[str, Any]:
    return {"case_closed_at": closed_at, "case_retention_days": days}


def row(name: str, now: Any, code: str, purge_after: datetime | None, **kw: Any) -> Any:
    """One case: ``decide`` at ``now`` with ``kw`` over the base call (a recording started
    at T0 with DAYS of retention and no holds) gives ``code`` and ``purge_after``; keep
    follows from the code (only ``purge:`` purges)."""
    return pytest.param(now, kw, code, purge_after, id=name)


ROWS = [
    # --- the policy minimum
    row("retention-running", END - DAY, "retention:", END),
    row("retention-ends-exactly", END, "purge:", END),
    row("retention-over", LATER, "purge:", END),
    row("zero-days", T0, "purge:", T0, retention_days=0),
    row("epoch-seconds", END.timestamp() - 1, "retention:", END, recording_start=T0.timestamp()),
    row("epoch-seconds-over", END.timestamp(), "purge:", END, recording_start=T0.timestamp()),
    row("beyond-calendar", LATER, "retention:", None, retention_days=999_999_999),
    # --- retention classes
    row("class-longer", LATER, "retention:", END2, retention_class=LONG),
    row(
        "class-shorter-floor-is-policy",
        END - DAY,
        "retention:",
        END,
        retention_class=RetentionClass("minor", 30),
    ),
    row("class-longer-over", END2, "purge:", END2, retention_class=LONG),
    # --- evidence follows its case file
    row("case-open", LATER, "case_open:", None, case_retention_days=30),
    row("case-file-running", LATER, "case_retention:", END + 59 * DAY, **case(END - DAY, 60)),
    row("case-file-over", END + 59 * DAY, "purge:", END + 59 * DAY, **case(END - DAY, 60)),
    row("case-file-shorter-than-policy", END - DAY, "retention:", END, **case(T0 + DAY, 10)),
    row("case-closed-retention-unknown", LATER, "invalid:", None, case_closed_at=END),
    row("case-closed-in-future", LATER, "invalid:", None, **case(LATER + DAY, 1)),
    row("case-closed-before-recording", LATER, "invalid:", None, **case(T0 - DAY, 1)),
    row("case-closed-naive", LATER, "invalid:", None, **case(datetime(2024, 6, 1), 1)),
    row("case-days-negative", LATER, "invalid:", None, case_retention_days=-1),
    # --- holds
    row("hold-permanent", LATER, "hold:", None, holds=[hold()]),
    row("hold-each-kind", LATER, "hold:", None, holds=[hold(k) for k in HoldKind]),
    row("hold-kind-as-text", LATER, "hold:", None, holds=[hold("litigation")]),
    row("hold-until-running", LATER, "hold:", LATER + DAY, holds=[hold(until=LATER + DAY)]),
    row("hold-until-over", LATER, "purge:", LATER, holds=[hold(until=LATER)]),
    row(
        "hold-until-within-retention",
        END - DAY,
        "retention:",
        END,
        holds=[hold(until=END - 2 * DAY)],
    ),
    row("hold-outlasts-retention", END - DAY, "hold:", LATER, holds=[hold(until=LATER)]),
    row("hold-released", LATER, "purge:", END + DAY, holds=[released(at=END + DAY)]),
    row(
        "hold-released-one-left",
        LATER,
        "hold:",
        LATER + DAY,
        holds=[released(), hold(HoldKind.PETITION, until=LATER + DAY)],
    ),
    row(
        "hold-and-open-case",
        LATER,
        "case_open:",
        None,
        holds=[hold(until=LATER + DAY)],
        case_retention_days=30,
    ),
    # --- missing or contradictory data: keep
    row("now-before-recording", T0 - DAY, "invalid:", None),
    row("now-naive", datetime(2026, 1, 1), "invalid:", None),
    row("start-missing", LATER, "invalid:", None, recording_start=None),
    row("start-nan", LATER, "invalid:", None, recording_start=float("nan")),
    row("retention-negative", LATER, "invalid:", None, retention_days=-1),
    row("retention-not-whole", LATER, "invalid:", None, retention_days=365.5),
    row("class-minimum-negative", LATER, "invalid:", None, retention_class=RetentionClass("x", -5)),
    row("hold-no-placed-at", LATER, "invalid:", None, holds=[released(placed=None)]),
    row("hold-placed-in-future", LATER, "invalid:", None, holds=[hold(placed=LATER + DAY)]),
    row(
        "hold-placed-naive", LATER, "invalid:", None, holds=[released(placed=datetime(2024, 2, 1))]
    ),
    row("hold-no-placed-by", LATER, "invalid:", None, holds=[released(placed_by="")]),
    row("hold-no-reference", LATER, "invalid:", None, holds=[released(reference="")]),
    row("hold-unknown-kind", LATER, "invalid:", None, holds=[released(kind="whim")]),
    row("hold-released-without-reason", LATER, "invalid:", None, holds=[released(reason="")]),
    row("hold-released-before-placed", LATER, "invalid:", None, holds=[released(at=T0)]),
    row("hold-released-in-future", LATER, "invalid:", None, holds=[released(at=LATER + DAY)]),
    row(
        "hold-reason-without-release", LATER, "invalid:", None, holds=[hold(release_reason="done")]
    ),
    row("hold-until-before-placed", LATER, "invalid:", None, holds=[hold(until=T0)]),
    row("hold-until-naive", LATER, "invalid:", None, holds=[hold(until=datetime(2025, 1, 1))]),
    row("invalid-beats-purge", LATER, "invalid:", None, holds=[released(), released(placed=None)]),
]


@pytest.mark.parametrize(("now", "kwargs", "code", "purge_after"), ROWS)
def test_decide(now: Any, kwargs: dict[str, Any], code: str, purge_after) -> None:
    """000 §14.3; 003 art.15; 001 art.20; 000 §14.4: nothing is purged before its retention ends,
    while a hold is on it, or while its case file runs (one row per branch)."""
    keep = code != "purge:"
    call: dict[str, Any] = {"recording_start": T0, "retention_days": DAYS, "holds": ()}
    call.update(kwargs)
    got = decide(
        call.pop("recording_start"), call.pop("retention_days"), call.pop("holds"), now, **call
    )
    assert (got.keep, got.reason.split(" ")[0], got.purge_after) == (keep, code, purge_after), (
        got.reason
    )
    if got.purge_after is not None:
        assert got.purge_after.tzinfo is UTC


def test_reason_names_the_hold() -> None:
    """000 §14.4; 001 art.20: a keep because of a hold names the hold, its reference and who
    placed it."""
    got = decide(T0, DAYS, [hold(HoldKind.LITIGATION, reference="(2025)民初123号")], LATER)
    assert "litigation" in got.reason and "(2025)民初123号" in got.reason and "sup-7" in got.reason


def test_binding_reason_first() -> None:
    """000 §14.4: the hold that keeps longest is named first, with every other reason to keep."""
    got = decide(T0, DAYS, [hold(until=END + DAY), hold(until=END + 9 * DAY)], END - DAY)
    assert got.reason.startswith("hold:") and got.purge_after == END + 9 * DAY
    assert got.reason.count("; ") == 2  # both holds and the retention are named


# --- properties ------------------------------------------------------------------------

BASE = T0
SPAN = 4 * 365 * 86_400  # seconds: instants fall within four years of the start


def _instant(offset: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    """An offset from BASE as an aware datetime or as epoch seconds."""
    return offset.flatmap(
        lambda s: st.sampled_from([BASE + timedelta(seconds=s), BASE.timestamp() + s])
    )


_maybe = st.one_of(st.none(), _instant(st.integers(-86_400, SPAN)))
#: Anything at all, mostly missing or contradictory.
any_hold = st.builds(
    Hold,
    kind=st.sampled_from([*HoldKind, "bogus"]),
    reference=st.sampled_from(["C-1", ""]),
    placed_at=_maybe,
    placed_by=st.sampled_from(["sup-7", ""]),
    released_at=_maybe,
    release_reason=st.sampled_from([None, "", "withdrawn"]),
    until=_maybe,
)


@st.composite
def valid_hold(draw: st.DrawFn, now: int = SPAN) -> Hold:
    """A well-formed hold placed by ``now`` (an offset): maybe released with a reason by
    then, maybe with an end."""
    placed = draw(st.integers(3_600, now))
    release = draw(st.one_of(st.none(), st.integers(placed, now)))
    until = draw(st.one_of(st.none(), st.integers(placed + 1, SPAN + 1)))
    at = lambda s: draw(_instant(st.just(s)))  # noqa: E731
    return Hold(
        draw(st.sampled_from(HoldKind)),
        "C-1",
        at(placed),
        "sup-7",
        released_at=None if release is None else at(release),
        release_reason=None if release is None else "withdrawn",
        until=None if until is None else at(until),
    )


def holds_st(now: int = SPAN) -> st.SearchStrategy[Hold]:
    """Mostly well-formed holds, one in eight anything."""
    return st.sampled_from(range(8)).flatmap(lambda n: any_hold if n == 7 else valid_hold(now))


@st.composite
def scenario(draw: st.DrawFn) -> dict[str, Any]:
    """One recording at one ``now``; most scenarios are valid, so keep and purge both occur
    and the properties below are tested on real decisions, not only on ``invalid``."""
    now = draw(st.integers(3_600, SPAN))
    case = draw(
        st.one_of(
            st.just({}),
            st.fixed_dictionaries(
                {
                    "case_closed_at": st.sampled_from(range(4)).flatmap(
                        lambda n: (
                            [st.none(), _maybe][n] if n < 2 else _instant(st.integers(3_600, now))
                        )
                    ),
                    "case_retention_days": st.integers(0, 3 * 365),
                }
            ),
        )
    )
    return {
        "recording_start": draw(_instant(st.integers(0, 3_600))),
        "retention_days": draw(st.integers(0, 3 * 365)),
        "holds": draw(st.lists(holds_st(now), max_size=3)),
        "now": draw(
            st.sampled_from(range(8)).flatmap(
                lambda n: _maybe if n == 7 else _instant(st.just(now))
            )
        ),
        "case": case,
        "retention_class": draw(
            st.sampled_from(
                [STANDARD, RetentionClass("short", 10), RetentionClass("long", 5 * 365)]
            )
        ),
    }


def _decide(s: dict[str, Any], **change: Any) -> Decision:
    s = {**s, **change}
    return decide(
        s["recording_start"],
        s["retention_days"],
        s["holds"],
        s["now"],
        retention_class=s["retention_class"],
        **s["case"],
    )


@settings(max_examples=200, deadline=None)
@given(scenario(), holds_st())
def test_adding_a_hold_never_allows_a_purge(s: dict[str, Any], extra: Hold) -> None:
    """000 §14.4; 001 art.20; 004 att.1 art.5: adding a hold never allows a purge."""
    if _decide(s).keep:
        assert _decide(s, holds=[*s["holds"], extra]).keep


@settings(max_examples=200, deadline=None)
@given(scenario(), st.integers(1, 5 * 365), st.integers(0, 5 * 365))
def test_longer_retention_never_allows_a_purge(s: dict[str, Any], more: int, more_case: int):
    """000 §14.3; 003 art.15; 001 art.20: a longer retention, or a longer case file, never allows
    a purge."""
    if not _decide(s).keep:
        return
    assert _decide(s, retention_days=s["retention_days"] + more).keep
    case = s["case"]
    if case:
        longer = {**case, "case_retention_days": case["case_retention_days"] + more_case}
        assert _decide(s, case=longer).keep


@settings(max_examples=200, deadline=None)
@given(scenario(), st.integers(0, SPAN))
def test_purge_once_allowed_stays_allowed(s: dict[str, Any], wait: int) -> None:
    """000 §14.3: a recording once past its retention stays purgeable as time goes on (absent new
    holds)."""
    first = _decide(s)
    if first.keep:
        return
    now = s["now"]
    later = now + timedelta(seconds=wait) if isinstance(now, datetime) else now + wait
    assert not _decide(s, now=later).keep


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_purge_after_is_when_purge_becomes_allowed(s: dict[str, Any]) -> None:
    """000 §14.3: A foreseeable keep ends exactly at purge_after; a purge names when it began."""
    got = _decide(s)
    if got.purge_after is None:
        assert got.keep
        return
    now = (
        s["now"]
        if isinstance(s["now"], datetime)
        else BASE + timedelta(seconds=s["now"] - BASE.timestamp())
    )
    if got.keep:
        assert got.purge_after > now
        assert not _decide(s, now=got.purge_after).keep
        assert _decide(s, now=got.purge_after - timedelta(microseconds=1)).keep
    else:
        assert got.purge_after <= now
