"""Offload from a mass-storage camera against ``cp`` + ``sync`` of the same files.

The camera's volume is a directory of footage in a vendor's naming (what the dock's
read-only mount of the camera gives; ``--image`` reads a FAT image through the FAT
library instead, the path where the dock cannot mount). Each round runs every side
below on the same files, in a rotated order; the source's pages (and a copy's, where a
side reads it back) are dropped from the cache before each side, so every read that is
meant to come from the disk does:

* ``dock``: the real ``UmsRecorder`` + ``Offloader``: a first read of each file hashed
  for the listing, a second read hashed while copying, fsync of file and folder, the copy
  read back past the cache and hashed, archive row, audit entries, sealed BagIt package;
* ``cp``: ``cp -r`` into a fresh folder, then ``sync`` (one read, no hash);
* ``cp+sha``: the same reads by standard tools: ``cp -r`` + ``sync``, then the caches of
  source and copy dropped and ``sha256sum`` of both (three reads, two hashed, one core);
* ``3 reads``: the source read three times from the disk, nothing hashed or written:
  the floor of any offload that reads three times, whatever it computes;
* ``3 reads+sha``: the same, each read hashed (hashlib, one file at a time);
* ``bare copies``: the dock's three reads, write and fsyncs without the dock around them
  (a first read hashed, then ``write_verified``; no listing, database, audit, package),
  one file at a time, and ``bare copies, 2 at once`` two files at a time (threads): what
  overlapping files could give;
* with ``--image --library-reads``, also ``dock`` reading through the FAT library's own
  per-cluster reads (what ``FatVolume`` did before it read by cluster runs).

Ratios are per round (dock / cp, dock / cp+sha), reported as the median and range.
``--source-dir`` puts the camera on another file system (``/dev/shm``: a camera faster
than any disk); ``--throttle MBPS`` reads the camera through a rate limit (USB 2.0 mass
storage gives ~35 MB/s); ``cp`` cannot be throttled, so that side becomes a Python copy
through the same limit (read, write, ``sync``) and ``3 reads`` stays unthrottled.

    .venv/bin/python bench/ums_offload.py [--files 8] [--mb 16] [--repeat 7] [--image]
        [--source-dir /dev/shm] [--throttle 35]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dock.devices.ums.identity import IdentityRule  # noqa: E402
from dock.devices.ums.recorder import UmsRecorder  # noqa: E402
from dock.devices.ums.volume import DirVolume, FatVolume, VolumeFile  # noqa: E402
from dock.evidence.offload import Offloader  # noqa: E402
from dock.evidence.verified_copy import write_verified  # noqa: E402
from dock.storage.audit import AuditLog  # noqa: E402
from dock.storage.keys import load_or_create_signing_key  # noqa: E402
from dock.storage.store import Store  # noqa: E402


def make_source(folder: str, files: int, mb: int) -> list[str]:
    """``files`` footage files of ``mb`` MiB each (incompressible), vendor-named."""
    os.makedirs(os.path.join(folder, "DCIM"), exist_ok=True)
    names = []
    block = 1 << 20
    for n in range(files):
        name = os.path.join(
            "DCIM", f"DSJ0001_012345_20261130{8 + n // 60:02d}{n % 60:02d}00_{n + 1:04d}.MP4"
        )
        with open(os.path.join(folder, name), "wb") as f:
            for i in range(mb):
                f.write(hashlib.shake_256(f"{n}-{i}".encode()).digest(block))
            f.flush()
            os.fsync(f.fileno())
        names.append(name)
    return names


def drop(paths: list[str]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


class Throttle:
    """A shared byte rate (a camera's USB link): ``take(n)`` waits until n bytes fit."""

    def __init__(self, mb_per_s: float) -> None:
        self.rate = mb_per_s * 1e6
        self.start = time.monotonic()
        self.sent = 0
        self.lock = threading.Lock()

    def take(self, n: int) -> None:
        with self.lock:
            self.sent += n
            due = self.start + self.sent / self.rate
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)


class _SlowFile:
    """A file handle whose reads pass through a :class:`Throttle`."""

    def __init__(self, inner: BinaryIO, throttle: Throttle) -> None:
        self.inner, self.throttle = inner, throttle

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.throttle.take(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __enter__(self) -> _SlowFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.close()


class SlowVolume(DirVolume):
    """A mounted camera behind a link of ``throttle``'s rate."""

    def __init__(self, root: str, throttle: Throttle) -> None:
        super().__init__(root)
        self.throttle = throttle

    def open_file(self, entry: VolumeFile) -> BinaryIO:
        return _SlowFile(super().open_file(entry), self.throttle)  # type: ignore[return-value]


def run_cp(src: str, work: str, throttle_mb: float | None) -> float:
    dst = os.path.join(work, "cp-copy")
    start = time.perf_counter()
    if throttle_mb is None:
        subprocess.run(["cp", "-r", src, dst], check=True)
    else:
        throttled_copy(src, dst, Throttle(throttle_mb))
    subprocess.run(["sync"], check=True)
    took = time.perf_counter() - start
    shutil.rmtree(dst)
    return took


def throttled_copy(src: str, dst: str, throttle: Throttle) -> None:
    """What ``cp -r`` does, reading through ``throttle`` (1 MiB at a time)."""
    for folder, _dirs, names in os.walk(src):
        target = os.path.join(dst, os.path.relpath(folder, src))
        os.makedirs(target, exist_ok=True)
        for name in names:
            with (
                open(os.path.join(folder, name), "rb") as f,
                open(os.path.join(target, name), "wb") as out,
            ):
                while block := f.read(1 << 20):
                    throttle.take(len(block))
                    out.write(block)


def run_cp_sha(src: str, work: str, sources: list[str]) -> float:
    """cp -r + sync, then sha256sum of source and copy, both read from the disk."""
    dst = os.path.join(work, "cp-sha-copy")
    start = time.perf_counter()
    subprocess.run(["cp", "-r", src, dst], check=True)
    subprocess.run(["sync"], check=True)
    copies = sorted(glob.glob(os.path.join(dst, "**", "*.MP4"), recursive=True))
    drop(sources + copies)
    out = subprocess.run(["sha256sum", *sources, *copies], check=True, capture_output=True)
    took = time.perf_counter() - start
    sums = [line.split()[0] for line in out.stdout.decode().splitlines()]
    if sorted(sums[: len(sources)]) != sorted(sums[len(sources) :]):
        raise SystemExit("cp+sha: the copy differs from the source")
    shutil.rmtree(dst)
    return took


def run_reads(sources: list[str], hashed: bool = False) -> float:
    """Three reads of every source file from the disk (cache dropped before each), one
    file at a time; ``hashed``: each read hashed (SHA-256, in the reading thread)."""
    start = time.perf_counter()
    for _ in range(3):
        drop(sources)
        for path in sources:
            digest = hashlib.sha256()
            with open(path, "rb", buffering=0) as f:
                while block := f.read(1 << 20):
                    if hashed:
                        digest.update(block)
    return time.perf_counter() - start


def _cold_blocks(path: str) -> Iterator[bytes]:
    """The file read from the disk (its cache dropped first), 1 MiB at a time."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while block := os.read(fd, 1 << 20):
            yield block
    finally:
        os.close(fd)


def run_bare(sources: list[str], work: str, at_once: int) -> float:
    """The dock's three reads without the dock around them: a first read hashed, then
    ``write_verified`` (second read hashed while written, fsync, read back, publish);
    no listing, database, audit or package. ``at_once`` files at a time (threads)."""
    dest = tempfile.mkdtemp(dir=work, prefix="bare-")

    def copy(paths: list[str]) -> None:
        for path in paths:
            first = hashlib.sha256()
            for block in _cold_blocks(path):
                first.update(block)
            write_verified(
                dest, os.path.basename(path), _cold_blocks(path), first.digest(), hash_written=True
            )

    start = time.perf_counter()
    workers = [threading.Thread(target=copy, args=(sources[i::at_once],)) for i in range(at_once)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    took = time.perf_counter() - start
    if len(os.listdir(dest)) != len(sources):
        raise SystemExit("bare copies: not every file was verified")
    shutil.rmtree(dest)
    return took


class LibraryFatVolume(FatVolume):
    """The FAT library's own reads (one cluster per call): what FatVolume did before."""

    def open_file(self, entry: VolumeFile) -> BinaryIO:
        super().open_file(entry).close()  # the same checks and cache drop
        handle: BinaryIO = self._fs.openbin("/" + entry.path, "r")
        return handle


def run_dock(
    src: str, work: str, image: str | None, throttle_mb: float | None, library: bool = False
) -> float:
    state = tempfile.mkdtemp(dir=work, prefix="state-")
    key = load_or_create_signing_key(os.path.join(state, "signing.key"))
    store = Store(os.path.join(state, "dock.db"))
    audit = AuditLog(os.path.join(state, "audit.db"), key, "bench")
    evidence = os.path.join(state, "evidence")
    start = time.perf_counter()
    if image:
        volume: Any = LibraryFatVolume(image) if library else FatVolume(image)
    elif throttle_mb is not None:
        volume = SlowVolume(src, Throttle(throttle_mb))
    else:
        volume = DirVolume(src)
    camera = UmsRecorder(volume, IdentityRule("bench"), allow_erase=False)
    report = Offloader(store, audit, evidence).offload(camera, "1")  # type: ignore[arg-type]
    took = time.perf_counter() - start
    volume.close()
    if not report.ok or not report.archived:
        raise SystemExit(f"offload failed: {report.failed}")
    shutil.rmtree(state, ignore_errors=True)
    return took


def make_image(src: str, names: list[str], work: str, mb_total: int) -> str:
    image = os.path.join(work, "cam.img")
    mkfs = shutil.which("mkfs.vfat") or shutil.which("mkfs.vfat", path="/usr/sbin:/sbin")
    if mkfs is None or shutil.which("mcopy") is None:
        raise SystemExit("--image needs mkfs.vfat and mcopy (dosfstools, mtools)")
    size_kb = (mb_total + 64) * 1024
    subprocess.run([mkfs, "-C", "-F", "32", image, str(size_kb)], check=True, capture_output=True)
    subprocess.run(["mmd", "-i", image, "::/DCIM"], check=True)
    for name in names:
        subprocess.run(["mcopy", "-i", image, os.path.join(src, name), f"::/{name}"], check=True)
    return image


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--mb", type=int, default=16, help="MiB per file")
    ap.add_argument("--repeat", type=int, default=7, help="rounds (every side once each)")
    ap.add_argument("--image", action="store_true", help="read a FAT image via pyfatfs")
    ap.add_argument("--dir", default=None, help="where the archive side works (default: /tmp)")
    ap.add_argument("--source-dir", default=None, help="where the camera's files are made")
    ap.add_argument("--throttle", type=float, default=None, help="camera link, MB/s")
    ap.add_argument(
        "--library-reads", action="store_true", help="with --image: also the FAT library's reads"
    )
    args = ap.parse_args()
    if args.throttle is not None and args.image:
        raise SystemExit("--throttle reads a directory; not with --image")
    work = tempfile.mkdtemp(prefix="ums-bench-", dir=args.dir)
    srcwork = tempfile.mkdtemp(prefix="ums-cam-", dir=args.source_dir)
    try:
        src = os.path.join(srcwork, "camera")
        names = make_source(src, args.files, args.mb)
        paths = [os.path.join(src, n) for n in names]
        image = make_image(src, names, srcwork, args.files * args.mb) if args.image else None
        sources = paths + ([image] if image else [])
        total = args.files * args.mb
        sides: dict[str, Callable[[], float]] = {
            "dock": lambda: run_dock(src, work, image, args.throttle),
            "cp": lambda: run_cp(src, work, args.throttle),
            "cp+sha": lambda: run_cp_sha(src, work, paths),
            "3 reads": lambda: run_reads(paths),
            "3 reads+sha": lambda: run_reads(paths, hashed=True),
            "bare copies": lambda: run_bare(paths, work, 1),
            "bare copies, 2 at once": lambda: run_bare(paths, work, 2),
        }
        if image and args.library_reads:
            sides["dock, library reads"] = lambda: run_dock(src, work, image, None, True)
        if args.throttle is not None:  # standard tools and bare reads bypass the limit
            for name in ("cp+sha", "bare copies", "bare copies, 2 at once"):
                del sides[name]
        times: dict[str, list[float]] = {name: [] for name in sides}
        load_before = os.getloadavg()
        order = list(sides)
        for r in range(args.repeat):
            for name in order[r % len(order) :] + order[: r % len(order)]:
                drop(sources)
                times[name].append(sides[name]())
        load_after = os.getloadavg()
        kind = "FAT image via pyfatfs" if image else "directory (a mounted volume)"
        where = os.path.dirname(srcwork) if args.source_dir else "the archive's file system"
        print(f"{args.files} files x {args.mb} MiB = {total} MiB, source: {kind} on {where}")
        if args.throttle is not None:
            print(f"camera link throttled to {args.throttle:g} MB/s (cp: a Python copy through it)")
        print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
        for name, took in times.items():
            med = statistics.median(took)
            rate = f"{total / med:.0f} MiB/s"
            print(f"{name:22s} median {med:.3f} s ({rate}), best {min(took):.3f} s")
        for base in [b for b in times if b != "dock"]:
            ratios = [d / c for d, c in zip(times["dock"], times[base], strict=True)]
            print(f"ratio dock / {base}, median of {args.repeat} rounds: {_spread(ratios)}")
        for floor in [b for b in times if b not in ("dock", "cp")]:
            ratios = [r / c for r, c in zip(times[floor], times["cp"], strict=True)]
            print(f"ratio {floor} / cp: {_spread(ratios)}")
        if args.throttle is not None:
            link = 2 * total * (1 << 20) / (args.throttle * 1e6)
            dock = statistics.median(times["dock"])
            print(f"two reads through the link take {link:.2f} s: dock / that = {dock / link:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(srcwork, ignore_errors=True)


if __name__ == "__main__":
    main()
