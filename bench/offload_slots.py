"""N slots offloading at once against the same footage offloaded one slot at a time.

Each of N recorders (separate processes, TCP) holds one recording of M MiB; the dock
offloads them first with a concurrency of 1, then (fresh recorders, fresh archive)
with a concurrency of N. If our own locks were the limit, N at once would take as
long as N in a row; the disk should be the limit instead.

    .venv/bin/python bench/offload_slots.py [--slots 4] [--mb 128]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dock.config import emulated_config  # noqa: E402
from dock.daemon.composition import build_service  # noqa: E402
from hardware.screens import ConsoleScreen  # noqa: E402


def run(slots: int, mb: float, concurrency: int, tmp: str, volume: bool) -> float:
    procs, urls = [], []
    for i in range(slots):
        p = subprocess.Popen(
            [sys.executable, "-m", "hardware.emulator.cli", "--listen", "tcp://127.0.0.1:0",
             "--data-dir", os.path.join(tmp, f"rec{concurrency}-{i}"), "--serial", f"S{i:03d}",
             "--recordings", "1", "--recording-mb", str(mb), "--log-level", "WARNING"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert p.stdout is not None
        urls.append(p.stdout.readline().strip())
        procs.append(p)
    try:
        cfg = emulated_config(slots, os.path.join(tmp, f"dock{concurrency}"))
        cfg = dataclasses.replace(
            cfg,
            slots=tuple(
                dataclasses.replace(s, port=u) for s, u in zip(cfg.slots, urls, strict=True)
            ),
        )
        svc = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
        for slot in svc.views:
            svc.enrol(slot, "bench")
        svc.offloader.use_mass_storage = volume
        svc.offload_concurrency = concurrency
        subprocess.run(["sync"], check=False)
        t0 = time.perf_counter()
        svc.sweep()  # docking: every slot queues its offload
        svc.wait_offloads()
        elapsed = time.perf_counter() - t0
        assert len(svc.store.archive_entries()) == slots
        return elapsed
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--mb", type=float, default=128)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-slots-")
    try:
        for volume in (True, False):
            one = run(a.slots, a.mb, 1, tmp, volume)
            many = run(a.slots, a.mb, a.slots, tmp, volume)
            how = "mass-storage volume" if volume else "wire protocol (TCP)"
            print(f"{a.slots} x {a.mb:g} MiB via {how}: one at a time {one:6.2f} s, "
                  f"{a.slots} at once {many:6.2f} s, speed-up {one / many:4.2f}x")  # fmt: skip
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp, exist_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
