"""The file-system steps evidence depends on, written once.

Footage, bags, keys and audit files all need the same few careful calls: make a
rename durable (fsync the folder), read back past the page cache, hash a file, and
replace a file all or nothing. One copy each, so a fix reaches every caller.
"""

from __future__ import annotations

import contextlib
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
    "fsync_dir",
    "hash_blocks",
    "hash_file",
    "read_blocks",
    "write_replacing",
]
