"""The dock's clock: each time source's answer, the fallback order, and display."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from dock.devices.clock import (
    NO_SOURCE,
    STA_UNSYNC,
    TIME_ERROR,
    FixedClock,
    SystemClock,
    Timex,
    TrustedClock,
    libc_adjtimex,
    local_display,
    utc_iso,
)
from dock.domain.interfaces import ClockSource

# --- recorded outputs ---------------------------------------------------------------------

NO_SYSTEMD = "System has not been booted with systemd as init system (PID 1). Can't operate.\n"
CHRONY_SYNCED = (
    "A9FEA97B,169.254.169.123,4,1795336000.123456789,0.000012345,-0.000003210,"
    "0.000045678,-12.345,0.001,0.023,0.000456789,0.000234567,64.2,Normal\n"
)
CHRONY_LEAP_INSERT = CHRONY_SYNCED.replace("Normal", "Insert second")
CHRONY_UNSYNCED = (
    "00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,"
    "0.000,0.000,0.000,1.000000000,1.000000000,0.0,Not synchronised\n"
)
CHRONY_FAR_OFF = CHRONY_SYNCED.replace("0.000012345", "-0.734210000")
CHRONY_NO_DAEMON = "506 Cannot talk to daemon\n"


def done(stdout: str = "", rc: int = 0, stderr: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], rc, stdout, stderr)


class FakeRunner:
    """Stands in for subprocess.run: answers per program name, records the calls."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def __call__(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((args, kwargs))
        answer = self.answers.get(args[0], FileNotFoundError(2, "No such file", args[0]))
        if isinstance(answer, BaseException):
            raise answer
        return answer

    @property
    def programs(self) -> list[str]:
        return [args[0] for args, _ in self.calls]


def timeout(cmd: str) -> subprocess.TimeoutExpired:
    return subprocess.TimeoutExpired([cmd], 2.0)


class FakeAdjtimex:
    def __init__(self, state: int = 0, status: int = 0, esterror: int = 0) -> None:
        self.state, self.status, self.esterror = state, status, esterror
        self.calls = 0

    def __call__(self, tx: Timex) -> int:
        assert isinstance(tx, Timex)
        assert tx.modes == 0  # read only: must never adjust the clock
        self.calls += 1
        tx.status = self.status
        tx.esterror = self.esterror
        return self.state


def unanswered_kernel(tx: Timex) -> int:
    return -1


def clock(runner: FakeRunner, adjtimex: Any = unanswered_kernel, **kw: Any) -> SystemClock:
    return SystemClock(runner=runner, adjtimex=adjtimex, **kw)


# --- timedatectl --------------------------------------------------------------------------


def test_timedatectl_yes() -> None:
    """004 att.3 art.9: timedatectl saying synchronised makes the dock's clock trusted."""
    runner = FakeRunner(timedatectl=done("yes\n"))
    synced, reason = clock(runner).synchronised()
    assert synced is True
    assert "timedatectl" in reason
    args, kwargs = runner.calls[0]
    assert args == ["timedatectl", "show", "-p", "NTPSynchronized", "--value"]
    assert 0 < kwargs["timeout"] <= 5
    assert runner.programs == ["timedatectl"]  # the first answer decides


def test_timedatectl_no_decides_even_if_chrony_would_say_yes() -> None:
    """004 att.3 art.9: timedatectl saying not synchronised decides: the dock's clock is not
    trusted."""
    runner = FakeRunner(timedatectl=done("no\n"), chronyc=done(CHRONY_SYNCED))
    adj = FakeAdjtimex()
    assert clock(runner, adj).synchronised() == (False, "timedatectl: NTP not synchronised")
    assert runner.programs == ["timedatectl"]
    assert adj.calls == 0


@pytest.mark.parametrize(
    "answer",
    [
        FileNotFoundError(2, "No such file or directory", "timedatectl"),
        timeout("timedatectl"),
        PermissionError(13, "Permission denied"),
        done("", rc=1, stderr=NO_SYSTEMD),
        done("maybe\n"),
        done(""),
    ],
    ids=["missing", "timeout", "permission", "no-systemd", "garbage", "empty"],
)
def test_timedatectl_not_answering_falls_through_to_chrony(answer: Any) -> None:
    """004 att.3 art.9: when timedatectl does not answer, chrony decides whether the clock is
    trusted."""
    runner = FakeRunner(timedatectl=answer, chronyc=done(CHRONY_SYNCED))
    synced, reason = clock(runner).synchronised()
    assert synced is True
    assert reason.startswith("chronyc:")
    assert runner.programs == ["timedatectl", "chronyc"]


# --- chronyc ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "synced", "in_reason"),
    [
        (CHRONY_SYNCED, True, "169.254.169.123"),
        (CHRONY_LEAP_INSERT, True, "synchronised"),
        (CHRONY_UNSYNCED, False, "not synchronised"),
        (CHRONY_FAR_OFF, False, "-0.734 s exceeds 0.5 s"),
    ],
    ids=["synced", "leap-insert", "unsynced", "offset-too-large"],
)
def test_chronyc_tracking(output: str, synced: bool, in_reason: str) -> None:
    """004 att.3 art.9: chrony's leap status and offset decide whether the dock's clock is
    trusted."""
    runner = FakeRunner(chronyc=done(output))
    result, reason = clock(runner).synchronised()
    assert result is synced
    assert reason.startswith("chronyc:")
    assert in_reason in reason
    args, kwargs = runner.calls[-1]
    assert args == ["chronyc", "-c", "tracking"]
    assert 0 < kwargs["timeout"] <= 5


def test_chronyc_offset_limit_is_configurable() -> None:
    """004 att.3 art.9: the offset chrony may report with the clock still trusted is
    configurable."""
    runner = FakeRunner(chronyc=done(CHRONY_FAR_OFF))
    assert clock(runner, max_offset_s=1.0).synchronised()[0] is True


@pytest.mark.parametrize(
    "answer",
    [
        FileNotFoundError(2, "No such file or directory", "chronyc"),
        timeout("chronyc"),
        done("", rc=1, stderr=CHRONY_NO_DAEMON),
        done("Reference ID    : A9FEA97B (169.254.169.123)\n"),  # not -c output
        done(CHRONY_SYNCED.replace("0.000012345", "fast")),
    ],
    ids=["missing", "timeout", "no-daemon", "not-csv", "bad-number"],
)
def test_chronyc_not_answering_falls_through_to_the_kernel(answer: Any) -> None:
    """004 att.3 art.9: when chrony does not answer, the kernel's clock state decides."""
    runner = FakeRunner(chronyc=answer)
    adj = FakeAdjtimex(state=0, status=0, esterror=1500)
    synced, reason = clock(runner, adj).synchronised()
    assert (synced, reason) == (True, "kernel: clock synchronised (TIME_OK, est. error 1500 us)")
    assert runner.programs == ["timedatectl", "chronyc"]
    assert adj.calls == 1


# --- the kernel ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "status", "synced", "in_reason"),
    [
        (0, 0, True, "TIME_OK"),
        (1, 0x0001, True, "TIME_INS"),
        (TIME_ERROR, STA_UNSYNC, False, "TIME_ERROR"),
        (TIME_ERROR, 0, False, "TIME_ERROR"),
        (0, STA_UNSYNC, False, "STA_UNSYNC"),
    ],
    ids=["ok", "leap-insert", "error-and-unsync", "error", "unsync-bit"],
)
def test_adjtimex(state: int, status: int, synced: bool, in_reason: str) -> None:
    """004 att.3 art.9: the kernel's own clock state (adjtimex) says whether the clock is
    synchronised."""
    result, reason = clock(FakeRunner(), FakeAdjtimex(state, status)).synchronised()
    assert result is synced
    assert reason.startswith("kernel:")
    assert in_reason in reason


@pytest.mark.parametrize(
    "adjtimex",
    [unanswered_kernel, FakeAdjtimex(state=-1)],
    ids=["returns-minus-one", "fake-minus-one"],
)
def test_nothing_answers(adjtimex: Any) -> None:
    """004 att.3 art.9: when no time source answers, the dock's clock is not trusted (fails
    closed)."""
    runner = FakeRunner(timedatectl=timeout("timedatectl"))
    assert clock(runner, adjtimex).synchronised() == (False, NO_SOURCE)
    assert runner.programs == ["timedatectl", "chronyc"]


def test_an_adjtimex_that_raises_has_not_answered() -> None:
    """004 att.3 art.9: an adjtimex that raises has not answered: the clock is not trusted."""

    def broken(tx: Timex) -> int:
        raise OSError(1, "Operation not permitted")

    assert clock(FakeRunner(), broken).synchronised() == (False, NO_SOURCE)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="adjtimex is Linux's")
def test_the_real_libc_adjtimex_reads_the_kernel_clock() -> None:
    fn = libc_adjtimex()
    assert fn is not None
    tx = Timex()
    state = fn(tx)
    assert 0 <= state <= TIME_ERROR
    assert tx.tick > 0  # the kernel filled the struct in (ticks are ~10000 us)


def test_the_daemons_clock_asks_once_per_cache_period() -> None:
    """Issue 15: every slot of a sweep asks; one timedatectl answers them all, and an
    answer older than cache_s is asked again (a lost synchronisation is seen)."""
    t = [100.0]
    runner = FakeRunner(timedatectl=done("yes\n"))
    c = clock(runner, cache_s=5.0, monotonic=lambda: t[0])
    assert [c.synchronised() for _ in range(21)] == [(True, "timedatectl: NTP synchronised")] * 21
    assert runner.programs == ["timedatectl"]
    runner.answers["timedatectl"] = done("no\n")
    t[0] += 4.9
    assert c.synchronised()[0] is True  # still the kept answer
    t[0] += 0.2
    assert c.synchronised() == (False, "timedatectl: NTP not synchronised")
    assert runner.programs == ["timedatectl", "timedatectl"]


def test_without_a_cache_every_ask_asks() -> None:
    runner = FakeRunner(timedatectl=done("yes\n"))
    c = clock(runner)
    c.synchronised()
    c.synchronised()
    assert runner.programs == ["timedatectl", "timedatectl"]


def test_a_real_call_on_this_machine() -> None:
    c = SystemClock()
    result = c.synchronised()
    assert isinstance(result, tuple) and len(result) == 2
    assert isinstance(result[0], bool) and isinstance(result[1], str) and result[1]
    assert abs(c.now() - datetime.now(UTC).timestamp()) < 5


# --- the other clocks ---------------------------------------------------------------------


def test_trusted_and_fixed_clocks() -> None:
    trusted = TrustedClock(now=lambda: 12.5)
    assert trusted.synchronised() == (True, "trusted by configuration (emulation/tests only)")
    assert trusted.now() == 12.5
    fixed = FixedClock(False, "chronyc: not synchronised", 1_000.0)
    assert fixed.synchronised() == (False, "chronyc: not synchronised")
    assert fixed.now() == 1_000.0
    sources: list[ClockSource] = [trusted, fixed, SystemClock(runner=FakeRunner())]
    assert all(callable(s.synchronised) and callable(s.now) for s in sources)


# --- display ------------------------------------------------------------------------------

T = datetime(2026, 11, 22, 6, 45, 7, 123000, tzinfo=UTC).timestamp()


def test_utc_iso() -> None:
    assert utc_iso(T) == "2026-11-22T06:45:07.123Z"
    assert utc_iso(0) == "1970-01-01T00:00:00.000Z"
    # truncated toward the past, never rounded into the next second
    assert utc_iso(T + 0.8769) == "2026-11-22T06:45:07.999Z"


@pytest.mark.parametrize(
    ("tz", "shown"),
    [
        ("Asia/Shanghai", "2026-11-22 14:45:07 CST (UTC+08:00)"),
        ("Asia/Urumqi", "2026-11-22 12:45:07 +06 (UTC+06:00)"),
        ("UTC", "2026-11-22 06:45:07 UTC (UTC+00:00)"),
        ("America/St_Johns", "2026-11-22 03:15:07 NST (UTC-03:30)"),
    ],
)
def test_local_display(tz: str, shown: str) -> None:
    assert local_display(T, tz) == shown


def test_local_display_follows_summer_time() -> None:
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC).timestamp()
    assert local_display(summer, "Europe/Berlin") == "2026-07-01 14:00:00 CEST (UTC+02:00)"
