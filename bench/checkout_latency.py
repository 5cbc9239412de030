"""Badge-to-decision latency and one status sweep with 20 docked recorders.

The 20 recorders run in a separate process (as separate hardware would), each on
its own TCP port. The dock side is the real service: SQLite, audit log, checks.
Baselines in the same run: the bare protocol round trips each operation needs
(a sweep needs at least one STATUS per slot; a decision needs the grant's
open + authenticate + assign on one recorder); the rest is our overhead.

    .venv/bin/python bench/checkout_latency.py [--slots 20] [--decisions 40]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dock.config import DockConfig, emulated_config  # noqa: E402
from dock.daemon.composition import build_service, open_transport  # noqa: E402
from dock.devices.recorder_client import RecorderClient  # noqa: E402
from hardware.screens import ConsoleScreen  # noqa: E402

FLEET = r"""
import sys, os, time
sys.path.insert(0, sys.argv[1])
from hardware.emulator.recorder_model import RecorderModel, RecorderSpec
from hardware.emulator.recorder import RecorderFirmware
from hardware.emulator.server import EmulatorServer
n, base = int(sys.argv[2]), sys.argv[3]
servers = []
for i in range(n):
    spec = RecorderSpec(serial=f"B{i:04d}", recordings=0, battery_percent=95.0)
    model = RecorderModel.open(os.path.join(base, spec.serial), spec)
    servers.append(EmulatorServer(RecorderFirmware(model), "tcp://127.0.0.1:0").start())
print(" ".join(s.url for s in servers), flush=True)
sys.stdin.read()
"""


def config_on(urls: list[str], folder: str) -> DockConfig:
    """The emulated dock's configuration (state in ``folder``) with slot N on the
    recorder at ``urls[N-1]``: what every bench with separate recorder processes runs."""
    cfg = emulated_config(len(urls), folder)
    slots = tuple(dataclasses.replace(s, port=u) for s, u in zip(cfg.slots, urls, strict=True))
    return dataclasses.replace(cfg, slots=slots)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slots", type=int, default=20)
    ap.add_argument("--decisions", type=int, default=40)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-checkout-")
    fleet = subprocess.Popen(
        [sys.executable, "-c", FLEET, ROOT, str(a.slots), os.path.join(tmp, "rec")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert fleet.stdout is not None
    urls = fleet.stdout.readline().split()
    try:
        cfg = config_on(urls, os.path.join(tmp, "dock"))
        svc = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
        for slot in svc.views:
            svc.enrol(slot, "bench")
        for i in range(a.decisions):
            svc.store.add_officer(f"{5000 + i}", f"Officer {i}", "Unit", "246810", f"B-{i}")

        # Baseline 1: one STATUS round trip per slot, sequentially (the least a sweep needs).
        def bare_status_sweep() -> float:
            t0 = time.perf_counter()
            for u in urls:
                with RecorderClient(open_transport(u)) as c:
                    c.open()
                    c.status()
            return time.perf_counter() - t0

        bare = min(bare_status_sweep() for _ in range(3))
        t0 = time.perf_counter()
        svc.sweep()  # the first after docking is a full inspection of every recorder
        full_sweep = time.perf_counter() - t0
        sweeps = []
        for _ in range(5):
            t0 = time.perf_counter()
            svc.sweep()
            sweeps.append(time.perf_counter() - t0)

        # Decisions: badge in, decision out, from the daemon's last sweep (no re-sweep).
        decisions, grants = [], []
        device_secret = {d.serial: d.secret for d in svc.store.devices()}
        for i in range(a.decisions):
            if i and i % a.slots == 0:  # everyone has taken one: dock them all again
                for slot in svc.views:
                    svc.taken(slot)
                svc.sweep()
            t0 = time.perf_counter()
            d = svc.checkout(badge=f"B-{i}", refresh=False)
            decisions.append(time.perf_counter() - t0)
            assert d.granted, d
            # Baseline 2: the round trips of the same grant, done bare.
            t0 = time.perf_counter()
            with RecorderClient(open_transport(svc.views[d.slot].port)) as c:
                c.open()
                c.authenticate(device_secret[d.device])
                c.assign(f"{5000 + i}", f"Officer {i}", "Unit")
            grants.append(time.perf_counter() - t0)
        rss = rss_mb()
        # Idle: the daemon sweeping every 2 s; CPU time over 10 s.
        c0 = time.process_time()
        t_end = time.monotonic() + 10
        while time.monotonic() < t_end:
            svc.sweep()
            time.sleep(max(0.0, min(2.0, t_end - time.monotonic())))
        idle_cpu = (time.process_time() - c0) / 10
    finally:
        fleet.stdin.close()  # type: ignore[union-attr]
        fleet.wait(timeout=30)
    ms = 1000
    p95, protocol = pct(decisions, 95), pct(grants, 95)
    print(f"slots {a.slots}, decisions {a.decisions}")
    print(f"full inspection sweep          {full_sweep * ms:7.1f} ms")
    print(f"routine sweep           median {statistics.median(sweeps) * ms:7.1f} ms")
    print(f"  bare STATUS sweep            {bare * ms:7.1f} ms (baseline)")
    print(f"decision                p50 {pct(decisions, 50) * ms:6.1f} ms  p95 {p95 * ms:6.1f} ms")
    print(f"  bare grant round trips p95 {protocol * ms:6.1f} ms (baseline)")
    print(f"  our overhead at p95          {(p95 - protocol) * ms:7.1f} ms")
    print(f"dock process RSS               {rss:7.1f} MB")
    print(f"idle CPU, sweeping every 2 s   {idle_cpu * 100:7.1f} % of a core")


if __name__ == "__main__":
    main()
