"""The dock's side of the recorder protocol: a blocking client over any Transport.

It drives the sans-I/O session from ``firmware_protocol`` with real time, matches
replies to requests by request id, pipelines READs for throughput, shrinks the
READ size when the line is noisy (and grows it back when it is clean), and turns
every way a recorder can fail into one of three exceptions a caller can act on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dock.devices.recorder_client.bounds import EVENTS_PAGE
from dock.devices.recorder_client.checks import status_problem
from dock.devices.recorder_client.errors import (
    AuthenticationFailed,
    FrameTooLong,
    InvalidRecording,
    LinkError,
    LinkGone,
    NoReply,
    NotPermitted,
    ProtocolViolation,
    Stalled,
)
from dock.devices.recorder_client.flow import Goodput
from dock.devices.recorder_client.link import RecorderLink
from dock.devices.recorder_client.results import (
    EventLog,
    RecordingInfo,
    RecordingList,
    Status,
    event_bytes,
)
from dock.devices.recorder_client.stream import STREAM_FRAMES, STREAMS_AHEAD, StreamReader
from firmware_protocol import auth
from firmware_protocol.messages import (
    AUTHENTICATED_VERSION,
    Capability,
    MsgType,
)

#: What a sink is given: the bytes at an offset. A memoryview is a read-only view of a
#: buffer the frame decoder lent: it is never written again while any view of it lives
#: (firmware_protocol/framing.py reuses a buffer only once it has no export), so a sink
#: may keep it; keeping it keeps the whole buffer.
Chunk = bytes | memoryview

log = logging.getLogger("dock.recorder")


class RecorderClient(RecorderLink):
    """One open session with one recorder. Not thread-safe; one per slot."""

    #: Read with READ_STREAM when the recorder announces STREAM_READ (else READ).
    use_streams = True

    def enrol(self) -> bytes:
        """Agree a new secret with the recorder (X25519, PROTOCOL.md 5.3); returns it.

        The recorder holds it as pending until the dock authenticates with it, so
        the caller stores it first and then calls ``authenticate``. A recorder that
        signs proves with its device key that the exchange was with itself.
        """
        # imported here: an offload worker, which never enrols, does not carry them (~9 MB)
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.asymmetric.x25519 import (
            X25519PrivateKey,
            X25519PublicKey,
        )

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
        problem = status_problem(status, self.bounds)
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
                size += event_bytes(event)
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
        sink: Callable[[int, Chunk], None],
        offset: int = 0,
        progress: Callable[[int], None] | None = None,
        resume_attempts: int = 3,
    ) -> int:
        """Stream ``rec`` from ``offset`` to its end into ``sink(offset, data)``, in order.

        With a recorder that announces STREAM_READ, asks for the bytes in streams
        (READ_STREAM, PROTOCOL.md 6.2a), each checked reply by reply; else keeps
        several READs in flight. ``data`` may be a read-only memoryview (of bytes
        nothing else holds). If the session breaks (a frame the line could
        not carry, a recorder that reset), it re-opens the session on the same link
        and goes on from the last byte delivered, up to ``resume_attempts`` times.
        Returns the number of bytes delivered.

        Bounded in time by the goodput floor (READ_MIN_BYTES_PER_S over every
        READ_WINDOW_S, re-openings included): Stalled when the recorder delivers
        less. A reply that breaks the protocol (another offset, more bytes than
        asked, none at all, a stream that ends short) is a ProtocolViolation.
        Neither is retried.
        """
        delivered = offset
        stalled = 0  # consecutive breaks with no byte delivered in between
        goodput = Goodput(self._mono, self.bounds, rec.id)
        for _ in range(10_000):
            try:
                if self.use_streams and self.has(Capability.STREAM_READ):
                    delivered = self._stream_from(rec, sink, delivered, progress, goodput)
                if delivered < rec.size:
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

    def _stream_from(
        self,
        rec: RecordingInfo,
        sink: Callable[[int, Chunk], None],
        offset: int,
        progress: Callable[[int], None] | None,
        goodput: Goodput,
    ) -> int:
        """Read with READ_STREAMs of STREAM_FRAMES replies each, STREAMS_AHEAD at a
        time; each stream's chunk is the sizer's size when it is asked for.

        Streams are for a clean line, where the cost is per frame. Once this session
        has seen a damaged frame, no further stream is asked for: the open ones end
        and the caller goes on with READs, whose single replies are sized one by one
        to the line. Returns how far it got.
        """
        reader = self._streams = StreamReader(rec.id)
        next_off = delivered = self._last_delivered = offset
        stats = self.session.stats
        try:
            while delivered < rec.size and (reader.open or not stats.damaged):
                while reader.open < STREAMS_AHEAD and next_off < rec.size and not stats.damaged:
                    chunk = self._sizer.size
                    span = min(rec.size - next_off, chunk * STREAM_FRAMES)
                    rid = self.start(
                        MsgType.READ_STREAM, id=rec.id, offset=next_off, length=span, chunk=chunk
                    )
                    reader.expect(rid, next_off, next_off + span, chunk)
                    next_off += span
                self._pump(reader.has_news, self.timeout, streaming=True)
                ready = reader.ready
                while ready:
                    off, data, damaged = ready.popleft()
                    own = self._mono()
                    sink(off, data)
                    delivered = self._last_delivered = off + len(data)
                    if progress:
                        progress(delivered)
                    goodput.exclude(self._mono() - own)
                    goodput.check(len(data))
                    self._sizer.on_reply(damaged=damaged > 0)
                reader.finish()
        finally:
            self._streams = None
        self._flush()  # the ACK of the last replies, if it was waiting
        return delivered

    def _read_from(
        self,
        rec: RecordingInfo,
        sink: Callable[[int, bytes], None],
        offset: int,
        progress: Callable[[int], None] | None,
        goodput: Goodput,
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
