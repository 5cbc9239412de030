"""One recording read over the wire protocol through a paced relay (a USB 2.0 cable).

The dock reads one recording from an emulated recorder behind bench/throttle_relay.py;
prints MB/s against the link's rate and the session's retransmission figures on the
dock's side (duplicate frames received: frames the recorder resent that were not lost)
and its RTO at the end. The plain-TCP figure through the same relay is the baseline.

    .venv/bin/python bench/throttled_read.py [--mbps 35] [--mb 64] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from read_throughput import SENDER, drain  # noqa: E402
from throttle_relay import BUFFER_KIB  # noqa: E402
from throttle_relay import start as start_relay  # noqa: E402
from throttle_relay import stop as stop_relay  # noqa: E402

from dock.daemon.composition import open_transport  # noqa: E402
from dock.devices.recorder_client import RecorderClient  # noqa: E402


def plain(path: str, size: int, mbps: float, buffer_kib: int) -> float:
    p = subprocess.Popen([sys.executable, "-c", SENDER, path], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    port = int(p.stdout.readline())
    relay, url = start_relay(f"tcp://127.0.0.1:{port}", mbps, buffer_kib)
    try:
        host, rport = url.removeprefix("tcp://").rsplit(":", 1)
        sock = socket.create_connection((host, int(rport)))
        got, elapsed = drain(sock, size)
        sock.close()
    finally:
        stop_relay(relay)
        p.wait(timeout=30)
    assert got == size, (got, size)
    return size / elapsed


def stack(url: str) -> tuple[float, int, int, int, float]:
    """(bytes/s, frames received, duplicates, retransmits by the dock, dock's RTO)."""
    with RecorderClient(open_transport(url)) as client:
        client.open()
        (rec,) = client.list_recordings()
        session = client.session
        s0 = session.stats
        f0, d0, r0 = s0.frames_received, s0.duplicates, s0.retransmits
        t0 = time.perf_counter()
        client.read_recording(rec, lambda off, data: None)
        elapsed = time.perf_counter() - t0
        s = client.session.stats
        return (
            rec.size / elapsed,
            s.frames_received - f0,
            s.duplicates - d0,
            s.retransmits - r0,
            client.session.rto,
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mbps", type=float, default=35.0)
    ap.add_argument("--mb", type=float, default=64)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--link-buffer", type=int, default=BUFFER_KIB)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        emu = subprocess.Popen(
            [sys.executable, "-m", "hardware.emulator.cli", "--listen", "tcp://127.0.0.1:0",
             "--data-dir", tmp, "--recordings", "1", "--recording-mb", str(a.mb),
             "--log-level", "WARNING"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert emu.stdout is not None
        url = emu.stdout.readline().strip()
        path = os.path.join(tmp, "recordings", "REC000001.mp4")
        size = os.path.getsize(path)
        relay, relayed = start_relay(url, a.mbps, a.link_buffer)
        try:
            for _ in range(a.repeat):  # interleaved with the baseline
                base = plain(path, size, a.mbps, a.link_buffer)
                rate, frames, dups, rexmit, rto = stack(relayed)
                print(
                    f"plain TCP {base / 1e6:6.1f} MB/s  stack {rate / 1e6:6.1f} MB/s "
                    f"({rate / base:.2f})  frames {frames}  duplicates {dups}  "
                    f"dock retransmits {rexmit}  dock RTO {rto * 1000:.0f} ms",
                    flush=True,
                )
        finally:
            stop_relay(relay)
            emu.terminate()
            emu.wait(timeout=10)


if __name__ == "__main__":
    main()
