"""The session with one recorder: requests matched to replies, privileged requests
sealed, the link pumped with real time, every failure turned into a LinkError."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, Self

from dock.devices.recorder_client.bounds import (
    DEFAULT_BOUNDS,
    MAX_CHUNK,
    READ_MAX,
    REPLY_TIMEOUT_S,
    STUCK_DAMAGE,
    Bounds,
)
from dock.devices.recorder_client.checks import hello_problem
from dock.devices.recorder_client.errors import (
    AuthenticationFailed,
    FrameTooLong,
    LinkError,
    LinkGone,
    NoAnswer,
    NoReply,
    NotPermitted,
    ProtocolViolation,
    RecorderRefused,
)
from dock.devices.recorder_client.flow import ChunkSizer
from dock.devices.recorder_client.results import Identity, ReplyFields, Status
from dock.devices.recorder_client.stream import StreamReader
from dock.domain.interfaces import Transport
from firmware_protocol import auth
from firmware_protocol.messages import (
    AUTHENTICATED_VERSION,
    PRIVILEGED,
    SUPPORTED_VERSIONS,
    Capability,
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


_STREAM_REPLY = MsgType.READ_STREAM.reply

_CAPABILITY_FOR: dict[MsgType, Capability] = {
    MsgType.ASSIGN: Capability.ASSIGN,
    MsgType.ERASE: Capability.ERASE,
    MsgType.MASS_STORAGE: Capability.MASS_STORAGE,
}


def dock_session_config() -> SessionConfig:
    return SessionConfig(window=16, max_payload=MAX_CHUNK + 1024, rto_initial=0.3, max_retries=8)


class RecorderLink:
    """One open session with one recorder: the session, requests and replies, and
    authentication. :class:`RecorderClient` adds the operations. Not thread-safe."""

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
        #: The READ_STREAMs of the read under way: their replies go there, checked.
        self._streams: StreamReader | None = None

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

    def __enter__(self) -> Self:
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

    # ------------------------------------------------------------------ authentication
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

    # ------------------------------------------------------------------ the pump
    def _flush(self, defer_ack: bool = False) -> None:
        parts = self.session.outgoing_parts(defer_ack)
        if not parts:
            return
        write_parts = getattr(self.transport, "write_parts", None)
        try:
            if write_parts is not None:
                write_parts(parts)  # one gathering write, nothing joined
            else:
                self.transport.write(b"".join(parts))
        except ConnectionError as exc:
            raise LinkGone(str(exc)) from exc

    def _read(self, wait: float) -> tuple[int, list[SessionEvent]]:
        """One read from the link into the session: straight into the frame decoder's
        own buffer where the transport can (``read_into``), else as a new bytes.
        Returns the bytes read and what they made happen."""
        read_into = getattr(self.transport, "read_into", None)
        try:
            if read_into is None:
                data = self.transport.read(READ_MAX, wait)
                return len(data), self.session.receive(data, self._mono()) if data else []
            room = self.session.receive_buffer(READ_MAX)
            try:
                n = read_into(room, wait)
            finally:
                room.release()
        except ConnectionError as exc:
            raise LinkGone(str(exc)) from exc
        return n, self.session.receive_into(n, self._mono()) if n else []

    def _pump(self, done: Callable[[], bool], timeout: float, streaming: bool = False) -> None:
        """Read and answer until ``done()``. ``streaming``: replies keep coming, so the
        ACK for what arrived may wait while more is there to read at once (never
        across a read that would wait: then it goes first)."""
        session, mono = self.session, self._mono
        deadline = mono() + timeout
        for _ in range(10_000_000):
            if done():
                if not streaming:
                    self._flush()
                return
            now = mono()
            if now >= deadline:
                raise NoReply(f"no answer within {timeout:g} s")
            n, events = self._read(0.0) if streaming else (0, [])
            if not n:
                wait = deadline - now
                d = session.next_deadline()
                if d is not None:
                    wait = min(wait, max(0.0, d - now))
                self._flush()  # nothing more at once: a deferred ACK goes before we wait
                n, events = self._read(wait)
            d = session.next_deadline()  # what was read may have moved it
            if d is not None and mono() >= d:  # on_timer would do nothing before then
                events += session.on_timer(mono())
            for ev in events:
                self._on_event(ev)
            self._flush(defer_ack=streaming and n > 0)
            if session.stats.awaited_damaged >= STUCK_DAMAGE:
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
            streams = self._streams
            if streams is not None and streams.offer(ev.msg_type, ev.payload, ev.damaged_copies):
                return
            if ev.msg_type == _STREAM_REPLY:
                return  # the rest of a stream whose read gave up: never kept
            raw = bytes(ev.payload)  # kept with the reply: a view only for a long one
            try:
                msg = decode(ev.msg_type, raw)
            except (UnknownMessage, MalformedMessage) as exc:
                log.warning("ignoring undecodable message from recorder: %s", exc)
                return
            if msg.is_reply and self._recent(msg.req_id):
                self._replies[msg.req_id] = (msg, raw)
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
