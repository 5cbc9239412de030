"""Reading one large recording through the whole stack vs a plain socket.

Both run in this machine's loopback with the sender in a separate process, as a
recorder is separate hardware: (1) the baseline, a process that reads the same
file and ``sendall``s it on a plain TCP socket, received with ``recv_into``;
(2) the stack, ``recorder-emulator --listen tcp://...`` serving the file and the
dock's ``RecorderClient.read_recording`` reading it (framing, escaping, CRCs,
session, TLV, pipelined READs). Prints MB/s for each and the ratio, best of N, and
the CPU seconds each side of the stack spends per GiB (dock: this process; recorder:
the emulator process), which a busy machine disturbs far less than MB/s.

    .venv/bin/python bench/read_throughput.py [--mb 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dock.daemon.composition import open_transport  # noqa: E402
from dock.devices.recorder_client import RecorderClient  # noqa: E402

#: Prepended to the recorder's and the plain sender's commands (bench/pi_budget.py:
#: ``taskset -c 1``, the recorder off the dock's core).
RECORDER_PREFIX: list[str] = []

SENDER = r"""
import os, socket, sys
path = sys.argv[1]
srv = socket.create_server(("127.0.0.1", 0))
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
fd = os.open(path, os.O_RDONLY)
off = 0
while True:
    block = os.pread(fd, 256 * 1024, off)
    if not block:
        break
    conn.sendall(block)
    off += len(block)
conn.close()
"""


def drain(sock: socket.socket, size: int) -> tuple[int, float]:
    """Bytes received (up to ``size``, into one reused buffer) and the seconds it took:
    the plain baseline's receiving end."""
    buf = bytearray(256 * 1024)
    got = 0
    t0 = time.perf_counter()
    while got < size:
        n = sock.recv_into(buf)
        if n == 0:
            break
        got += n
    return got, time.perf_counter() - t0


def plain_socket(path: str, size: int) -> float:
    p = subprocess.Popen(
        [*RECORDER_PREFIX, sys.executable, "-c", SENDER, path], stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None
    port = int(p.stdout.readline())
    sock = socket.create_connection(("127.0.0.1", port))
    got, elapsed = drain(sock, size)
    sock.close()
    p.wait(timeout=30)
    assert got == size, (got, size)
    return size / elapsed


def whole_stack(url: str, recorder: psutil.Process) -> tuple[float, float, float]:
    """(bytes/s, dock CPU s per GiB, recorder CPU s per GiB) of one read."""
    with RecorderClient(open_transport(url)) as client:
        client.open()
        (rec,) = client.list_recordings()
        r0, c0 = sum(recorder.cpu_times()[:2]), time.process_time()
        t0 = time.perf_counter()
        client.read_recording(rec, lambda off, data: None)
        elapsed = time.perf_counter() - t0
        dock_cpu = time.process_time() - c0
        recorder_cpu = sum(recorder.cpu_times()[:2]) - r0
    gib = rec.size / (1 << 30)
    return rec.size / elapsed, dock_cpu / gib, recorder_cpu / gib


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        emu = subprocess.Popen(
            [*RECORDER_PREFIX,
             sys.executable, "-m", "hardware.emulator.cli", "--listen", "tcp://127.0.0.1:0",
             "--data-dir", tmp, "--recordings", "1", "--recording-mb", str(a.mb),
             "--log-level", "WARNING"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert emu.stdout is not None
        url = emu.stdout.readline().strip()
        path = os.path.join(tmp, "recordings", "REC000001.mp4")
        size = os.path.getsize(path)
        bases, stacks, dock_cpu, recorder_cpu = [], [], [], []
        recorder = psutil.Process(emu.pid)
        try:
            # Interleaved, so a noisy neighbour hits both sides of each ratio alike.
            for _ in range(a.repeat):
                bases.append(plain_socket(path, size))
                rate, dock_s, recorder_s = whole_stack(url, recorder)
                stacks.append(rate)
                dock_cpu.append(dock_s)
                recorder_cpu.append(recorder_s)
        finally:
            emu.terminate()
            emu.wait(timeout=10)
    mb = 1e6
    ratios = sorted(s / b for s, b in zip(stacks, bases, strict=True))
    median = ratios[len(ratios) // 2]
    print(f"recording           {size / (1 << 20):.0f} MiB, {a.repeat} interleaved runs")
    print(f"plain socket        {max(bases) / mb:8.1f} MB/s best, {min(bases) / mb:.1f} worst")
    print(f"whole stack         {max(stacks) / mb:8.1f} MB/s best, {min(stacks) / mb:.1f} worst")
    print(f"ratio               {median:8.2f}  median of pairs (target >= 0.7)")
    print(f"ratio of bests      {max(stacks) / max(bases):8.2f}")
    print(f"USB 2.0 headroom    {min(stacks) / 35e6:8.1f} x a 35 MB/s link (worst run)")
    print(f"dock CPU            {min(dock_cpu):8.2f} s/GiB best, {max(dock_cpu):.2f} worst")
    print(f"recorder CPU        {min(recorder_cpu):8.2f} s/GiB best, {max(recorder_cpu):.2f} worst")


if __name__ == "__main__":
    main()
