"""Goodput on a noisy serial line: the same recording over a pty at rising bit error rates.

The baseline is the same transfer on a clean pty in the same run; each noisy
line reports its time as a multiple of that, and the READ size the dock settled on.

    .venv/bin/python bench/noisy_line.py [--mb 2]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dock.devices.recorder_client import RecorderClient  # noqa: E402
from hardware.transports import SerialTransport  # noqa: E402


def transfer(mb: float, ber: float, drop: float) -> tuple[float, int, bool]:
    with tempfile.TemporaryDirectory() as tmp:
        emu = subprocess.Popen(
            [sys.executable, "-m", "hardware.emulator.cli", "--data-dir", tmp,
             "--recordings", "1", "--recording-mb", str(mb), "--seed", "1",
             "--bit-error-rate", str(ber), "--drop-rate", str(drop), "--log-level", "ERROR"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert emu.stdout is not None
        url = emu.stdout.readline().strip()
        try:
            h = hashlib.sha256()
            with RecorderClient(SerialTransport(url, explicit=True), timeout=30) as c:
                c.open()
                (rec,) = c.list_recordings()
                t0 = time.perf_counter()
                c.read_recording(rec, lambda off, data: h.update(data))
                elapsed = time.perf_counter() - t0
                return elapsed, c._sizer.size, h.digest() == rec.sha256
        finally:
            emu.terminate()
            emu.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=2.0)
    a = ap.parse_args()
    clean, _, ok = transfer(a.mb, 0.0, 0.0)
    assert ok
    print(f"{a.mb:g} MiB over a pty; clean line {clean:.2f} s ({a.mb / clean:.1f} MiB/s)")
    print(f"{'bit errors':>10} {'drops':>6} {'time':>8} {'x clean':>8} {'READ size':>10} intact")
    for ber, drop in ((1e-6, 0.0), (1e-5, 0.0), (1e-4, 0.0), (1e-4, 0.02)):
        t, size, ok = transfer(a.mb, ber, drop)
        print(f"{ber:>10g} {drop:>6g} {t:>7.2f}s {t / clean:>8.1f} {size:>10} {ok}")


if __name__ == "__main__":
    main()
