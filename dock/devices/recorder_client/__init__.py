"""The dock's side of the recorder protocol: a blocking client over any Transport.

It drives the sans-I/O session from ``firmware_protocol`` with real time, matches
replies to requests by request id, pipelines READs for throughput, shrinks the
READ size when the line is noisy (and grows it back when it is clean), and turns
every way a recorder can fail into one of three exceptions a caller can act on.

Modules: :mod:`.bounds` (what one recorder can make the dock do), :mod:`.errors`,
:mod:`.checks` (can what it states be true), :mod:`.results` (what its replies
become), :mod:`.flow` (READ sizing, goodput floor), :mod:`.link` (the session) and
:mod:`.client` (:class:`RecorderClient`, the operations). Everything public is
re-exported here. A test that changes a module-level default patches the module that
reads it (``DEFAULT_BOUNDS``: :mod:`.link`).
"""

from __future__ import annotations

from dock.devices.recorder_client.bounds import (
    DEFAULT_BOUNDS,
    EARLIEST_MS,
    EVENTS_DEADLINE_S,
    EVENTS_PAGE,
    LATEST_MS,
    LIST_DEADLINE_S,
    MAX_CHUNK,
    MAX_EVENT_BYTES,
    MAX_EVENTS,
    MAX_ID_BYTES,
    MAX_PENDING_REPLIES,
    MAX_RECORDING_BYTES,
    MAX_RECORDINGS,
    MIN_CHUNK,
    READ_MAX,
    READ_MIN_BYTES_PER_S,
    READ_WINDOW_S,
    RECORDING_COUNT_SLACK,
    REPLY_TIMEOUT_S,
    REPRESENTABLE_MS,
    SELF_TEST_TIMEOUT_S,
    STUCK_DAMAGE,
    Bounds,
)
from dock.devices.recorder_client.checks import (
    MAX_LABEL_BYTES,
    MAX_SERIAL_BYTES,
    hello_problem,
    recording_problem,
    time_doubt,
)
from dock.devices.recorder_client.client import (
    RecorderClient,
)
from dock.devices.recorder_client.errors import (
    AuthenticationFailed,
    FrameTooLong,
    InvalidRecording,
    LinkError,
    LinkGone,
    NoAnswer,
    NoReply,
    NotPermitted,
    ProtocolViolation,
    RecorderRefused,
    Stalled,
)
from dock.devices.recorder_client.flow import (
    ChunkSizer,
)
from dock.devices.recorder_client.link import (
    dock_session_config,
)
from dock.devices.recorder_client.results import (
    EventLog,
    Identity,
    RecordingInfo,
    RecordingList,
    ReplyFields,
    Status,
)

__all__ = [
    "DEFAULT_BOUNDS",
    "EARLIEST_MS",
    "EVENTS_DEADLINE_S",
    "EVENTS_PAGE",
    "LATEST_MS",
    "LIST_DEADLINE_S",
    "MAX_CHUNK",
    "MAX_EVENTS",
    "MAX_EVENT_BYTES",
    "MAX_ID_BYTES",
    "MAX_LABEL_BYTES",
    "MAX_PENDING_REPLIES",
    "MAX_RECORDINGS",
    "MAX_RECORDING_BYTES",
    "MAX_SERIAL_BYTES",
    "MIN_CHUNK",
    "READ_MAX",
    "READ_MIN_BYTES_PER_S",
    "READ_WINDOW_S",
    "RECORDING_COUNT_SLACK",
    "REPLY_TIMEOUT_S",
    "REPRESENTABLE_MS",
    "SELF_TEST_TIMEOUT_S",
    "STUCK_DAMAGE",
    "AuthenticationFailed",
    "Bounds",
    "ChunkSizer",
    "EventLog",
    "FrameTooLong",
    "Identity",
    "InvalidRecording",
    "LinkError",
    "LinkGone",
    "NoAnswer",
    "NoReply",
    "NotPermitted",
    "ProtocolViolation",
    "RecorderClient",
    "RecorderRefused",
    "RecordingInfo",
    "RecordingList",
    "ReplyFields",
    "Stalled",
    "Status",
    "dock_session_config",
    "hello_problem",
    "recording_problem",
    "time_doubt",
]
