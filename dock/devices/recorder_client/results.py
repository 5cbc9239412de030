"""What a recorder's replies become: its identity, status, recordings and events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dock.devices.recorder_client.bounds import DEFAULT_BOUNDS, Bounds
from dock.devices.recorder_client.checks import recording_problem, time_doubt
from dock.devices.recorder_client.errors import InvalidRecording, ProtocolViolation
from firmware_protocol.messages import Capability


class ReplyFields(dict[str, Any]):
    """A reply's fields. The codec guarantees the fields its own type requires; a
    field the caller expects and the reply lacks means the recorder answered with
    another type of reply: a ProtocolViolation, not a KeyError, wherever it is read."""

    def __missing__(self, key: str) -> Any:
        raise ProtocolViolation(f"the recorder's reply has no {key!r}: not the reply asked for")


@dataclass(frozen=True)
class Identity:
    serial: str
    model: str
    firmware: str
    vendor: str | None
    protocol_version: int
    capabilities: Capability
    enrolled: bool
    device_public_key: bytes | None


@dataclass(frozen=True)
class Status:
    battery_percent: int
    charging: bool
    storage_total_bytes: int
    storage_free_bytes: int
    recording: bool
    device_time: float
    clock_offset_s: float
    fault_flags: int
    recording_count: int
    event_count: int | None
    officer_id: str | None
    battery_health_percent: int | None
    battery_cycles: int | None
    battery_temp_c: float | None


@dataclass(frozen=True)
class RecordingInfo:
    id: str
    start_ms: int
    end_ms: int
    size: int
    sha256: bytes
    signature: bytes | None
    flags: int
    sequence: int | None
    previous_id: str | None
    officer_id: str | None
    stop_reason: int | None
    #: Why its start/end times cannot be right (None: plausible); the footage is real.
    time_doubt: str | None = None

    @classmethod
    def from_fields(
        cls,
        f: dict[str, Any],
        storage_total: int | None = None,
        bounds: Bounds = DEFAULT_BOUNDS,
    ) -> RecordingInfo:
        """A recording as LIST_RECORDINGS describes it; InvalidRecording if the
        description cannot be true (``recording_problem``)."""
        problem = recording_problem(f, storage_total, bounds)
        if problem is not None:
            raise InvalidRecording(str(f.get("id", "")), problem)
        return cls(
            id=f["id"],
            start_ms=f["start_ms"],
            end_ms=f["end_ms"],
            size=f["size"],
            sha256=f["sha256"],
            signature=f.get("signature"),
            flags=f.get("flags", 0),
            sequence=f.get("sequence"),
            previous_id=f.get("previous_id"),
            officer_id=f.get("officer_id"),
            stop_reason=f.get("stop_reason"),
            time_doubt=time_doubt(f, bounds),
        )


class RecordingList(list[RecordingInfo]):
    """The recordings a recorder listed, each validated. ``refused`` holds those whose
    description could not be true: left on the device, never erased, reported."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__(items)
        self.refused: list[InvalidRecording] = []


@dataclass(frozen=True)
class EventLog:
    """Entries ``since`` .. ``next`` - 1 of a recorder's event log. ``complete`` is
    False when a bound stopped the read before the end: read on from ``next`` later."""

    events: list[dict[str, Any]]
    since: int
    next: int
    complete: bool


def event_bytes(event: dict[str, Any]) -> int:
    return 16 + sum(len(v.encode("utf-8")) if isinstance(v, str) else 8 for v in event.values())
