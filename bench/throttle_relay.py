"""A TCP relay that paces each direction to a link's rate (a USB 2.0 cable: ~35 MB/s).

Benches put it between the dock and an emulated recorder so that the cable, not
loopback, limits how fast footage arrives, whatever the protocol does on top. Each
connection accepted is relayed to the upstream recorder; each direction is paced on
its own (a token bucket of one chunk: no burst after a pause). The relay's socket
buffers are kept small (``--buffer``, 128 KiB), as a USB link holds little in flight:
with the kernel's default buffers (``--buffer 0``) megabytes may queue in the relay and
a frame waits there for tens of milliseconds or more, a link no real cable is. One
process per recorder, as each recorder has its own cable:

    .venv/bin/python bench/throttle_relay.py tcp://127.0.0.1:PORT --mbps 35 [--buffer 128]
    # prints tcp://127.0.0.1:OTHERPORT, relays until stdin closes or it is terminated
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time

CHUNK = 64 * 1024
#: KiB each of the relay's sockets may hold (receive and send buffers; 0: the kernel's).
BUFFER_KIB = 128


def pump(src: socket.socket, dst: socket.socket, rate: float) -> None:
    """Copy src to dst at most ``rate`` bytes/s until src ends; then half-close dst."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    due = time.monotonic()
    try:
        while True:
            n = src.recv_into(buf)
            if n == 0:
                break
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            due = max(due, now) + n / rate
            dst.sendall(view[:n])
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def relay(conn: socket.socket, upstream: tuple[str, int], rate: float, buffer: int) -> None:
    up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    for s in (conn, up):
        if buffer:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        up.settimeout(10)
        up.connect(upstream)
    except OSError:
        conn.close()
        up.close()
        return
    up.settimeout(None)
    back = threading.Thread(target=pump, args=(up, conn, rate), daemon=True)
    back.start()
    pump(conn, up, rate)
    back.join(timeout=3600)
    conn.close()
    up.close()


def serve(upstream_url: str, mbps: float, buffer_kib: int = BUFFER_KIB) -> None:
    host, port = upstream_url.removeprefix("tcp://").rsplit(":", 1)
    buffer = buffer_kib * 1024
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if buffer:  # before listen: the window the dock's side is offered
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    print(f"tcp://127.0.0.1:{srv.getsockname()[1]}", flush=True)

    def accept() -> None:
        while True:
            conn, _ = srv.accept()
            args = (conn, (host, int(port)), mbps * 1e6, buffer)
            threading.Thread(target=relay, args=args, daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()  # the bench closes our stdin (or terminates us) when done


def start(
    upstream_url: str, mbps: float, buffer_kib: int = BUFFER_KIB
) -> tuple[subprocess.Popen[str], str]:
    """Start a relay process in front of ``upstream_url``: (process, its URL)."""
    p = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), upstream_url, "--mbps", str(mbps),
         "--buffer", str(buffer_kib)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert p.stdout is not None
    return p, p.stdout.readline().strip()


def stop(p: subprocess.Popen[str]) -> None:
    if p.stdin is not None:
        p.stdin.close()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("upstream", help="tcp://HOST:PORT of the recorder")
    ap.add_argument("--mbps", type=float, default=35.0, help="MB/s (10^6 bytes) each way")
    ap.add_argument(
        "--buffer", type=int, default=BUFFER_KIB, help="KiB per socket buffer (0: kernel's)"
    )
    a = ap.parse_args()
    serve(a.upstream, a.mbps, a.buffer)


if __name__ == "__main__":
    main()
