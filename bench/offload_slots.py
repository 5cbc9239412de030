"""N slots offloading at once against the same footage offloaded one slot at a time.

Each of N recorders (separate processes, TCP) holds one recording of M MiB; the dock
offloads them first with a concurrency of 1, then (fresh recorders, fresh archive)
with a concurrency of N. If our own locks were the limit, N at once would take as
long as N in a row; the disk should be the limit instead.

    .venv/bin/python bench/offload_slots.py [--slots 4] [--mb 32] [--throttle 35]

``--throttle MBPS`` adds the wire protocol with each recorder behind its own link of
that rate (bench/throttle_relay.py, one relay process per recorder; 35 MB/s is what a
USB 2.0 recorder delivers): the cable, not loopback, is then the limit, and N at once
should approach N times one at a time if the dock overlaps its slots. The unthrottled
rows are kept; ``--no-volume`` leaves out the mass-storage rows.

The disk floor, measured in the same run: the same N files copied with ``cp`` and
``sync``, then read back cold (what any copy verified by reading it back must ask of the
disk). N at once near the floor means the disk, not the dock, is what limits them.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from checkout_latency import config_on  # noqa: E402
from throttle_relay import BUFFER_KIB  # noqa: E402
from throttle_relay import start as start_relay  # noqa: E402
from throttle_relay import stop as stop_relay  # noqa: E402

from dock.daemon.composition import build_service, prewarm_offload_workers  # noqa: E402
from hardware.screens import ConsoleScreen  # noqa: E402


def prewarm(svc: object, count: int, timeout: float = 60.0) -> None:
    """Start ``count`` offload workers as ``dock run`` does and wait (bounded) until they
    wait for work, so the timed run measures offloads, not interpreters starting."""
    prewarm_offload_workers(svc, count)  # type: ignore[arg-type]
    copier = getattr(getattr(svc, "offloader", None), "copier", None)
    deadline = time.monotonic() + timeout
    while copier is not None and time.monotonic() < deadline:
        with copier._lock:
            if len(copier._idle) >= min(count, copier.MAX_IDLE):
                return
        time.sleep(0.05)


def run(
    slots: int,
    mb: float,
    concurrency: int,
    tmp: str,
    volume: bool,
    throttle: float = 0.0,
    link_buffer: int = BUFFER_KIB,
) -> float:
    procs, urls, relays = [], [], []
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
    if throttle:  # each recorder behind its own cable of that rate
        for i, url in enumerate(urls):
            relay, urls[i] = start_relay(url, throttle, link_buffer)
            relays.append(relay)
    try:
        cfg = config_on(urls, os.path.join(tmp, f"dock{concurrency}"))
        svc = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
        for slot in svc.views:
            svc.enrol(slot, "bench")
        svc.offloader.use_mass_storage = volume
        svc.offload_concurrency = concurrency
        prewarm(svc, concurrency)  # as `dock run` does: workers started ahead, not timed
        subprocess.run(["sync"], check=False)
        t0 = time.perf_counter()
        svc.sweep()  # docking: every slot queues its offload
        svc.wait_offloads()
        elapsed = time.perf_counter() - t0
        assert len(svc.store.archive_entries()) == slots
        return elapsed
    finally:
        for relay in relays:
            stop_relay(relay)
        for p in procs:
            p.terminate()
            p.wait(timeout=30)


def disk_floor(slots: int, mb: float, tmp: str) -> float:
    """cp + sync of ``slots`` files of ``mb`` MiB, then each copy read cold (seconds)."""
    from offload_throughput import shell, write_footage

    src, dst = os.path.join(tmp, "floor-src"), os.path.join(tmp, "floor-dst")
    os.makedirs(src)
    os.makedirs(dst)
    for i in range(slots):
        write_footage(os.path.join(src, f"{i}.mp4"), mb)
    took = shell(f"cp {src}/* {dst}/ && sync") + shell(f"cat {dst}/* > /dev/null")
    shutil.rmtree(src)
    shutil.rmtree(dst)
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--mb", type=float, default=32)
    ap.add_argument("--throttle", type=float, default=0.0, metavar="MBPS",
                    help="also each recorder's link paced to MBPS (35: USB 2.0)")  # fmt: skip
    ap.add_argument("--link-buffer", type=int, default=BUFFER_KIB, metavar="KIB",
                    help="with --throttle: relay socket buffers (0: the kernel's)")  # fmt: skip
    ap.add_argument("--no-volume", action="store_true", help="leave out the mass-storage rows")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-slots-", dir=os.environ.get("BENCH_DIR"))
    modes = [] if a.no_volume else [(True, 0.0)]
    modes.append((False, 0.0))
    if a.throttle:
        modes.append((False, a.throttle))
    try:
        for volume, throttle in modes:
            one = run(a.slots, a.mb, 1, tmp, volume, throttle, a.link_buffer)
            many = run(a.slots, a.mb, a.slots, tmp, volume, throttle, a.link_buffer)
            floor = disk_floor(a.slots, a.mb, tmp) if not throttle else 0.0
            how = "mass-storage volume" if volume else "wire protocol (TCP, loopback)"
            if throttle:
                how = f"wire protocol, each link paced to {throttle:g} MB/s"
                size = f"{a.link_buffer} KiB" if a.link_buffer else "the kernel's"
                how += f" (relay socket buffers {size})"
            print(f"{a.slots} x {a.mb:g} MiB via {how}: one at a time {one:6.2f} s, "
                  f"{a.slots} at once {many:6.2f} s, speed-up {one / many:4.2f}x")  # fmt: skip
            if floor:
                print(f"  the disk floor (cp + sync, then read back cold): {floor:6.2f} s;"
                      f" {a.slots} at once vs the floor: {many / floor:4.2f}x")  # fmt: skip
            if throttle:  # what the links alone allow: one file's time on one cable
                link = a.mb * (1 << 20) / (throttle * 1e6)
                print(f"  the links alone: {a.slots * link:6.2f} s one at a time, {link:6.2f} s "
                      f"at once (speed-up {a.slots}x); at once vs the links: "
                      f"{link / many:4.2f}")  # fmt: skip
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp, exist_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
