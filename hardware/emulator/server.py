"""Serves one emulated recorder on a new pseudo-terminal, a TCP listener or a named
link (``emulated:PATH``, a Unix socket: hardware/emulator/links.py).

One connection at a time, as a recorder has one cable. The loop is bounded by
the firmware's own deadlines and a wake-up pipe, so ``stop()`` returns promptly.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import selectors
import socket
import threading
import time
import tty
from collections import deque
from urllib.parse import urlparse

from hardware.emulator.link_faults import FaultInjector, LinkFaults
from hardware.emulator.links import LINK_SCHEME, bind_link, unlink_link
from hardware.emulator.recorder import RecorderFirmware
from hardware.transports import SOCKET_BUFFER

log = logging.getLogger("recorder.server")
READ_SIZE = 256 * 1024
#: How often a pty with nobody on the other end is looked at again.
PTY_IDLE_POLL = 0.02
#: Pieces per gathering write (Linux takes up to IOV_MAX = 1024).
_IOV_BATCH = 512


class EmulatorServer:
    def __init__(
        self,
        firmware: RecorderFirmware,
        listen: str | None = None,
        faults: LinkFaults | None = None,
    ) -> None:
        self.firmware = firmware
        self.injector = FaultInjector(faults or LinkFaults())
        self._wake_r, self._wake_w = os.pipe()
        #: Guards every close of this server's descriptors: a number closed twice may by
        #: then belong to another thread's socket (another recorder, a dock), which would
        #: see its connection reset for no reason of its own.
        self._fds = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._pty_peer_seen = False
        self._link: tuple[str, int] | None = None  # a named link: (path, inode)
        if listen is None or listen == "pty":
            self._master, self._slave = os.openpty()
            tty.setraw(self._slave)
            os.set_blocking(self._master, False)
            self.url = os.ttyname(self._slave)
        elif listen.startswith(LINK_SCHEME):  # emulated:PATH, a socket the dock connects to
            path = listen.removeprefix(LINK_SCHEME)
            self._listener = bind_link(path)
            self._link = (path, os.stat(path).st_ino)
            self.url = listen
        else:
            parsed = urlparse(listen)
            if parsed.scheme != "tcp" or not parsed.hostname:
                raise ValueError(f"--listen must be tcp://HOST:PORT, not {listen!r}")
            sock = socket.create_server((parsed.hostname, parsed.port or 0))
            self._listener = sock
            host, port = sock.getsockname()[:2]
            self.url = f"tcp://{host}:{port}"

    # ------------------------------------------------------------------ control
    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(target=self.serve_forever, name="emulator", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the loop to end; safe from a signal handler."""
        self._stopping.set()
        wake = self._wake_w
        if wake is not None:
            with contextlib.suppress(OSError):
                os.write(wake, b"x")

    def stop(self) -> None:
        """End the loop and close everything, once: a second stop closes nothing."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._thread is not None and self._thread.is_alive():
            log.warning("emulator loop did not end; its descriptors are left open")
            return
        with self._fds:
            fds = (self._master, self._slave, self._wake_r, self._wake_w)
            self._master = self._slave = None
            self._wake_r = self._wake_w = None  # type: ignore[assignment]  # closed: never used again
            for fd in fds:
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
        if self._listener is not None:
            self._listener.close()
        if self._link is not None:  # the link disappears with the recorder
            unlink_link(*self._link)

    def _close_slave(self) -> None:
        """Let go of our own hold on the pty's dock end (once, whoever asks first)."""
        with self._fds:
            slave, self._slave = self._slave, None
            if slave is not None:
                os.close(slave)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        if self._master is not None:
            self._serve_fd(self._master, is_socket=False)
            return
        assert self._listener is not None
        self._listener.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                conn, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            log.info("dock connected from %s", peer)
            if conn.family != socket.AF_UNIX:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with contextlib.suppress(OSError):  # a window of frames in one write
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
            conn.setblocking(False)
            try:
                self._serve_fd(conn.fileno(), is_socket=True)
            finally:
                conn.close()
                # The cable is out: nothing of this session may serve the next peer.
                self.firmware.link_lost()

    # ------------------------------------------------------------------ the loop
    def _serve_fd(self, fd: int, is_socket: bool) -> None:
        try:
            self._serve_fd_until_closed(fd, is_socket)
        except (ConnectionResetError, BrokenPipeError):
            log.info("dock connection reset")  # a recorder outlives any dock's crash

    def _serve_fd_until_closed(self, fd: int, is_socket: bool) -> None:
        fw, inj = self.firmware, self.injector
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        out: deque[memoryview] = deque()  # written in order, never joined
        inbox = bytearray(READ_SIZE)  # every read lands here: no allocation per read
        stall_until = 0.0
        writing = False
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                stalled = now < stall_until
                want_write = bool(out) and not stalled
                if want_write != writing:
                    mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0)
                    sel.modify(fd, mask)
                    writing = want_write
                timeout = 1.0
                deadline = fw.next_deadline()
                if deadline is not None:
                    timeout = min(timeout, max(0.0, deadline - now))
                if stalled:
                    timeout = min(timeout, stall_until - now)
                for key, events in sel.select(timeout):
                    if key.fd == self._wake_r:
                        return
                    if events & selectors.EVENT_READ:
                        data: bytes | memoryview | None
                        try:
                            data = memoryview(inbox)[: os.readv(fd, [inbox])]
                        except BlockingIOError:
                            data = None
                        except (ConnectionResetError, BrokenPipeError):
                            data = b""  # the dock went away hard (killed): same as a close
                        except OSError as exc:
                            if exc.errno != errno.EIO:
                                raise
                            # pty: nobody holds the other end (yet, or any more)
                            data = None
                            if self._pty_peer_seen:
                                self._pty_peer_seen = False
                                fw.link_lost()
                            time.sleep(PTY_IDLE_POLL)
                        if data == b"" and is_socket:
                            log.info("dock disconnected")
                            return
                        if data and not is_socket and self._slave is not None:
                            # The dock has the line open: let go of our own hold on it
                            # so that its hang-up shows (as EIO) and ends the session.
                            self._close_slave()
                        if data and not is_socket:
                            self._pty_peer_seen = True
                        if data and not stalled:
                            fw.receive(inj.inbound(data))
                fw.on_timer()
                parts = fw.outgoing_parts()
                if parts and inj.active:  # faults apply to the bytes as one write
                    parts = [inj.outbound(b"".join(parts))]
                out.extend(map(memoryview, filter(len, parts)))
                if out and time.monotonic() >= stall_until:
                    self._write_some(fd, out)
                if inj.take_disconnect():
                    self._drain(fd, out)
                    log.warning("fault injection: disconnecting after %d bytes", inj.bytes_sent)
                    if not is_socket:  # the recorder was pulled out: hang up the line
                        self._stopping.set()
                        with self._fds:
                            if self._master == fd:
                                self._master = None
                                os.close(fd)
                    return
                stall = inj.take_stall()
                if stall:
                    log.warning("fault injection: stalling %.1f s", stall)
                    stall_until = time.monotonic() + stall
        finally:
            sel.close()

    @staticmethod
    def _write_some(fd: int, out: deque[memoryview]) -> None:
        """Write the queued pieces with gathering writes as far as the fd takes them
        now; what is left stays queued as views (nothing is joined or copied)."""
        while out:
            batch = list(itertools.islice(out, _IOV_BATCH))
            try:
                n = os.writev(fd, batch)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EAGAIN):
                    return
                raise
            full = sum(map(len, batch))
            written = n
            while n and out:
                if n >= len(out[0]):
                    n -= len(out.popleft())
                else:
                    out[0], n = out[0][n:], 0
            if written < full:
                return  # the fd took what it could: the rest waits for EVENT_WRITE

    def _drain(self, fd: int, out: deque[memoryview], limit_s: float = 2.0) -> None:
        end = time.monotonic() + limit_s
        while out and time.monotonic() < end:
            self._write_some(fd, out)
            if out:
                time.sleep(0.005)
