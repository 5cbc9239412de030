"""The dock's side of the recorder protocol: a blocking client over any Transport.

It drives the sans-I/O session from ``firmware_protocol`` with real time, matches
replies to requests by request id, pipelines READs for throughput, shrinks the
READ size when the line is noisy (and grows it back when it is clean), and turns
every way a recorder can fail into one of three exceptions a caller can act on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from dock.domain.interfaces import Transport
from firmware_protocol import auth
from firmware_protocol.messages import (
    AUTHENTICATED_VERSION,
    PRIVILEGED,
    SUPPORTED_VERSIONS,
    Capability,
    ErrorCode,
    MalformedMessage,
    Message,
    MsgType,
    UnknownMessage,
    decode,
    encode,
    request,
)
from firmware_protocol.session import (
    Delivered,
    LinkFailed,
    PeerReset,
    Role,
    Session,
    SessionConfig,
    SessionEvent,
    State,
)

log = logging.getLogger("dock.recorder")

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


class LinkError(ConnectionError):
    """The recorder stopped answering, the link dropped, or it is not a recorder."""


class ProtocolViolation(LinkError):
    """The recorder answered, but with what the protocol forbids or no honest recorder
    says: a reply of another type, pages that do not add up, a value that cannot be
    true, more than the dock's bounds allow. Not retried on the same link."""


class Stalled(LinkError):
    """The recorder answers, but too slowly: an exchange outlived its bound (a
    self-test, a listing, a read below the goodput floor). Not retried."""


class NoReply(LinkError):
    """No reply within the wait's timeout."""


class InvalidRecording(ProtocolViolation):
    """One recording's description cannot be true. The dock skips it (it stays on the
    device, never erased) and reports it; the other recordings are not affected."""

    def __init__(self, recording_id: str, reason: str) -> None:
        self.recording_id = recording_id[:MAX_ID_BYTES]
        self.reason = reason
        super().__init__(f"recording {self.recording_id!r} refused: {reason}")


class ReplyFields(dict[str, Any]):
    """A reply's fields. The codec guarantees the fields its own type requires; a
    field the caller expects and the reply lacks means the recorder answered with
    another type of reply: a ProtocolViolation, not a KeyError, wherever it is read."""

    def __missing__(self, key: str) -> Any:
        raise ProtocolViolation(f"the recorder's reply has no {key!r}: not the reply asked for")


class NoAnswer(LinkError):
    """Nothing answered on the link at all: most likely no recorder is docked there."""


class LinkGone(LinkError):
    """The transport itself is gone (unplugged, closed): nothing to re-open."""


class RecorderRefused(Exception):
    """The recorder answered with an ERROR."""

    def __init__(self, code: int, message: str, request_type: int | None = None) -> None:
        try:
            name = ErrorCode(code).name
        except ValueError:
            name = f"ERROR_{code}"
        super().__init__(f"{name}: {message}" if message else name)
        self.code = code
        self.name = name
        self.message = message
        self.request_type = request_type


class AuthenticationFailed(Exception):
    """The recorder did not accept our proof, or could not prove itself to us."""


class NotPermitted(RecorderRefused):
    """The dock will not send this request: the session cannot protect it (a recorder
    speaking protocol version 1, or no authentication yet) or the recorder lacks the
    capability. Nothing was sent; the recorder is unchanged."""

    def __init__(self, message: str) -> None:
        super().__init__(int(ErrorCode.UNSUPPORTED), message)


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


def recording_problem(
    f: dict[str, Any], storage_total: int | None = None, bounds: Bounds = DEFAULT_BOUNDS
) -> str | None:
    """Why a LIST_RECORDINGS entry cannot be true, or None. The codec has checked the
    types (u64, i64, 32-byte hash); this checks what the values claim."""
    b = bounds
    rid = f["id"]
    if not rid:
        return "empty id"
    for name in ("id", "previous_id", "officer_id"):
        text = f.get(name)
        if text is not None and len(text.encode("utf-8")) > b.max_id_bytes:
            return f"{name} longer than {b.max_id_bytes} bytes"
    size = f["size"]
    if size > b.max_recording_bytes:
        return f"size {size} bytes, beyond any recorder (at most {b.max_recording_bytes})"
    if storage_total is not None and size > storage_total:
        return f"size {size} bytes, more than the recorder's own storage ({storage_total})"
    low, high = REPRESENTABLE_MS
    for name in ("start_ms", "end_ms"):
        if not low <= f[name] < high:
            return f"{name.removesuffix('_ms')} {f[name]} ms is no calendar time (1970..9999)"
    return None


def time_doubt(f: dict[str, Any], bounds: Bounds = DEFAULT_BOUNDS) -> str | None:
    """Why a recording's (representable) times cannot be right, or None."""
    b, start, end = bounds, f["start_ms"], f["end_ms"]
    if not b.earliest_ms <= start < b.latest_ms:
        return f"start {start} ms is not between {_year(b.earliest_ms)} and {_year(b.latest_ms)}"
    if not start <= end < b.latest_ms:
        return f"end {end} ms is before its start or after {_year(b.latest_ms)}"
    return None


#: Longest serial the dock accepts (UTF-8 bytes): it names slots, files and audit entries.
MAX_SERIAL_BYTES = 64
#: Longest model, firmware or vendor string (UTF-8 bytes).
MAX_LABEL_BYTES = 128


def hello_problem(f: dict[str, Any]) -> str | None:
    """Why a HELLO reply cannot be an honest recorder's, or None. Its texts are bounded
    here; control characters in them are escaped wherever they are shown
    (``dock.support.text.shown``) and mapped wherever they name a file (``safe_name``)."""
    if f["version"] not in SUPPORTED_VERSIONS:
        return f"version {f['version']} was not offered ({SUPPORTED_VERSIONS})"
    serial = f["serial"]
    if not serial.strip() or len(serial.encode("utf-8")) > MAX_SERIAL_BYTES:
        return f"serial empty or longer than {MAX_SERIAL_BYTES} bytes"
    for name in ("model", "firmware", "vendor"):
        text = f.get(name)
        if text is not None and len(text.encode("utf-8")) > MAX_LABEL_BYTES:
            return f"{name} longer than {MAX_LABEL_BYTES} bytes"
    return None


def _year(ms: int) -> int:
    return time.gmtime(ms // 1000).tm_year


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


def _event_bytes(event: dict[str, Any]) -> int:
    return 16 + sum(len(v.encode("utf-8")) if isinstance(v, str) else 8 for v in event.values())


class _Goodput:
    """The READ goodput floor, over consecutive windows of the read's own time."""

    def __init__(self, mono: Callable[[], float], bounds: Bounds, rec_id: str) -> None:
        self._mono = mono
        self.floor = bounds.read_min_bytes_per_s
        self.window = bounds.read_window_s
        self.rec_id = rec_id[:MAX_ID_BYTES]
        self._restart()

    def _restart(self) -> None:
        self.start, self.bytes, self.excluded = self._mono(), 0, 0.0

    def exclude(self, seconds: float) -> None:
        """Time the dock itself spent (writing what it read): not the recorder's."""
        self.excluded += seconds

    def check(self, delivered: int = 0) -> None:
        self.bytes += delivered
        elapsed = self._mono() - self.start - self.excluded
        if elapsed < self.window:
            return
        rate = self.bytes / elapsed
        if rate < self.floor:
            raise Stalled(
                f"READ of {self.rec_id!r}: {rate:.0f} bytes/s over {elapsed:.0f} s, below "
                f"the floor of {self.floor} bytes/s"
            )
        self._restart()


class ChunkSizer:
    """How many bytes to ask for per READ, from how often replies arrive damaged.

    One frame per READ reply means a frame too long for the line's error rate can
    never get through; so start small, double while replies come through clean,
    and halve while most of them need repeating. On a clean USB link this reaches
    the maximum within a few hundred KiB; at a bit error rate of 1e-4 it settles
    between a quarter and one kilobyte.
    """

    INITIAL = 4096
    WINDOW = 16

    def __init__(self, minimum: int = MIN_CHUNK, maximum: int = MAX_CHUNK) -> None:
        self.minimum, self.maximum = minimum, maximum
        self.size = min(self.INITIAL, maximum)
        self._outcomes: list[bool] = []

    def on_reply(self, damaged: bool) -> None:
        o = self._outcomes
        o.append(damaged)
        bad = sum(o)
        if len(o) >= self.WINDOW // 2 and bad * 3 >= len(o):
            self._resize(self.size // 2)
        elif len(o) >= self.WINDOW and bad * 6 < len(o):
            self._resize(self.size * 2)
        elif len(o) >= self.WINDOW:
            del o[0]

    def on_session_lost(self) -> None:
        self._resize(self.size // 4)

    def cap(self, size: int) -> None:
        self.maximum = max(self.minimum, size)
        self._resize(self.size)

    def _resize(self, size: int) -> None:
        self.size = max(self.minimum, min(self.maximum, size))
        self._outcomes.clear()


class FrameTooLong(LinkError):
    """A reply keeps arriving damaged: the line cannot carry a frame that long."""


_CAPABILITY_FOR: dict[MsgType, Capability] = {
    MsgType.ASSIGN: Capability.ASSIGN,
    MsgType.ERASE: Capability.ERASE,
    MsgType.MASS_STORAGE: Capability.MASS_STORAGE,
}


def dock_session_config() -> SessionConfig:
    return SessionConfig(window=16, max_payload=MAX_CHUNK + 1024, rto_initial=0.3, max_retries=8)


def _status_problem(status: Status, bounds: Bounds) -> str | None:
    """Why a STATUS cannot be true, or None."""
    if status.battery_percent > 100:
        return f"battery at {status.battery_percent} %"
    if status.storage_free_bytes > status.storage_total_bytes:
        return (
            f"{status.storage_free_bytes} bytes free of a storage of {status.storage_total_bytes}"
        )
    officer = status.officer_id
    if officer is not None and len(officer.encode("utf-8")) > bounds.max_id_bytes:
        return f"officer_id longer than {bounds.max_id_bytes} bytes"
    return None


class RecorderClient:
    """One open session with one recorder. Not thread-safe; one per slot."""

    def __init__(
        self,
        transport: Transport,
        *,
        timeout: float = REPLY_TIMEOUT_S,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
        session_config: SessionConfig | None = None,
        bounds: Bounds | None = None,
    ) -> None:
        self.transport = transport
        self.bounds = bounds or DEFAULT_BOUNDS
        #: The last STATUS of this session: what listings and event reads are held to.
        self.last_status: Status | None = None
        self.timeout = timeout
        self._mono = monotonic
        self._wall = wall
        self._random = random_bytes
        self.session = Session(Role.INITIATOR, session_config or dock_session_config())
        self._next_req = 1
        self._replies: dict[int, tuple[Message, bytes]] = {}
        self._damage: dict[int, int] = {}  # damaged copies of each reply's frame
        self._opened = False
        self.identity: Identity | None = None
        self.authenticated = False
        self._sizer = ChunkSizer()
        self.last_reply_damage = 0
        self._last_delivered = 0
        self._secret: bytes | None = None
        self._session_key: bytes | None = None
        self._counter = 0
        self._sealed: dict[int, int] = {}  # request id -> counter, awaiting a sealed reply

    # ------------------------------------------------------------------ lifecycle
    def open(self, timeout: float = 5.0) -> Identity:
        """Open the session and say HELLO. Raises LinkError if nothing sensible answers."""
        self._opened = False
        self.session.connect(int.from_bytes(self._random(4), "big"), self._mono())
        self._flush()
        try:
            self._pump(lambda: self.session.state is State.OPEN, timeout)
        except LinkError as exc:
            noise = self.session.stats.noise_bytes + self.session.stats.damaged
            if noise:
                raise LinkError(
                    f"the device answered, but not in this protocol ({exc}; "
                    f"{noise} unintelligible bytes/frames)"
                ) from exc
            raise NoAnswer(f"no recorder answered ({exc})") from exc
        self._opened = True
        f = self.call(
            MsgType.HELLO,
            min_version=min(SUPPORTED_VERSIONS),
            max_version=max(SUPPORTED_VERSIONS),
            host_id="dock",
        )
        problem = hello_problem(f)
        if problem is not None:
            raise ProtocolViolation(f"HELLO: {problem}")
        self.identity = Identity(
            serial=f["serial"],
            model=f["model"],
            firmware=f["firmware"],
            vendor=f.get("vendor"),
            protocol_version=f["version"],
            capabilities=Capability(f["capabilities"]),
            enrolled=bool(f.get("enrolled", False)),
            device_public_key=f.get("device_public_key"),
        )
        return self.identity

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RecorderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has(self, capability: Capability) -> bool:
        return self.identity is not None and capability in self.identity.capabilities

    @property
    def protected(self) -> bool:
        """True when privileged requests go out with a session authenticator: the
        recorder speaks version 2 and this session has authenticated."""
        return self._session_key is not None

    def why_not(self, msg_type: MsgType) -> str | None:
        """Why the dock will not send ``msg_type`` in this session (None: it will)."""
        ident = self.identity
        if ident is not None and ident.protocol_version < AUTHENTICATED_VERSION:
            return (
                f"recorder speaks protocol version {ident.protocol_version}: the dock reads "
                f"it but never changes or erases it (needs version {AUTHENTICATED_VERSION})"
            )
        capability = _CAPABILITY_FOR.get(msg_type)
        if capability is not None and not self.has(capability):
            return f"recorder has no {capability.name} capability"
        if not self.protected:
            return f"{msg_type.name} needs an authenticated session"
        return None

    # ------------------------------------------------------------------ requests
    def start(self, msg_type: MsgType, **fields: Any) -> int:
        """Send a request without waiting; returns its request id.

        Privileged requests go out only in a protected session, sealed with the
        session key and the next counter (PROTOCOL.md 5.4); NotPermitted otherwise.
        """
        privileged = msg_type in PRIVILEGED or (
            msg_type is MsgType.ENROL and self.identity is not None and self.identity.enrolled
        )
        if privileged:
            why = self.why_not(msg_type)
            if why is not None:
                raise NotPermitted(why)
        req_id = self._next_req
        self._next_req = (self._next_req % 0xFFFFFFFF) + 1
        wire, body = encode(request(msg_type, req_id, **fields))
        if privileged:
            assert self._session_key is not None
            self._counter += 1
            body = auth.seal(
                self._session_key,
                reply=False,
                session_id=self.session.session_id,
                counter=self._counter,
                wire_type=wire,
                body=body,
            )
            self._sealed[req_id] = self._counter
        try:
            self.session.send(wire, body, self._mono())
        except Exception as exc:
            raise LinkError(f"cannot send {msg_type.name}: {exc}") from exc
        self._flush()
        return req_id

    def wait(
        self, req_id: int, timeout: float | None = None, expect: MsgType | None = None
    ) -> dict[str, Any]:
        """Wait for the reply to ``req_id``; raises RecorderRefused for an ERROR, and
        ProtocolViolation for a reply of another type than ``expect``."""
        self._pump(lambda: req_id in self._replies, self.timeout if timeout is None else timeout)
        msg, raw = self._replies.pop(req_id)
        self.last_reply_damage = self._damage.pop(req_id, 0)
        counter = self._sealed.pop(req_id, None)
        if msg.msg_type is MsgType.ERROR:
            f = msg.fields
            raise RecorderRefused(f["code"], f.get("message", ""), f.get("request_type"))
        if counter is not None:
            self._check_sealed_reply(msg, raw, counter)
        if expect is not None and msg.msg_type is not expect:
            raise ProtocolViolation(f"the recorder answered {expect.name} with {msg.msg_type.name}")
        return ReplyFields(msg.fields)

    def _ask(self, msg_type: MsgType, timeout: float | None = None, **fields: Any) -> dict:
        """One request and its reply, which must be a reply to that type."""
        return self.wait(self.start(msg_type, **fields), timeout, expect=msg_type)

    def _check_sealed_reply(self, msg: Message, raw: bytes, counter: int) -> None:
        """A privileged request's success counts only if the recorder itself says so."""
        assert self._session_key is not None
        try:
            got = auth.check(
                self._session_key,
                reply=True,
                session_id=self.session.session_id,
                wire_type=msg.wire_type,
                body=raw,
                after=counter - 1,
            )
        except (auth.BadAuthenticator, MalformedMessage) as exc:
            raise LinkError(f"reply to {msg.msg_type.name} is not authenticated: {exc}") from None
        if got != counter:
            raise LinkError(f"reply to {msg.msg_type.name} answers another request")

    def call(self, msg_type: MsgType, **fields: Any) -> dict[str, Any]:
        return self.wait(self.start(msg_type, **fields))

    # ------------------------------------------------------------------ operations
    def authenticate(self, secret: bytes) -> None:
        """Prove ourselves to the recorder and check that it proves itself to us."""
        assert self.identity is not None, "open() first"
        host_nonce = self._random(auth.NONCE_SIZE)
        try:
            dn = self.call(MsgType.AUTH_CHALLENGE, host_nonce=host_nonce)["device_nonce"]
            device_mac = self.call(
                MsgType.AUTH_PROVE,
                host_mac=auth.host_proof(secret, self.identity.serial, host_nonce, dn),
            )["device_mac"]
        except RecorderRefused as exc:
            raise AuthenticationFailed(f"recorder refused authentication: {exc}") from exc
        expected = auth.device_proof(secret, self.identity.serial, host_nonce, dn)
        if not auth.verify(expected, device_mac):
            raise AuthenticationFailed("recorder could not prove it holds the enrolled secret")
        self.authenticated = True
        self._secret = secret
        self._counter = 0
        self._sealed.clear()
        self._session_key = None
        if self.identity.protocol_version >= AUTHENTICATED_VERSION:
            self._session_key = auth.session_key(
                secret, self.identity.serial, self.session.session_id, host_nonce, dn
            )

    def reopen(self, timeout: float = 5.0) -> Identity:
        """Start a fresh session on the same link, re-authenticating if we had."""
        serial = self.identity.serial if self.identity else None
        self.session = Session(Role.INITIATOR, self.session.config)
        self._replies.clear()
        self._damage.clear()
        self._sealed.clear()
        self.authenticated = False
        self._session_key = None
        ident = self.open(timeout)
        if serial is not None and ident.serial != serial:
            raise LinkError(f"a different recorder ({ident.serial}) answered on this link")
        if self._secret is not None:
            self.authenticate(self._secret)
        return ident

    def enrol(self) -> bytes:
        """Agree a new secret with the recorder (X25519, PROTOCOL.md 5.3); returns it.

        The recorder holds it as pending until the dock authenticates with it, so
        the caller stores it first and then calls ``authenticate``. A recorder that
        signs proves with its device key that the exchange was with itself.
        """
        ident = self.identity
        assert ident is not None, "open() first"
        if ident.protocol_version < AUTHENTICATED_VERSION:
            raise NotPermitted(
                f"recorder speaks protocol version {ident.protocol_version}: its enrolment "
                "sends the secret in clear, so the dock does not enrol it"
            )
        own = X25519PrivateKey.from_private_bytes(self._random(32))
        public = own.public_key().public_bytes_raw()
        f = self.call(MsgType.ENROL, host_public_key=public)
        device_public = f.get("device_public_key")
        if device_public is None:
            raise AuthenticationFailed("recorder answered ENROL without its public key")
        if ident.device_public_key is not None:
            message = auth.enrol_signed_message(ident.serial, public, device_public)
            try:
                Ed25519PublicKey.from_public_bytes(ident.device_public_key).verify(
                    f.get("signature") or b"", message
                )
            except (InvalidSignature, ValueError):
                raise AuthenticationFailed(
                    "recorder's key agreement is not signed by its device key"
                ) from None
        try:
            shared = own.exchange(X25519PublicKey.from_public_bytes(device_public))
            return auth.enrol_secret(shared, ident.serial, public, device_public)
        except ValueError as exc:
            raise AuthenticationFailed(f"recorder sent an unusable public key ({exc})") from None

    def status(self) -> Status:
        t0 = self._wall()
        f = self._ask(MsgType.STATUS)
        t1 = self._wall()
        device_time = f["device_time_ms"] / 1000
        received = f.get("receive_time_ms")
        if received is None:
            # The device read its clock somewhere between our send and receive.
            offset = device_time - (t0 + t1) / 2
        else:
            # NTP-style (PROTOCOL.md 6.5): its processing time between the two stamps
            # is left out, only the transit time is split.
            offset = ((received / 1000 - t0) + (device_time - t1)) / 2
        temp = f.get("battery_temp_decicelsius")
        status = Status(
            battery_percent=f["battery_percent"],
            charging=f["charging"],
            storage_total_bytes=f["storage_total"],
            storage_free_bytes=f["storage_free"],
            recording=f["recording"],
            device_time=device_time,
            clock_offset_s=round(offset, 3),
            fault_flags=f["fault_flags"],
            recording_count=f["recording_count"],
            event_count=f.get("event_count"),
            officer_id=f.get("officer_id"),
            battery_health_percent=f.get("battery_health_percent"),
            battery_cycles=f.get("battery_cycles"),
            battery_temp_c=None if temp is None else temp / 10,
        )
        problem = _status_problem(status, self.bounds)
        if problem is not None:
            raise ProtocolViolation(f"STATUS: {problem}")
        self.last_status = status
        return status

    def set_time(self, utc: float, source: str = "") -> float:
        """Set the recorder's clock; returns the drift it had (device minus UTC), seconds."""
        f = self.call(MsgType.SET_TIME, utc_ms=round(utc * 1000), source=source or None)
        return f["drift_ms"] / 1000

    def assign(self, officer_id: str, officer_name: str, unit: str) -> None:
        self.call(MsgType.ASSIGN, officer_id=officer_id, officer_name=officer_name, unit=unit)

    def list_recordings(self) -> RecordingList:
        """Every recording on the recorder, each validated (``recording_problem``): one
        whose description cannot be true is left out and named in ``.refused``.

        Bounded: the list may not claim more recordings than STATUS
        ``recording_count`` (+ RECORDING_COUNT_SLACK) nor MAX_RECORDINGS, every page
        must bring recordings not listed before, and the whole listing must end
        within LIST_DEADLINE_S; ProtocolViolation or Stalled otherwise.
        """
        b = self.bounds
        status = self.last_status or self.status()
        limit = min(b.max_recordings, status.recording_count + b.recording_count_slack)
        deadline = self._mono() + b.list_deadline_s
        out = RecordingList()
        seen: set[str] = set()
        sequences: dict[int, str] = {}
        position, page = 0, 32
        while True:
            if self._mono() > deadline:
                raise Stalled(
                    f"LIST_RECORDINGS: not done after {b.list_deadline_s:g} s "
                    f"({position} recordings listed)"
                )
            try:
                f = self._ask(MsgType.LIST_RECORDINGS, start=position, max_count=page)
            except FrameTooLong:
                if page == 1:
                    raise
                page = max(1, page // 4)  # smaller replies for a noisy line
                self.reopen()
                continue
            total, got = f["total"], f["recordings"]
            if total > limit:
                raise ProtocolViolation(
                    f"LIST_RECORDINGS: the recorder says it holds {total} recordings; its "
                    f"STATUS said {status.recording_count} (the dock takes at most {limit})"
                )
            if len(got) > page:
                raise ProtocolViolation(
                    f"LIST_RECORDINGS: {len(got)} recordings in a page of at most {page}"
                )
            for fields in got:
                self._take_recording(fields, status, seen, sequences, out)
            position += len(got)
            if not got or position >= total:
                return out

    def _take_recording(
        self,
        fields: dict[str, Any],
        status: Status,
        seen: set[str],
        sequences: dict[int, str],
        out: RecordingList,
    ) -> None:
        rid = fields["id"]
        if rid in seen:
            raise ProtocolViolation(
                f"LIST_RECORDINGS: recording {rid!r} listed twice (pages repeat)"
            )
        try:
            rec = RecordingInfo.from_fields(fields, status.storage_total_bytes, self.bounds)
            seen.add(rec.id)  # only ids of bounded length are remembered
            if rec.sequence is not None and rec.sequence in sequences:
                other = sequences[rec.sequence]
                raise InvalidRecording(rec.id, f"sequence {rec.sequence} is also {other!r}'s")
        except InvalidRecording as exc:
            log.warning("%s; it stays on the device", exc)
            out.refused.append(exc)
            return
        if rec.sequence is not None:
            sequences[rec.sequence] = rec.id
        out.append(rec)

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        """The event log from ``since``, as far as ``read_events`` reads in one go."""
        return self.read_events(since).events

    def read_events(self, since: int = 0) -> EventLog:
        """Event-log entries from index ``since``, each page checked: ``next`` must
        advance by exactly the entries returned, and each entry's ``index`` be its
        position (ProtocolViolation otherwise).

        Bounded: up to the ``event_count`` STATUS announced (when it did), at most
        MAX_EVENTS entries and MAX_EVENT_BYTES bytes, within EVENTS_DEADLINE_S. When
        a bound stops it, ``complete`` is False and the caller reads on from
        ``next`` another time: an honest long log is read in turns, nothing lost.
        """
        b = self.bounds
        status = self.last_status or self.status()
        announced = status.event_count
        deadline = self._mono() + b.events_deadline_s
        out: list[dict[str, Any]] = []
        size, position = 0, since
        while announced is None or position < announced:
            room = b.max_events - len(out)
            if room <= 0 or size >= b.max_event_bytes:
                log.warning(
                    "event log read stopped at entry %d (%d entries, %d bytes read: the "
                    "bound); the rest is read next time",
                    position,
                    len(out),
                    size,
                )
                return EventLog(out, since, position, complete=False)
            if self._mono() > deadline:
                raise Stalled(f"EVENTS: not done after {b.events_deadline_s:g} s ({len(out)} read)")
            ask = min(EVENTS_PAGE, room)
            f = self._ask(MsgType.EVENTS, since=position, max_count=ask)
            got, next_ = f["events"], f["next"]
            if len(got) > ask:
                raise ProtocolViolation(f"EVENTS: {len(got)} entries in a page of at most {ask}")
            if next_ != position + len(got):
                raise ProtocolViolation(
                    f"EVENTS: next is {next_} after {len(got)} entries from {position}; "
                    f"it must be {position + len(got)}"
                )
            for i, event in enumerate(got):
                if event["index"] != position + i:
                    raise ProtocolViolation(
                        f"EVENTS: entry {position + i} says it is entry {event['index']}"
                    )
                size += _event_bytes(event)
            if not got:
                break
            out.extend(got)
            position = next_
        return EventLog(out, since, position, complete=True)

    def self_test(self) -> dict[str, Any]:
        """Run the recorder's self-test; Stalled if it takes longer than
        SELF_TEST_TIMEOUT_S (PROTOCOL.md 4.5.9)."""
        limit = self.bounds.self_test_timeout_s
        try:
            return self._ask(MsgType.SELF_TEST, timeout=limit)
        except NoReply as exc:
            raise Stalled(f"SELF_TEST: no result within {limit:g} s") from exc

    def erase(self, recording_id: str, sha256: bytes) -> None:
        self.call(MsgType.ERASE, id=recording_id, sha256=sha256)

    def mass_storage(self, enable: bool) -> dict[str, Any]:
        return self.call(MsgType.MASS_STORAGE, enable=enable)

    def read_recording(
        self,
        rec: RecordingInfo,
        sink: Callable[[int, bytes], None],
        offset: int = 0,
        progress: Callable[[int], None] | None = None,
        resume_attempts: int = 3,
    ) -> int:
        """Stream ``rec`` from ``offset`` to its end into ``sink(offset, data)``, in order.

        Keeps several READs in flight. If the session breaks (a frame the line could
        not carry, a recorder that reset), it re-opens the session on the same link
        and goes on from the last byte delivered, up to ``resume_attempts`` times.
        Returns the number of bytes delivered.

        Bounded in time by the goodput floor (READ_MIN_BYTES_PER_S over every
        READ_WINDOW_S, re-openings included): Stalled when the recorder delivers
        less. A reply that breaks the protocol (another offset, more bytes than
        asked, none at all) is a ProtocolViolation. Neither is retried.
        """
        delivered = offset
        stalled = 0  # consecutive breaks with no byte delivered in between
        goodput = _Goodput(self._mono, self.bounds, rec.id)
        for _ in range(10_000):
            try:
                delivered = self._read_from(rec, sink, delivered, progress, goodput)
                return delivered - offset
            except LinkError as exc:
                progressed = self._last_delivered > delivered
                stalled = 0 if progressed else stalled + 1
                final = (LinkGone, Stalled, ProtocolViolation)
                if stalled > resume_attempts or isinstance(exc, final):
                    raise  # the cable is gone: resuming is the caller's next dock
                log.warning(
                    "read of %s broke at byte %d (%s); re-opening the session",
                    rec.id,
                    delivered,
                    exc,
                )
                self._sizer.on_session_lost()
                # Bytes delivered before the break were handed to the sink already.
                delivered = max(delivered, self._last_delivered)
                self.reopen()
                goodput.check()
        raise LinkError(f"read of {rec.id!r} broke too often")

    def _read_from(
        self,
        rec: RecordingInfo,
        sink: Callable[[int, bytes], None],
        offset: int,
        progress: Callable[[int], None] | None,
        goodput: _Goodput,
    ) -> int:
        window = max(1, min(self.session.config.window, 14))
        inflight: list[tuple[int, int, int]] = []  # (req_id, offset, length)
        next_off = delivered = self._last_delivered = offset
        while delivered < rec.size:
            while len(inflight) < window and next_off < rec.size:
                length = min(self._sizer.size, rec.size - next_off)
                rid = self.start(MsgType.READ, id=rec.id, offset=next_off, length=length)
                inflight.append((rid, next_off, length))
                next_off += length
            rid, off, length = inflight.pop(0)
            f = self.wait(rid, expect=MsgType.READ)
            data = f["data"]
            if f["offset"] != off or not data or len(data) > length:
                raise ProtocolViolation(
                    f"READ of {length} bytes at {off} answered with {len(data)} bytes "
                    f"at {f['offset']}"
                )
            own = self._mono()
            sink(off, data)
            delivered = self._last_delivered = off + len(data)
            if progress:
                progress(delivered)
            goodput.exclude(self._mono() - own)
            goodput.check(len(data))
            self._sizer.on_reply(damaged=self.last_reply_damage > 0)
            if len(data) < length:
                # The recorder capped the read: drop what is queued, re-plan from here.
                for other, _, _ in inflight:
                    self.wait(other, expect=MsgType.READ)
                inflight.clear()
                next_off = delivered
                self._sizer.cap(len(data))
        return delivered

    # ------------------------------------------------------------------ the pump
    def _flush(self) -> None:
        out = self.session.outgoing()
        if out:
            try:
                self.transport.write(out)
            except ConnectionError as exc:
                raise LinkGone(str(exc)) from exc

    def _pump(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = self._mono() + timeout
        for _ in range(10_000_000):
            if done():
                return
            now = self._mono()
            if now >= deadline:
                raise NoReply(f"no answer within {timeout:g} s")
            wait = deadline - now
            d = self.session.next_deadline()
            if d is not None:
                wait = min(wait, max(0.0, d - now))
            try:
                data = self.transport.read(READ_MAX, wait)
            except ConnectionError as exc:
                raise LinkGone(str(exc)) from exc
            now = self._mono()
            events: list[SessionEvent] = self.session.receive(data, now) if data else []
            events += self.session.on_timer(now)
            for ev in events:
                self._on_event(ev)
            self._flush()
            if self.session.stats.awaited_damaged >= STUCK_DAMAGE:
                raise FrameTooLong(
                    f"{STUCK_DAMAGE} damaged copies of one frame in a row: line too noisy"
                )
        raise LinkError("pump bound reached")

    def _recent(self, req_id: int) -> bool:
        """Only a reply to one of the last requests sent is kept: a recorder cannot
        fill the dock's memory with replies to requests never made."""
        age = (self._next_req - req_id) % 0xFFFFFFFF
        return 1 <= age <= 1024

    def _on_event(self, ev: SessionEvent) -> None:
        if isinstance(ev, Delivered):
            try:
                msg = decode(ev.msg_type, ev.payload)
            except (UnknownMessage, MalformedMessage) as exc:
                log.warning("ignoring undecodable message from recorder: %s", exc)
                return
            if msg.is_reply and self._recent(msg.req_id):
                self._replies[msg.req_id] = (msg, ev.payload)
                self._damage[msg.req_id] = ev.damaged_copies
                while len(self._replies) > self.bounds.max_pending_replies:
                    oldest = next(iter(self._replies))  # late or unsolicited: never waited for
                    del self._replies[oldest]
                    self._damage.pop(oldest, None)
        elif isinstance(ev, PeerReset):
            self.authenticated = False
            raise LinkError(f"recorder reset the session ({ev.reason})")
        elif isinstance(ev, LinkFailed):
            raise LinkError(f"link failed: {ev.reason}")
