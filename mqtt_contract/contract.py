"""The MQTT contract between docks and headquarters (topic map and payloads), version 1.

Docks and headquarters share this module and nothing else: ``hq`` may not import the dock,
and the dock builds every topic and payload it publishes here, so the two sides cannot
drift apart. It is pure (no I/O, no clock reads); ``MQTT.md`` beside it is the prose
version for people writing another client. Payloads are JSON objects carrying ``schema``;
fields are only ever added within a schema version, so readers ignore fields they do not
know and refuse a schema they do not know.
"""

from __future__ import annotations

import calendar
import datetime
import hashlib
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from common.utc import utc_iso

#: Incompatible changes get a new root (``bwc/v2``) and a new schema number.
ROOT = "bwc/v1"
SCHEMA = 1
DOCKS = f"{ROOT}/docks"
#: Retained, with headquarters' own Last Will: docks republish birth and state on "online".
HQ_STATUS = f"{ROOT}/hq/status"
#: What headquarters subscribes to for the whole fleet.
FLEET_FILTER = f"{DOCKS}/#"

#: Site and dock ids are single topic levels: no "/", "+", "#" or spaces, and short.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ContractError(ValueError):
    """A topic or payload that does not follow this contract."""


class Kind(StrEnum):
    STATE = "state"  # retained: ready | lost (Last Will) | stopped
    BIRTH = "birth"  # retained: software, configuration hash, boot id, slots
    HEALTH = "health"  # periodic, QoS 1: the dock and every slot
    SLOT = "slot"  # retained per slot: slot/<slot id>
    EVENT = "event"  # QoS 1 from the dock's outbox: event/<type>
    CMD = "cmd"  # headquarters -> dock: cmd/<command>
    REPLY = "reply"  # dock -> headquarters: the answer to a command


class DockState(StrEnum):
    READY = "ready"
    LOST = "lost"
    STOPPED = "stopped"


class SlotState(StrEnum):
    """A slot's state as the dock's state machine names it (retained slot topic)."""

    EMPTY = "empty"
    IDENTIFYING = "identifying"
    CHARGING = "charging"
    OFFLOADING = "offloading"
    READY = "ready"
    FAILED_CHECK = "failed_check"
    CHECKED_OUT = "checked_out"  # granted to an officer, not yet taken out
    FAULT = "fault"


class EventType(StrEnum):
    CHECKOUT_GRANTED = "checkout.granted"
    CHECKOUT_REFUSED = "checkout.refused"
    CHECKIN = "checkin"
    CHECKS_FAILED = "checks.failed"
    OFFLOAD_STARTED = "offload.started"
    OFFLOAD_DONE = "offload.done"
    OFFLOAD_FAILED = "offload.failed"
    GAP_FOUND = "gap.found"
    GAP_ALERT = "gap.alert"  # recording could not continue: the unit head told at once
    # footage missing from a recorder's numbering, made outside custody, or unsigned
    CONTINUITY_FLAGGED = "continuity.flagged"
    DEADLINE_AT_RISK = "deadline.at_risk"
    DEADLINE_OVERDUE = "deadline.overdue"
    RECORDER_NOT_RETURNED = "recorder.not_returned"  # not docked by the end of its shift
    # a return signed by someone other than its custodian, or by nobody in the window
    HANDOVER_FLAGGED = "handover.flagged"
    CLOCK_DRIFT = "clock.drift"
    AUDIT_CHECKPOINT = "audit.checkpoint"
    AUDIT_REWOUND = "audit.rewound"  # the dock's audit log went backwards under its reporter
    SCANNER_HIT = "scanner.hit"
    FIXITY_FAILED = "fixity.failed"
    DEVICE_FLAGGED = "device.flagged"
    PIN_LOCKED = "pin.locked"  # five wrong PINs in a row for one officer number
    PIN_UNLOCKED = "pin.unlocked"  # a supervisor unlocked it
    COMMAND = "command"  # a command from headquarters, accepted or refused
    # a sealed package could not be copied to a replication target (it stays queued)
    REPLICATION_FAILED = "replication.failed"


class Command(StrEnum):
    STATUS = "status"  # publish birth, state, slots and health now
    FLAG = "flag"  # args: serial, maintenance (bool), note
    LOST = "lost"  # args: serial, note
    RESEND = "resend"  # args: boot, from_seq, to_seq: events headquarters is missing


#: Commands older than this (by their "issued" time) are refused as stale or replayed.
COMMAND_MAX_AGE_S = 300.0


@dataclass(frozen=True)
class Address:
    """Where a message on the fleet tree came from: ``bwc/v1/docks/<site>/<dock>/<kind>/…``."""

    site: str
    dock: str
    kind: Kind
    #: The level after the kind: slot id, event type or command name ("" for the others).
    name: str = ""

    @property
    def topic(self) -> str:
        return dock_topic(self.site, self.dock, self.kind, self.name)


def check_id(what: str, value: str) -> str:
    if not isinstance(value, str) or not ID_RE.match(value):
        raise ContractError(
            f"{what} {value!r}: use 1-64 letters, digits, '_', '-' or '.', starting with a "
            "letter or digit (it is one MQTT topic level)"
        )
    return value


_NAMED = {Kind.SLOT, Kind.EVENT, Kind.CMD}


def dock_topic(site: str, dock: str, kind: Kind | str, name: str = "") -> str:
    kind = Kind(kind)
    base = f"{DOCKS}/{check_id('site', site)}/{check_id('dock', dock)}/{kind.value}"
    if kind in _NAMED:
        if not name or not ID_RE.match(name):
            raise ContractError(f"{kind.value} topic needs a name, got {name!r}")
        return f"{base}/{name}"
    if name:
        raise ContractError(f"{kind.value} topic takes no name")
    return base


def command_filter(site: str, dock: str) -> str:
    """What a dock subscribes to for its commands."""
    return f"{DOCKS}/{check_id('site', site)}/{check_id('dock', dock)}/{Kind.CMD.value}/+"


def parse_topic(topic: str) -> Address:
    parts = topic.split("/")
    prefix = DOCKS.split("/")
    if parts[: len(prefix)] != prefix:
        raise ContractError(f"{topic}: not under {DOCKS}/")
    rest = parts[len(prefix) :]
    if len(rest) < 3:
        raise ContractError(f"{topic}: expected {DOCKS}/<site>/<dock>/<kind>")
    site, dock, kind_text, *name = rest
    try:
        kind = Kind(kind_text)
    except ValueError:
        raise ContractError(f"{topic}: unknown kind {kind_text!r}") from None
    if (kind in _NAMED) != (len(name) == 1) or len(name) > 1:
        raise ContractError(f"{topic}: wrong number of levels for {kind.value}")
    address = Address(check_id("site", site), check_id("dock", dock), kind, name[0] if name else "")
    if address.name and not ID_RE.match(address.name):
        raise ContractError(f"{topic}: bad name {address.name!r}")
    return address


def utc(t: float) -> str:
    """ISO 8601 in UTC with milliseconds, the only time format on the wire: the one
    formatter, :func:`common.utc.utc_iso` (truncated toward the past, never rounded up)."""
    return utc_iso(t)


_UTC_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z")


def parse_utc(text: str) -> float:
    """Inverse of :func:`utc` (also accepts no fraction); a ContractError otherwise.

    Headquarters parses a time in every message, so no strptime: a regex, a range
    check by ``datetime`` and ``calendar.timegm``.
    """
    m = _UTC_RE.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ContractError(f"time {text!r}: expected ISO 8601 UTC like 2026-11-22T09:05:53.120Z")
    fields = tuple(int(v) for v in m.groups()[:6])
    year, month, day, hour, minute, second = fields
    try:  # rejects month 13, 24:00:00, Feb 30
        datetime.datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise ContractError(f"time {text!r}: not a real date and time") from None
    frac = m.group(7) or "0"
    scale = 10 ** len(frac)
    return (calendar.timegm(fields) * scale + int(frac)) / scale  # one rounding: utc() inverts it


# Required fields per kind and their JSON types; more fields are allowed and ignored.
_REQUIRED: dict[Kind, dict[str, Any]] = {
    Kind.STATE: {"state": str, "boot": str, "time": str},
    Kind.BIRTH: {
        "boot": str,
        "time": str,
        "software": str,
        "config_hash": str,
        "started": str,
        "slots": list,
        "site": str,
        "dock": str,
    },
    Kind.HEALTH: {"boot": str, "seq": int, "time": str, "dock": dict, "slots": list},
    Kind.SLOT: {"slot": str, "state": str, "time": str},
    Kind.EVENT: {"type": str, "boot": str, "seq": int, "time": str, "data": dict},
    Kind.CMD: {
        "id": str,
        "site": str,
        "dock": str,
        "command": str,
        "issued": str,
        "by": str,
        "args": dict,
        "sig": str,
    },
    Kind.REPLY: {"id": str, "ok": bool, "time": str},
}


def encode(kind: Kind, body: dict[str, Any]) -> bytes:
    """Validate ``body`` for ``kind`` and serialise it (compact UTF-8 JSON with ``schema``)."""
    payload = {"schema": SCHEMA, **body}
    _validate(Kind(kind), payload)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def decode(kind: Kind, raw: bytes | bytearray | str) -> dict[str, Any]:
    """Parse and validate one payload; a ContractError names what is wrong."""
    try:
        payload = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ContractError(f"{Kind(kind).value}: not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise ContractError(f"{Kind(kind).value}: payload must be a JSON object")
    _validate(Kind(kind), payload)
    return payload


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python reads them, JSON has none


def _validate(kind: Kind, payload: dict[str, Any]) -> None:
    if payload.get("schema") != SCHEMA:
        raise ContractError(
            f"{kind.value}: schema {payload.get('schema')!r} not understood (this side speaks "
            f"{SCHEMA})"
        )
    for name, typ in _REQUIRED[kind].items():
        value = payload.get(name)
        # bool is an int in Python; a sequence number must not be True.
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise ContractError(f"{kind.value}: field {name!r} missing or not {typ.__name__}")
    for name in ("time", "started", "issued"):
        if name in payload:
            parse_utc(payload[name])
    if kind is Kind.STATE:
        _enum(kind, "state", payload["state"], DockState)
    elif kind is Kind.HEALTH and payload.get("replication") is not None:
        check_replication(payload["replication"])
    elif kind is Kind.EVENT:
        _enum(kind, "type", payload["type"], EventType)
        if payload["seq"] < 1:
            raise ContractError("event: seq starts at 1")
        if payload["type"] == EventType.REPLICATION_FAILED:
            _check_replication_failed(payload["data"])
    elif kind is Kind.CMD:
        _enum(kind, "command", payload["command"], Command)


# --- replication (MQTT.md, "health" and "replication.failed") -------------------------

#: Bounds of health's ``replication`` object and of a ``replication.failed`` event, so one
#: dock's report stays small whatever its queue or its targets' errors hold.
REPLICATION_MAX_TARGETS = 16
REPLICATION_NAME_MAX = 64
REPLICATION_ERROR_MAX = 200
REPLICATION_PACKAGE_MAX = 200
_COUNTS = ("pending", "sending", "failed", "replicated_24h")
_TIMES = ("oldest_pending_at", "last_success_at")


def one_line(text: object, limit: int = REPLICATION_ERROR_MAX) -> str:
    """``text`` as one printable line of at most ``limit`` characters (an error from a
    server may hold anything): controls become spaces, the cut end says "…"."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _short_text(where: str, value: Any, limit: int, *, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, str) or len(value) > limit or value != one_line(value, limit):
        raise ContractError(f"{where}: expected one line of at most {limit} characters")


def _count(where: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ContractError(f"{where}: expected a count (an integer >= 0)")


def check_replication(value: Any) -> None:
    """Health's ``replication`` object: ``deadline_hours`` and at most
    :data:`REPLICATION_MAX_TARGETS` targets, each with its counts, times and last error."""
    if not isinstance(value, dict):
        raise ContractError("health: replication must be an object")
    hours = value.get("deadline_hours")
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours < 1e6:
        raise ContractError("health: replication.deadline_hours must be a number > 0")
    targets = value.get("targets")
    if not isinstance(targets, list) or len(targets) > REPLICATION_MAX_TARGETS:
        raise ContractError(
            f"health: replication.targets must be a list of at most {REPLICATION_MAX_TARGETS}"
        )
    for i, target in enumerate(targets):
        where = f"health: replication.targets[{i}]"
        if not isinstance(target, dict):
            raise ContractError(f"{where} must be an object")
        _short_text(f"{where}.name", target.get("name"), REPLICATION_NAME_MAX)
        for name in _COUNTS:
            _count(f"{where}.{name}", target.get(name))
        for name in _TIMES:
            if target.get(name) is not None:
                parse_utc(target[name])
        _short_text(
            f"{where}.last_error", target.get("last_error"), REPLICATION_ERROR_MAX, nullable=True
        )


def _check_replication_failed(data: dict[str, Any]) -> None:
    """The fields a ``replication.failed`` event names, where present, are bounded."""
    for name, limit in (
        ("package", REPLICATION_PACKAGE_MAX),
        ("target", REPLICATION_NAME_MAX),
        ("reason", REPLICATION_ERROR_MAX),
    ):
        if name in data:
            _short_text(f"event replication.failed: {name}", data[name], limit)
    if "attempts" in data:
        _count("event replication.failed: attempts", data["attempts"])


def _enum(kind: Kind, field: str, value: str, enum: type[StrEnum]) -> None:
    try:
        enum(value)
    except ValueError:
        raise ContractError(f"{kind.value}: unknown {field} {value!r}") from None


def hq_status(online: bool) -> bytes:
    """Headquarters' retained presence on :data:`HQ_STATUS` (its will says offline)."""
    state = "online" if online else "offline"
    return json.dumps({"schema": SCHEMA, "state": state}, separators=(",", ":")).encode()


def hq_online(raw: bytes) -> bool:
    """Whether a :data:`HQ_STATUS` payload says headquarters is (back) online."""
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(payload, dict) and payload.get("state") == "online"


def signing_bytes(command: dict[str, Any]) -> bytes:
    """What headquarters signs (Ed25519) and the dock verifies: the command without ``sig``,
    as JSON with sorted keys, no spaces and non-ASCII kept as UTF-8."""
    body = {k: v for k, v in command.items() if k != "sig"}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


# --- audit checkpoints (MQTT.md, "Audit checkpoints") ------------------------------------

#: A checkpoint file: what ``dock-hq checkpoint`` prints and ``dock audit verify --against``
#: reads (the dock's audit log keeps its own copy in the same form).
CHECKPOINT_FILE_FORMAT = "bwc-dock-audit-checkpoint/1"
#: The audit log before its first entry: the "head" of seq 0.
GENESIS = "0" * 64


def _length_prefixed(text: str) -> bytes:
    raw = text.encode("utf-8")
    return len(raw).to_bytes(4, "big") + raw


def checkpoint_signed_bytes(dock: str, seq: int, head: str, time: str) -> bytes:
    """What a dock's Ed25519 signature of an audit checkpoint covers (the dock's audit
    log, checkpoint construction version 1): each part as 4-byte big-endian length and
    UTF-8, in this order."""
    parts = ("bwc-dock-audit-checkpoint/v1", dock, str(seq), head, time)
    return b"".join(_length_prefixed(p) for p in parts)


def key_fingerprint(public_key: bytes) -> str:
    """How a dock shows its public key to people: the first 8 bytes of its SHA-256 in
    hex, in groups of four (``3f2a:9c01:77b4:e0d5``)."""
    digest = hashlib.sha256(public_key).hexdigest()[:16]
    return ":".join(digest[i : i + 4] for i in range(0, 16, 4))


def event_key(site: str, dock: str, payload: dict[str, Any]) -> tuple[str, str, str, int]:
    """The identity of an event across retries and restarts: duplicates share it."""
    return (site, dock, payload["boot"], payload["seq"])
