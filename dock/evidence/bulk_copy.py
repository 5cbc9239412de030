"""The bulk byte path of an offload, runnable in a process of its own.

The protocol's per-frame Python work of one slot's copy is the cost of an offload
(issue 15): run in the dock's interpreter, four slots share one GIL. So the part that
only moves bytes (READ the footage, hash it, write it, fsync, read it back past the
cache, publish it under its final name: :func:`write_verified`) may run in a worker
process per offload, while the archive rows, audit entries, erase decisions and seals
stay in the dock (:mod:`.offload`), in the same order and with the same guarantees.

This module holds both ends' common ground: the :class:`BulkCopier` interface the
composition root picks, the job the dock hands the worker, the small messages that come
back (one JSON line each, bounded), and the worker's loop (:func:`copy_files`) over an
open :class:`RecorderClient`. Nothing here writes the database or the audit log.
"""

from __future__ import annotations

import collections
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from dock.devices.recorder_client import RecorderClient, RecorderRefused, RecordingInfo
from dock.evidence.verified_copy import IntegrityError, VerifiedCopyError, write_verified

#: Longest message line either end accepts (a job is bounded separately).
MAX_MESSAGE = 16 * 1024
#: Longest job line (every recording's description, dest folder and name).
MAX_JOB = 8 << 20
#: A progress message at most every this many bytes of a file (and at its end).
PROGRESS_STEP = 1 << 20
#: Payload bytes read from the recorder and not yet written, at most (one chunk always
#: passes). Each chunk held is a view that keeps its decoder buffer (at least 64 KiB)
#: alive, so small chunks hold more memory than this says: at most 1 MiB of chunks of
#: the usual 256 KiB, a few MiB of 16 KiB ones.
IN_FLIGHT_BYTES = 1 << 20

#: ``on_message(message)``: one message from the worker, as decoded here.
OnMessage = Callable[[dict[str, Any]], None]


class WorkerLied(ValueError):
    """The offload worker said what cannot be true: it is stopped, its word not taken."""


class BulkCopier(Protocol):
    """Runs the bulk copies of one offload somewhere else (a worker process)."""

    def takes(self, client: RecorderClient, slot_id: str) -> bool:
        """Whether this slot's link can be handed to the worker (else: in process)."""
        ...

    def copy(
        self, client: RecorderClient, slot_id: str, jobs: list[CopyJob], on_message: OnMessage
    ) -> str | None:
        """Hand the link over, have every job copied, take the link back (the session
        re-opened and authenticated as before). Each message is given to ``on_message``
        in order as it arrives. Returns None when the worker finished, else one line
        saying why it did not (died, hung, said something unreadable): the jobs it did
        not report on are not done. LinkError when the link cannot be taken back."""
        ...


@dataclass(frozen=True)
class CopyJob:
    """One recording to copy: what the recorder said of it, and where it goes."""

    rec: RecordingInfo
    dest: str  # the archive folder (absolute), made by the dock
    name: str  # the final file name in it

    def to_json(self) -> dict[str, Any]:
        r = self.rec
        return {
            "rec": {
                "id": r.id, "start_ms": r.start_ms, "end_ms": r.end_ms, "size": r.size,
                "sha256": r.sha256.hex(), "flags": r.flags,
            },
            "dest": self.dest,
            "name": self.name,
        }  # fmt: skip

    @classmethod
    def from_json(cls, f: dict[str, Any]) -> CopyJob:
        r = f["rec"]
        rec = RecordingInfo(
            id=str(r["id"]), start_ms=int(r["start_ms"]), end_ms=int(r["end_ms"]),
            size=int(r["size"]), sha256=bytes.fromhex(r["sha256"]), signature=None,
            flags=int(r["flags"]), sequence=None, previous_id=None, officer_id=None,
            stop_reason=None,
        )  # fmt: skip
        return cls(rec, str(f["dest"]), str(f["name"]))


def encode_line(message: dict[str, Any], limit: int = MAX_MESSAGE) -> bytes:
    """One message as one line; a text too long is cut (the line stays bounded)."""
    line = json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
    if len(line) > limit:
        cut = {k: (v[:400] if isinstance(v, str) else v) for k, v in message.items()}
        line = json.dumps(cut, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
    return line


def decode_line(line: bytes, limit: int = MAX_MESSAGE) -> dict[str, Any]:
    """A message line from the other end; ValueError for anything but a bounded object."""
    if len(line) > limit or not line.endswith(b"\n"):
        raise ValueError("message too long or cut")
    message = json.loads(line)
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise ValueError("not a message")
    return message


def copy_files(
    client: RecorderClient, jobs: list[CopyJob], emit: Callable[[dict[str, Any]], None]
) -> None:
    """The worker's loop: each job copied and verified in order, each outcome emitted as
    soon as it is known (``published``, ``failed``; ``retry`` before a second read of a
    copy that did not verify; ``progress`` on the way). As the dock's own loop did: a
    copy that fails is reported and the next one goes on; a broken link or a refusal
    ends the loop (the rest waits for the next docking)."""
    for job in jobs:
        rec = job.rec
        try:
            try:
                result = _copy_one(client, job, emit)
            except IntegrityError as first:  # quarantined; read it once more
                emit({"t": "retry", "rec": rec.id, "error": str(first)})
                result = _copy_one(client, job, emit)
        except RecorderRefused as exc:
            emit(_failed(rec.id, exc, stop=True, code=exc.code, message=exc.message))
            return
        except (VerifiedCopyError, ConnectionError, OSError) as exc:
            emit(_failed(rec.id, exc, stop=isinstance(exc, ConnectionError)))
            if isinstance(exc, ConnectionError):
                return  # the link is gone: the rest waits for the next docking
            continue
        emit(
            {"t": "published", "rec": rec.id, "path": result.path, "size": result.size,
             "sha256": result.sha256.hex(), "resumed": result.already_present}
        )  # fmt: skip


def _failed(rid: str, exc: BaseException, stop: bool, **more: Any) -> dict[str, Any]:
    text = str(exc).replace("\n", " ")
    return {"t": "failed", "rec": rid, "kind": type(exc).__name__, "text": text, "stop": stop,
            "link": isinstance(exc, ConnectionError), **more}  # fmt: skip


def _copy_one(client: RecorderClient, job: CopyJob, emit: Callable[[dict[str, Any]], None]) -> Any:
    rec = job.rec
    said = [0, 0.0]

    def progress(done: int) -> None:
        now = time.monotonic()
        if done >= rec.size or done - said[0] >= PROGRESS_STEP or now - said[1] >= 1.0:
            said[0], said[1] = done, now
            emit({"t": "progress", "rec": rec.id, "done": done})

    chunks = PullChunks(client, rec)
    try:
        return write_verified(
            job.dest, job.name, chunks, rec.sha256, expected_size=rec.size, progress=progress
        )
    finally:
        chunks.close()


class PullChunks:
    """Turn the client's push-style read into the chunks ``write_verified`` pulls.

    The client reads in a worker thread (it is used by nobody else meanwhile); the
    chunks waiting between the two are bounded in bytes (IN_FLIGHT_BYTES), not in count,
    so memory stays flat whatever the recorder's chunk size; an error in the reader
    reaches the writer.
    """

    _END = object()

    def __init__(self, client: RecorderClient, rec: RecordingInfo) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._held = 0  # bytes in _items
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(client, rec), daemon=True)
        self._thread.start()

    def _run(self, client: RecorderClient, rec: RecordingInfo) -> None:
        try:
            # a chunk is bytes or a view nothing reuses while it is held (Chunk): kept as is
            client.read_recording(rec, lambda _off, data: self._put(data))
            self._put(self._END)
        except BaseException as exc:  # handed to the consumer, which raises it
            if self._stop.is_set():
                return  # the consumer gave up (its own error is what it reports)
            with contextlib.suppress(ConnectionAbortedError):
                self._put(exc)

    def _put(self, item: Any) -> None:
        size = len(item) if isinstance(item, (bytes, memoryview)) else 0
        with self._cond:
            while not self._stop.is_set():
                if not self._held or self._held + size <= IN_FLIGHT_BYTES:
                    self._items.append(item)
                    self._held += size
                    self._cond.notify_all()
                    return
                self._cond.wait(0.2)
        raise ConnectionAbortedError("offload abandoned")

    def _get(self) -> Any:
        with self._cond:
            while not self._items:  # the reader always ends with _END or its error
                if not self._thread.is_alive():
                    raise ConnectionAbortedError("the recording's reader ended unheard")
                self._cond.wait(1.0)
            item = self._items.popleft()
            if isinstance(item, (bytes, memoryview)):
                self._held -= len(item)
            self._cond.notify_all()
            return item

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=30)
