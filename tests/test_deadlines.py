"""Offload deadlines (REQUIREMENTS.md §4) as tables: presets around weekends, local
midnight, a zone without DST and one crossing its changes, holidays and make-up days; and
where each regulation starts the clock (002 art.23, 003 art.13, 001 art.19(3), 004 att.1
art.5), for recorders returned and still away."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from dock.domain.policy import DEADLINE_STARTS, PRESETS, Policy
from dock.evidence.deadlines import clock_start, deadline_status, episode_deadline, offload_deadline

H24 = Policy("t24", offload_deadline_hours=24.0)
H48 = Policy("t48", offload_deadline_hours=48.0)
WD1 = Policy("twd1", offload_deadline_working_days=1)
WD2 = Policy("twd2", offload_deadline_working_days=2)

SH = "Asia/Shanghai"  # UTC+8 all year
BER = "Europe/Berlin"  # 2025: CEST from 30 Mar 02:00, CET again from 26 Oct 03:00
SAO = "America/Sao_Paulo"  # 2018-11-04: local midnight did not exist (00:00 -> 01:00)
HAV = "America/Havana"  # 2023-11-05: local midnight occurred twice (01:00 -> 00:00)

# China's National Day 2025: 1-8 Oct off, Sunday 28 Sep and Saturday 11 Oct worked.
NATIONAL_DAY = frozenset(date(2025, 10, d) for d in range(1, 9))
NATIONAL_DAY_MAKEUP = frozenset({date(2025, 9, 28), date(2025, 10, 11)})
# Germany, Easter 2025: Good Friday 18 Apr, Easter Monday 21 Apr.
EASTER = frozenset({date(2025, 4, 18), date(2025, 4, 21)})


def local(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


NONE: frozenset[date] = frozenset()


def deadline_row(
    name: str,
    policy: Policy,
    tz: str,
    returned: datetime,
    expected: datetime,
    holidays: frozenset[date] = NONE,
    makeup: frozenset[date] = NONE,
) -> Any:
    """A recorder returned at ``returned`` is due by ``expected`` (UTC)."""
    return pytest.param(policy, tz, returned, expected, holidays, makeup, id=name)


DEADLINES = [
    # --- 24 h: elapsed time, weekends and DST do not matter
    deadline_row("24h-monday", H24, SH, local(SH, 2025, 3, 3, 10), utc(2025, 3, 4, 2)),
    deadline_row("24h-friday-evening", H24, SH, local(SH, 2025, 3, 7, 18), utc(2025, 3, 8, 10)),
    # Sat 12:00 CET + 24 h = Sun 13:00 CEST on the wall clock: 24 real hours.
    deadline_row("24h-berlin-spring", H24, BER, local(BER, 2025, 3, 29, 12), utc(2025, 3, 30, 11)),
    deadline_row(
        "24h-berlin-autumn", H24, BER, local(BER, 2025, 10, 25, 12), utc(2025, 10, 26, 10)
    ),
    deadline_row(
        "24h-holiday-ignored",
        H24,
        SH,
        local(SH, 2025, 9, 30, 18),
        utc(2025, 10, 1, 10),
        holidays=NATIONAL_DAY,
    ),
    # --- 48 h
    deadline_row("48h-friday-evening", H48, SH, local(SH, 2025, 3, 7, 18), utc(2025, 3, 9, 10)),
    deadline_row("48h-berlin-spring", H48, BER, local(BER, 2025, 3, 28, 20), utc(2025, 3, 30, 19)),
    # --- 1 working day: end of the next working day, local
    deadline_row("wd1-monday", WD1, SH, local(SH, 2025, 3, 3, 10), utc(2025, 3, 4, 16)),
    deadline_row(
        "wd1-friday-evening", WD1, SH, local(SH, 2025, 3, 7, 18, 30), utc(2025, 3, 10, 16)
    ),
    deadline_row(
        "wd1-friday-just-before-midnight",
        WD1,
        SH,
        local(SH, 2025, 3, 7, 23, 59, 59),
        utc(2025, 3, 10, 16),
    ),
    deadline_row("wd1-saturday", WD1, SH, local(SH, 2025, 3, 8, 9), utc(2025, 3, 10, 16)),
    deadline_row("wd1-sunday-late", WD1, SH, local(SH, 2025, 3, 9, 23), utc(2025, 3, 10, 16)),
    deadline_row(
        "wd1-monday-just-before-midnight",
        WD1,
        SH,
        local(SH, 2025, 3, 3, 23, 59, 59),
        utc(2025, 3, 4, 16),
    ),
    deadline_row(
        "wd1-tuesday-just-after-midnight",
        WD1,
        SH,
        local(SH, 2025, 3, 4, 0, 0, 1),
        utc(2025, 3, 5, 16),
    ),
    # 07:30 Tuesday in Shanghai is still Monday in UTC: the local day counts.
    deadline_row(
        "wd1-local-day-not-utc-day", WD1, SH, utc(2025, 3, 3, 23, 30), utc(2025, 3, 5, 16)
    ),
    # Friday CET, deadline end of Monday CEST: the change on Sunday shifts it by an hour.
    deadline_row("wd1-berlin-spring", WD1, BER, local(BER, 2025, 3, 28, 17), utc(2025, 3, 31, 22)),
    deadline_row(
        "wd1-berlin-autumn", WD1, BER, local(BER, 2025, 10, 24, 17), utc(2025, 10, 27, 23)
    ),
    deadline_row(
        "wd1-berlin-just-before-midnight",
        WD1,
        BER,
        local(BER, 2025, 3, 31, 23, 30),
        utc(2025, 4, 1, 22),
    ),
    deadline_row("wd2-thursday", WD2, SH, local(SH, 2025, 3, 6, 12), utc(2025, 3, 10, 16)),
    # --- holidays and make-up working days
    deadline_row(
        "wd1-national-day",
        WD1,
        SH,
        local(SH, 2025, 9, 30, 18),
        utc(2025, 10, 9, 16),
        holidays=NATIONAL_DAY,
        makeup=NATIONAL_DAY_MAKEUP,
    ),
    deadline_row(
        "wd1-makeup-saturday",
        WD1,
        SH,
        local(SH, 2025, 10, 10, 18),
        utc(2025, 10, 11, 16),
        holidays=NATIONAL_DAY,
        makeup=NATIONAL_DAY_MAKEUP,
    ),
    deadline_row(
        "wd1-makeup-sunday",
        WD1,
        SH,
        local(SH, 2025, 9, 27, 10),
        utc(2025, 9, 28, 16),
        holidays=NATIONAL_DAY,
        makeup=NATIONAL_DAY_MAKEUP,
    ),
    deadline_row(
        "wd1-holiday-monday",
        WD1,
        SH,
        local(SH, 2025, 3, 7, 18),
        utc(2025, 3, 11, 16),
        holidays=frozenset({date(2025, 3, 10)}),
    ),
    deadline_row(
        "wd1-return-on-holiday",
        WD1,
        SH,
        local(SH, 2025, 10, 3, 9),
        utc(2025, 10, 9, 16),
        holidays=NATIONAL_DAY,
    ),
    deadline_row(
        "wd1-berlin-easter",
        WD1,
        BER,
        local(BER, 2025, 4, 17, 16),
        utc(2025, 4, 22, 22),
        holidays=EASTER,
    ),
    # --- midnights a DST change removes or repeats (end of a worked Saturday)
    deadline_row(
        "wd1-midnight-missing",
        WD1,
        SAO,
        local(SAO, 2018, 11, 2, 10),
        utc(2018, 11, 4, 3),
        makeup=frozenset({date(2018, 11, 3)}),
    ),
    deadline_row(
        "wd1-midnight-twice",
        WD1,
        HAV,
        local(HAV, 2023, 11, 3, 10),
        utc(2023, 11, 5, 4),
        makeup=frozenset({date(2023, 11, 4)}),
    ),
]


@pytest.mark.parametrize(("policy", "tz", "returned", "expected", "holidays", "makeup"), DEADLINES)
def test_offload_deadline(policy, tz, returned, expected, holidays, makeup) -> None:
    """003 art.13; 001 art.19(3); 004 att.3 art.13: the offload deadline per policy (24 h,
    working days, holidays and make-up days), in UTC."""
    got = offload_deadline(returned, policy, tz, holidays, makeup_workdays=makeup)
    assert got == expected
    assert got.tzinfo is UTC
    # The same instant as epoch seconds gives the same deadline.
    assert offload_deadline(returned.timestamp(), policy, tz, holidays, makeup_workdays=makeup) == (
        expected
    )


def test_working_day_deadline_is_local_midnight() -> None:
    """001 art.19(3): a working-day deadline ends at the unit's local midnight."""
    for case in DEADLINES:
        policy, tz, returned, _, holidays, makeup = case.values
        if policy.offload_deadline_working_days is None:
            continue
        end = offload_deadline(returned, policy, tz, holidays, makeup_workdays=makeup)
        assert end > returned
        assert end.astimezone(ZoneInfo(tz)).time() in {
            datetime.min.time(),
            datetime.min.time().replace(hour=1),  # the missing midnight lands on 01:00
        }


RET = local(SH, 2025, 3, 3, 10)  # Monday; 24 h deadline Tue 10:00 local = 02:00 UTC
RET_DL = utc(2025, 3, 4, 2)
FRI = local(SH, 2025, 3, 7, 18)  # Friday evening; 1 working day: end of Monday
FRI_DL = utc(2025, 3, 10, 16)  # window 78 h: at risk from Mon 04:30 local


def state_row(
    name: str,
    returned: datetime,
    offloaded: datetime | None,
    now: datetime,
    policy: Policy,
    state: str,
    remaining: timedelta,
    fraction: float = 0.75,
) -> Any:
    """In zone SH, the status at ``now`` is ``state`` with ``remaining`` left (or margin)."""
    return pytest.param(returned, offloaded, now, policy, state, remaining, fraction, id=name)


STATES = [
    state_row(
        "done-early", RET, RET + timedelta(hours=2), RET_DL, H24, "done", timedelta(hours=22)
    ),
    state_row(
        "done-at-deadline", RET, RET_DL, RET_DL + timedelta(days=9), H24, "done", timedelta(0)
    ),
    state_row(
        "done-late",
        RET,
        RET_DL + timedelta(minutes=1),
        RET_DL,
        H24,
        "done_late",
        timedelta(minutes=-1),
    ),
    state_row("on-time", RET, None, RET + timedelta(hours=1), H24, "on_time", timedelta(hours=23)),
    state_row(
        "before-return", RET, None, RET - timedelta(hours=1), H24, "on_time", timedelta(hours=25)
    ),
    state_row(
        "just-before-risk",
        RET,
        None,
        RET + timedelta(hours=17, minutes=59),
        H24,
        "on_time",
        timedelta(hours=6, minutes=1),
    ),
    state_row(
        "at-risk-threshold",
        RET,
        None,
        RET + timedelta(hours=18),
        H24,
        "at_risk",
        timedelta(hours=6),
    ),
    state_row("at-risk-at-deadline", RET, None, RET_DL, H24, "at_risk", timedelta(0)),
    state_row(
        "overdue", RET, None, RET_DL + timedelta(seconds=1), H24, "overdue", timedelta(seconds=-1)
    ),
    state_row(
        "custom-fraction",
        RET,
        None,
        RET + timedelta(hours=12),
        H24,
        "at_risk",
        timedelta(hours=12),
        fraction=0.5,
    ),
    state_row(
        "fraction-one",
        RET,
        None,
        RET + timedelta(hours=23),
        H24,
        "on_time",
        timedelta(hours=1),
        fraction=1.0,
    ),
    state_row(
        "48h-on-time", RET, None, RET + timedelta(hours=30), H48, "on_time", timedelta(hours=18)
    ),
    state_row(
        "wd1-weekend-on-time",
        FRI,
        None,
        local(SH, 2025, 3, 9, 12),
        WD1,
        "on_time",
        timedelta(hours=36),
    ),
    state_row(
        "wd1-risk-not-yet",
        FRI,
        None,
        local(SH, 2025, 3, 10, 4, 29),
        WD1,
        "on_time",
        FRI_DL - local(SH, 2025, 3, 10, 4, 29),
    ),
    state_row(
        "wd1-risk-starts",
        FRI,
        None,
        local(SH, 2025, 3, 10, 4, 30),
        WD1,
        "at_risk",
        timedelta(hours=19, minutes=30),
    ),
    state_row(
        "wd1-monday-at-risk",
        FRI,
        None,
        local(SH, 2025, 3, 10, 16, 30),
        WD1,
        "at_risk",
        timedelta(hours=7, minutes=30),
    ),
    state_row(
        "wd1-tuesday-overdue",
        FRI,
        None,
        local(SH, 2025, 3, 11, 9),
        WD1,
        "overdue",
        timedelta(hours=-9),
    ),
    state_row(
        "wd1-done-monday",
        FRI,
        local(SH, 2025, 3, 10, 9),
        local(SH, 2025, 3, 12),
        WD1,
        "done",
        timedelta(hours=15),
    ),
]


@pytest.mark.parametrize(
    ("returned", "offloaded", "now", "policy", "state", "remaining", "fraction"), STATES
)
def test_deadline_status(returned, offloaded, now, policy, state, remaining, fraction) -> None:
    """003 art.13; 001 art.19(3): an offload is on time, at risk, overdue, or done late, by its
    deadline."""
    got = deadline_status(returned, offloaded, now, policy, SH, fraction)
    assert (got.state, got.remaining) == (state, remaining)
    assert got.deadline == offload_deadline(returned, policy, SH)
    assert got.deadline.tzinfo is UTC


def test_status_passes_holidays_through() -> None:
    """001 art.19(3): holidays are not working days when an offload's status is judged."""
    got = deadline_status(
        FRI, None, local(SH, 2025, 3, 11, 9), WD1, SH, holidays=frozenset({date(2025, 3, 10)})
    )
    assert (got.state, got.deadline) == ("at_risk", utc(2025, 3, 11, 16))  # not overdue


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: offload_deadline(datetime(2025, 3, 3, 10), H24, SH), ValueError),
        (lambda: offload_deadline(float("nan"), H24, SH), ValueError),
        (lambda: offload_deadline(RET, Policy("x", offload_deadline_hours=0), SH), ValueError),
        (
            lambda: offload_deadline(RET, Policy("x", offload_deadline_working_days=0), SH),
            ValueError,
        ),
        (
            lambda: offload_deadline(
                RET,
                WD1,
                SH,
                frozenset({date(2025, 3, 8)}),
                makeup_workdays=frozenset({date(2025, 3, 8)}),
            ),
            ValueError,
        ),
        (lambda: offload_deadline(RET, WD1, "Mars/Olympus_Mons"), ZoneInfoNotFoundError),
        (lambda: deadline_status(RET, None, RET, H24, SH, 0.0), ValueError),
        (lambda: deadline_status(RET, None, RET, H24, SH, 1.5), ValueError),
        (lambda: deadline_status(RET, None, datetime(2025, 3, 3), H24, SH), ValueError),
    ],
    ids=[
        "naive",
        "nan",
        "zero-hours",
        "zero-days",
        "holiday-and-workday",
        "unknown-zone",
        "fraction-zero",
        "fraction-above-one",
        "naive-now",
    ],
)
def test_bad_input_raises(call, error) -> None:
    with pytest.raises(error):
        call()


# --------------------------------------------------------------------------- the start
# REQUIREMENTS.md §4: the offload clock starts where each regulation says. Each test
# names the article it enforces.


@pytest.mark.parametrize(
    ("preset", "start", "hours", "working_days"),
    [
        pytest.param("guangdong", "recording", 24.0, None, id="002-art23"),
        pytest.param("tanghe", "return", 24.0, None, id="003-art13"),
        pytest.param("pishan", "activity_end", 24.0, 1, id="001-art19-3"),
        pytest.param("jingzhou", "recording", 48.0, None, id="004-att1-art5"),
        pytest.param("strictest", "recording", 24.0, None, id="strictest"),
    ],
)
def test_each_preset_starts_its_deadline_where_its_regulation_says(
    preset, start, hours, working_days
) -> None:
    """002 art.23 (24 h after the recording was made), 003 art.13 (24 h after return),
    001 art.19(3) (one working day after the activity ended), 004 att.1 art.5 and att.3
    art.13 (2 days after the recording was made); the default is the strictest start."""
    p = PRESETS[preset]
    assert (p.offload_deadline_from, p.offload_deadline_hours) == (start, hours)
    assert p.offload_deadline_working_days == working_days
    # The strictest start is the earliest moment: no preset starts before the default.
    strict = DEADLINE_STARTS.index(PRESETS["strictest"].offload_deadline_from)
    assert strict == 0 and DEADLINE_STARTS.index(p.offload_deadline_from) >= strict


OUT = local(SH, 2025, 3, 3, 8)  # Monday 08:00: checked out
REC1 = local(SH, 2025, 3, 3, 9, 30)  # first recording ended
REC2 = local(SH, 2025, 3, 3, 16)  # last recording ended
BACK = local(SH, 2025, 3, 3, 18)  # returned Monday 18:00


@pytest.mark.parametrize(
    ("start_from", "in_at", "ends", "expected"),
    [
        pytest.param("recording", BACK, (REC2, REC1), REC1, id="002-art23-first-recording"),
        pytest.param("activity_end", BACK, (REC1, REC2), REC2, id="001-art19-last-recording"),
        pytest.param("return", BACK, (REC1, REC2), BACK, id="003-art13-return"),
        pytest.param("recording", None, (), OUT, id="002-art23-away-from-checkout"),
        pytest.param("activity_end", None, (), OUT, id="001-art19-away-from-checkout"),
        pytest.param("return", None, (), None, id="003-art13-away-no-deadline-yet"),
        pytest.param("recording", BACK, (), OUT, id="docked-not-offloaded-from-checkout"),
        # a recorder's clock gone wrong: kept within the episode
        pytest.param(
            "recording", BACK, (local(SH, 2025, 1, 1),), OUT, id="recording-before-checkout"
        ),
        pytest.param(
            "activity_end", BACK, (local(SH, 2025, 3, 9),), BACK, id="recording-after-return"
        ),
    ],
)
def test_clock_start_per_regulation(start_from, in_at, ends, expected) -> None:
    """002 art.23, 004 att.1 art.5: from the recording; 001 art.19(3): from the end of
    the activity (the episode's last recording); 003 art.13: from the return. While the
    recordings are not known, from the check-out (the earliest a recording could be)."""
    assert clock_start(start_from, OUT, in_at, ends) == expected


def test_clock_start_refuses_nonsense() -> None:
    """REQUIREMENTS §4: a wrong deadline hides an overdue offload, so bad input raises."""
    with pytest.raises(ValueError):
        clock_start("whenever", OUT, BACK)
    with pytest.raises(ValueError):
        clock_start("return", BACK, OUT)  # back before it left


GD, TH, PS, JZ = (PRESETS[n] for n in ("guangdong", "tanghe", "pishan", "jingzhou"))
FRI_OUT = local(SH, 2025, 3, 7, 8)  # Friday 08:00
FRI_REC = local(SH, 2025, 3, 7, 17)  # last recording ends Friday 17:00


def episode_row(name: str, policy: Policy, now: datetime, state: str, deadline: datetime,
                *, out: datetime = OUT, back: datetime | None = None,
                ends: tuple[datetime, ...] = (), offloaded: datetime | None = None,
                nothing_pending: bool = False) -> Any:  # fmt: skip
    return pytest.param(
        policy, now, state, deadline, out, back, ends, offloaded, nothing_pending, id=name
    )


EPISODES = [
    # 002 art.23: 24 h from the recording: back two days later, offloaded at once: late.
    episode_row(
        "002-art23-late-though-offloaded-on-return",
        GD,
        local(SH, 2025, 3, 6),
        "done_late",
        REC1 + timedelta(hours=24),
        back=local(SH, 2025, 3, 5, 8),
        ends=(REC1, REC2),
        offloaded=local(SH, 2025, 3, 5, 8, 10),
    ),
    # 003 art.13: the same episode counts from the return: on time.
    episode_row(
        "003-art13-same-episode-on-time",
        TH,
        local(SH, 2025, 3, 6),
        "done",
        local(SH, 2025, 3, 6, 8),
        back=local(SH, 2025, 3, 5, 8),
        ends=(REC1, REC2),
        offloaded=local(SH, 2025, 3, 5, 8, 10),
    ),
    # 002 art.23: away, 19 h after the check-out: at risk before it is docked.
    episode_row(
        "002-art23-away-at-risk",
        GD,
        OUT + timedelta(hours=19),
        "at_risk",
        OUT + timedelta(hours=24),
    ),
    episode_row(
        "002-art23-away-overdue",
        GD,
        OUT + timedelta(hours=24, seconds=1),
        "overdue",
        OUT + timedelta(hours=24),
    ),
    episode_row(
        "002-art23-away-on-time-in-shift",
        GD,
        OUT + timedelta(hours=10),
        "on_time",
        OUT + timedelta(hours=24),
    ),
    # 004 att.1 art.5: 2 days from the recording.
    episode_row(
        "004-att1-art5-away-48h",
        JZ,
        OUT + timedelta(hours=47),
        "at_risk",
        OUT + timedelta(hours=48),
    ),
    episode_row(
        "004-att1-art5-done-in-2-days",
        JZ,
        local(SH, 2025, 3, 9),
        "done",
        REC1 + timedelta(hours=48),
        back=local(SH, 2025, 3, 4, 8),
        ends=(REC1,),
        offloaded=local(SH, 2025, 3, 4, 9),
    ),
    # 001 art.19(3): one working day after the activity (its last recording) ended:
    # Friday's activity is due by the end of Monday, even if it came back on Saturday.
    episode_row(
        "001-art19-friday-activity-due-monday",
        PS,
        local(SH, 2025, 3, 12),
        "done",
        utc(2025, 3, 10, 16),
        out=FRI_OUT,
        back=local(SH, 2025, 3, 8, 10),
        ends=(FRI_REC,),
        offloaded=local(SH, 2025, 3, 10, 9),
    ),
    episode_row(
        "001-art19-offloaded-tuesday-late",
        PS,
        local(SH, 2025, 3, 12),
        "done_late",
        utc(2025, 3, 10, 16),
        out=FRI_OUT,
        back=local(SH, 2025, 3, 10, 10),
        ends=(FRI_REC,),
        offloaded=local(SH, 2025, 3, 11, 9),
    ),
    # 001 art.19(3): kept over the weekend, still away on Tuesday: overdue.
    episode_row(
        "001-art19-away-overdue",
        PS,
        local(SH, 2025, 3, 11, 9),
        "overdue",
        utc(2025, 3, 10, 16),
        out=FRI_OUT,
    ),
    # Back with nothing to offload: done, however long it was away.
    episode_row(
        "nothing-pending-is-done",
        GD,
        local(SH, 2025, 3, 9),
        "done",
        OUT + timedelta(hours=24),
        back=local(SH, 2025, 3, 6),
        nothing_pending=True,
        offloaded=local(SH, 2025, 3, 6),
    ),
    # Back and not yet offloaded: still from the check-out (recordings not yet known).
    episode_row(
        "002-art23-docked-not-offloaded",
        GD,
        OUT + timedelta(hours=25),
        "overdue",
        OUT + timedelta(hours=24),
        back=OUT + timedelta(hours=23),
    ),
]


@pytest.mark.parametrize(
    ("policy", "now", "state", "deadline", "out", "back", "ends", "offloaded", "nothing"),
    EPISODES,
)
def test_episode_deadline_per_regulation(
    policy, now, state, deadline, out, back, ends, offloaded, nothing
) -> None:
    """002 art.23 and 004 att.1 art.5 (from the recording), 003 art.13 (from the return),
    001 art.19(3) (one working day from the end of the activity): a recorder away is late
    before it is docked."""
    got = episode_deadline(
        policy, SH, now, out_at=out, in_at=back, recording_ends=ends,
        offloaded_at=offloaded, nothing_pending=nothing,
    )  # fmt: skip
    assert got is not None
    assert (got.status.state, got.status.deadline) == (state, deadline)


def test_away_under_return_rule_has_no_deadline_yet() -> None:
    """003 art.13: the 24 h start on the return, so a recorder away has none yet."""
    assert episode_deadline(TH, SH, OUT + timedelta(days=9), out_at=OUT, in_at=None) is None


def test_a_recorder_away_is_never_done() -> None:
    """002 art.23: an offload time passed for a recorder still away is not an offload."""
    got = episode_deadline(
        GD, SH, OUT + timedelta(hours=30), out_at=OUT, in_at=None, offloaded_at=OUT
    )
    assert got is not None and got.status.state == "overdue"


CONFIG = '[dock]\nid = "d"\nsite = "s"\nunit = "u"\n\n[[slot]]\nid = "1"\nport = "/dev/x"\n'


@pytest.mark.parametrize(
    ("preset", "start", "warned"),
    [
        pytest.param("strictest", "return", True, id="return-laxer-than-recording"),
        pytest.param("pishan", "return", True, id="return-laxer-than-activity-end"),
        pytest.param("strictest", "activity_end", True, id="activity-end-laxer-than-recording"),
        pytest.param("tanghe", "recording", False, id="recording-stricter-than-return"),
        pytest.param("pishan", "recording", False, id="recording-stricter-than-activity-end"),
    ],
)
def test_a_later_start_is_warned_as_laxer(tmp_path, preset, start, warned) -> None:
    """002 art.23, 003 art.13, 001 art.19(3): starting the clock later than the preset's
    regulation gives more time, so it is warned about at every start; earlier is silent."""
    from dock.config import load_config

    path = tmp_path / "dock.toml"
    text = f'{CONFIG}\n[policy]\npreset = "{preset}"\noffload_deadline_from = "{start}"\n'
    path.write_text(text, encoding="utf-8")
    cfg = load_config(str(path), env={})
    assert cfg.policy.offload_deadline_from == start
    said = [w for w in cfg.warnings if w.startswith("policy.offload_deadline_from")]
    assert bool(said) is warned, cfg.warnings


def test_an_unknown_start_is_a_one_line_problem(tmp_path) -> None:
    """REQUIREMENTS §4: a start the dock does not know is refused with how to fix it."""
    from dock.config import ConfigError, load_config

    path = tmp_path / "dock.toml"
    path.write_text(f'{CONFIG}\n[policy]\noffload_deadline_from = "shift"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(str(path), env={})
    (line,) = [x for x in str(err.value).splitlines() if "offload_deadline_from" in x]
    assert '"shift" is not a moment' in line and "activity_end" in line
