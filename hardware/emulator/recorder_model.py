"""The emulated recorder's body: battery, clock, storage, recordings, event log.

State lives in ``<data-dir>/state.json`` (written atomically) and footage in
``<data-dir>/recordings/``, so a recorder keeps its footage, officer, secret and
event log across a restart, as a real one keeps them in flash. Time comes from
the injected ``clock`` (wall seconds), scaled by ``time_scale`` for battery models.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware_protocol.messages import Capability, EventKind, FaultFlag, RecordingFlag, StopReason
from hardware.emulator.footage import write_footage

MIB = 1 << 20
ALL_CAPABILITIES = Capability(sum(Capability))
LEGACY_CAPABILITIES = Capability.EVENT_LOG | Capability.ASSIGN | Capability.ERASE
LOW_BATTERY_PERCENT = 15


@dataclass
class RecorderSpec:
    """How to build a recorder on first start (ignored once state exists on disk)."""

    serial: str = "EMU0001"
    model: str = "BWC-EMU-1"
    firmware: str = "1.4.2"
    vendor: str = "Open Dock Reference"
    battery_percent: float = 85.0
    battery_health_percent: int = 94
    battery_cycles: int = 212
    storage_total_mb: int = 32 * 1024
    storage_free_mb: int = 30 * 1024
    clock_offset_s: float = 0.0
    drift_ppm: float = 20.0
    recordings: int = 3
    recording_mb: float = 2.0
    interrupted: int = 0
    capabilities: Capability = ALL_CAPABILITIES
    secret: bytes | None = None
    faults: FaultFlag = field(default_factory=lambda: FaultFlag(0))
    recording: bool = False
    docked: bool = True
    time_scale: float = 1.0
    officer_id: str | None = None


@dataclass
class Recording:
    id: str
    index: int
    start_ms: int
    end_ms: int
    size: int
    sha256: bytes
    flags: int = 0
    stop_reason: int = int(StopReason.MANUAL)
    officer_id: str | None = None
    previous_id: str | None = None
    signature: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["sha256"] = self.sha256.hex()
        d["signature"] = self.signature.hex() if self.signature else None
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Recording:
        d = dict(d)
        d["sha256"] = bytes.fromhex(d["sha256"])
        d["signature"] = bytes.fromhex(d["signature"]) if d.get("signature") else None
        return cls(**d)


@dataclass
class RecorderModel:
    data_dir: str
    spec: RecorderSpec
    clock: Callable[[], float] = time.time
    state: dict[str, Any] = field(default_factory=dict)
    recordings: dict[str, Recording] = field(default_factory=dict)

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def open(
        cls, data_dir: str, spec: RecorderSpec, clock: Callable[[], float] = time.time
    ) -> RecorderModel:
        os.makedirs(os.path.join(data_dir, "recordings"), exist_ok=True)
        model = cls(data_dir, spec, clock)
        path = model._state_path
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                saved = json.load(f)
            model.state = saved["state"]
            model.recordings = {r["id"]: Recording.from_json(r) for r in saved["recordings"]}
        else:
            model._create()
        model.spec.time_scale = spec.time_scale
        model.log(EventKind.POWER_ON, battery_percent=int(model.battery_percent()))
        if model.state["docked"]:
            model.log(EventKind.DOCKED)
        model.save()
        return model

    @property
    def _state_path(self) -> str:
        return os.path.join(self.data_dir, "state.json")

    def _create(self) -> None:
        s = self.spec
        now = self.clock()
        key = Ed25519PrivateKey.generate()
        self.state = {
            "serial": s.serial,
            "model": s.model,
            "firmware": s.firmware,
            "vendor": s.vendor,
            "capabilities": int(s.capabilities),
            "secret": s.secret.hex() if s.secret else None,
            "device_key": key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            ).hex(),
            "battery": s.battery_percent,
            "battery_at": now,
            "battery_health": s.battery_health_percent,
            "battery_cycles": s.battery_cycles,
            "clock_offset": s.clock_offset_s,
            "clock_set_at": now,
            "drift_ppm": s.drift_ppm,
            "storage_total": s.storage_total_mb * MIB,
            "storage_free": s.storage_free_mb * MIB,
            "faults": int(s.faults),
            "recording": s.recording,
            "docked": s.docked,
            "officer": {"officer_id": s.officer_id} if s.officer_id else None,
            "events": [],
            "next_recording": 1,
        }
        self._generate_recordings(s.recordings, int(s.recording_mb * MIB), s.interrupted)

    def _generate_recordings(
        self,
        count: int,
        size: int,
        interrupted: int,
        start_ms: int | None = None,
        signed: bool = True,
    ) -> None:
        """Footage recorded before docking: back-to-back clips ending an hour ago, or from
        ``start_ms`` (device clock) on; ``signed=False``: clips the device key did not sign
        even where the recorder signs (inserted footage, for the dock's continuity flags)."""
        now_ms = int(self.device_time() * 1000)
        duration_ms = max(1000, size // 500)  # about 4 Mbit/s
        start = now_ms - 3_600_000 - count * (duration_ms + 60_000)
        if start_ms is not None:
            start = start_ms
        officer = (self.state.get("officer") or {}).get("officer_id")
        for i in range(count):
            index = self.state["next_recording"]
            self.state["next_recording"] += 1
            rid = f"REC{index:06d}"
            path = self.recording_path(rid)
            digest = write_footage(path, self.state["serial"], index, size)
            os.chmod(path, 0o444)
            cut = i >= count - interrupted
            reason = StopReason.BATTERY if cut else StopReason.MANUAL
            rec = Recording(
                id=rid,
                index=index,
                start_ms=start,
                end_ms=start + duration_ms,
                size=size,
                sha256=digest,
                flags=int(RecordingFlag.INTERRUPTED) if cut else 0,
                stop_reason=int(reason),
                officer_id=officer,
            )
            if signed and Capability.SIGNATURE in self.capabilities:
                rec.signature = self._device_key().sign(digest)
            self.recordings[rid] = rec
            self.state["storage_free"] = max(0, self.state["storage_free"] - size)
            self._append_event(start, EventKind.RECORD_START, recording_id=rid)
            if cut:
                self._append_event(
                    start + duration_ms,
                    EventKind.INTERRUPTED,
                    reason=int(reason),
                    recording_id=rid,
                    detail="battery exhausted",
                )
            else:
                self._append_event(
                    start + duration_ms, EventKind.RECORD_STOP, reason=int(reason), recording_id=rid
                )
            start += duration_ms + 60_000

    def save(self) -> None:
        tmp = self._state_path + ".tmp"
        body = {
            "state": self.state,
            "recordings": [r.to_json() for r in self.recordings.values()],
        }
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(body, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._state_path)

    # ------------------------------------------------------------------ identity
    @property
    def serial(self) -> str:
        return self.state["serial"]

    @property
    def capabilities(self) -> Capability:
        return Capability(self.state["capabilities"])

    @property
    def secret(self) -> bytes | None:
        s = self.state.get("secret")
        return bytes.fromhex(s) if s else None

    def set_secret(self, secret: bytes) -> None:
        self.state["secret"] = secret.hex()
        self.state.pop("pending_secret", None)
        self.save()

    @property
    def pending_secret(self) -> bytes | None:
        """A secret from ENROL not yet confirmed by an authentication with it."""
        s = self.state.get("pending_secret")
        return bytes.fromhex(s) if s else None

    def set_pending_secret(self, secret: bytes) -> None:
        self.state["pending_secret"] = secret.hex()
        self.save()

    def _device_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(self.state["device_key"]))

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature with the device key (recordings, ENROL's key agreement)."""
        return self._device_key().sign(message)

    def device_public_key(self) -> bytes:
        return (
            self._device_key()
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )

    # ------------------------------------------------------------------ battery
    def battery_percent(self) -> float:
        """Charge while docked, drain while recording, a little self-discharge always."""
        now = self.clock()
        hours = (now - self.state["battery_at"]) * self.spec.time_scale / 3600
        rate = -0.5
        if self.state["docked"]:
            rate += 40.0 * self.state["battery_health"] / 100
        if self.state["recording"]:
            rate -= 12.0
        before = self.state["battery"]
        level = min(100.0, max(0.0, before + rate * hours))
        self.state["battery"], self.state["battery_at"] = level, now
        if before >= LOW_BATTERY_PERCENT > level:
            self.log(EventKind.LOW_BATTERY, battery_percent=int(level))
        return level

    def charging(self) -> bool:
        return bool(self.state["docked"]) and self.battery_percent() < 100.0

    # ------------------------------------------------------------------ clock
    def device_time(self) -> float:
        """Wall time plus the offset last set plus drift accumulated since."""
        now = self.clock()
        elapsed = now - self.state["clock_set_at"]
        return now + self.state["clock_offset"] + elapsed * self.state["drift_ppm"] * 1e-6

    def set_time(self, utc: float) -> float:
        """Set the clock; returns the drift found (device minus given), in seconds."""
        drift = self.device_time() - utc
        now = self.clock()
        self.state["clock_offset"] = utc - now
        self.state["clock_set_at"] = now
        self.log(EventKind.TIME_SET, detail=f"drift_ms={round(drift * 1000)}")
        self.save()
        return drift

    # ------------------------------------------------------------------ recordings
    def recording_path(self, rid: str) -> str:
        return os.path.join(self.data_dir, "recordings", f"{rid}.mp4")

    def ordered_recordings(self) -> list[Recording]:
        return sorted(self.recordings.values(), key=lambda r: r.index)

    def erase(self, rid: str, logged: bool = True) -> None:
        rec = self.recordings.pop(rid)
        path = self.recording_path(rid)
        os.chmod(path, 0o644)
        os.remove(path)
        self.state["storage_free"] += rec.size
        if logged:
            self.log(EventKind.ERASED, recording_id=rid)
        self.save()

    # --- what a wearer (or a tampered recorder) does between check-out and return: the
    # knobs the dock's continuity tests turn (REQUIREMENTS §4: no selective keeping,
    # after-the-fact recording or inserted footage).
    def film(
        self,
        count: int = 1,
        size: int = 20_000,
        start_ms: int | None = None,
        signed: bool = True,
        duration_ms: int = 1_000,
    ) -> list[Recording]:
        """Record ``count`` clips of ``duration_ms`` now (ending a moment ago, 1 s apart),
        or from ``start_ms`` on (device clock: before the check-out, say); ``signed=False``
        leaves them unsigned. Numbered on from the last clip, as every clip is."""
        if start_ms is None:
            start_ms = int(self.device_time() * 1000) - count * (duration_ms + 1_000)
        self._generate_recordings(count, size, 0, start_ms=start_ms, signed=signed)
        for rec in self.ordered_recordings()[-count:]:  # back-to-back, a second apart
            rec.start_ms, rec.end_ms = start_ms, start_ms + duration_ms
            start_ms += duration_ms + 1_000
        self._retime_events(self.ordered_recordings()[-count:])
        self.save()
        return self.ordered_recordings()[-count:]

    def _retime_events(self, recs: list[Recording]) -> None:
        times = {r.id: (r.start_ms, r.end_ms) for r in recs}
        for e in self.state["events"]:
            span = times.get(e.get("recording_id", ""))
            if span is not None and e["kind"] == int(EventKind.RECORD_START):
                e["time_ms"] = span[0]
            elif span is not None:
                e["time_ms"] = span[1]

    def delete_on_device(self, rid: str, logged: bool = True) -> None:
        """The wearer deletes a clip before docking (``logged=False``: a recorder whose
        log was tampered with too): its number is gone from the sequence."""
        self.erase(rid, logged=logged)

    # ------------------------------------------------------------------ officer
    def assign(self, officer_id: str, name: str, unit: str) -> None:
        self.state["officer"] = {"officer_id": officer_id, "name": name, "unit": unit}
        self.log(EventKind.ASSIGNED, detail=officer_id)
        self.save()

    def officer_id(self) -> str | None:
        return (self.state.get("officer") or {}).get("officer_id")

    # ------------------------------------------------------------------ events
    def log(self, kind: EventKind, **extra: Any) -> None:
        self._append_event(int(self.device_time() * 1000), kind, **extra)

    def _append_event(self, time_ms: int, kind: EventKind, **extra: Any) -> None:
        events = self.state["events"]
        entry = {"index": len(events), "time_ms": time_ms, "kind": int(kind)}
        entry.update({k: v for k, v in extra.items() if v is not None})
        events.append(entry)

    def events_since(self, since: int, limit: int) -> list[dict[str, Any]]:
        return self.state["events"][since : since + limit]

    def faults(self) -> FaultFlag:
        return FaultFlag(self.state["faults"])
