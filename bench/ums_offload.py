"""Offload from a mass-storage camera against ``cp`` + ``sync`` of the same files.

The camera's volume is a directory of footage in a vendor's naming (what the dock's
read-only mount of the camera gives; ``--image`` reads a FAT image through pyfatfs
instead, the path where the dock cannot mount). The dock's side is the real one:
``UmsRecorder`` + ``Offloader`` (a first read of each file hashed for the listing, a
second read hashed while copying, fsync, the copy read back past the cache, the archive
row, its audit entries, the sealed BagIt package). The baseline, in the same run on the
same files: ``cp -r`` into a fresh folder, then ``sync``. Before every run of either
side the source files' pages are dropped from the cache (posix_fadvise DONTNEED), so
both read the source from the disk. Runs alternate; the ratio is the median of pairs.

    .venv/bin/python bench/ums_offload.py [--files 8] [--mb 16] [--repeat 5] [--image]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dock.devices.ums.identity import IdentityRule  # noqa: E402
from dock.devices.ums.recorder import UmsRecorder  # noqa: E402
from dock.devices.ums.volume import DirVolume, FatVolume  # noqa: E402
from dock.evidence.offload import Offloader  # noqa: E402
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


def run_cp(src: str, work: str) -> float:
    dst = os.path.join(work, "cp-copy")
    start = time.perf_counter()
    subprocess.run(["cp", "-r", src, dst], check=True)
    subprocess.run(["sync"], check=True)
    took = time.perf_counter() - start
    shutil.rmtree(dst)
    return took


def run_dock(src: str, work: str, image: str | None) -> float:
    state = tempfile.mkdtemp(dir=work, prefix="state-")
    key = load_or_create_signing_key(os.path.join(state, "signing.key"))
    store = Store(os.path.join(state, "dock.db"))
    audit = AuditLog(os.path.join(state, "audit.db"), key, "bench")
    evidence = os.path.join(state, "evidence")
    start = time.perf_counter()
    volume = FatVolume(image) if image else DirVolume(src)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--mb", type=int, default=16, help="MiB per file")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--image", action="store_true", help="read a FAT image via pyfatfs")
    ap.add_argument("--dir", default=None, help="where to work (default: a temporary folder)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ums-bench-", dir=args.dir)
    try:
        src = os.path.join(work, "camera")
        names = make_source(src, args.files, args.mb)
        paths = [os.path.join(src, n) for n in names]
        image = make_image(src, names, work, args.files * args.mb) if args.image else None
        total = args.files * args.mb
        ratios, cps, docks = [], [], []
        for _ in range(args.repeat):
            drop(paths + ([image] if image else []))
            cp = run_cp(src, work)
            drop(paths + ([image] if image else []))
            dock = run_dock(src, work, image)
            cps.append(cp)
            docks.append(dock)
            ratios.append(dock / cp)
        kind = "FAT image via pyfatfs" if image else "directory (a mounted volume)"
        print(f"{args.files} files x {args.mb} MiB = {total} MiB, source: {kind}")
        print(f"cp -r + sync: best {min(cps):.2f} s ({total / min(cps):.0f} MiB/s)")
        print(f"dock offload: best {min(docks):.2f} s ({total / min(docks):.0f} MiB/s)")
        each = ", ".join(f"{r:.2f}" for r in ratios)
        median = statistics.median(ratios)
        print(f"ratio dock / (cp + sync), median of {args.repeat} pairs: {median:.2f} ({each})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
