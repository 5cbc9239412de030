"""The file-system steps evidence depends on, written once.

Footage, bags, keys and audit files all need the same few careful calls: make a
rename durable (fsync the folder), read back past the page cache, hash a file, and
replace a file all or nothing. One copy each, so a fix reaches every caller.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO, NamedTuple

#: Bytes per read when hashing: large enough for the disk, small enough for a Pi.
READ_BLOCK = 1 << 20


def fsync_dir(path: str) -> None:
    """fsync a folder, so a file created, renamed or removed in it survives power loss."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_cache(fd: int) -> None:
    """Best effort: evict the file's clean pages, so the next read comes from the disk.

    Only clean pages go (so call it after fsync); a platform without ``posix_fadvise``
    or a file system that refuses it silently reads from memory instead.
    """
    drop_range(fd, 0, 0)


def drop_range(fd: int, offset: int, length: int) -> None:
    """Best effort: evict the clean pages of ``length`` bytes at ``offset`` (see drop_cache)."""
    with contextlib.suppress(AttributeError, OSError):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


_SYNC_FILE_RANGE_WRITE = 2  # start writing the range out (linux/fs.h)
_SYNC_FILE_RANGE_ALL = 1 | 2 | 4  # WAIT_BEFORE | WRITE | WAIT_AFTER
_UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.ESPIPE, errno.EOPNOTSUPP)


@functools.cache
def _libc_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's sync_file_range(2) through ctypes (looked up once), returning 0 or the
    errno; None where there is none."""
    import ctypes  # only where footage is written: the lookup is done once

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    call.restype = ctypes.c_int

    def sync_range(fd: int, offset: int, length: int, flags: int) -> int:
        if call(fd, offset, length, flags) == 0:
            return 0
        return ctypes.get_errno()

    return sync_range


def _sync_range(fd: int, offset: int, length: int, flags: int) -> bool:
    """sync_file_range(2) of the range; False where the system or file system has none."""
    call = _libc_sync_file_range()
    if call is None:
        return False
    err = call(fd, offset, length, flags)
    if err in _UNSUPPORTED:
        return False
    if err:
        raise OSError(err, os.strerror(err))
    return True


def start_flush(fd: int, offset: int, length: int) -> None:
    """Start writing ``length`` bytes at ``offset`` to the disk without waiting for it, so
    the disk works while the next bytes are written; :func:`flush_range` waits for them.
    Does nothing where sync_file_range(2) is missing; raises OSError when refused."""
    _sync_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def flush_range(fd: int, offset: int, length: int) -> None:
    """Write ``length`` bytes at ``offset`` of an open file to the disk and wait for it.

    Only those bytes, while the rest of the file is still being written: a copy can then
    read this part back from the disk (after :func:`drop_range`) while the next part is
    written. It is not a durability barrier (no metadata, no drive cache flush): the
    file's fsync still follows. Where sync_file_range(2) is missing or refused for this
    file system, fdatasync flushes the whole file instead (more than asked, never less).
    Raises OSError (EIO, ENOSPC, ...) when the write to the disk failed.
    """
    if not _sync_range(fd, offset, length, _SYNC_FILE_RANGE_ALL):
        os.fdatasync(fd)


#: What O_DIRECT asks of offsets, lengths and buffers (a page: every logical block size).
DIRECT_ALIGN = 4096


def open_direct(path: str) -> int | None:
    """A descriptor that reads ``path`` from the disk itself, never from the page cache
    (O_DIRECT), or None where the system or the file system has no such reads."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC | flag)
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            return None
        raise


def read_range_into(
    fd: int, offset: int, length: int, buffers: Callable[[], memoryview]
) -> Iterator[memoryview]:
    """The bytes of ``length`` at ``offset`` of an open file, each piece read into a buffer
    from ``buffers()`` (page-aligned, a multiple of DIRECT_ALIGN long: an O_DIRECT
    descriptor reads into it straight from the disk) and given as a view of it, ending
    early at the end of the file. ``offset`` must be a multiple of DIRECT_ALIGN."""
    end = offset + length
    while offset < end:
        buf = buffers()
        want = min(len(buf), -(-(end - offset) // DIRECT_ALIGN) * DIRECT_ALIGN)
        got = os.preadv(fd, [buf[:want]], offset)
        if got <= 0:
            return
        got = min(got, end - offset)
        offset += got
        yield buf[:got]


class Hashed(NamedTuple):
    """What hashing a file gives: its length and its digest."""

    size: int
    digest: bytes

    @property
    def hex(self) -> str:
        return self.digest.hex()


def hash_blocks(
    blocks: Iterable[bytes],
    algorithm: str = "sha256",
    on_progress: Callable[[int], object] | None = None,
) -> Hashed:
    """Hash ``blocks`` in order; ``on_progress`` gets the bytes done after each block."""
    h = hashlib.new(algorithm)
    size = 0
    for block in blocks:
        h.update(block)
        size += len(block)
        if on_progress is not None:
            on_progress(size)
    return Hashed(size, h.digest())


def read_blocks(fd: int) -> Iterator[bytes]:
    """The bytes of an open file from its current offset, a block at a time."""
    while block := os.read(fd, READ_BLOCK):
        yield block


def hash_file(path: str, algorithm: str = "sha256") -> Hashed:
    """Hash the file at ``path`` (unbuffered: nothing but the kernel between disk and hash)."""
    with open(path, "rb", buffering=0) as f:
        return hash_blocks(iter(lambda: f.read(READ_BLOCK), b""), algorithm)


def write_replacing(path: str, write: Callable[[BinaryIO], object], dfd: int) -> None:
    """Replace ``path`` all or nothing: ``write`` into a temporary file in the same
    folder, fsync, rename over ``path``, fsync the folder (open as ``dfd``). The new file
    has mode 0640. On any failure the temporary file is removed and ``path`` is as it was.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fchmod(out.fileno(), 0o640)
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    os.fsync(dfd)


__all__ = [
    "DIRECT_ALIGN",
    "READ_BLOCK",
    "Hashed",
    "drop_cache",
    "drop_range",
    "flush_range",
    "fsync_dir",
    "hash_blocks",
    "hash_file",
    "open_direct",
    "read_blocks",
    "read_range_into",
    "start_flush",
    "write_replacing",
]
