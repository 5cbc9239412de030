"""The careful copy, on real files: faults are injected only into the OS calls it makes."""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dock.evidence.verified_copy import (
    QUARANTINE_DIR,
    SEGMENT_BYTES,
    CopyFailed,
    DestinationExists,
    FileOps,
    IntegrityError,
    NotEnoughRoom,
    VerifiedFile,
    ensure_room,
    free_bytes,
    write_verified,
)

NAME = "officer-0042_case-2024-117_20240501T101500Z.mp4"


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def chunked(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


class RecordingFS(FileOps):
    """The real OS calls, counted and logged in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def count(self, name: str) -> int:
        return self.calls.count(name)

    def open_new(self, path: str) -> int:
        self.calls.append("open_new")
        return super().open_new(path)

    def write(self, fd: int, data: memoryview) -> int:
        self.calls.append("write")
        return super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self.calls.append("fsync")
        super().fsync(fd)

    def drop_cache(self, fd: int) -> None:
        self.calls.append("drop_cache")
        super().drop_cache(fd)

    def close(self, fd: int) -> None:
        self.calls.append("close")
        super().close(fd)

    def read_back(self, path: str) -> Iterator[bytes]:
        self.calls.append("read_back")
        return super().read_back(path)

    def open_read(self, path: str) -> int:
        self.calls.append("open_read")
        return super().open_read(path)

    def flush_range(self, fd: int, offset: int, length: int) -> None:
        self.calls.append(f"flush_range {offset} {length}")
        super().flush_range(fd, offset, length)

    def drop_range(self, fd: int, offset: int, length: int) -> None:
        self.calls.append(f"drop_range {offset} {length}")
        super().drop_range(fd, offset, length)

    def open_direct(self, path: str) -> int | None:
        self.calls.append("open_direct")
        return super().open_direct(path)

    def read_range(
        self, fd: int, offset: int, length: int, buffers: Callable[[], memoryview]
    ) -> Iterator[memoryview]:
        self.calls.append(f"read_range {offset} {length}")
        return super().read_range(fd, offset, length, buffers)

    def chmod(self, path: str, mode: int) -> None:
        self.calls.append("chmod")
        super().chmod(path, mode)

    def replace(self, src: str, dst: str) -> None:
        self.calls.append("replace")
        super().replace(src, dst)

    def fsync_dir(self, path: str) -> None:
        self.calls.append("fsync_dir")
        super().fsync_dir(path)


class NoSpaceAfter(RecordingFS):
    """A disk that fills up after ``limit`` bytes: a short write, then ENOSPC."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.left = limit

    def write(self, fd: int, data: memoryview) -> int:
        if self.left <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = super().write(fd, data[: self.left])
        self.left -= n
        return n


class FsyncEIO(RecordingFS):
    def fsync(self, fd: int) -> None:
        self.calls.append("fsync")
        raise OSError(errno.EIO, os.strerror(errno.EIO))


class FlipBitOnReadBack(RecordingFS):
    """The disk returns one flipped bit, as a failing medium or cable would."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def read_range(
        self, fd: int, offset: int, length: int, buffers: Callable[[], memoryview]
    ) -> Iterator[memoryview]:
        for block in super().read_range(fd, offset, length, buffers):
            if offset <= self.at < offset + len(block):
                block[self.at - offset] ^= 0x10
            offset += len(block)
            yield block


class FsyncDirEIO(RecordingFS):
    def fsync_dir(self, path: str) -> None:
        self.calls.append("fsync_dir")
        raise OSError(errno.EIO, os.strerror(errno.EIO))


def hasher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in ("sha256-writer", "read-back")]


def leftovers(folder: str) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n != QUARANTINE_DIR)


def test_five_mib_copy_verifies_read_only_and_leaves_no_temp_files(tmp_path) -> None:
    """001 art.19(4): a copy is verified bit for bit, published read-only, with no temporary file
    left."""
    data = os.urandom(5 * 1024 * 1024)
    fs = RecordingFS()
    result = write_verified(str(tmp_path), NAME, chunked(data), sha(data), fs=fs)

    final = tmp_path / NAME
    assert result == VerifiedFile(str(final), len(data), sha(data))
    assert final.read_bytes() == data
    assert stat.S_IMODE(final.stat().st_mode) == 0o444
    assert os.listdir(tmp_path) == [NAME]
    # Each segment taken to the disk, dropped from the cache and read back, the file
    # fsynced once; published only after all of it.
    order = [c for c in fs.calls if c != "write"]
    size = len(data)
    assert order[:3] == ["open_new", "open_read", "open_direct"]
    assert order[-3:] == ["chmod", "replace", "fsync_dir"]
    assert size <= SEGMENT_BYTES  # one segment: the whole file
    for offset, length in [(0, size)]:
        flush = order.index(f"flush_range {offset} {length}")
        drop = order.index(f"drop_range {offset} {length}")
        read = order.index(f"read_range {offset} {length}")
        assert flush < drop < read < order.index("chmod")
    assert order.count("fsync") == 1 and order.index("fsync") < order.index("close")
    assert order.index("close") < order.index("chmod")


def test_a_long_copy_is_read_back_segment_by_segment_while_it_is_written(tmp_path) -> None:
    """001 art.19(4): every byte of a copy longer than a segment is flushed and read back
    from the disk, each segment once, in order; the first segment is read back while the
    rest is still being written (the source here waits for it before its last chunk)."""
    data = os.urandom(2 * SEGMENT_BYTES + 12345)
    first_read_back = threading.Event()

    class Watched(RecordingFS):
        def read_range(
            self, fd: int, offset: int, length: int, buffers: Callable[[], memoryview]
        ) -> Iterator[memoryview]:
            yield from super().read_range(fd, offset, length, buffers)
            if offset == 0:
                first_read_back.set()

    def source() -> Iterator[bytes]:
        step = 1 << 20
        for offset in range(0, len(data), step):
            if offset + step >= len(data):  # the last chunk waits for the first read-back
                assert first_read_back.wait(60), "nothing was read back while writing"
            yield data[offset : offset + step]

    fs = Watched()
    result = write_verified(str(tmp_path), NAME, source(), sha(data), fs=fs)

    assert result.sha256 == sha(data) and (tmp_path / NAME).read_bytes() == data
    reads = [c.split()[1:] for c in fs.calls if c.startswith("read_range")]
    spans = [(int(o), int(n)) for o, n in reads]
    assert spans == [(0, SEGMENT_BYTES), (SEGMENT_BYTES, SEGMENT_BYTES), (2 * SEGMENT_BYTES, 12345)]
    for offset, length in spans:
        assert f"flush_range {offset} {length}" in fs.calls


def test_a_file_system_without_direct_reads_drops_each_segment_and_reads_it(tmp_path) -> None:
    """001 art.19(4): where O_DIRECT is refused the read-back still comes after each
    segment's pages are dropped from the cache, and a flipped bit is still caught."""

    class NoDirect(FlipBitOnReadBack):
        def open_direct(self, path: str) -> int | None:
            self.calls.append("open_direct")
            return None

    data = os.urandom(SEGMENT_BYTES + 4321)
    fs = NoDirect(at=len(data) + 1)  # beyond the end: nothing flipped
    result = write_verified(str(tmp_path), NAME, chunked(data), sha(data), fs=fs)
    assert result.sha256 == sha(data)
    for offset, length in ((0, SEGMENT_BYTES), (SEGMENT_BYTES, 4321)):
        drops = [i for i, c in enumerate(fs.calls) if c == f"drop_range {offset} {length}"]
        read = fs.calls.index(f"read_range {offset} {length}")
        assert len(drops) == 2 and drops[0] < read < drops[1]  # dropped, read, dropped

    bad = NoDirect(at=SEGMENT_BYTES + 10)
    with pytest.raises(IntegrityError) as info:
        write_verified(str(tmp_path), "other.mp4", chunked(data), sha(data), fs=bad)
    assert info.value.stage == "read-back"


class FailingAt(RecordingFS):
    """The disk fails one step (``where``) of the segment at ``offset`` with EIO."""

    def __init__(self, where: str, offset: int) -> None:
        super().__init__()
        self.where, self.offset = where, offset

    def _maybe(self, step: str, offset: int) -> None:
        if (step, offset) == (self.where, self.offset):
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    def start_flush(self, fd: int, offset: int, length: int) -> None:
        self._maybe("start_flush", offset)
        super().start_flush(fd, offset, length)

    def flush_range(self, fd: int, offset: int, length: int) -> None:
        self._maybe("flush_range", offset)
        super().flush_range(fd, offset, length)

    def read_range(
        self, fd: int, offset: int, length: int, buffers: Callable[[], memoryview]
    ) -> Iterator[memoryview]:
        for i, block in enumerate(super().read_range(fd, offset, length, buffers)):
            if i == 1:
                self._maybe("read_range", offset)
            yield block


@pytest.mark.parametrize("where", ["start_flush", "flush_range", "read_range"])
def test_a_disk_error_while_a_segment_is_flushed_or_read_back_fails_the_copy(
    tmp_path, where: str
) -> None:
    """001 art.19(4): an I/O error taking a segment to the disk or reading it back fails
    the copy with its errno (never retried), removes the partial file, publishes nothing
    and leaves no thread behind; the footage is still on the recorder."""
    data = os.urandom(3 * SEGMENT_BYTES)
    fs = FailingAt(where, SEGMENT_BYTES)
    with pytest.raises(CopyFailed) as info:
        write_verified(str(tmp_path), NAME, chunked(data, 1 << 20), sha(data), fs=fs)
    assert info.value.errno == errno.EIO
    assert os.listdir(tmp_path) == []
    assert "replace" not in fs.calls
    assert hasher_threads() == []


def test_direct_reads_refused_after_the_open_fall_back_to_the_page_cache(tmp_path) -> None:
    """A file system that opens O_DIRECT but refuses its reads (EINVAL) is read back
    through the page cache instead, after dropping the pages: the copy verifies."""

    class RefusesDirectReads(RecordingFS):
        direct: int | None = None

        def open_direct(self, path: str) -> int | None:
            self.direct = super().open_direct(path) or os.open(path, os.O_RDONLY)
            return self.direct

        def read_range(
            self, fd: int, offset: int, length: int, buffers: Callable[[], memoryview]
        ) -> Iterator[memoryview]:
            if fd == self.direct:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
            return super().read_range(fd, offset, length, buffers)

    data = os.urandom(2 * SEGMENT_BYTES + 99)
    fs = RefusesDirectReads()
    result = write_verified(str(tmp_path), NAME, chunked(data), sha(data), fs=fs)
    assert result.sha256 == sha(data) and (tmp_path / NAME).read_bytes() == data
    assert fs.calls.count(f"read_range {SEGMENT_BYTES} {SEGMENT_BYTES}") == 1  # page cache only
    drops = fs.calls.count(f"drop_range {SEGMENT_BYTES} {SEGMENT_BYTES}")
    assert drops == 2  # before and after its read through the cache


def test_wrong_expected_hash_quarantines_and_never_publishes(tmp_path) -> None:
    """001 art.19(4): a copy that does not match the capture hash is quarantined, never
    published."""
    data = os.urandom(300_000)
    wrong = sha(b"something else")
    with pytest.raises(IntegrityError) as info:
        write_verified(str(tmp_path), NAME, chunked(data), wrong)

    err = info.value
    assert (err.stage, err.expected_sha256, err.found_sha256) == ("source", wrong, sha(data))
    assert wrong.hex() in str(err) and sha(data).hex() in str(err)
    assert not (tmp_path / NAME).exists()
    assert leftovers(str(tmp_path)) == []
    quarantined = os.listdir(tmp_path / QUARANTINE_DIR)
    assert len(quarantined) == 1 and quarantined[0].startswith(NAME)
    assert err.quarantined_path == str(tmp_path / QUARANTINE_DIR / quarantined[0])
    assert (tmp_path / QUARANTINE_DIR / quarantined[0]).read_bytes() == data  # nothing lost


@pytest.mark.parametrize("hash_written", [False, True])
def test_flipped_bit_on_read_back_is_an_integrity_error(tmp_path, hash_written: bool) -> None:
    """001 art.19(4): one bit flipped on the disk is caught by the read-back, and said to be
    the disk's (not the source's): with the written bytes hashed, their hash is the
    capture's; without, the segment that read back otherwise is named."""
    at = SEGMENT_BYTES + 1_500_000
    data = os.urandom(2 * SEGMENT_BYTES + 17)
    fs = FlipBitOnReadBack(at=at)
    with pytest.raises(IntegrityError) as info:
        write_verified(
            str(tmp_path), NAME, chunked(data), sha(data), fs=fs, hash_written=hash_written
        )

    err = info.value
    assert err.stage == "read-back" and err.found_sha256 != sha(data)
    assert err.differs_at == (SEGMENT_BYTES, 2 * SEGMENT_BYTES)
    assert err.written_sha256 == (sha(data) if hash_written else None)
    assert f"{SEGMENT_BYTES}-{2 * SEGMENT_BYTES}" in str(err) or hash_written
    assert not (tmp_path / NAME).exists()
    assert len(os.listdir(tmp_path / QUARANTINE_DIR)) == 1
    assert "chmod" in fs.calls  # the quarantined copy is read-only too


def test_size_mismatch_is_an_integrity_error(tmp_path) -> None:
    """001 art.19(4): a copy of the wrong size is an integrity error."""
    data = os.urandom(10_000)
    with pytest.raises(IntegrityError) as info:
        write_verified(str(tmp_path), NAME, [data], sha(data), expected_size=len(data) + 1)
    assert info.value.stage == "size"
    assert not (tmp_path / NAME).exists()


def test_enospc_mid_write_removes_the_partial_file(tmp_path) -> None:
    """001 art.19(4): a disk that fills mid-copy leaves no partial file and publishes nothing."""
    data = os.urandom(1024 * 1024)
    fs = NoSpaceAfter(limit=300_000)
    with pytest.raises(CopyFailed) as info:
        write_verified(str(tmp_path), NAME, chunked(data), sha(data), fs=fs)

    assert info.value.errno == errno.ENOSPC
    assert isinstance(info.value.__cause__, OSError)
    assert os.listdir(tmp_path) == []  # no partial file, no final name, no quarantine
    assert "replace" not in fs.calls
    assert hasher_threads() == []


class StalledWrites(RecordingFS):
    """A disk whose writes stop making progress: each returns 0 bytes written, at most
    ``tries`` times (a copy that kept looping would fail the test, not hang it)."""

    def __init__(self, after: int, tries: int = 1000) -> None:
        super().__init__()
        self.after, self.tries = after, tries

    def write(self, fd: int, data: memoryview) -> int:
        if self.after > 0:
            n = super().write(fd, data[: self.after])
            self.after -= n
            return n
        self.tries -= 1
        if self.tries < 0:
            raise AssertionError("the copy kept writing into a disk that made no progress")
        return 0


def test_a_write_that_makes_no_progress_fails_the_copy_instead_of_looping(tmp_path) -> None:
    """001 art.19(4): a medium that stops taking bytes (writes return 0) fails the copy at
    once with EIO and publishes nothing; the footage stays on the recorder."""
    data = os.urandom(300_000)
    fs = StalledWrites(after=100_000)
    with pytest.raises(CopyFailed) as info:
        write_verified(str(tmp_path), NAME, chunked(data), sha(data), fs=fs)

    assert info.value.errno == errno.EIO
    assert fs.tries == 999  # gave up at the first write that made no progress
    assert os.listdir(tmp_path) == []


def test_eio_on_fsync_fails_once_and_is_never_retried(tmp_path) -> None:
    """001 art.19(4): an fsync error fails the copy; the file is never trusted on a retry."""
    data = os.urandom(200_000)
    fs = FsyncEIO()
    with pytest.raises(CopyFailed) as info:
        write_verified(str(tmp_path), NAME, chunked(data), sha(data), fs=fs)

    assert info.value.errno == errno.EIO
    assert fs.count("fsync") == 1
    assert os.listdir(tmp_path) == []
    assert "replace" not in fs.calls


def test_eio_on_folder_fsync_withdraws_the_copy(tmp_path) -> None:
    """001 art.19(4): an error syncing the folder withdraws the copy."""
    data = os.urandom(50_000)
    fs = FsyncDirEIO()
    with pytest.raises(CopyFailed) as info:
        write_verified(str(tmp_path), NAME, [data], sha(data), fs=fs)
    assert info.value.errno == errno.EIO
    assert fs.count("fsync_dir") == 1
    assert os.listdir(tmp_path) == []


def test_second_call_with_same_content_returns_existing_file_untouched(tmp_path) -> None:
    """000 §13.2: copying the same footage again leaves the archived file untouched."""
    data = os.urandom(400_000)
    first = write_verified(str(tmp_path), NAME, chunked(data), sha(data))
    before = os.stat(first.path)

    def must_not_be_read() -> Iterator[bytes]:
        raise AssertionError("the source was read again")
        yield b""  # pragma: no cover

    fs = RecordingFS()
    again = write_verified(
        str(tmp_path), NAME, must_not_be_read(), sha(data), expected_size=len(data), fs=fs
    )

    after = os.stat(first.path)
    assert again == VerifiedFile(first.path, len(data), sha(data), already_present=True)
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    assert "open_new" not in fs.calls and "replace" not in fs.calls
    assert "read_back" in fs.calls  # verified again from the disk, not trusted
    assert os.listdir(tmp_path) == [NAME]


def test_existing_different_file_is_refused_and_left_untouched(tmp_path) -> None:
    """000 §13.2; 003 art.11: an archived file is never overwritten with other bytes."""
    other = b"another officer's footage"
    final = tmp_path / NAME
    final.write_bytes(other)
    before = os.stat(final)
    data = os.urandom(len(other))

    fs = RecordingFS()
    with pytest.raises(DestinationExists):
        write_verified(str(tmp_path), NAME, [data], sha(data), fs=fs)

    assert final.read_bytes() == other
    assert os.stat(final).st_mtime_ns == before.st_mtime_ns
    assert os.listdir(tmp_path) == [NAME]
    assert "open_new" not in fs.calls


def test_existing_directory_at_final_name_is_refused(tmp_path) -> None:
    (tmp_path / NAME).mkdir()
    with pytest.raises(DestinationExists):
        write_verified(str(tmp_path), NAME, [b"x"], sha(b"x"))


def test_progress_increases_to_the_size(tmp_path) -> None:
    data = os.urandom(1_000_003)
    seen: list[int] = []
    pieces = [data[:1], b"", data[1:70_000], data[70_000:900_000], data[900_000:]]
    write_verified(str(tmp_path), NAME, pieces, sha(data), progress=seen.append)
    assert seen == sorted(set(seen)) and seen[-1] == len(data)
    assert seen == [1, 70_000, 900_000, len(data)]


def test_empty_file_verifies_and_reports_zero(tmp_path) -> None:
    seen: list[int] = []
    result = write_verified(str(tmp_path), NAME, [], sha(b""), progress=seen.append)
    assert (result.size, seen) == (0, [0])


def test_reused_source_buffer_cannot_change_what_is_hashed(tmp_path) -> None:
    """001 art.19(4): what is proven is what the disk holds, whatever the source does
    with its buffer: a producer reusing one buffer chunk after chunk is copied intact."""
    data = os.urandom(256 * 1024)

    def reusing_reader() -> Iterator[bytearray]:
        buf = bytearray(32 * 1024)
        for piece in chunked(data, len(buf)):
            buf[:] = piece
            yield buf

    result = write_verified(str(tmp_path), NAME, reusing_reader(), sha(data))  # type: ignore[arg-type]
    assert (tmp_path / NAME).read_bytes() == data and result.sha256 == sha(data)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_buffer_changed_around_its_write_is_never_published(tmp_path, when: str) -> None:
    """001 art.19(4): a source that changes a chunk's buffer just before it is written
    (the disk gets other bytes) or just after (the bytes written and the bytes compared
    differ) fails the copy as an integrity error; nothing is published."""
    data = bytearray(os.urandom(3 * 64 * 1024))

    class Meddling(RecordingFS):
        def write(self, fd: int, view: memoryview) -> int:
            if when == "before":
                data[100] ^= 0xFF
            n = super().write(fd, view)
            if when == "after":
                data[200] ^= 0xFF
            return n

    with pytest.raises(IntegrityError):
        write_verified(str(tmp_path), NAME, [memoryview(data)], sha(bytes(data)), fs=Meddling())
    assert not (tmp_path / NAME).exists() and leftovers(str(tmp_path)) == []


def test_chunks_across_segment_boundaries_are_split_and_verified(tmp_path) -> None:
    """001 art.19(4): a chunk that straddles one or several segment boundaries (any
    size the recorder sends) is verified byte for byte, and a bit flipped right at a
    boundary is caught in the segment it belongs to."""
    seg = SEGMENT_BYTES
    data = os.urandom(3 * seg + 5)
    pieces = [data[:777], data[777 : 777 + 2 * seg + 5], data[777 + 2 * seg + 5 :]]
    result = write_verified(str(tmp_path), NAME, pieces, sha(data))
    assert result.sha256 == sha(data) and (tmp_path / NAME).read_bytes() == data
    for at, span in ((seg - 1, (0, seg)), (seg, (seg, 2 * seg))):
        with pytest.raises(IntegrityError) as info:
            write_verified(str(tmp_path), f"flip{at}.mp4", pieces, sha(data),
                           fs=FlipBitOnReadBack(at=at))  # fmt: skip
        assert info.value.stage == "read-back" and info.value.differs_at == span


class BrokenThread(RecordingFS):
    """A bug (not an I/O error) in one of the read-back's threads: ``where`` is the
    fetch thread's flush or the hash thread (given something that is not bytes)."""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def flush_range(self, fd: int, offset: int, length: int) -> None:
        if self.where == "fetch":
            raise ValueError("a bug in the fetch thread")
        super().flush_range(fd, offset, length)

    def read_range(
        self, fd: int, offset: int, length: int, buffers: Callable[[], memoryview]
    ) -> Iterator[memoryview]:
        if self.where == "hash":
            yield 42  # type: ignore[misc]  # sha256.update(42): TypeError in the hash thread
        yield from super().read_range(fd, offset, length, buffers)


@pytest.mark.parametrize("where", ["fetch", "hash"])
def test_a_bug_in_a_read_back_thread_fails_the_copy_and_never_hangs(tmp_path, where) -> None:
    """001 art.19(4): an unexpected error in either read-back thread, with more segments
    to come than the queues hold, ends the copy with that error (bounded in time), no
    thread left, nothing published, no partial file."""
    data = os.urandom(8 * SEGMENT_BYTES)
    outcome: list[BaseException] = []

    def copy() -> None:
        try:
            write_verified(str(tmp_path), NAME, chunked(data, 1 << 20), sha(data),
                           fs=BrokenThread(where))  # fmt: skip
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=copy, daemon=True)
    runner.start()
    runner.join(120)
    assert not runner.is_alive(), "the copy hung"
    assert len(outcome) == 1 and isinstance(outcome[0], (ValueError, TypeError))
    assert os.listdir(tmp_path) == [] and hasher_threads() == []


def test_source_error_removes_partial_file_and_propagates(tmp_path) -> None:
    def broken_link() -> Iterator[bytes]:
        yield b"a" * 1000
        raise ConnectionError("recorder unplugged")

    with pytest.raises(ConnectionError):
        write_verified(str(tmp_path), NAME, broken_link(), sha(b""))
    assert os.listdir(tmp_path) == []
    assert hasher_threads() == []


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", "quarantine", "a/b", "../x", "x\0y"])
def test_refuses_names_that_are_not_plain(tmp_path, name: str) -> None:
    with pytest.raises(ValueError):
        write_verified(str(tmp_path), name, [b"x"], sha(b"x"))


def test_refuses_a_hash_that_is_not_a_digest(tmp_path) -> None:
    with pytest.raises(ValueError):
        write_verified(str(tmp_path), NAME, [b"x"], sha(b"x").hex().encode())


def test_free_bytes_and_ensure_room(tmp_path) -> None:
    free = free_bytes(str(tmp_path))
    assert free > 0
    assert ensure_room(str(tmp_path), 1, margin=1) > 0
    with pytest.raises(NotEnoughRoom) as info:
        ensure_room(str(tmp_path), free, margin=2**50)
    assert info.value.needed == free + 2**50 and info.value.free > 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=200_000),
    cuts=st.lists(st.integers(min_value=0, max_value=200_000), max_size=12),
)
def test_any_chunking_of_any_data_verifies_and_reproduces_the_bytes(
    data: bytes, cuts: list[int]
) -> None:
    """001 art.19(4): any data, in any chunks, is copied and verified bit for bit."""
    bounds = sorted([0, len(data), *(c for c in cuts if c <= len(data))])  # repeats: b""
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]
    with tempfile.TemporaryDirectory() as folder:
        result = write_verified(folder, NAME, pieces, sha(data), expected_size=len(data))
        with open(result.path, "rb") as f:
            assert f.read() == data
        assert (result.size, result.sha256) == (len(data), sha(data))
        assert os.listdir(folder) == [NAME]
