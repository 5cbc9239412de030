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

``--shared``: every connection shares one budget per direction, as connections over one
network link do (a dock's link to its unit: several SSH sessions, one cable); without it
each connection has its own (each recorder its own cable).
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


class Pacer:
    """One direction's budget: each chunk waits until the link has carried the ones
    before it (shared by every connection when the link is shared)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.due = time.monotonic()
        self.lock = threading.Lock()

    def wait(self, n: int) -> None:
        with self.lock:
            now = time.monotonic()
            start = max(self.due, now)
            self.due = start + n / self.rate
        if start > now:
            time.sleep(start - now)


def pump(src: socket.socket, dst: socket.socket, pacer: Pacer) -> None:
    """Copy src to dst at the pacer's rate until src ends; then half-close dst."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    try:
        while True:
            n = src.recv_into(buf)
            if n == 0:
                break
            pacer.wait(n)
            dst.sendall(view[:n])
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def relay(
    conn: socket.socket,
    upstream: tuple[str, int],
    rate: float,
    buffer: int,
    shared: tuple[Pacer, Pacer] | None = None,
) -> None:
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
    to_up, to_conn = shared if shared is not None else (Pacer(rate), Pacer(rate))
    back = threading.Thread(target=pump, args=(up, conn, to_conn), daemon=True)
    back.start()
    pump(conn, up, to_up)
    back.join(timeout=3600)
    conn.close()
    up.close()


def serve(
    upstream_url: str, mbps: float, buffer_kib: int = BUFFER_KIB, shared: bool = False
) -> None:
    host, port = upstream_url.removeprefix("tcp://").rsplit(":", 1)
    buffer = buffer_kib * 1024
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if buffer:  # before listen: the window the dock's side is offered
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    print(f"tcp://127.0.0.1:{srv.getsockname()[1]}", flush=True)

    link = (Pacer(mbps * 1e6), Pacer(mbps * 1e6)) if shared else None

    def accept() -> None:
        while True:
            conn, _ = srv.accept()
            args = (conn, (host, int(port)), mbps * 1e6, buffer, link)
            threading.Thread(target=relay, args=args, daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()  # the bench closes our stdin (or terminates us) when done


def start(
    upstream_url: str, mbps: float, buffer_kib: int = BUFFER_KIB, shared: bool = False
) -> tuple[subprocess.Popen[str], str]:
    """Start a relay process in front of ``upstream_url``: (process, its URL)."""
    p = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), upstream_url, "--mbps", str(mbps),
         "--buffer", str(buffer_kib), *(["--shared"] if shared else [])],
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
    ap.add_argument("--shared", action="store_true", help="one budget per direction for all")
    a = ap.parse_args()
    serve(a.upstream, a.mbps, a.buffer, a.shared)


if __name__ == "__main__":
    main()
