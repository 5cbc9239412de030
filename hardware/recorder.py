"""The reference recorder firmware: answers the protocol on behalf of a RecorderModel.

Transport-agnostic: a server loop (pty, TCP, or the pyusb test backend) passes in
the bytes it read and writes out what ``outgoing`` returns. Everything a firmware
must refuse is refused here, with the error a real recorder must give: unknown
messages, malformed bodies, privileged commands before authentication, an erase
without the right hash.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

from firmware_protocol import auth
from firmware_protocol.messages import (
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
    error,
    reply,
)
from firmware_protocol.session import Delivered, Opened, Role, Session, SessionConfig

from .recorder_model import RecorderModel

log = logging.getLogger("recorder")

#: Largest READ chunk this firmware serves (and the largest payload it accepts).
MAX_READ = 256 * 1024
LIST_PAGE = 64
EVENTS_PAGE = 128

_CAPABILITY_FOR: dict[MsgType, Capability] = {
    MsgType.SELF_TEST: Capability.SELF_TEST,
    MsgType.MASS_STORAGE: Capability.MASS_STORAGE,
    MsgType.EVENTS: Capability.EVENT_LOG,
    MsgType.ASSIGN: Capability.ASSIGN,
    MsgType.ERASE: Capability.ERASE,
}


class RecorderError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class RecorderFirmware:
    def __init__(
        self,
        model: RecorderModel,
        monotonic: Callable[[], float] = time.monotonic,
        random_bytes: Callable[[int], bytes] = os.urandom,
        session_config: SessionConfig | None = None,
    ) -> None:
        self.model = model
        self._reading: tuple[str, int] | None = None
        self._mono = monotonic
        self._random = random_bytes
        cfg = session_config or SessionConfig(max_payload=MAX_READ + 1024, window=16)
        self.session = Session(Role.RESPONDER, cfg)
        self._new_session()

    def _new_session(self) -> None:
        self._close_reading()
        self.authenticated = False
        self._host_nonce: bytes | None = None
        self._device_nonce: bytes | None = None

    # ------------------------------------------------------------------ I/O pump
    def receive(self, data: bytes) -> None:
        now = self._mono()
        for event in self.session.receive(data, now):
            if isinstance(event, Opened):
                log.info("session opened", extra={"session": event.session_id})
                self._new_session()
            elif isinstance(event, Delivered):
                self._handle(event.msg_type, event.payload, now)

    def outgoing(self) -> bytes:
        return self.session.outgoing()

    def next_deadline(self) -> float | None:
        return self.session.next_deadline()

    def on_timer(self) -> None:
        for event in self.session.on_timer(self._mono()):
            log.warning("link failed: %s", event)
            # A recorder never gives up on its own; it waits for the dock to reopen.
            self.session = Session(Role.RESPONDER, self.session.config)
            self._new_session()

    # ------------------------------------------------------------------ dispatch
    def _handle(self, wire_type: int, payload: bytes, now: float) -> None:
        try:
            msg = decode(wire_type, payload)
            if msg.is_reply:
                raise RecorderError(ErrorCode.UNKNOWN_MESSAGE, "a recorder takes requests only")
            answer = self._answer(msg)
        except UnknownMessage as exc:
            answer = error(exc.req_id or 0, ErrorCode.UNKNOWN_MESSAGE, str(exc), wire_type)
        except MalformedMessage as exc:
            req_id = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else 0
            answer = error(req_id, ErrorCode.MALFORMED, str(exc), wire_type)
        except RecorderError as exc:
            req_id = int.from_bytes(payload[:4], "big")
            answer = error(req_id, exc.code, str(exc), wire_type)
        except OSError as exc:
            req_id = int.from_bytes(payload[:4], "big")
            answer = error(req_id, ErrorCode.STORAGE, f"storage error: {exc}", wire_type)
        except Exception as exc:  # a firmware answers, it never crashes
            log.exception("internal error handling 0x%04x", wire_type)
            req_id = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else 0
            answer = error(req_id, ErrorCode.INTERNAL, type(exc).__name__, wire_type)
        t, body = encode(answer)
        self.session.send(t, body, now)

    def _answer(self, msg: Message) -> Message:
        t = msg.msg_type
        needed = _CAPABILITY_FOR.get(t)
        if needed is not None and needed not in self.model.capabilities:
            raise RecorderError(ErrorCode.UNSUPPORTED, f"this recorder has no {needed.name}")
        if t in PRIVILEGED and not self.authenticated:
            raise RecorderError(ErrorCode.AUTH_REQUIRED, f"{t.name} needs authentication")
        handler = getattr(self, f"_on_{t.name.lower()}", None)
        if handler is None:
            raise RecorderError(ErrorCode.UNKNOWN_MESSAGE, f"{t.name} is not a request")
        fields = handler(**msg.fields)
        return reply(t, msg.req_id, **fields)

    # ------------------------------------------------------------------ handlers
    def _on_hello(self, min_version: int, max_version: int, host_id: str | None = None) -> dict:
        common = [v for v in SUPPORTED_VERSIONS if min_version <= v <= max_version]
        if not common:
            raise RecorderError(
                ErrorCode.VERSION_UNSUPPORTED,
                f"recorder speaks {SUPPORTED_VERSIONS}, host asked {min_version}..{max_version}",
            )
        m = self.model
        fields: dict[str, Any] = {
            "version": max(common),
            "firmware": m.state["firmware"],
            "model": m.state["model"],
            "serial": m.serial,
            "capabilities": int(m.capabilities),
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
        page = recs[start : start + min(max_count, LIST_PAGE)]
        return {"total": len(recs), "recordings": [_recording_fields(r) for r in page]}

    def _on_read(self, id: str, offset: int, length: int) -> dict:
        rec = self.model.recordings.get(id)
        if rec is None:
            raise RecorderError(ErrorCode.NOT_FOUND, f"no recording {id}")
        if offset > rec.size:
            raise RecorderError(ErrorCode.OUT_OF_RANGE, f"offset {offset} beyond size {rec.size}")
        length = min(length, MAX_READ, self.session.peer_max_payload - 64, rec.size - offset)
        return {"offset": offset, "data": os.pread(self._open_for_read(id), length, offset)}

    def _open_for_read(self, rid: str) -> int:
        """One open file at a time: a transfer reads one recording chunk after chunk."""
        if self._reading is not None and self._reading[0] == rid:
            return self._reading[1]
        self._close_reading()
        fd = os.open(self.model.recording_path(rid), os.O_RDONLY)
        self._reading = (rid, fd)
        return fd

    def _close_reading(self) -> None:
        if self._reading is not None:
            os.close(self._reading[1])
            self._reading = None

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
        return {"next": since + len(events), "events": events}

    def _on_self_test(self) -> dict:
        faults = self.model.faults()
        items = [{"name": flag.name.lower(), "passed": flag not in faults} for flag in type(faults)]
        items.append({"name": "charge", "passed": self.model.battery_percent() > 0})
        return {"passed": all(i["passed"] for i in items), "items": items}

    def _on_mass_storage(self, enable: bool) -> dict:
        folder = os.path.join(self.model.data_dir, "mass-storage")
        if enable:
            self._expose_read_only(folder)
            return {"enabled": True, "volume_label": self.model.serial, "local_path": folder}
        if os.path.isdir(folder):
            os.chmod(folder, 0o755)
            shutil.rmtree(folder)
        return {"enabled": False}

    def _expose_read_only(self, folder: str) -> None:
        if os.path.isdir(folder):
            os.chmod(folder, 0o755)
            shutil.rmtree(folder)
        os.makedirs(folder)
        for rec in self.model.ordered_recordings():
            os.link(self.model.recording_path(rec.id), os.path.join(folder, f"{rec.id}.mp4"))
        os.chmod(folder, 0o555)

    def _on_auth_challenge(self, host_nonce: bytes) -> dict:
        if self.model.secret is None:
            raise RecorderError(ErrorCode.NOT_ENROLLED, "recorder is not enrolled")
        self._host_nonce = host_nonce
        self._device_nonce = self._random(auth.NONCE_SIZE)
        self.authenticated = False
        return {"device_nonce": self._device_nonce}

    def _on_auth_prove(self, host_mac: bytes) -> dict:
        secret = self.model.secret
        if secret is None or self._host_nonce is None or self._device_nonce is None:
            raise RecorderError(ErrorCode.AUTH_FAILED, "no challenge outstanding")
        host_nonce, device_nonce = self._host_nonce, self._device_nonce
        self._host_nonce = self._device_nonce = None  # one try per challenge
        expected = auth.host_proof(secret, self.model.serial, host_nonce, device_nonce)
        if not auth.verify(expected, host_mac):
            raise RecorderError(ErrorCode.AUTH_FAILED, "proof does not match")
        self.authenticated = True
        proof = auth.device_proof(secret, self.model.serial, host_nonce, device_nonce)
        return {"device_mac": proof}

    def _on_enrol(self, secret: bytes) -> dict:
        if self.model.secret is not None and not self.authenticated:
            raise RecorderError(ErrorCode.ALREADY_ENROLLED, "re-keying needs authentication")
        self.model.set_secret(secret)
        self.authenticated = False
        return {}


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
