"""A Raspberry Pi 4-class budget: the throughput benches pinned to one core, against
what four USB 2.0 recorders deliver (4 x 35 MB/s = 140 MB/s).

``--pin both`` (default) puts everything on core ``--cpu``: the dock (this process,
its threads and any worker process it starts) and the recorder emulator (and the
plain sender of the baseline) share that one core, the harshest reading. ``--pin dock``
puts only the dock there and the recorder on ``--recorder-cpus`` (separate hardware,
as a real recorder is). The same pinning holds for the baselines of the same run:

* read (bench/read_throughput.py): one recording read through the whole stack by
  ``RecorderClient.read_recording`` vs the same file sent on a plain TCP socket,
  interleaved, ``--repeat`` pairs;
* offload (bench/offload_throughput.py): the real verified offload over the protocol
  (hash, fsync, read back, publish, seal, audit, erase) vs ``cp`` + ``sync``.

A Pi 4 core is roughly 3-5 times slower than a core of this machine: the last column
divides by that. The protocol never limits a full dock while stack / 140 MB/s stays
above 1 there.

    .venv/bin/python bench/pi_budget.py [--pin both|dock] [--mb 64] [--repeat 3]
        [--offload-mb 128] [--recorder-dir /dev/shm]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import offload_throughput  # noqa: E402
import read_throughput  # noqa: E402

FULL_DOCK = 4 * 35e6  # four USB 2.0 recorders, bytes/s
MB = 1e6


def start_recorder(data_dir: str, mb: float) -> subprocess.Popen[str]:
    emu = subprocess.Popen(
        [*read_throughput.RECORDER_PREFIX,
         sys.executable, "-m", "hardware.emulator.cli", "--listen", "tcp://127.0.0.1:0",
         "--data-dir", data_dir, "--recordings", "1", "--recording-mb", str(mb),
         "--log-level", "WARNING"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    return emu


def read_budget(mb: float, repeat: int) -> dict[str, list[float]]:
    """Interleaved plain-socket and whole-stack reads of one recording: bytes/s each."""
    out: dict[str, list[float]] = {"plain": [], "stack": [], "dock_cpu": []}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        emu = start_recorder(tmp, mb)
        assert emu.stdout is not None
        url = emu.stdout.readline().strip()
        path = os.path.join(tmp, "recordings", "REC000001.mp4")
        size = os.path.getsize(path)
        try:
            for _ in range(repeat):
                out["plain"].append(read_throughput.plain_socket(path, size))
                rate, dock_s, _ = read_throughput.whole_stack(url, psutil.Process(emu.pid))
                out["stack"].append(rate)
                out["dock_cpu"].append(dock_s)
        finally:
            emu.terminate()
            emu.wait(timeout=30)
    return out


def offload_budget(mb: float, recorder_dir: str | None) -> tuple[float, float]:
    """(cp + sync, our verified offload over the protocol): bytes/s of one recording."""
    tmp = tempfile.mkdtemp(prefix="bench-pi-", dir=os.environ.get("BENCH_DIR"))
    rec = tempfile.mkdtemp(prefix="bench-pi-rec-", dir=recorder_dir) if recorder_dir else tmp
    size = int(mb) * (1 << 20)
    try:
        src, dst = os.path.join(rec, "src.mp4"), os.path.join(tmp, "dst.mp4")
        with open(src, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(int(mb)):
                f.write(block)
        bare = offload_throughput.shell(f"cp {src} {dst} && sync")
        os.remove(dst)
        os.remove(src)
        ours = offload_throughput.ours(int(mb), tmp, via_volume=False, recorder_dir=rec)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(rec, ignore_errors=True)
    return size / bare, size / ours


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pin", choices=("both", "dock"), default="both")
    ap.add_argument("--cpu", type=int, default=0, help="the one core of the dock")
    ap.add_argument("--recorder-cpus", default="1", help="with --pin dock: the recorder's")
    ap.add_argument("--mb", type=float, default=64, help="the read's recording, MiB")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved read pairs")
    ap.add_argument("--offload-mb", type=float, default=128, help="0: no offload run")
    ap.add_argument("--recorder-dir", help="the offload's recorder footage here (/dev/shm)")
    a = ap.parse_args()
    # This thread first, before any other exists: threads and children inherit it.
    os.sched_setaffinity(0, {a.cpu})
    if a.pin == "dock":
        prefix = ["taskset", "-c", a.recorder_cpus]
        read_throughput.RECORDER_PREFIX[:] = prefix
        offload_throughput.RECORDER_PREFIX[:] = prefix
        where = f"the dock on core {a.cpu}, the recorder on core(s) {a.recorder_cpus}"
    else:
        where = f"the dock and the recorder together on core {a.cpu}"
    with open("/proc/loadavg") as f:
        print(f"load average at start: {f.read().strip()}")
    print(f"pinned: {where}")
    r = read_budget(a.mb, a.repeat)
    offload = offload_budget(a.offload_mb, a.recorder_dir) if a.offload_mb > 0 else None

    def row(name: str, rate: float, base: float, base_name: str) -> str:
        budget = rate / FULL_DOCK
        return (f"| {name} | {rate / MB:.1f} | {base_name} {base / MB:.1f} | {rate / base:.2f} "
                f"| {budget:.2f} | {budget / 5:.2f}-{budget / 3:.2f} |")  # fmt: skip

    stack, plain = statistics.median(r["stack"]), statistics.median(r["plain"])
    print(f"\n| one core ({a.pin}) | stack MB/s | baseline MB/s | vs baseline | "
          f"stack / 140 MB/s | on a Pi 4 core (3-5x slower) |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(row(f"read, {a.mb:g} MiB, median of {a.repeat}", stack, plain, "plain socket"))
    print(row("read, worst runs", min(r["stack"]), min(r["plain"]), "plain socket"))
    if offload is not None:
        bare, ours = offload
        print(row(f"verified offload over the protocol, {a.offload_mb:g} MiB", ours, bare,
                  "cp + sync"))  # fmt: skip
    print(f"dock CPU of the read: {statistics.median(r['dock_cpu']):.2f} s/GiB (median)")
    if a.recorder_dir:
        print(f"offload: recorder's footage on {a.recorder_dir}, the dock's store on disk")
    with open("/proc/loadavg") as f:
        print(f"load average at end: {f.read().strip()}")


if __name__ == "__main__":
    main()
