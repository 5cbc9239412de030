"""What one recorder can make the dock do: every exchange bounded in count, bytes,
memory and time."""

from __future__ import annotations

from dataclasses import dataclass

READ_MAX = 256 * 1024
MAX_CHUNK = 256 * 1024
MIN_CHUNK = 256
#: Damaged copies of the awaited frame, with nothing delivered in between, after
#: which we stop waiting for it and re-open with smaller replies.
STUCK_DAMAGE = 8
#: Most events the dock asks for in one EVENTS request (the protocol's page size).
EVENTS_PAGE = 128

# ------------------------------------------------------------------------------ bounds
# What one recorder can make the dock do. Every exchange is bounded in count, bytes,
# memory and time, so a recorder that answers within the protocol but lies costs its
# own slot a bounded amount and never the dock (docs/SECURITY.md). Change them here;
# ``Bounds`` carries them into a client (tests pass smaller ones).

#: Seconds the dock waits for the reply to one request (PROTOCOL.md 3.7). A recorder
#: answers at once; the time is for a noisy line, where the session repeats frames.
REPLY_TIMEOUT_S = 15.0
#: Seconds a recorder has to answer SELF_TEST (PROTOCOL.md 4.5.9).
SELF_TEST_TIMEOUT_S = 10.0
#: Most recordings the dock takes from one recorder's list: far beyond a body-worn
#: camera's storage (a day of footage is tens of files); a list claiming more is refused.
MAX_RECORDINGS = 10_000
#: How many more recordings a list may hold than STATUS ``recording_count`` said: a
#: recording finished between the two. A list claiming more is refused.
RECORDING_COUNT_SLACK = 16
#: Seconds one whole listing (every page) may take.
LIST_DEADLINE_S = 300.0
#: Most event-log entries read in one go (at one docking). An honest log longer than
#: this is read in turns: the rest from where this read stopped, next time.
MAX_EVENTS = 10_000
#: Most bytes of event-log entries read in one go (their text counted as UTF-8).
MAX_EVENT_BYTES = 4 << 20
#: Seconds one read of the event log (every page) may take.
EVENTS_DEADLINE_S = 300.0
#: Largest recording the dock believes in (1 TiB); a recording is also refused when
#: it is larger than the recorder's own storage (STATUS ``storage_total``).
MAX_RECORDING_BYTES = 1 << 40
#: Longest recording id, previous id and officer id the dock accepts (UTF-8 bytes).
MAX_ID_BYTES = 128
#: Recording start and end times the dock believes in: 2000-01-01 to 2100-01-01 UTC
#: (ms since the epoch). A recording outside them (a recorder whose clock reset to
#: 1970, say) is still offloaded, since footage must not stay behind for a bad clock,
#: but its time is marked doubtful (``RecordingInfo.time_doubt``) and audited.
EARLIEST_MS = 946_684_800_000
LATEST_MS = 4_102_444_800_000
#: Times no calendar can show (before 1970 or from the year 10000 on): refused.
REPRESENTABLE_MS = (0, 253_402_300_800_000)
#: READ goodput floor: every ``READ_WINDOW_S`` seconds of a read (time the dock itself
#: spends writing excluded) must bring at least this many bytes per second, or the
#: read fails and the recording stays on the device. A UART at 115200 baud carries
#: about 11 KB/s; a recorder capping its replies at a byte or two gives a few hundred.
READ_MIN_BYTES_PER_S = 4096
READ_WINDOW_S = 30.0
#: Replies kept that no one has waited for yet (late, repeated or unsolicited ones
#: beyond this are dropped, oldest first).
MAX_PENDING_REPLIES = 64


@dataclass(frozen=True)
class Bounds:
    """The bounds above, for one client (see each constant for its meaning; the reply
    timeout is the client's own ``timeout``)."""

    self_test_timeout_s: float = SELF_TEST_TIMEOUT_S
    max_recordings: int = MAX_RECORDINGS
    recording_count_slack: int = RECORDING_COUNT_SLACK
    list_deadline_s: float = LIST_DEADLINE_S
    max_events: int = MAX_EVENTS
    max_event_bytes: int = MAX_EVENT_BYTES
    events_deadline_s: float = EVENTS_DEADLINE_S
    max_recording_bytes: int = MAX_RECORDING_BYTES
    max_id_bytes: int = MAX_ID_BYTES
    earliest_ms: int = EARLIEST_MS
    latest_ms: int = LATEST_MS
    read_min_bytes_per_s: int = READ_MIN_BYTES_PER_S
    read_window_s: float = READ_WINDOW_S
    max_pending_replies: int = MAX_PENDING_REPLIES


DEFAULT_BOUNDS = Bounds()
