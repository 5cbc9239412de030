"""Offloading one large recording, fully verified, against what an administrator would do.

Baselines in the same run, on the same files and disk:
  bare       cp SRC DST && sync                                (no verification at all)
  floor      cp SRC DST && sync, then DST read cold            (the disk work any copy
             verified by reading it back must do: the least a verified copy can take)
  admin      cp SRC DST && sync && sha256sum SRC && sha256sum DST   (the careful script)
Ours (the real Offloader: hash while writing, fsync, read back from disk, compare with
the capture hash, publish, seal the BagIt package, erase on the recorder):
  protocol   the recording streamed over TCP through the wire protocol
  volume     the recording read from the recorder's mass-storage volume

    .venv/bin/python bench/offload_throughput.py [--mb 1024] [--repeat 5] [--recorder-dir /dev/shm]

``--recorder-dir`` puts the recorder's footage (and the baselines' source file) on
another file system, e.g. tmpfs: the recorder then serves from memory and only the
dock's writes and read-back touch the disk, so the two do not share one virtual disk.
The dock's evidence store stays in the bench's folder (``BENCH_DIR`` or /tmp).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from offload_slots import prewarm  # noqa: E402

from dock.config import emulated_config  # noqa: E402
from dock.daemon.composition import build_service  # noqa: E402
from hardware.screens import ConsoleScreen  # noqa: E402

#: Prepended to the recorder's command (bench/pi_budget.py: ``taskset -c 1``).
RECORDER_PREFIX: list[str] = []


def drop_caches() -> None:
    """Start each run from a cold page cache where the machine lets us (root)."""
    subprocess.run(["sync"], check=False)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def write_footage(path: str, mb: float) -> None:
    """``mb`` MiB of incompressible bytes at ``path`` (what cp's baselines copy)."""
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(int(mb)):
            f.write(block)


def shell(cmd: str) -> float:
    drop_caches()
    t0 = time.perf_counter()
    subprocess.run(["bash", "-c", cmd], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def file_system(path: str) -> str:
    """What ``path`` is on: "tmpfs at /dev/shm", "ext4 (/dev/vda) at /", ..."""
    best = ("?", "?", "")
    with open("/proc/mounts") as f:
        for line in f:
            dev, mount, kind = line.split()[:3]
            inside = path == mount or path.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best[2]):
                best = (dev, kind, mount)
    dev, kind, mount = best
    return f"{kind} at {mount}" if kind == "tmpfs" else f"{kind} ({dev}) at {mount}"


def ours(mb: float, tmp: str, via_volume: bool, recorder_dir: str | None = None) -> float:
    rec_dir = tempfile.mkdtemp(prefix=f"rec-{via_volume}-", dir=recorder_dir or tmp)
    dock_dir = tempfile.mkdtemp(prefix=f"dock-{via_volume}-", dir=tmp)
    emu = subprocess.Popen(
        [*RECORDER_PREFIX, sys.executable, "-m", "hardware.emulator.cli", "--listen", "tcp://127.0.0.1:0",
         "--data-dir", rec_dir, "--serial", "BENCH1", "--recordings", "1",
         "--recording-mb", str(mb), "--log-level", "WARNING"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert emu.stdout is not None
    url = emu.stdout.readline().strip()
    try:
        cfg = emulated_config(1, dock_dir)
        cfg = dataclasses.replace(cfg, slots=(dataclasses.replace(cfg.slots[0], port=url),))
        svc = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
        svc.enrol("1", "bench")
        svc.offloader.use_mass_storage = via_volume
        prewarm(svc, 1)  # as `dock run` does: the worker started ahead, not timed
        drop_caches()
        t0 = time.perf_counter()
        report = svc.offload("1")
        elapsed = time.perf_counter() - t0
        assert report is not None and report.ok and len(report.archived) == 1, report
        return elapsed
    finally:
        emu.terminate()
        emu.wait(timeout=30)
        shutil.rmtree(rec_dir, ignore_errors=True)
        shutil.rmtree(dock_dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=1024)
    ap.add_argument("--recorder-dir", help="the recorder's footage here (/dev/shm: memory)")
    ap.add_argument("--repeat", type=int, default=1, help="interleaved rounds (medians given)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-offload-", dir=os.environ.get("BENCH_DIR"))
    rec = tempfile.mkdtemp(prefix="bench-recorder-", dir=a.recorder_dir) if a.recorder_dir else tmp
    rounds: list[tuple[float, float, float, float]] = []
    try:
        src = os.path.join(rec, "src.mp4")
        write_footage(src, a.mb)
        dst = os.path.join(tmp, "dst.mp4")
        admin = shell(f"cp {src} {dst} && sync && sha256sum {src} {dst}")
        os.remove(dst)
        for _ in range(max(1, a.repeat)):  # each round: the baseline, then ours, in turn
            bare = shell(f"cp {src} {dst} && sync")
            floor = bare + shell(f"cat {dst} > /dev/null")  # cold: shell drops the caches
            os.remove(dst)
            protocol = ours(a.mb, tmp, via_volume=False, recorder_dir=rec)
            volume = ours(a.mb, tmp, via_volume=True, recorder_dir=rec)
            rounds.append((bare, protocol, volume, floor))
            print(f"round: cp+sync {bare:.2f} s, floor {floor:.2f} s, protocol {protocol:.2f} s"
                  f" ({protocol / bare:.2f}x), volume {volume:.2f} s ({volume / bare:.2f}x)",
                  flush=True)  # fmt: skip
        os.remove(src)
        where = (file_system(os.path.realpath(rec)), file_system(os.path.realpath(tmp)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(rec, ignore_errors=True)
    bare = statistics.median(r[0] for r in rounds)
    print(f"{a.mb:g} MiB recording, {len(rounds)} interleaved round(s), medians")
    print(f"recorder's footage (and cp's source) on  {where[0]}")
    print(f"dock's evidence store (and cp's copy) on {where[1]}")
    print(f"bare cp + sync               {bare:6.2f} s")
    floor = statistics.median(r[3] for r in rounds)
    print(f"floor: + cold read of copy   {floor:6.2f} s")
    print(f"admin cp+sync+2x sha256sum   {admin:6.2f} s   (once)")
    for name, i in (("ours, over the protocol", 1), ("ours, mass-storage volume", 2)):
        t = statistics.median(r[i] for r in rounds)
        ratio = statistics.median(r[i] / r[0] for r in rounds)
        print(
            f"{name:<28} {t:6.2f} s   {ratio:5.2f} x bare (median of the rounds' ratios)"
            f"   {statistics.median(r[i] / r[3] for r in rounds):5.2f} x floor"
            f"   {admin / t:5.2f}x faster than admin   {a.mb * (1 << 20) / t / 1e6:6.1f} MB/s"
        )


if __name__ == "__main__":
    main()
