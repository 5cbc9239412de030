"""The file-system steps evidence depends on, written once.

Footage, bags, keys and audit files all need the same few careful calls: make a
rename durable (fsync the folder), read back past the page cache, hash a file, and
replace a file all or nothing. One copy each, so a fix reaches every caller.
"""

from __future__ import annotations

import contextlib
import errno
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
    with contextlib.suppress(AttributeError, OSError):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def drop_range(fd: int, offset: int, length: int) -> None:
    """Best effort: evict the clean pages of ``length`` bytes at ``offset`` (see drop_cache)."""
    with contextlib.suppress(AttributeError, OSError):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


_SYNC_FILE_RANGE_ALL = 1 | 2 | 4  # WAIT_BEFORE | WRITE | WAIT_AFTER (linux/fs.h)
_sync_file_range: Callable[..., int] | bool | None = False  # False: not looked up yet


def _lookup_sync_file_range() -> Callable[..., int] | None:
    """libc's sync_file_range(2) through ctypes, or None where there is none."""
    import ctypes  # only where footage is written: the lookup is done once

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    call.restype = ctypes.c_int

    def sync_range(fd: int, offset: int, length: int) -> int:
        if call(fd, offset, length, _SYNC_FILE_RANGE_ALL) == 0:
            return 0
        return ctypes.get_errno()

    return sync_range


def flush_range(fd: int, offset: int, length: int) -> None:
    """Write ``length`` bytes at ``offset`` of an open file to the disk and wait for it.

    Only those bytes, while the rest of the file is still being written: a copy can then
    read this part back from the disk (after :func:`drop_range`) while the next part is
    written. It is not a durability barrier (no metadata, no drive cache flush): the
    file's fsync still follows. Where sync_file_range(2) is missing or refused for this
    file system, fdatasync flushes the whole file instead (more than asked, never less).
    Raises OSError (EIO, ENOSPC, ...) when the write to the disk failed.
    """
    global _sync_file_range
    if _sync_file_range is False:
        _sync_file_range = _lookup_sync_file_range()
    if callable(_sync_file_range):
        err = _sync_file_range(fd, offset, length)
        if err == 0:
            return
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ESPIPE, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err))
    os.fdatasync(fd)


def read_range(fd: int, offset: int, length: int, block: int = READ_BLOCK) -> Iterator[bytes]:
    """The bytes of ``length`` at ``offset`` of an open file, a block at a time (pread),
    ending early at the end of the file."""
    end = offset + length
    while offset < end:
        data = os.pread(fd, min(block, end - offset), offset)
        if not data:
            return
        offset += len(data)
        yield data


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
    "READ_BLOCK",
    "Hashed",
    "drop_cache",
    "drop_range",
    "flush_range",
    "fsync_dir",
    "hash_blocks",
    "hash_file",
    "read_blocks",
    "read_range",
    "write_replacing",
]
