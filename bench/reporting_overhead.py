"""What reporting to headquarters costs the dock: idle CPU and memory of `dock run`
with and without `--mqtt`, in the same run (the baseline is the same dock, not reporting).

The daemons run with emulated recorders in-process; each is measured after a warm-up
over the same quiet period, alternately, so a noisy neighbour hits both alike.

    .venv/bin/python bench/reporting_overhead.py [--rounds 3] [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.broker import Broker  # noqa: E402

DOCK = [sys.executable, "-m", "dock.cli.main"]


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def measure(extra: list[str], state: str, warmup: float, seconds: float) -> tuple[float, int]:
    proc = subprocess.Popen(
        [*DOCK, "run", "--emulate", "4", "--state-dir", state, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        time.sleep(warmup)
        t0, c0 = time.monotonic(), cpu_ticks(proc.pid)
        time.sleep(seconds)
        t1, c1 = time.monotonic(), cpu_ticks(proc.pid)
        hz = os.sysconf("SC_CLK_TCK")
        return (c1 - c0) / hz / (t1 - t0) * 100, rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=8.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Broker(tmp) as broker:
        plain: list[tuple[float, int]] = []
        reporting: list[tuple[float, int]] = []
        for r in range(args.rounds):
            plain.append(measure([], f"{tmp}/p{r}", args.warmup, args.seconds))
            mqtt = ["--mqtt", f"{broker.host}:{broker.port}"]
            reporting.append(measure(mqtt, f"{tmp}/r{r}", args.warmup, args.seconds))
            print(f"round {r + 1}: plain {plain[-1]}, reporting {reporting[-1]}", flush=True)
    cpu_p = statistics.median(c for c, _ in plain)
    cpu_r = statistics.median(c for c, _ in reporting)
    rss_p = statistics.median(m for _, m in plain)
    rss_r = statistics.median(m for _, m in reporting)
    print(f"idle CPU, % of a core (median of {args.rounds}): plain {cpu_p:.2f}, "
          f"reporting {cpu_r:.2f}, difference {cpu_r - cpu_p:+.2f}")  # fmt: skip
    print(f"RSS (median): plain {rss_p / 1024:.1f} MiB, reporting {rss_r / 1024:.1f} MiB, "
          f"difference {(rss_r - rss_p) / 1024:+.1f} MiB, ratio {rss_r / rss_p:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
