"""The careful copy: write footage, prove the disk holds exactly those bytes, then name it.

Footage is evidence, so a copy only counts once it is verified bit for bit against the
hash the recorder computed at capture (REQUIREMENTS §4; DESIGN "Hard-won facts"):

1. write to a temporary name in the destination folder, a CRC-32 of each segment
   (SEGMENT_BYTES) taken as it is written;
2. while the next segments are written, a thread takes each written segment to the disk
   (sync_file_range), reads it back from the disk past the page cache (O_DIRECT, else
   after dropping its pages), and another hashes it (SHA-256, in order, so the hash is
   the whole file's) and checks its CRC-32 against the written one; the file is fsynced
   once the last segment is written;
3. only if the read-back hash is the expected one, every segment read back equals what was
   written and the sizes agree: make it read-only, ``os.replace`` it to its final name and
   fsync the folder.

The proof is the read-back: the bytes the disk returns hash to the capture hash. The
segment CRCs only say where a mismatch arose ("source": the disk holds what was received,
which is not the capture; "read-back": the disk returned other bytes than were written).
``hash_written=True`` also hashes the bytes as received with SHA-256 (a mass-storage
recorder, whose only hash is the dock's own: its three reads must agree as SHA-256).
Hashing the read-back beside the writes, not after the fsync, is what keeps a verified
copy near the speed of a plain one (bench/RESULTS.md).

A mismatch never deletes bytes: the temporary file goes to ``dest_dir/quarantine/``, as
evidence of what went wrong. An I/O error (EIO, ENOSPC, ...) removes the partial file and
raises :class:`CopyFailed`; an fsync is never retried (after a failed fsync the kernel may
have marked the dirty pages clean, so a second one can "succeed" over lost data): the
caller copies again from the source, which stays on the device until this returns.
"""

# One file: write, fsync, read back, compare, publish or quarantine are one procedure
# whose steps only make sense together (and the kill -9 campaign tests them as one).

from __future__ import annotations

import contextlib
import errno as errno_mod
import hashlib
import logging
import mmap
import os
import queue
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from dock.support import crashpoints
from dock.support.files import (
    drop_cache,
    drop_range,
    flush_range,
    fsync_dir,
    hash_blocks,
    open_direct,
    read_range_into,
    start_flush,
)

try:  # the same CRC-32 as zlib's, several times faster where zlib-ng is installed
    from zlib_ng.zlib_ng import crc32
except ImportError:  # pragma: no cover - zlib-ng is optional
    from zlib import crc32

log = logging.getLogger("dock.evidence.verified_copy")

QUARANTINE_DIR = "quarantine"
READ_BLOCK = 1024 * 1024
HASH_QUEUE_CHUNKS = 8  # bounds the memory held between the writer and the hasher
#: Written bytes taken to the disk, read back and hashed as one piece, beside the writes.
SEGMENT_BYTES = 16 * 1024 * 1024
#: One read of the read-back: as fast as 1 MiB from a disk here, half the memory.
READ_BACK_BLOCK = 512 * 1024
#: Segments written but not yet read back: bounds the dirty pages one copy holds.
SEGMENTS_AHEAD = 3
_NAME_PREFIX_BYTES = 180  # keeps temporary and quarantine names under NAME_MAX (255)


class VerifiedCopyError(Exception):
    """Base of every refusal or failure of a careful copy."""


class IntegrityError(VerifiedCopyError):
    """The bytes are not the expected ones; the file was quarantined, not published.

    ``stage`` says where: ``"source"`` (the bytes received do not hash to the expected
    value), ``"read-back"`` (the disk returned other bytes than were written) or
    ``"size"``. ``found_sha256`` is the hash at that stage. ``written_sha256`` is None
    where the bytes as written were not hashed on their own (a read-back that differs
    from them; ``differs_at`` then gives the first segment's span of bytes).
    """

    def __init__(
        self,
        final_name: str,
        stage: str,
        expected_sha256: bytes,
        found_sha256: bytes,
        *,
        written_sha256: bytes | None,
        read_back_sha256: bytes,
        expected_size: int | None,
        written_size: int,
        read_back_size: int,
        quarantined_path: str | None,
        differs_at: tuple[int, int] | None = None,
    ) -> None:
        self.final_name = final_name
        self.stage = stage
        self.expected_sha256 = expected_sha256
        self.found_sha256 = found_sha256
        self.written_sha256 = written_sha256
        self.read_back_sha256 = read_back_sha256
        self.expected_size = expected_size
        self.written_size = written_size
        self.read_back_size = read_back_size
        self.quarantined_path = quarantined_path
        self.differs_at = differs_at
        if written_sha256 is not None:
            written = f"written {written_size} B {written_sha256.hex()}"
        elif differs_at is not None:
            lo, hi = differs_at
            written = f"written {written_size} B, other bytes read back in {lo}-{hi}"
        else:
            written = f"written {written_size} B"
        super().__init__(
            f"{final_name}: {stage} mismatch: expected sha256 {expected_sha256.hex()}"
            f" size {expected_size}, found {found_sha256.hex()}"
            f" ({written}, read back {read_back_size} B {read_back_sha256.hex()});"
            f" kept in {quarantined_path or 'its temporary file (quarantine failed)'}"
        )


class CopyFailed(VerifiedCopyError):
    """An I/O error at the destination; the partial file is gone, copy again from the source."""

    def __init__(self, errno: int | None, operation: str, path: str, strerror: str = "") -> None:
        self.errno = errno
        self.operation = operation
        self.path = path
        name = errno_mod.errorcode.get(errno, str(errno)) if errno is not None else "?"
        super().__init__(f"{operation} {path}: [{name}] {strerror}".rstrip())


class DestinationExists(VerifiedCopyError):
    """``final_name`` already holds something else: refused, and left untouched."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path} already exists and {reason}; refusing to replace it")


class NotEnoughRoom(VerifiedCopyError):
    """Not enough room at the destination: the offload does not start."""

    def __init__(self, needed: int, free: int) -> None:
        self.needed = needed
        self.free = free
        super().__init__(f"not enough room: need {needed} bytes, {free} free")


@dataclass(frozen=True)
class VerifiedFile:
    """A file on disk proven to hold the expected bytes. ``already_present``: a resume."""

    path: str
    size: int
    sha256: bytes
    already_present: bool = False


class FileOps:
    """The OS calls a careful copy makes, injectable so tests can fail them on purpose."""

    def open_new(self, path: str) -> int:
        """Create ``path`` for writing; fails if it exists (never writes over anything)."""
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)

    def write(self, fd: int, data: memoryview) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def drop_cache(self, fd: int) -> None:
        """Best effort: evict the file's clean pages so the read-back comes from the disk.

        Only clean pages go (hence after fsync); a filesystem without a page cache of its
        own or a platform without ``posix_fadvise`` silently reads from memory instead.
        """
        drop_cache(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def open_read(self, path: str) -> int:
        """Open the file being written for its read-back (a descriptor of its own)."""
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def open_direct(self, path: str) -> int | None:
        """A descriptor reading from the disk past the page cache (O_DIRECT); None where
        the file system has none (the read-back then drops the cache and reads)."""
        return open_direct(path)

    def start_flush(self, fd: int, offset: int, length: int) -> None:
        """Start taking written bytes to the disk, without waiting."""
        start_flush(fd, offset, length)

    def flush_range(self, fd: int, offset: int, length: int) -> None:
        """Take written bytes to the disk and wait (not a durability barrier: fsync is)."""
        flush_range(fd, offset, length)

    def drop_range(self, fd: int, offset: int, length: int) -> None:
        """Best effort, as drop_cache, for part of a file."""
        drop_range(fd, offset, length)

    def read_range(
        self, fd: int, offset: int, length: int, buffers: Callable[[], memoryview]
    ) -> Iterator[memoryview]:
        """Yield the bytes stored at ``offset`` (short at the end of the file), each a
        view of a buffer from ``buffers()``."""
        return read_range_into(fd, offset, length, buffers)

    def read_back(self, path: str) -> Iterator[bytes]:
        """Yield the file's bytes as stored, from the disk (best effort, see drop_cache)."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.drop_cache(fd)
            while block := os.read(fd, READ_BLOCK):
                yield block
        finally:
            os.close(fd)

    def sync_existing(self, path: str) -> None:
        """fsync a file this process did not just write (a resume), so read-back is real."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(path, mode)

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def fsync_dir(self, path: str) -> None:
        fsync_dir(path)

    def mkdir(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def lstat(self, path: str) -> os.stat_result | None:
        try:
            return os.lstat(path)
        except FileNotFoundError:
            return None


REAL_FS = FileOps()


def free_bytes(path: str) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def ensure_room(path: str, needed: int, margin: int = 0) -> int:
    """Raise :class:`NotEnoughRoom` unless ``needed + margin`` bytes are free; return free.

    Checked before an offload starts, so a full disk refuses the offload instead of
    failing half-way through it.
    """
    if needed < 0 or margin < 0:
        raise ValueError("needed and margin must not be negative")
    free = free_bytes(path)
    if free < needed + margin:
        raise NotEnoughRoom(needed + margin, free)
    return free


class _Hasher:
    """SHA-256 in a worker thread fed through a bounded queue, overlapping the writes."""

    _STOP = object()

    def __init__(self) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=HASH_QUEUE_CHUNKS)
        self._hash = hashlib.sha256()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sha256-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            if self._error is None:
                try:
                    self._hash.update(item)  # type: ignore[arg-type]
                except BaseException as exc:  # keep draining so the writer never blocks
                    self._error = exc

    def feed(self, data: bytes) -> None:
        self._queue.put(data)

    def finish(self) -> bytes:
        self.stop()
        if self._error is not None:
            raise self._error
        return self._hash.digest()

    def stop(self) -> None:
        """End the worker (idempotent); used on every path, so no thread outlives a copy."""
        if self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join()


class _Buffers:
    """Page-aligned read buffers (O_DIRECT reads into them), reused: the read-back's
    memory stays a few blocks whatever the file's size."""

    def __init__(self) -> None:
        self._free: list[memoryview] = []
        self._ours: dict[int, memoryview] = {}
        self._lock = threading.Lock()

    def get(self) -> memoryview:
        with self._lock:
            if self._free:
                return self._free.pop()
        view = memoryview(mmap.mmap(-1, READ_BACK_BLOCK))
        with self._lock:
            self._ours[id(view.obj)] = view
        return view

    def give_back(self, piece: memoryview | bytes) -> None:
        """Return the buffer ``piece`` views (anything else is ignored)."""
        base = piece.obj if isinstance(piece, memoryview) else None
        with self._lock:
            view = self._ours.get(id(base))
            if view is not None:
                self._free.append(view)

    def close(self) -> None:
        with self._lock:
            views, self._free, self._ours = list(self._ours.values()), [], {}
        for view in views:
            base = view.obj
            view.release()
            with contextlib.suppress(BufferError):
                base.close()  # type: ignore[attr-defined]


class _ReadBack:
    """Each written segment taken to the disk, read back from it and hashed, in order,
    beside the writer: one thread waits for the disk and reads (preadv, past the page
    cache with O_DIRECT where the file system has it, else after dropping the
    segment's pages), another hashes (SHA-256 and CRC-32), so the disk and the hash
    work at once (both release the GIL). The writer is held back when SEGMENTS_AHEAD
    segments wait; at most BLOCKS_AHEAD blocks read wait for the hash.

    Neither thread ever stops before it is told to: any error (an I/O error, or a bug)
    is kept with the step it happened in, ``failed`` is set, and both go on draining
    their queues, so the writer never waits for a thread that is gone."""

    _STOP = (-1, 0, 0)
    BLOCKS_AHEAD = 1

    def __init__(self, rfd: int, direct: int | None, fs: FileOps) -> None:
        self._rfd, self._direct, self._fs = rfd, direct, fs
        self._buffers = _Buffers()
        self._segments: queue.Queue[tuple[int, int, int]] = queue.Queue(maxsize=SEGMENTS_AHEAD)
        self._blocks: queue.Queue[memoryview | tuple[int, int, int]] = queue.Queue(
            maxsize=self.BLOCKS_AHEAD
        )
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.submitted = 0  # segments handed over by the writer
        self.compared = 0  # segments read back whole and compared with their writing
        self.differs_at: tuple[int, int] | None = None  # the first segment unlike its writing
        self.error: BaseException | None = None
        self.step = "read back"  # what failed: "write to disk" or "read back"
        self.failed = threading.Event()
        self._threads = [
            threading.Thread(target=target, name="read-back", daemon=True)
            for target in (self._fetch, self._hash)
        ]
        self._threads[0].start()
        try:
            self._threads[1].start()
        except BaseException:  # no second thread: end the first (its one block fits)
            self._segments.put(self._STOP)
            self._threads[0].join()
            raise

    def _fail(self, exc: BaseException, step: str) -> None:
        if self.error is None:
            self.error, self.step = exc, step
        self.failed.set()

    def _fetch(self) -> None:
        """Wait for each segment on the disk and read it back."""
        fs, rfd = self._fs, self._rfd
        try:
            while True:
                segment = self._segments.get()
                offset, length, _crc = segment
                if offset < 0:
                    return
                if self.failed.is_set():
                    continue  # keep draining so the writer never blocks
                step = "write to disk"
                try:
                    fs.flush_range(rfd, offset, length)  # its own descriptor: the writer may close
                    step = "read back"
                    fs.drop_range(rfd, offset, length)  # written pages: not needed again
                    self._read_segment(offset, length)
                except BaseException as exc:  # kept, said by finish(); never a dead thread
                    self._fail(exc, step)
                    continue
                self._blocks.put(segment)  # its end: the hash compares it
        finally:
            self._blocks.put(self._STOP)

    def _read_segment(self, offset: int, length: int) -> None:
        """Queue the segment's bytes as read back. A file system that opened O_DIRECT but
        refuses its reads (EINVAL before a byte came) is read through the page cache from
        then on, after the segment's pages are dropped."""
        fs, rfd = self._fs, self._rfd
        queued = False
        if self._direct is not None:
            try:
                for piece in fs.read_range(self._direct, offset, length, self._buffers.get):
                    queued = True
                    self._blocks.put(piece)
                return
            except OSError as exc:
                if queued or exc.errno != errno_mod.EINVAL:
                    raise
                log.info("O_DIRECT reads refused here; reading back through the page cache")
                self._direct = None
        for piece in fs.read_range(rfd, offset, length, self._buffers.get):
            self._blocks.put(piece)
        fs.drop_range(rfd, offset, length)  # read once: no need to keep it

    def _hash(self) -> None:
        found_crc = found = 0
        while True:
            item = self._blocks.get()
            if isinstance(item, tuple):
                offset, length, crc = item
                if offset < 0:
                    return
                if not self.failed.is_set():
                    self.size += found
                    self.compared += 1
                    if (found, found_crc) != (length, crc) and self.differs_at is None:
                        self.differs_at = (offset, offset + length)
                found_crc = found = 0
                continue
            if self.failed.is_set():
                continue  # keep draining so the reader never blocks
            try:
                self.sha256.update(item)
                found_crc = crc32(item, found_crc)
                found += len(item)
                self._buffers.give_back(item)
            except BaseException as exc:  # kept, said by finish(); never a dead thread
                self._fail(exc, "read back")

    def submit(self, offset: int, length: int, crc: int) -> None:
        """Queue a written segment (waits while SEGMENTS_AHEAD are queued)."""
        self._segments.put((offset, length, crc))
        self.submitted += 1

    def finish(self) -> None:
        """Wait for every queued segment; raise the first error (OSError or not)."""
        self.stop()
        if self.error is not None:
            raise self.error

    @property
    def whole(self) -> bool:
        """Every segment handed over was read back whole and compared with its writing."""
        return self.error is None and self.compared == self.submitted

    def stop(self) -> None:
        """End the threads (idempotent); used on every path, so none outlives a copy."""
        if self._threads[0].is_alive():
            self._segments.put(self._STOP)
        for thread in self._threads:
            thread.join()
        self._buffers.close()


def _short(name: str) -> str:
    """``name`` cut to a prefix that leaves room for a suffix within NAME_MAX."""
    return name.encode()[:_NAME_PREFIX_BYTES].decode(errors="ignore")


def _check_name(final_name: str) -> None:
    """A plain name; hidden names and ``quarantine`` are reserved for this module."""
    if (
        not final_name
        or final_name.startswith(".")
        or final_name == QUARANTINE_DIR
        or "/" in final_name
        or "\0" in final_name
        or len(final_name.encode()) > 255
    ):
        raise ValueError(f"not a plain file name: {final_name!r}")


def _hash_file(path: str, fs: FileOps) -> tuple[bytes, int]:
    found = hash_blocks(fs.read_back(path))
    return found.digest, found.size


def _copy_failed(exc: OSError, operation: str, path: str) -> CopyFailed:
    return CopyFailed(exc.errno, operation, path, exc.strerror or str(exc))


def _existing(
    path: str,
    expected_sha256: bytes,
    expected_size: int | None,
    fs: FileOps,
) -> VerifiedFile | None:
    """Verify what already sits at the final name: the same bytes mean already done.

    Reads it back from the disk (a resumed offload must not trust a half-remembered
    success), and fsyncs the folder once more in case the last run stopped before.
    """
    st = fs.lstat(path)
    if st is None:
        return None
    crashpoints.reach("verify.existing")
    if not stat.S_ISREG(st.st_mode):
        raise DestinationExists(path, "is not a regular file")
    if expected_size is not None and st.st_size != expected_size:
        raise DestinationExists(path, f"has {st.st_size} bytes, not {expected_size}")
    try:
        fs.sync_existing(path)
        found, size = _hash_file(path, fs)
        fs.fsync_dir(os.path.dirname(path) or ".")
    except OSError as exc:
        raise _copy_failed(exc, "verify existing", path) from exc
    if found != expected_sha256 or (expected_size is not None and size != expected_size):
        raise DestinationExists(path, f"holds other content (sha256 {found.hex()})")
    return VerifiedFile(path, size, found, already_present=True)


def _discard(tmp_path: str, fs: FileOps) -> None:
    """Remove a partial copy; its source is still on the device, so nothing is lost."""
    try:
        fs.unlink(tmp_path)
    except FileNotFoundError:
        pass
    except OSError:
        log.exception("could not remove partial copy %s", tmp_path)


def _quarantine(dest_dir: str, final_name: str, tmp_path: str, fs: FileOps) -> str | None:
    """Move a mismatching file aside, read-only; on failure leave it where it is."""
    qdir = os.path.join(dest_dir, QUARANTINE_DIR)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = os.path.join(qdir, f"{_short(final_name)}.{stamp}-{secrets.token_hex(4)}.mismatch")
    try:
        fs.mkdir(qdir)
        fs.chmod(tmp_path, 0o444)
        fs.replace(tmp_path, target)
    except OSError:
        log.exception("could not quarantine %s; left in place", tmp_path)
        return None
    for folder in (qdir, dest_dir):
        try:
            fs.fsync_dir(folder)
        except OSError:
            log.exception("could not fsync %s after quarantining %s", folder, target)
    return target


def _write_all(fd: int, data: bytes | memoryview, fs: FileOps) -> None:
    view = memoryview(data)
    while view:
        written = fs.write(fd, view)
        if written <= 0:  # a write that makes no progress would loop forever
            raise OSError(errno_mod.EIO, "write made no progress")
        view = view[written:]


def _write_segments(
    fd: int,
    path: str,
    chunks: Iterable[bytes],
    reader: _ReadBack,
    hasher: _Hasher | None,
    progress: Callable[[int], None] | None,
    fs: FileOps,
) -> int:
    """Write every chunk, handing each full segment (and the last) to ``reader``;
    return the bytes written. Stops at the reader's first error."""
    written = start = crc = 0
    for chunk in chunks:
        view: bytes | memoryview = (
            chunk if isinstance(chunk, bytes) else memoryview(chunk).cast("B")
        )
        if not len(view):
            continue
        if hasher is not None:  # queued for another thread: its own copy of the bytes
            hasher.feed(view if type(view) is bytes else bytes(view))
        try:
            _write_all(fd, view, fs)
        except OSError as exc:
            raise _copy_failed(exc, "write", path) from exc
        # Segments end at multiples of SEGMENT_BYTES (aligned for O_DIRECT reads): a
        # chunk across a boundary has its CRC split there.
        boundary = start + SEGMENT_BYTES
        end = written + len(view)
        while end >= boundary:
            crc = crc32(memoryview(view)[: boundary - written], crc)
            view, written = memoryview(view)[boundary - written :], boundary
            if reader.failed.is_set():
                return written  # the read-back failed: finish() says why
            try:
                fs.start_flush(fd, start, written - start)  # the disk works meanwhile
            except OSError as exc:
                raise _copy_failed(exc, "write to disk", path) from exc
            reader.submit(start, written - start, crc)
            start, crc, boundary = written, 0, written + SEGMENT_BYTES
        crc = crc32(view, crc)
        written = end
        if crashpoints.ARMED:  # tests only; one global test per chunk otherwise
            crashpoints.reach("copy.chunk")
        if progress is not None:
            progress(written)
    if written > start and not reader.failed.is_set():
        reader.submit(start, written - start, crc)
    if written == 0 and progress is not None:
        progress(0)
    return written


def write_verified(
    dest_dir: str,
    final_name: str,
    chunks: Iterable[bytes],
    expected_sha256: bytes,
    *,
    expected_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    fs: FileOps = REAL_FS,
    hash_written: bool = False,
) -> VerifiedFile:
    """Copy ``chunks`` to ``dest_dir/final_name`` and prove the disk holds exactly them.

    Returns only once the file is verified, read-only, under its final name and the folder
    is fsynced: only then may the device copy be erased. If ``final_name`` already holds
    the expected bytes (a resumed offload), returns it with ``already_present=True``
    without consuming ``chunks`` or rewriting it.

    ``chunks`` may be bytes, bytearray or memoryview, written as they are (a producer that
    changed a buffer while it was written would fail the read-back, never pass it).
    ``hash_written`` also hashes the bytes as received with SHA-256 (see the module
    docstring). ``progress`` receives the cumulative byte count after each non-empty
    chunk, ending at the size. An exception raised by ``chunks`` or ``progress`` removes
    the partial file and propagates unchanged.

    Raises :class:`IntegrityError` (file quarantined), :class:`CopyFailed` (partial file
    removed, copy again from the source), :class:`DestinationExists` (left untouched).
    The read-back reads past the page cache with O_DIRECT; on a file system without it,
    after dropping each segment's pages (``posix_fadvise DONTNEED``, best effort: the
    kernel may still serve it from memory).
    """
    _check_name(final_name)
    if not isinstance(expected_sha256, bytes) or len(expected_sha256) != 32:
        raise ValueError("expected_sha256 must be the 32-byte SHA-256 digest")
    if expected_size is not None and expected_size < 0:
        raise ValueError("expected_size must not be negative")
    final_path = os.path.join(dest_dir, final_name)

    done = _existing(final_path, expected_sha256, expected_size, fs)
    if done is not None:
        return done

    tmp_path = os.path.join(dest_dir, f".{_short(final_name)}.partial-{secrets.token_hex(8)}")
    try:
        fd = fs.open_new(tmp_path)
    except OSError as exc:
        raise _copy_failed(exc, "create", tmp_path) from exc
    crashpoints.reach("copy.start")

    hasher = _Hasher() if hash_written else None
    reader: _ReadBack | None = None
    written_size = 0
    fd_open = True
    try:
        try:
            rfd = fs.open_read(tmp_path)
        except OSError as exc:
            raise _copy_failed(exc, "open for read-back", tmp_path) from exc
        direct: int | None = None
        try:
            try:
                direct = fs.open_direct(tmp_path)
            except OSError as exc:
                raise _copy_failed(exc, "open for read-back", tmp_path) from exc
            reader = _ReadBack(rfd, direct, fs)
            written_size = _write_segments(fd, tmp_path, chunks, reader, hasher, progress, fs)
            written_sha256 = hasher.finish() if hasher is not None else None
            try:
                fs.fsync(fd)  # once only: never retried (see the module docstring)
            except OSError as exc:
                raise _copy_failed(exc, "fsync", tmp_path) from exc
            fs.drop_cache(fd)
            fd_open = False
            try:
                fs.close(fd)
            except OSError as exc:
                raise _copy_failed(exc, "close", tmp_path) from exc
            crashpoints.reach("verify.start")
            try:
                reader.finish()
            except OSError as exc:
                raise _copy_failed(exc, reader.step, tmp_path) from exc
            try:
                stored = os.fstat(rfd).st_size  # nothing may follow, nothing may be gone
            except OSError as exc:
                raise _copy_failed(exc, "read back", tmp_path) from exc
        finally:
            if reader is not None:
                reader.stop()
            os.close(rfd)
            if direct is not None:
                os.close(direct)
    except BaseException:
        if hasher is not None:
            hasher.stop()
        if fd_open:
            with contextlib.suppress(OSError):
                fs.close(fd)
        _discard(tmp_path, fs)
        raise

    read_back_sha256 = reader.sha256.digest()
    read_back_size = reader.size + (stored - written_size)
    if not reader.whole:  # a segment not compared (never expected): refuse the copy
        _discard(tmp_path, fs)
        raise CopyFailed(errno_mod.EIO, "read back", tmp_path, "not every segment was read back")
    if written_sha256 is None and reader.differs_at is None:
        written_sha256 = read_back_sha256  # every segment read back as it was written
    stage = None
    found = expected_sha256
    if written_sha256 is not None and written_sha256 != expected_sha256:
        stage, found = "source", written_sha256
    elif reader.differs_at is not None or read_back_sha256 != expected_sha256:
        stage, found = "read-back", read_back_sha256
    elif read_back_size != written_size or (
        expected_size is not None and written_size != expected_size
    ):
        stage, found = "size", read_back_sha256
    if stage is not None:
        raise IntegrityError(
            final_name,
            stage,
            expected_sha256,
            found,
            written_sha256=written_sha256,
            read_back_sha256=read_back_sha256,
            expected_size=expected_size,
            written_size=written_size,
            read_back_size=read_back_size,
            quarantined_path=_quarantine(dest_dir, final_name, tmp_path, fs),
            differs_at=reader.differs_at,
        )

    try:
        fs.chmod(tmp_path, 0o444)
        # Checked again just before publishing: something may have appeared meanwhile.
        done = _existing(final_path, expected_sha256, expected_size, fs)
    except BaseException:
        _discard(tmp_path, fs)
        raise
    if done is not None:
        _discard(tmp_path, fs)  # an identical verified copy is already in place
        return done
    crashpoints.reach("publish.before_rename")
    try:
        fs.replace(tmp_path, final_path)
    except OSError as exc:
        _discard(tmp_path, fs)
        raise _copy_failed(exc, "rename", final_path) from exc
    try:
        fs.fsync_dir(dest_dir)
    except OSError as exc:
        # The name may not be durable and an fsync is never retried: withdraw the copy so
        # the caller copies again (the device still holds the source).
        _discard(final_path, fs)
        raise _copy_failed(exc, "fsync folder", dest_dir) from exc
    crashpoints.reach("publish.after_rename")
    return VerifiedFile(final_path, written_size, read_back_sha256)
