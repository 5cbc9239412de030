"""The reference recorder firmware: answers the protocol on behalf of a RecorderModel.

Transport-agnostic: a server loop (pty, TCP, or the pyusb test backend) passes in
the bytes it read and writes out what ``outgoing`` returns. Everything a firmware
must refuse is refused here, with the error a real recorder must give: unknown
messages, malformed bodies, privileged commands before authentication, an erase
without the right hash.

Over 400 lines on purpose: what a firmware accepts depends on its session and authority
state, so each message's handler sits beside the checks that gate it, and what a real
recorder must refuse can be reviewed in one file.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from firmware_protocol import auth
from firmware_protocol.codec import encode_fields
from firmware_protocol.messages import (
    AUTHENTICATED_VERSION,
    PRIVILEGED,
    REPLIES,
    REPLY_BIT,
    SUPPORTED_VERSIONS,
    Capability,
    ErrorCode,
    MalformedMessage,
    Message,
    MsgType,
    UnknownMessage,
    decode,
    encode,
    error,
    reply,
)
from firmware_protocol.session import Delivered, Opened, Role, Session, SessionConfig
from firmware_protocol.stream import reply_parts
from hardware.emulator.recorder_model import RecorderModel

log = logging.getLogger("recorder")

#: Largest READ chunk this firmware serves (and the largest payload it accepts).
MAX_READ = 256 * 1024
LIST_PAGE = 64
EVENTS_PAGE = 128
#: Authority lapses after this long without a message from the dock (PROTOCOL.md 5.4).
AUTH_IDLE_TIMEOUT = 120.0
#: READ_STREAM requests held behind the one being served; more are refused BUSY
#: (PROTOCOL.md 6.2a).
MAX_WAITING_STREAMS = 2
_STREAM_REPLY = MsgType.READ_STREAM.reply  # once, not per reply

_CAPABILITY_FOR: dict[MsgType, Capability] = {
    MsgType.SELF_TEST: Capability.SELF_TEST,
    MsgType.MASS_STORAGE: Capability.MASS_STORAGE,
    MsgType.EVENTS: Capability.EVENT_LOG,
    MsgType.ASSIGN: Capability.ASSIGN,
    MsgType.ERASE: Capability.ERASE,
    MsgType.READ_STREAM: Capability.STREAM_READ,
}


@dataclass
class _Stream:
    """One READ_STREAM being served: replies go out from ``next`` up to ``stop``."""

    req_id: int
    rid: str
    next: int
    stop: int
    chunk: int


class RecorderError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class RecorderFirmware:
    #: Serves READ_STREAM (announces STREAM_READ when the model has it); a subclass
    #: that rewrites READ replies turns it off so that the dock reads with READ.
    STREAMS = True

    def __init__(
        self,
        model: RecorderModel,
        monotonic: Callable[[], float] = time.monotonic,
        random_bytes: Callable[[int], bytes] = os.urandom,
        session_config: SessionConfig | None = None,
        versions: tuple[int, ...] = SUPPORTED_VERSIONS,
        read_bytes_per_second: float | None = None,
    ) -> None:
        self.model = model
        #: A slow link (the demo's bays): footage read over the protocol comes no faster.
        self.read_bytes_per_second = read_bytes_per_second
        #: Protocol versions served. Without version 2 this is an old recorder
        #: (privileged requests unauthenticated, ENROL in clear): for tests only.
        self.versions = versions
        self._legacy = AUTHENTICATED_VERSION not in versions
        self._reading: tuple[str, int] | None = None
        #: The recording being streamed, mapped: replies are views of it (section 6.2a).
        self._mapped: tuple[str, mmap.mmap] | None = None
        self._volume: str | None = None
        self._mono = monotonic
        self._random = random_bytes
        cfg = session_config or SessionConfig(max_payload=MAX_READ + 1024, window=16)
        self.session = Session(Role.RESPONDER, cfg)
        self._last_activity = monotonic()
        self._received_ms = 0
        self._new_session()
        # A volume left exposed by a previous run (power cut) is withdrawn at start.
        self._withdraw_volume(os.path.join(model.data_dir, "mass-storage"))

    def _new_session(self) -> None:
        self._streams: deque[_Stream] = deque()  # nothing of a stream outlives its session
        self._close_reading()
        self._drop_authority()
        self.version: int | None = None
        self._host_nonce: bytes | None = None
        self._device_nonce: bytes | None = None

    def _drop_authority(self) -> None:
        """Nothing privileged is possible after this until a new AUTH_PROVE."""
        self.authenticated = False
        self._session_key: bytes | None = None
        self._last_counter = 0
        self._withdraw_volume(self._volume)
        self._volume = None

    def link_lost(self) -> None:
        """The transport says the dock went away (TCP close, pty hang-up, USB reset):
        the session and its authority end with it."""
        log.info("link lost: session and authority dropped")
        self.session = Session(Role.RESPONDER, self.session.config)
        self._new_session()

    # ------------------------------------------------------------------ I/O pump
    def receive(self, data: bytes | memoryview) -> None:
        now = self._mono()
        self._expire_authority(now)
        for event in self.session.receive(data, now):
            if isinstance(event, Opened):
                log.info("session opened", extra={"session": event.session_id})
                self._new_session()
            elif isinstance(event, Delivered):
                self._last_activity = now
                # a long command arrives as a view (Frame.payload): bytes, as the
                # handlers keep and hash it (no copy of what is bytes already)
                self._handle(event.msg_type, bytes(event.payload), now)
        self._serve_streams(now)

    def outgoing(self) -> bytes:
        return b"".join(self.outgoing_parts())

    def outgoing_parts(self) -> list[bytes | memoryview]:
        """What to write now, as pieces for one gathering write."""
        self._serve_streams(self._mono())
        return self.session.outgoing_parts()

    @property
    def capabilities(self) -> Capability:
        caps = self.model.capabilities
        return caps if self.STREAMS else caps & ~Capability.STREAM_READ

    def next_deadline(self) -> float | None:
        deadline = self.session.next_deadline()
        if self.authenticated:
            lapse = self._last_activity + AUTH_IDLE_TIMEOUT
            deadline = lapse if deadline is None else min(deadline, lapse)
        return deadline

    def on_timer(self) -> None:
        now = self._mono()
        self._expire_authority(now)
        for event in self.session.on_timer(now):
            log.warning("link failed: %s", event)
            # A recorder never gives up on its own; it waits for the dock to reopen.
            self.session = Session(Role.RESPONDER, self.session.config)
            self._new_session()

    def _expire_authority(self, now: float) -> None:
        if self.authenticated and now - self._last_activity >= AUTH_IDLE_TIMEOUT:
            log.info("authority lapsed after %.0f s without a message", AUTH_IDLE_TIMEOUT)
            self._drop_authority()

    # ------------------------------------------------------------------ dispatch
    def _handle(self, wire_type: int, payload: bytes, now: float) -> None:
        key, counter = self._session_key, None
        self._received_ms = int(self.model.device_time() * 1000)
        try:
            if wire_type & REPLY_BIT:  # not decoded: its body does not matter (section 4.4)
                raise RecorderError(ErrorCode.UNKNOWN_MESSAGE, "a recorder takes requests only")
            msg = decode(wire_type, payload)
            counter = self._authorise(msg, payload)
            answer = self._answer(msg)
            if answer is None:
                return  # a stream was queued: its replies go out as the window opens
        except UnknownMessage as exc:
            answer = error(exc.req_id or 0, ErrorCode.UNKNOWN_MESSAGE, str(exc), wire_type)
        except MalformedMessage as exc:
            req_id = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else 0
            answer = error(req_id, ErrorCode.MALFORMED, str(exc), wire_type)
        except RecorderError as exc:
            req_id = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else 0
            answer = error(req_id, exc.code, str(exc), wire_type)
        except OSError as exc:
            req_id = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else 0
            answer = error(req_id, ErrorCode.STORAGE, f"storage error: {exc}", wire_type)
        except Exception as exc:  # a firmware answers, it never crashes
            log.exception("internal error handling 0x%04x", wire_type)
            req_id = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else 0
            answer = error(req_id, ErrorCode.INTERNAL, type(exc).__name__, wire_type)
        t, body = encode(answer)
        if counter is not None and key is not None:
            # The reply to an authenticated request is authenticated with the same key
            # and counter, so the dock knows the recorder (not a stranger) did it.
            sid = self.session.session_id
            body = auth.seal(
                key, reply=True, session_id=sid, counter=counter, wire_type=t, body=body
            )
        self.session.send(t, body, now)

    def _authorise(self, msg: Message, payload: bytes) -> int | None:
        """Capability, then authority (PROTOCOL.md 6.0). Returns the request's counter
        when it carried a valid authenticator."""
        t = msg.msg_type
        needed = _CAPABILITY_FOR.get(t)
        if needed is not None and needed not in self.capabilities:
            raise RecorderError(ErrorCode.UNSUPPORTED, f"this recorder has no {needed.name}")
        re_key = t is MsgType.ENROL and self.model.secret is not None
        if t not in PRIVILEGED and not re_key:
            return None
        if not self.authenticated:
            if re_key:
                raise RecorderError(ErrorCode.ALREADY_ENROLLED, "re-keying needs authentication")
            raise RecorderError(ErrorCode.AUTH_REQUIRED, f"{t.name} needs authentication")
        if self._legacy:
            return None
        if self._session_key is None or (self.version or 0) < AUTHENTICATED_VERSION:
            raise RecorderError(
                ErrorCode.AUTH_REQUIRED,
                f"{t.name} needs a protocol version {AUTHENTICATED_VERSION} session",
            )
        try:
            counter = auth.check(
                self._session_key,
                reply=False,
                session_id=self.session.session_id,
                wire_type=int(t),
                body=payload,
                after=self._last_counter,
            )
        except auth.BadAuthenticator as exc:
            raise RecorderError(ErrorCode.AUTH_FAILED, f"{t.name}: {exc}") from None
        self._last_counter = counter
        return counter

    def _answer(self, msg: Message) -> Message | None:
        t = msg.msg_type
        if t is MsgType.READ_STREAM:
            self._queue_stream(msg.req_id, **msg.fields)
            return None
        handler = getattr(self, f"_on_{t.name.lower()}", None)
        if handler is None:
            raise RecorderError(ErrorCode.UNKNOWN_MESSAGE, f"{t.name} is not a request")
        fields = handler(**msg.fields)
        return reply(t, msg.req_id, **fields)

    # ------------------------------------------------------------------ handlers
    def _on_hello(self, min_version: int, max_version: int, host_id: str | None = None) -> dict:
        common = [v for v in self.versions if min_version <= v <= max_version]
        if not common:
            raise RecorderError(
                ErrorCode.VERSION_UNSUPPORTED,
                f"recorder speaks {self.versions}, host asked {min_version}..{max_version}",
            )
        if self.authenticated:
            self._drop_authority()  # a new HELLO starts over: authority is not carried
        self.version = max(common)
        m = self.model
        fields: dict[str, Any] = {
            "version": self.version,
            "firmware": m.state["firmware"],
            "model": m.state["model"],
            "serial": m.serial,
            "capabilities": int(self.capabilities),
            "vendor": m.state["vendor"],
            "enrolled": m.secret is not None,
        }
        if Capability.SIGNATURE in m.capabilities:
            fields["device_public_key"] = m.device_public_key()
        return fields

    def _on_status(self) -> dict:
        m = self.model
        fields: dict[str, Any] = {
            "battery_percent": round(m.battery_percent()),
            "charging": m.charging(),
            "storage_total": m.state["storage_total"],
            "storage_free": m.state["storage_free"],
            "recording": bool(m.state["recording"]),
            "receive_time_ms": self._received_ms,
            "device_time_ms": int(m.device_time() * 1000),
            "fault_flags": int(m.faults()),
            "recording_count": len(m.recordings),
            "event_count": len(m.state["events"]),
            "officer_id": m.officer_id(),
        }
        if Capability.BATTERY_HEALTH in m.capabilities:
            fields["battery_health_percent"] = m.state["battery_health"]
            fields["battery_cycles"] = m.state["battery_cycles"]
            fields["battery_temp_decicelsius"] = 291
        return fields

    def _on_set_time(self, utc_ms: int, source: str | None = None) -> dict:
        drift = self.model.set_time(utc_ms / 1000)
        return {
            "drift_ms": round(drift * 1000),
            "device_time_ms": int(self.model.device_time() * 1000),
        }

    def _on_assign(self, officer_id: str, officer_name: str, unit: str) -> dict:
        self.model.assign(officer_id, officer_name, unit)
        return {}

    def _on_list_recordings(self, start: int = 0, max_count: int = LIST_PAGE) -> dict:
        recs = self.model.ordered_recordings()
        page = [_recording_fields(r) for r in recs[start : start + min(max_count, LIST_PAGE)]]
        return {"total": len(recs), "recordings": self._fitting(MsgType.LIST_RECORDINGS, page)}

    def _on_read(self, id: str, offset: int, length: int) -> dict:
        rec = self.model.recordings.get(id)
        if rec is None:
            raise RecorderError(ErrorCode.NOT_FOUND, f"no recording {id}")
        if offset > rec.size:
            raise RecorderError(ErrorCode.OUT_OF_RANGE, f"offset {offset} beyond size {rec.size}")
        length = min(length, MAX_READ, self.session.peer_max_payload - 64, rec.size - offset)
        data = os.pread(self._open_for_read(id), length, offset)
        if self.read_bytes_per_second:  # the link's pace, not a moment chosen
            time.sleep(len(data) / self.read_bytes_per_second)
        return {"offset": offset, "data": data}

    def _queue_stream(self, req_id: int, id: str, offset: int, length: int, chunk: int) -> None:
        """READ_STREAM (section 6.2a): checked now, served in order as the window opens."""
        rec = self.model.recordings.get(id)
        if rec is None:
            raise RecorderError(ErrorCode.NOT_FOUND, f"no recording {id}")
        if offset > rec.size:
            raise RecorderError(ErrorCode.OUT_OF_RANGE, f"offset {offset} beyond size {rec.size}")
        if chunk == 0:
            raise RecorderError(ErrorCode.MALFORMED, "ReadStream: chunk must be at least 1")
        if len(self._streams) > MAX_WAITING_STREAMS:
            raise RecorderError(ErrorCode.BUSY, "too many READ_STREAM requests waiting")
        self._streams.append(_Stream(req_id, id, offset, min(rec.size, offset + length), chunk))

    def _serve_streams(self, now: float) -> None:
        """Send stream replies while the session's window has room: the dock's ACKs
        pace the stream, and nothing waits in memory beyond the window."""
        session = self.session
        while self._streams and session.can_send:
            s = self._streams[0]
            n = min(s.chunk, MAX_READ, session.peer_max_payload - 64, s.stop - s.next)
            try:
                if s.rid not in self.model.recordings:
                    raise RecorderError(ErrorCode.NOT_FOUND, f"no recording {s.rid}")
                data = self._view(s.rid, s.next, n) if n else b""
            except (OSError, RecorderError) as exc:
                self._streams.popleft()
                code = exc.code if isinstance(exc, RecorderError) else ErrorCode.STORAGE
                t, body = encode(error(s.req_id, code, str(exc), int(MsgType.READ_STREAM)))
                session.send(t, body, now)
                continue
            last = s.next + n >= s.stop
            self._send_stream_reply(s.req_id, s.next, data, last, now)
            s.next += n
            if last:
                self._streams.popleft()
            if self.read_bytes_per_second:  # the link's pace, not a moment chosen
                time.sleep(n / self.read_bytes_per_second)

    def _view(self, rid: str, offset: int, n: int) -> memoryview:
        """``n`` bytes of recording ``rid`` at ``offset``, as a view of the file mapped
        read-only: what a firmware sends straight from flash, never copied here. The
        session holds the view until the dock acknowledges it; an erased file's
        mapping lives until then (its pages stay valid after the unlink)."""
        if self._mapped is None or self._mapped[0] != rid:
            fd = self._open_for_read(rid)
            self._mapped = (rid, mmap.mmap(fd, 0, prot=mmap.PROT_READ))
            with contextlib.suppress(AttributeError, OSError):  # read in order: read ahead
                self._mapped[1].madvise(mmap.MADV_SEQUENTIAL)
        mapped = self._mapped[1]
        if offset + n > len(mapped):
            raise RecorderError(ErrorCode.STORAGE, f"{rid} ends before its size")
        return memoryview(mapped)[offset : offset + n]

    def _send_stream_reply(
        self, req_id: int, offset: int, data: bytes | memoryview, last: bool, now: float
    ) -> None:
        """One reply of a stream (a test's lying recorder changes it here)."""
        self.session.send(_STREAM_REPLY, reply_parts(req_id, offset, data, last), now)

    def _open_for_read(self, rid: str) -> int:
        """One open file at a time: a transfer reads one recording chunk after chunk."""
        if self._reading is not None and self._reading[0] == rid:
            return self._reading[1]
        self._close_reading()
        fd = os.open(self.model.recording_path(rid), os.O_RDONLY)
        self._reading = (rid, fd)
        return fd

    def _close_reading(self) -> None:
        self._mapped = None  # unmapped when the last view of it is gone
        # Taken before it is closed: a descriptor closed twice may by then be someone else's.
        reading, self._reading = self._reading, None
        if reading is not None:
            os.close(reading[1])

    def _on_erase(self, id: str, sha256: bytes) -> dict:
        rec = self.model.recordings.get(id)
        if rec is None:
            raise RecorderError(ErrorCode.NOT_FOUND, f"no recording {id}")
        if sha256 != rec.sha256:
            raise RecorderError(ErrorCode.HASH_MISMATCH, "stated hash is not this recording's")
        self._close_reading()
        self.model.erase(id)
        return {}

    def _on_events(self, since: int = 0, max_count: int = EVENTS_PAGE) -> dict:
        events = self.model.events_since(since, min(max_count, EVENTS_PAGE))
        events = self._fitting(MsgType.EVENTS, events)
        return {"next": since + len(events), "events": events}

    def _fitting(self, msg_type: MsgType, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """As many entries as fit in the dock's max payload (section 6.3)."""
        schema = REPLIES[msg_type].by_name()[
            "events" if msg_type is MsgType.EVENTS else "recordings"
        ]
        assert schema.nested is not None
        room = self.session.peer_max_payload - 128  # request id, total/next, authenticator
        out: list[dict[str, Any]] = []
        for item in items:
            room -= 5 + len(encode_fields(schema.nested, item))
            if room < 0:
                break
            out.append(item)
        if items and not out:
            raise RecorderError(
                ErrorCode.INTERNAL, "one entry alone exceeds the dock's max payload"
            )
        return out

    def _on_self_test(self) -> dict:
        faults = self.model.faults()
        items = [
            {"name": flag.name.lower(), "passed": flag not in faults}
            for flag in type(faults)
            if flag.name
        ]
        items.append({"name": "charge", "passed": self.model.battery_percent() > 0})
        return {"passed": all(i["passed"] for i in items), "items": items}

    def _on_mass_storage(self, enable: bool) -> dict:
        folder = os.path.join(self.model.data_dir, "mass-storage")
        if enable:
            self._expose_read_only(folder)
            self._volume = folder  # withdrawn when authority ends (section 6.6)
            return {"enabled": True, "volume_label": self.model.serial, "local_path": folder}
        self._withdraw_volume(folder)
        self._volume = None
        return {"enabled": False}

    @staticmethod
    def _withdraw_volume(folder: str | None) -> None:
        if folder is not None and os.path.isdir(folder):
            os.chmod(folder, 0o755)
            shutil.rmtree(folder)

    def _expose_read_only(self, folder: str) -> None:
        self._withdraw_volume(folder)
        os.makedirs(folder)
        for rec in self.model.ordered_recordings():
            os.link(self.model.recording_path(rec.id), os.path.join(folder, f"{rec.id}.mp4"))
        os.chmod(folder, 0o555)

    def _on_auth_challenge(self, host_nonce: bytes) -> dict:
        if self.model.secret is None and self.model.pending_secret is None:
            raise RecorderError(ErrorCode.NOT_ENROLLED, "recorder is not enrolled")
        self._drop_authority()
        self._host_nonce = host_nonce
        self._device_nonce = self._random(auth.NONCE_SIZE)
        return {"device_nonce": self._device_nonce}

    def _on_auth_prove(self, host_mac: bytes) -> dict:
        if self._host_nonce is None or self._device_nonce is None:
            raise RecorderError(ErrorCode.AUTH_FAILED, "no challenge outstanding")
        host_nonce, device_nonce = self._host_nonce, self._device_nonce
        self._host_nonce = self._device_nonce = None  # one try per challenge
        serial = self.model.serial
        current, pending = self.model.secret, self.model.pending_secret
        for secret in (s for s in (current, pending) if s is not None):
            if auth.verify(auth.host_proof(secret, serial, host_nonce, device_nonce), host_mac):
                break
        else:
            raise RecorderError(ErrorCode.AUTH_FAILED, "proof does not match")
        if secret is pending and secret != current:
            self.model.set_secret(secret)  # the dock holds the new secret: commit it
        self.authenticated = True
        if not self._legacy:
            sid = self.session.session_id
            self._session_key = auth.session_key(secret, serial, sid, host_nonce, device_nonce)
            self._last_counter = 0
        return {"device_mac": auth.device_proof(secret, serial, host_nonce, device_nonce)}

    def _on_enrol(self, secret: bytes | None = None, host_public_key: bytes | None = None) -> dict:
        if self._legacy:
            if secret is None:
                raise RecorderError(ErrorCode.MALFORMED, "Enrol: missing required field 'secret'")
            self.model.set_secret(secret)
            self._drop_authority()
            return {}
        if host_public_key is None or secret is not None:
            raise RecorderError(
                ErrorCode.UNSUPPORTED,
                "enrolment is by key agreement: send host_public_key, never a secret",
            )
        own = X25519PrivateKey.from_private_bytes(self._random(32))
        public = own.public_key().public_bytes_raw()
        try:
            shared = own.exchange(X25519PublicKey.from_public_bytes(host_public_key))
            new_secret = auth.enrol_secret(shared, self.model.serial, host_public_key, public)
        except ValueError as exc:
            raise RecorderError(
                ErrorCode.MALFORMED, f"Enrol: unusable public key ({exc})"
            ) from None
        # Pending until the dock authenticates with it (section 5.3): a dock that dies
        # before storing the secret leaves the recorder as it was.
        self.model.set_pending_secret(new_secret)
        fields: dict[str, Any] = {"device_public_key": public}
        if Capability.SIGNATURE in self.model.capabilities:
            message = auth.enrol_signed_message(self.model.serial, host_public_key, public)
            fields["signature"] = self.model.sign(message)
        self._drop_authority()
        return fields


def _recording_fields(r: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": r.id,
        "start_ms": r.start_ms,
        "end_ms": r.end_ms,
        "size": r.size,
        "sha256": r.sha256,
        "flags": r.flags,
        "sequence": r.index,
        "stop_reason": r.stop_reason,
        "officer_id": r.officer_id,
        "previous_id": r.previous_id,
        "signature": r.signature,
    }
    return fields
