"""The dock's own clock, and whether it may be trusted (REQUIREMENTS.md section 3).

The dock sets each recorder's clock and must never push a time it does not trust.
:class:`SystemClock` asks the operating system whether the clock is synchronised,
trying in order

1. ``timedatectl show -p NTPSynchronized --value`` (systemd: "yes" / "no"),
2. ``chronyc -c tracking`` (chrony: leap status and the system clock's offset),
3. the kernel itself, ``adjtimex(2)`` through libc (TIME_ERROR, STA_UNSYNC),

and the first source that answers decides. A source that is missing, times out,
fails or prints something it cannot parse has not answered; when none answers the
clock is not trusted ("no time source answered"). Every outside call has a short
timeout, so a hung daemon cannot stall a check-out. The daemon keeps an answer for
``cache_s`` (:data:`SYNC_CACHE_S`): each slot of each sweep asks, and a ``timedatectl``
per ask was most of an idle dock's CPU (issue 15), while the sources' own answers
change only at their next poll of the time server (chrony: every 64 s or more).

:class:`TrustedClock` and :class:`FixedClock` are for emulation and tests.

Times are stored in UTC (:func:`utc_iso`) and shown in local time with the zone
spelled out (:func:`local_display`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from common import utc as common_utc

#: The reason given when no source could say whether the clock is synchronised.
NO_SOURCE = "no time source answered"

#: Seconds the daemon's SystemClock keeps an answer (one ask per sweep or two, not
#: one per slot); well under the time sources' own polling of their servers.
SYNC_CACHE_S = 5.0

# adjtimex(2): the return value TIME_ERROR and the status bit STA_UNSYNC both mean
# "the kernel's clock is not synchronised".
TIME_ERROR = 5
STA_UNSYNC = 0x0040
_TIME_STATES = {0: "TIME_OK", 1: "TIME_INS", 2: "TIME_DEL", 3: "TIME_OOP", 4: "TIME_WAIT"}

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class Timex(ctypes.Structure):
    """``struct timex`` from <sys/timex.h> (glibc layout, native word size)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        # glibc pads the struct with eleven anonymous ints for future use.
        ("_reserved", ctypes.c_int * 11),
    ]


#: ``adjtimex(struct timex *) -> int``: fills the struct, returns the clock state,
#: or -1 on error. Called with ``modes = 0`` it only reads.
AdjtimexFn = Callable[[Timex], int]


def libc_adjtimex() -> AdjtimexFn | None:
    """The C library's ``adjtimex``, or None where there is none (not Linux)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        fn = libc.adjtimex
    except (OSError, AttributeError, TypeError):
        return None
    fn.argtypes = [ctypes.POINTER(Timex)]
    fn.restype = ctypes.c_int
    return fn


class SystemClock:
    """The host's clock, trusted only while the OS says it is synchronised."""

    def __init__(
        self,
        max_offset_s: float = 0.5,
        runner: Runner = subprocess.run,
        adjtimex: AdjtimexFn | None = None,
        timeout_s: float = 2.0,
        cache_s: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_offset_s = max_offset_s
        self._run = runner
        self._adjtimex = adjtimex
        self.timeout_s = timeout_s
        self.cache_s = cache_s
        self._monotonic = monotonic
        self._lock = threading.Lock()  # one ask at a time; the others take its answer
        self._kept: tuple[float, tuple[bool, str]] | None = None

    def now(self) -> float:
        return time.time()

    def synchronised(self) -> tuple[bool, str]:
        """Whether the clock is synchronised, and why; an answer younger than
        ``cache_s`` seconds is given again without asking."""
        if self.cache_s <= 0:
            return self._ask()
        with self._lock:
            at = self._monotonic()
            kept = self._kept
            if kept is not None and 0 <= at - kept[0] < self.cache_s:
                return kept[1]
            answer = self._ask()
            self._kept = (self._monotonic(), answer)
            return answer

    def _ask(self) -> tuple[bool, str]:
        for source in (self._timedatectl, self._chronyc, self._kernel):
            answer = source()
            if answer is not None:
                return answer
        return False, NO_SOURCE

    # --- the sources: each returns (synchronised, reason), or None if it did not answer

    def _output(self, args: Sequence[str]) -> str | None:
        """The command's stdout if it ran and exited 0; None otherwise."""
        try:
            done = self._run(
                list(args), capture_output=True, text=True, timeout=self.timeout_s, check=False
            )
        except (OSError, subprocess.SubprocessError, ValueError):
            # FileNotFoundError (not installed), PermissionError, TimeoutExpired, ...
            return None
        if done.returncode != 0 or not isinstance(done.stdout, str):
            return None
        return done.stdout

    def _timedatectl(self) -> tuple[bool, str] | None:
        out = self._output(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
        return parse_timedatectl(out) if out is not None else None

    def _chronyc(self) -> tuple[bool, str] | None:
        out = self._output(["chronyc", "-c", "tracking"])
        return parse_chronyc_tracking(out, self.max_offset_s) if out is not None else None

    def _kernel(self) -> tuple[bool, str] | None:
        if self._adjtimex is None:
            self._adjtimex = libc_adjtimex()
        fn = self._adjtimex
        if fn is None:
            return None
        tx = Timex()  # modes = 0: read only, needs no privilege
        try:
            state = fn(tx)
        except (OSError, ctypes.ArgumentError, TypeError, ValueError):
            return None
        return interpret_adjtimex(state, tx.status, tx.esterror)


def parse_timedatectl(out: str) -> tuple[bool, str] | None:
    """``timedatectl show -p NTPSynchronized --value`` prints "yes" or "no"."""
    value = out.strip().lower()
    if value == "yes":
        return True, "timedatectl: NTP synchronised"
    if value == "no":
        return False, "timedatectl: NTP not synchronised"
    return None


def parse_chronyc_tracking(out: str, max_offset_s: float) -> tuple[bool, str] | None:
    """``chronyc -c tracking``: one CSV line of 14 fields.

    Field 5 (index 4) is the system clock's offset from NTP time in seconds (only
    its size matters here); the last field is the leap status ("Normal", "Insert second",
    "Delete second" or "Not synchronised").
    """
    lines = [line for line in out.splitlines() if line.strip()]
    if not lines:
        return None
    fields = lines[0].split(",")
    if len(fields) < 14:
        return None
    leap = fields[-1].strip()
    if leap.lower() == "not synchronised":
        return False, "chronyc: not synchronised"
    try:
        offset = float(fields[4])
    except ValueError:
        return None
    if not math.isfinite(offset) or abs(offset) > max_offset_s:
        return False, f"chronyc: offset {offset:+.3f} s exceeds {max_offset_s:g} s"
    source = fields[1].strip() or fields[0].strip()
    return True, f"chronyc: synchronised to {source}, offset {offset:+.6f} s"


def interpret_adjtimex(state: int, status: int, esterror_us: int = 0) -> tuple[bool, str] | None:
    """The kernel's verdict from adjtimex's return value and ``timex.status``."""
    if state < 0:
        return None  # the call failed
    if state == TIME_ERROR or status & STA_UNSYNC:
        why = "TIME_ERROR" if state == TIME_ERROR else "STA_UNSYNC"
        return False, f"kernel: clock not synchronised ({why})"
    name = _TIME_STATES.get(state, str(state))
    return True, f"kernel: clock synchronised ({name}, est. error {esterror_us} us)"


class TrustedClock:
    """A clock trusted by configuration: for emulation and tests, never production."""

    REASON = "trusted by configuration (emulation/tests only)"

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now

    def synchronised(self) -> tuple[bool, str]:
        return True, self.REASON

    def now(self) -> float:
        return self._now()


@dataclass
class FixedClock:
    """A clock that says what it is told: for tests."""

    synced: bool
    reason: str
    t: float

    def synchronised(self) -> tuple[bool, str]:
        return self.synced, self.reason

    def now(self) -> float:
        return self.t


# --- display ----------------------------------------------------------------------------


def utc_datetime(t: float) -> datetime | None:
    """UTC seconds since the epoch as an aware datetime (truncated to the millisecond,
    as :func:`common.utc.utc_iso` writes it), or None for a time no calendar here can
    show (NaN, infinite, outside the years 1 to 9999). Recorders state times too, so
    display and naming must not raise on them."""
    try:
        return common_utc.utc_datetime(t)
    except (OverflowError, ValueError, TypeError):
        return None


def invalid_time(t: object) -> str:
    """What is shown instead of a time :func:`utc_datetime` cannot represent."""
    return f"invalid time ({t!r} s)"


def utc_iso(t: float) -> str:
    """UTC seconds since the epoch as ISO 8601 to the millisecond:
    "2026-11-22T06:45:07.123Z", truncated toward the past like every stored time
    (:func:`invalid_time` when impossible)."""
    if utc_datetime(t) is None:
        return invalid_time(t)
    return common_utc.utc_iso(t)


def local_display(t: float, tz: str) -> str:
    """The local time in zone ``tz`` (an IANA name such as "Asia/Shanghai") with the
    zone shown: "2026-11-22 14:45:07 CST (UTC+08:00)" (:func:`invalid_time` when
    impossible). Raises zoneinfo.ZoneInfoNotFoundError for an unknown zone."""
    zone = ZoneInfo(tz)
    d = utc_datetime(t)
    try:
        local = None if d is None else d.astimezone(zone)
    except OverflowError:  # within a day of year 1 or 9999
        local = None
    if local is None:
        return invalid_time(t)
    zone_name, offset = local.tzname(), _offset(local.utcoffset())
    return f"{local.year:04d}-{local:%m-%d %H:%M:%S} {zone_name} (UTC{offset})"


def _offset(delta: timedelta | None) -> str:
    seconds = int((delta or timedelta(0)).total_seconds())
    sign = "-" if seconds < 0 else "+"
    h, rest = divmod(abs(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


__all__ = [
    "NO_SOURCE",
    "STA_UNSYNC",
    "TIME_ERROR",
    "FixedClock",
    "SystemClock",
    "Timex",
    "TrustedClock",
    "interpret_adjtimex",
    "invalid_time",
    "libc_adjtimex",
    "local_display",
    "parse_chronyc_tracking",
    "parse_timedatectl",
    "utc_datetime",
    "utc_iso",
]
