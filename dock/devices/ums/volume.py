"""A mass-storage recorder's volume, read the same way whether it is mounted or not.

The offload, identity and delete logic above this module sees one small surface
(:class:`UmsVolume`): the footage files with their sizes and times, a file opened for
reading, the volume's serial and free space, and a delete. Two implementations:

* :class:`DirVolume`: a mounted directory (the dock mounted the block device read-only
  with ``ro,nosuid,nodev,noexec``). Every directory and file is opened relative to the
  descriptor of its parent with ``O_NOFOLLOW`` (as :mod:`dock.evidence.mass_storage`
  does), so a symlink, a FIFO or a name such as ``..`` cannot lead a read elsewhere;
* :class:`FatVolume`: a FAT12/16/32 file system read through pyfatfs from an image or
  the block device itself: the path where the machine cannot mount (not root, no vfat
  in the kernel, a container).

Both list at most ``MAX_ENTRIES`` entries, at most ``MAX_DEPTH`` folders deep, and skip
names that are not one plain component (control characters, ``/``, ``.``/``..``, longer
than 255 bytes): a hostile volume costs a bounded walk and a line in ``skipped``.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol, cast

from dock.devices.ums.bootsector import BootSector, read_boot_sector
from dock.support.files import drop_cache

#: Entries (files and folders) looked at on one volume; beyond, the walk stops, said.
MAX_ENTRIES = 20_000
#: Folders deep (``DCIM/100MEDIA/x.MP4`` is two).
MAX_DEPTH = 4
NAME_MAX = 255


@dataclass(frozen=True)
class VolumeFile:
    """One regular file on the volume: ``path`` is ``/``-joined plain components."""

    path: str
    size: int
    #: Modification time as the volume states it (seconds; FAT keeps local time).
    mtime: float


@dataclass
class Listing:
    files: list[VolumeFile] = field(default_factory=list)
    #: What was not listed, and why (one line each, bounded).
    skipped: list[str] = field(default_factory=list)
    #: The walk stopped at MAX_ENTRIES.
    truncated: bool = False


def name_problem(name: str) -> str | None:
    """Why ``name`` is not one plain file name, or None."""
    if not name or name in (".", ".."):
        return "empty, . or .."
    if "/" in name or "\x00" in name:
        return "contains / or NUL"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "contains control characters"
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        return "longer than 255 bytes"
    return None


def _skip(listing: Listing, path: str, why: str) -> None:
    if len(listing.skipped) < 100:
        listing.skipped.append(f"{path!r}: {why}")


class UmsVolume(Protocol):
    """What the mass-storage driver needs from a volume."""

    def listing(self) -> Listing: ...
    def open_file(self, entry: VolumeFile) -> BinaryIO: ...
    def delete(self, entry: VolumeFile) -> None: ...
    def boot(self) -> BootSector | None: ...
    def space(self) -> tuple[int, int]:
        """(total bytes, free bytes)."""
        ...

    def close(self) -> None: ...


class Changed(OSError):
    """The file on the volume is not the one listed (size, type or identity changed)."""


class DirVolume:
    """A mounted volume, confined to its directory descriptor.

    ``writable`` is called with a function to run while the volume is remounted
    read-write (the delete alone); without it the volume cannot delete.
    """

    #: Files may be read by two threads at once (each open is its own descriptor).
    parallel_reads = True

    def __init__(
        self,
        root: str,
        boot: BootSector | None = None,
        writable: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.root = root
        self._boot = boot
        self._writable = writable
        st = os.lstat(root)
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise OSError(f"{root}: not a directory (or a symlink)")
        self._fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)

    def _walk(self, fd: int, prefix: str, depth: int, listing: Listing, seen: list[int]) -> None:
        with os.scandir(fd) as it:
            for entry in it:
                seen[0] += 1
                if seen[0] > MAX_ENTRIES:
                    listing.truncated = True
                    return
                path = f"{prefix}{entry.name}"
                why = name_problem(entry.name)
                if why:
                    _skip(listing, path, why)
                    continue
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    if depth >= MAX_DEPTH:
                        _skip(listing, path, "too deep")
                        continue
                    sub = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                    try:
                        self._walk(sub, f"{path}/", depth + 1, listing, seen)
                    finally:
                        os.close(sub)
                    if listing.truncated:
                        return
                elif stat.S_ISREG(st.st_mode):
                    listing.files.append(VolumeFile(path, st.st_size, st.st_mtime))
                else:
                    _skip(listing, path, "a symlink" if stat.S_ISLNK(st.st_mode) else "not a file")

    def listing(self) -> Listing:
        listing = Listing()
        self._walk(self._fd, "", 0, listing, [0])
        listing.files.sort(key=lambda f: f.path)
        return listing

    def _parent(self, path: str) -> tuple[int, str]:
        """(an opened descriptor of the file's folder, its name), each step O_NOFOLLOW."""
        parts = path.split("/")
        if any(name_problem(p) for p in parts):
            raise Changed(f"{path!r}: not a plain path")
        fd = os.dup(self._fd)
        try:
            for part in parts[:-1]:
                sub = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = sub
        except BaseException:
            os.close(fd)
            raise
        return fd, parts[-1]

    def open_file(self, entry: VolumeFile) -> BinaryIO:
        folder, name = self._parent(entry.path)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=folder)  # fmt: skip
        finally:
            os.close(folder)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != entry.size:
            os.close(fd)
            raise Changed(f"{entry.path!r}: not the file listed ({st.st_size} bytes)")
        os.set_blocking(fd, True)
        return open(fd, "rb", buffering=0)

    def delete(self, entry: VolumeFile) -> None:
        if self._writable is None:
            raise PermissionError("this volume is read-only to the dock")

        def unlink() -> None:
            folder, name = self._parent(entry.path)
            try:
                st = os.lstat(name, dir_fd=folder)
                if not stat.S_ISREG(st.st_mode) or st.st_size != entry.size:
                    raise Changed(f"{entry.path!r}: not the file listed")
                os.unlink(name, dir_fd=folder)
                os.fsync(folder)
            finally:
                os.close(folder)

        self._writable(unlink)

    def boot(self) -> BootSector | None:
        return self._boot

    def space(self) -> tuple[int, int]:
        st = os.fstatvfs(self._fd)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class FatVolume:
    """A FAT file system read through pyfatfs (an image file or a block device).

    Opened read-only; a delete reopens it read-write for that delete alone, then
    flushes and closes it, and reopens read-only.
    """

    def __init__(self, source: str, allow_delete: bool = True) -> None:
        self.source = source
        self.allow_delete = allow_delete
        self._boot = read_boot_sector(source)
        if self._boot is None or self._boot.fs_type not in ("FAT12", "FAT16", "FAT32"):
            kind = self._boot.fs_type if self._boot else "no FAT or exFAT boot sector"
            raise OSError(f"{source}: {kind}: only FAT12/16/32 can be read without mounting")
        self._fs = self._open(read_only=True)

    @staticmethod
    def _fat_module() -> Any:
        try:
            from pyfatfs.PyFatFS import PyFatFS
        except ImportError as exc:  # the library path is optional where the dock mounts
            raise OSError("pyfatfs is not installed: FAT volumes can only be mounted") from exc
        return PyFatFS

    def _open(self, read_only: bool) -> Any:
        return self._fat_module()(self.source, read_only=read_only, utc=True, lazy_load=True)

    def _walk(
        self, folder: Any, prefix: str, depth: int, listing: Listing, seen: list[int]
    ) -> None:
        dirs, files, _ = folder.get_entries()
        for entry in [*dirs, *files]:
            seen[0] += 1
            if seen[0] > MAX_ENTRIES:
                listing.truncated = True
                return
            name = str(entry)
            path = f"{prefix}{name}"
            why = name_problem(name)
            if why:
                _skip(listing, path, why)
                continue
            if entry.is_directory():
                if depth >= MAX_DEPTH:
                    _skip(listing, path, "too deep")
                    continue
                self._walk(entry, f"{path}/", depth + 1, listing, seen)
                if listing.truncated:
                    return
            elif not (entry.is_volume_id() or entry.is_special()):
                mtime = entry.get_mtime().timestamp()
                listing.files.append(VolumeFile(path, entry.filesize, mtime))

    def listing(self) -> Listing:
        listing = Listing()
        self._walk(self._fs.fs.root_dir, "", 0, listing, [0])
        listing.files.sort(key=lambda f: f.path)
        return listing

    def open_file(self, entry: VolumeFile) -> BinaryIO:
        if any(name_problem(p) for p in entry.path.split("/")):
            raise Changed(f"{entry.path!r}: not a plain path")
        _drop_source_cache(self.source)  # the library reads the image: from the disk
        size = self._fs.getsize("/" + entry.path)
        if size != entry.size:
            raise Changed(f"{entry.path!r}: not the file listed ({size} bytes)")
        first = self._fs.fs.root_dir.get_entry("/" + entry.path).get_cluster()
        return cast(BinaryIO, _ChainFile(self._fs.fs, self.source, first, entry.size))

    def delete(self, entry: VolumeFile) -> None:
        if not self.allow_delete:
            raise PermissionError("this volume is read-only to the dock")
        self._fs.close()
        rw = self._open(read_only=False)
        try:
            if rw.getsize("/" + entry.path) != entry.size:
                raise Changed(f"{entry.path!r}: not the file listed")
            rw.remove("/" + entry.path)
            rw.fs.flush_fat()
        finally:
            rw.close()
            _fsync_path(self.source)
            self._fs = self._open(read_only=True)

    def boot(self) -> BootSector | None:
        return self._boot

    def space(self) -> tuple[int, int]:
        boot = self._boot
        assert boot is not None
        table = self._fs.fs.fat[2 : 2 + boot.clusters]
        free = sum(1 for c in table if c == 0)
        return boot.clusters * boot.cluster_bytes, free * boot.cluster_bytes

    def close(self) -> None:
        self._fs.close()


#: Links compared at once when looking for a contiguous stretch of the chain.
_STRETCH = 4096


def _runs(fat: Any, first: int, size: int) -> Iterator[tuple[int, int]]:
    """(byte offset in the image, length) of the file's contiguous cluster runs.

    Follows the chain in pyfatfs's parsed FAT (a list: entry ``c`` names the cluster
    after ``c``) for exactly the clusters ``size`` needs, so a looped chain cannot run
    on; a link to a free, bad, reserved or out-of-range cluster is an error. A stretch
    of clusters that each link to the next is recognised a slice at a time (cameras
    write footage contiguously), the rest one link at a time.
    """
    per = fat.bytes_per_cluster
    base = getattr(fat, "_PyFat__fp_offset", 0)  # where the file system starts in `source`
    table = fat.fat
    limits = fat.FAT_CLUSTER_VALUES[fat.fat_type]
    lowest = max(2, limits["MIN_DATA_CLUSTER"])
    highest = min(limits["MAX_DATA_CLUSTER"], len(table) - 1)
    need = -(-size // per)
    count = 0
    cluster = start = first
    while count < need:
        if not lowest <= cluster <= highest:
            raise OSError(f"cluster {cluster} is not a data cluster: the volume is damaged")
        links = min(need - count - 1, _STRETCH, highest - cluster)
        if links > 0 and table[cluster : cluster + links] == list(
            range(cluster + 1, cluster + links + 1)
        ):
            count += links
            cluster += links  # the run goes on
            continue
        count += 1
        if count == need:
            break
        following = table[cluster]
        if following != cluster + 1:
            yield base + fat.get_data_cluster_address(start), (cluster - start + 1) * per
            start = following
        cluster = following
    if need:
        yield base + fat.get_data_cluster_address(start), (cluster - start + 1) * per


class _ChainFile(io.RawIOBase):
    """A file on a FAT image read by its cluster chain, a run of adjacent clusters per
    ``pread``; what ``FatVolume.open_file`` gives.

    pyfatfs reads a cluster per call (74 MiB/s on a bench image of 512-byte clusters); this
    follows the same chain in pyfatfs's parsed FAT (:func:`_runs`: bounded by the size,
    a damaged chain an error, never short data) and reads the image with its own
    descriptor (the caller dropped the image's cache). A seek walks the chain again
    from the start (the MP4 look seeks a few times near the start; copies never seek).
    """

    def __init__(self, fat: Any, source: str, first: int, size: int) -> None:
        super().__init__()
        self._fat, self._first, self._size = fat, first, size
        self._fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        self._pos = 0  # in the file
        self._runs: Iterator[tuple[int, int]] = iter(())
        self._at = self._left = 0  # image offset and bytes left in the current run
        self._restart(0)

    def _restart(self, pos: int) -> None:
        """Position the run walk at file offset ``pos`` (bounded by the chain's length)."""
        self._runs = _runs(self._fat, self._first, self._size)
        self._at = self._left = 0
        skip = pos
        while skip > 0:
            offset, length = self._next_run()
            if length > skip:
                self._at, self._left = offset + skip, length - skip
                break
            skip -= length
        self._pos = pos

    def _next_run(self) -> tuple[int, int]:
        run = next(self._runs, None)
        if run is None:  # _runs raises first; never a StopIteration inside a generator
            raise OSError("the cluster chain ends inside the file: the volume is damaged")
        return run

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        target = min(max(0, base + offset), self._size)
        if target != self._pos:
            self._restart(target)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left for -1), stopping at a run's end."""
        want = self._size - self._pos
        if size is not None and size >= 0:
            want = min(want, size)
        if want <= 0:
            return b""
        if self._left == 0:
            self._at, self._left = self._next_run()
        data = os.pread(self._fd, min(want, self._left), self._at)
        if not data:
            raise OSError("the image ends inside a file's clusters")
        self._at += len(data)
        self._left -= len(data)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        parts = []
        while data := self.read(1 << 20):
            parts.append(data)
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        super().close()


def _drop_source_cache(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        drop_cache(fd)
    finally:
        os.close(fd)


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def iter_blocks(handle: BinaryIO, block: int = 1 << 20) -> Iterator[bytes]:
    """The file's bytes, ``block`` at a time (bounded by the file: read returns b"")."""
    while data := handle.read(block):
        yield data
