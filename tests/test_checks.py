"""Pre-shift checks: every code passes and fails as it should, in both languages."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dock.domain.checks import (
    ASSUMED_BATTERY_HEALTH_PERCENT,
    CODES,
    MESSAGES,
    CheckResult,
    failed,
    message_for,
    run_checks,
)
from dock.domain.policy import PRESETS, Policy
from dock.domain.snapshot import DeviceSnapshot
from firmware_protocol.messages import FaultFlag

# Fixed numbers, so the expected messages do not move when the presets are tuned.
POLICY = dataclasses.replace(PRESETS["strictest"], battery_hours_when_new=12.0)
SYNCED = (True, "chronyc: synchronised to 10.0.0.1, offset +0.000012 s")
UNSYNCED = (False, "no time source answered")

GOOD = DeviceSnapshot(
    serial="BWC-0001",
    firmware="2.3.1",
    battery_percent=100,
    battery_health_percent=95,
    storage_free_bytes=60_000_000_000,
    clock_offset_after_sync_s=0.02,
    recordings_pending=0,
    fault_flags=0,
    self_test_passed=True,
    enrolled=True,
    reported_lost=False,
    maintenance_flag=False,
)


def by_code(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.code: r for r in results}


def test_a_good_recorder_passes_everything() -> None:
    """003 art.5; 004 att.3 art.10; 000 §14.1: a recorder fit for the shift passes every pre-shift
    check."""
    for locale in ("zh", "en"):
        results = run_checks(GOOD, POLICY, SYNCED, locale)
        assert [r.code for r in results] == list(CODES)
        assert failed(results) == []


# (code, snapshot changes, policy changes, clock, passed, English, Chinese)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], tuple[bool, str], bool, str, str]] = [
    ("device_unknown", {}, {}, SYNCED, True, "Device enrolled", "设备已登记"),
    (
        "device_unknown",
        {"enrolled": False},
        {},
        SYNCED,
        False,
        "Device not enrolled",
        "设备未登记，不可领用",
    ),
    ("device_lost", {}, {}, SYNCED, True, "Not reported lost", "设备未报失"),
    (
        "device_lost",
        {"reported_lost": True},
        {},
        SYNCED,
        False,
        "Device reported lost",
        "设备已报失，不可领用",
    ),
    # (a short shift, so that the runtime check passes and only this one is tested)
    (
        "battery_low",
        {"battery_percent": 80},
        {"shift_hours": 4.0},
        SYNCED,
        True,
        "Battery 80% OK",
        "电量80%，正常",
    ),
    (
        "battery_low",
        {"battery_percent": 45},
        {"shift_hours": 4.0},
        SYNCED,
        False,
        "Battery 45% <80%",
        "电量不足：45%，需≥80%",
    ),
    # 12 h x 95 % x 100 % = 11.4 h >= 10 h
    ("battery_runtime", {}, {}, SYNCED, True, "Runtime 11.4h OK", "续航约11.4小时，够用"),
    # 12 h x 60 % x 100 % = 7.2 h < 10 h
    (
        "battery_runtime",
        {"battery_health_percent": 60},
        {},
        SYNCED,
        False,
        "Runtime 7.2h <10h",
        "续航不足：约7.2小时，需10小时",
    ),
    # health unknown: 12 h x 80 % x 100 % = 9.6 h < 10 h
    (
        "battery_runtime",
        {"battery_health_percent": None},
        {},
        SYNCED,
        False,
        "Runtime 9.6h <10h",
        "续航不足：约9.6小时，需10小时",
    ),
    # ... which covers a 6 h shift
    (
        "battery_runtime",
        {"battery_health_percent": None},
        {"shift_hours": 6.0},
        SYNCED,
        True,
        "Runtime 9.6h OK",
        "续航约9.6小时，够用",
    ),
    # 8 h x 1.8 GB = 14.4 GB needed
    (
        "storage_low",
        {"storage_free_bytes": 14_400_000_000},
        {},
        SYNCED,
        True,
        "Storage 14.4G OK",
        "存储剩余14.4G",
    ),
    (
        "storage_low",
        {"storage_free_bytes": 3_000_000_000},
        {},
        SYNCED,
        False,
        "Storage 3.0G <14.4G",
        "存储不足：剩3.0G，需14.4G",
    ),
    ("clock_untrusted", {}, {}, SYNCED, True, "Dock clock trusted", "本机时钟已同步"),
    (
        "clock_untrusted",
        {},
        {},
        UNSYNCED,
        False,
        "Dock clock untrusted: no time source answered",
        "本机时钟不可信：no time source answered",
    ),
    (
        "clock_drift",
        {"clock_offset_after_sync_s": -1.0},
        {},
        SYNCED,
        True,
        "Drift -1.00s OK",
        "时钟误差-1.00秒",
    ),
    (
        "clock_drift",
        {"clock_offset_after_sync_s": 47.0},
        {},
        SYNCED,
        False,
        "Drift +47.0s >1s",
        "时钟误差+47.0秒，超过1秒",
    ),
    (
        "clock_drift",
        {"clock_offset_after_sync_s": None},
        {},
        SYNCED,
        False,
        "Device clock not set",
        "记录仪时钟未校准",
    ),
    ("firmware_not_allowed", {}, {}, SYNCED, True, "FW 2.3.1 OK", "固件2.3.1可用"),
    (
        "firmware_not_allowed",
        {},
        {"allowed_firmware": ("2.3.0", "2.3.1")},
        SYNCED,
        True,
        "FW 2.3.1 OK",
        "固件2.3.1可用",
    ),
    (
        "firmware_not_allowed",
        {"firmware": "1.1.0"},
        {"allowed_firmware": ("2.3.1",)},
        SYNCED,
        False,
        "FW not allowed: 1.1.0",
        "固件版本未获准：1.1.0",
    ),
    ("footage_pending", {}, {}, SYNCED, True, "No footage pending", "无未导出录像"),
    (
        "footage_pending",
        {"recordings_pending": 3},
        {},
        SYNCED,
        False,
        "Footage pending: 3",
        "有3个录像未导出",
    ),
    ("device_fault", {}, {}, SYNCED, True, "No device faults", "设备无故障"),
    (
        "device_fault",
        {"fault_flags": int(FaultFlag.STORAGE | FaultFlag.OVERHEAT)},
        {},
        SYNCED,
        False,
        "Fault: storage,overheat",
        "设备故障：存储、过热",
    ),
    ("maintenance_flag", {}, {}, SYNCED, True, "No maintenance flag", "无待维修标记"),
    (
        "maintenance_flag",
        {"maintenance_flag": True},
        {},
        SYNCED,
        False,
        "Needs maintenance",
        "设备已标记待维修",
    ),
    ("self_test_failed", {}, {}, SYNCED, True, "Self-test OK", "自检通过"),
    (
        "self_test_failed",
        {"self_test_passed": None},
        {},
        SYNCED,
        True,
        "Self-test n/a",
        "设备不支持自检",
    ),
    (
        "self_test_failed",
        {"self_test_passed": False},
        {},
        SYNCED,
        False,
        "Self-test failed",
        "自检未通过",
    ),
]


@pytest.mark.parametrize(
    ("code", "snap_changes", "policy_changes", "clock", "passed", "en", "zh"),
    CASES,
    ids=[f"{c[0]}-{'pass' if c[4] else 'fail'}-{i}" for i, c in enumerate(CASES)],
)
def test_each_check(
    code: str,
    snap_changes: dict[str, Any],
    policy_changes: dict[str, Any],
    clock: tuple[bool, str],
    passed: bool,
    en: str,
    zh: str,
) -> None:
    """003 art.5; 004 att.3 art.10; 000 §14.1: each pre-shift check (battery, storage, date and
    time, firmware, footage, faults, self-test, enrolment, lost) passes and fails on its own,
    with its reason."""
    snap = replace(GOOD, **snap_changes)
    policy = replace(POLICY, **policy_changes)
    for locale, expected in (("en", en), ("zh", zh)):
        results = run_checks(snap, policy, clock, locale)
        assert [r.code for r in results] == list(CODES)
        result = by_code(results)[code]
        assert result.passed is passed
        assert result.message == expected
        # The message can be rendered again, in any locale, from the audit record.
        assert message_for(code, locale, passed=result.passed, **result.detail) == expected
        assert result.message_in("en") == en
        assert result.message_in("zh") == zh
        # Only the check under test changed.
        others = [r.code for r in failed(results) if r.code != code]
        assert others == []


def test_every_code_is_covered_by_the_table_in_both_outcomes() -> None:
    """003 art.5; 004 att.3 art.10; 000 §14.1: every check has its words when it passes and when it
    fails (the reason shown at the slot)."""
    assert set(MESSAGES) == set(CODES)
    seen = {(c[0], c[4]) for c in CASES}
    assert seen == {(code, outcome) for code in CODES for outcome in (True, False)}
    for code in CODES:
        assert set(MESSAGES[code]) == {"zh", "en"}
        for table in MESSAGES[code].values():
            assert {"ok", "fail"} <= set(table)


def test_zh_is_the_default_locale_and_unknown_locales_fall_back_to_english() -> None:
    snap = replace(GOOD, battery_percent=45)
    assert by_code(run_checks(snap, POLICY, SYNCED))["battery_low"].message.startswith("电量不足")
    assert message_for("battery_low", "zh_CN.UTF-8", percent=45, minimum=80).startswith("电量")
    assert message_for("battery_low", "en-GB", percent=45, minimum=80) == "Battery 45% <80%"
    assert message_for("battery_low", "fr", percent=45, minimum=80) == "Battery 45% <80%"


def test_message_for_never_fails_on_missing_detail() -> None:
    assert message_for("battery_low", "en") == "Battery ?% <?%"
    assert message_for("storage_low", "en", passed=True) == "Storage ?G OK"
    with pytest.raises(KeyError):
        message_for("no_such_check", "en")


def test_unknown_battery_health_is_assumed_conservatively_and_said_so() -> None:
    """003 art.5; 004 att.3 art.10: battery capacity for the shift: an unknown battery health is
    assumed worn, and the reason says so."""
    snap = replace(GOOD, battery_health_percent=None, battery_percent=90)
    detail = by_code(run_checks(snap, POLICY, SYNCED, "en"))["battery_runtime"].detail
    assert detail["health_assumed"] is True
    assert detail["health_percent"] == ASSUMED_BATTERY_HEALTH_PERCENT == 80
    assert "assumed 80%" in detail["note"]
    assert detail["expected_hours"] == pytest.approx(12 * 0.8 * 0.9)
    known = by_code(run_checks(GOOD, POLICY, SYNCED, "en"))["battery_runtime"].detail
    assert known["health_assumed"] is False
    assert "note" not in known


def test_unknown_battery_health_full_passes_marginal_fails_with_the_defaults() -> None:
    """003 art.5; 004 att.3 art.10: with unknown battery health a full battery passes, a marginal
    one fails."""
    policy = PRESETS["strictest"]  # 14 h when new, 10 h shifts: 14 x 0.8 x charge
    unknown = replace(GOOD, battery_health_percent=None)
    for pct, passed in ((100, True), (90, True), (89, False), (80, False)):
        snap = replace(unknown, battery_percent=pct)
        assert by_code(run_checks(snap, policy, SYNCED))["battery_runtime"].passed is passed, pct
    stricter = replace(policy, assumed_battery_health_percent=70)  # the unit's own figure
    snap = replace(unknown, battery_percent=100)
    result = by_code(run_checks(snap, stricter, SYNCED, "en"))["battery_runtime"]
    assert not result.passed and result.detail["health_percent"] == 70


def test_a_clock_the_dock_cannot_set_passes_only_within_the_limit() -> None:
    """004 att.3 art.9; 004 att.3 art.10: a recorder's clock the dock cannot set passes only when it
    is already within the limit."""
    why = "recorder speaks protocol version 1"
    near = replace(GOOD, clock_offset_after_sync_s=0.4, clock_not_set_reason=why)
    ok = by_code(run_checks(near, POLICY, SYNCED, "en"))["clock_drift"]
    assert ok.passed and ok.detail["not_set"] == why and ok.message == "Drift +0.40s OK"
    far = replace(near, clock_offset_after_sync_s=-3.5)
    bad = by_code(run_checks(far, POLICY, SYNCED, "en"))["clock_drift"]
    assert not bad.passed and bad.message == "Unset clock -3.50s"
    assert bad.message_in("zh") == "无法校时，误差-3.50秒"


def test_battery_over_100_percent_does_not_inflate_runtime() -> None:
    """003 art.5: a battery reading over 100% does not lengthen the runtime judged for the shift."""
    snap = replace(GOOD, battery_percent=250, battery_health_percent=80)
    result = by_code(run_checks(snap, POLICY, SYNCED, "en"))["battery_runtime"]
    assert result.detail["expected_hours"] == pytest.approx(9.6)
    assert not result.passed


def test_untrusted_dock_clock_fails_closed_whatever_the_reason() -> None:
    """004 att.3 art.9: a dock clock that is not trusted fails the clock check, whatever the reason
    given."""
    for clock in ((False, ""), (False, "kernel: clock not synchronised (TIME_ERROR)")):
        result = by_code(run_checks(GOOD, POLICY, clock, "en"))["clock_untrusted"]
        assert not result.passed
        assert result.detail["reason"] == clock[1]
        assert clock[1] in result.message


def test_nonsense_readings_fail_closed() -> None:
    """003 art.5; 004 att.3 art.10; 000 §14.1: readings that cannot be true fail the checks, never
    pass them."""
    snap = replace(GOOD, clock_offset_after_sync_s=math.nan)
    assert not by_code(run_checks(snap, POLICY, SYNCED))["clock_drift"].passed
    snap = replace(GOOD, clock_offset_after_sync_s=math.inf)
    assert not by_code(run_checks(snap, POLICY, SYNCED))["clock_drift"].passed
    nan_policy = replace(POLICY, battery_hours_when_new=math.nan)
    assert not by_code(run_checks(GOOD, nan_policy, SYNCED))["battery_runtime"].passed


def test_unknown_fault_bits_are_named_too() -> None:
    """000 §14.1: fault bits the dock does not know still fail the fault check, and are named."""
    flags = int(FaultFlag.SENSOR) | 1 << 12
    result = by_code(run_checks(replace(GOOD, fault_flags=flags), POLICY, SYNCED, "en"))
    assert result["device_fault"].detail["faults"] == ["SENSOR", "0x1000"]
    assert result["device_fault"].message == "Fault: sensor,0x1000"
    every = replace(GOOD, fault_flags=sum(int(f) for f in FaultFlag))
    names = by_code(run_checks(every, POLICY, SYNCED, "en"))["device_fault"].detail["faults"]
    assert names == [f.name for f in FaultFlag]


def test_failed_keeps_order() -> None:
    snap = replace(GOOD, enrolled=False, maintenance_flag=True, recordings_pending=1)
    assert [r.code for r in failed(run_checks(snap, POLICY, UNSYNCED))] == [
        "device_unknown",
        "clock_untrusted",
        "footage_pending",
        "maintenance_flag",
    ]


# Messages whose text carries an unbounded string (the clock's reason, the firmware
# version, the list of faults): only their head must fit the line.
FREE_TEXT = {"clock_untrusted", "firmware_not_allowed", "device_fault"}


@settings(max_examples=300, deadline=None)
@given(
    battery=st.integers(0, 100),
    health=st.none() | st.integers(0, 100),
    free=st.integers(0, 512_000_000_000),
    offset=st.none() | st.floats(-999, 999),
    pending=st.integers(0, 999),
    policy=st.sampled_from(sorted(PRESETS.values(), key=lambda p: p.name)),
    not_set=st.none() | st.just("recorder speaks protocol version 1"),
)
def test_english_messages_fit_a_20_column_lcd_line(
    battery: int,
    health: int | None,
    free: int,
    offset: float | None,
    pending: int,
    policy: Policy,
    not_set: str | None,
) -> None:
    """003 art.5; 004 att.3 art.10: each failing check's reason fits one line of the slot's
    20-column screen."""
    snap = replace(
        GOOD,
        battery_percent=battery,
        battery_health_percent=health,
        storage_free_bytes=free,
        clock_offset_after_sync_s=offset,
        recordings_pending=pending,
        firmware="2.3.1",
        fault_flags=int(FaultFlag.STORAGE),
        clock_not_set_reason=not_set,
    )
    for clock in (SYNCED, UNSYNCED):
        for r in run_checks(snap, policy, clock, "en"):
            head = r.message.split(":")[0] if r.code in FREE_TEXT else r.message
            assert len(head) <= 20, r.message
            zh = r.message_in("zh")
            if r.code not in FREE_TEXT:
                assert len(zh) <= 20, zh


snapshots = st.builds(
    DeviceSnapshot,
    serial=st.text(max_size=20),
    firmware=st.text(max_size=20),
    battery_percent=st.integers(),
    battery_health_percent=st.none() | st.integers(),
    storage_free_bytes=st.integers(),
    clock_offset_after_sync_s=st.none() | st.floats(),
    recordings_pending=st.integers(),
    fault_flags=st.integers(),
    self_test_passed=st.none() | st.booleans(),
    enrolled=st.booleans(),
    reported_lost=st.booleans(),
    maintenance_flag=st.booleans(),
    clock_not_set_reason=st.none() | st.text(max_size=40),
)
policies = st.builds(
    replace,
    st.sampled_from(sorted(PRESETS.values(), key=lambda p: p.name)),
    allowed_firmware=st.lists(st.text(max_size=8), max_size=3).map(tuple),
    shift_hours=st.floats(allow_nan=True),
    min_battery_percent=st.integers(-10, 200),
    max_clock_drift_after_sync_s=st.floats(),
)


@settings(max_examples=500, deadline=None)
@given(
    snap=snapshots,
    policy=policies,
    clock=st.tuples(st.booleans(), st.text(max_size=40)),
    locale=st.sampled_from(["zh", "en", "zh_CN", "en_US.UTF-8", "fr", ""]),
)
def test_run_checks_never_raises_and_returns_every_code_once(
    snap: DeviceSnapshot, policy: Policy, clock: tuple[bool, str], locale: str
) -> None:
    """003 art.5; 004 att.3 art.10; 000 §14.1: any reading gives every check's verdict exactly once,
    never an exception."""
    results = run_checks(snap, policy, clock, locale)
    assert sorted(r.code for r in results) == sorted(CODES)
    assert len(results) == len(CODES)
    for r in results:
        assert isinstance(r.passed, bool)
        assert isinstance(r.message, str) and r.message
        assert isinstance(r.detail, dict)
        assert "{" not in r.message or "{" in repr(r.detail)
    assert failed(results) == [r for r in results if not r.passed]
    if not clock[0]:
        assert "clock_untrusted" in {r.code for r in failed(results)}
