"""Byte transports to a recorder: any pyserial URL, plain TCP.

Each satisfies the dock's ``Transport`` protocol: ``read(max, timeout)`` returns
b"" on a quiet line and raises ``ConnectionError`` (the dock's TransportClosed is
one) when the link is gone. Where the link allows, they also read into a buffer
the caller reuses (``read_into``) and write a frame's pieces in one gathering
write (``write_parts``), so no frame costs an allocation or a copy to join it.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
from collections.abc import Sequence
from urllib.parse import urlparse

import serial

from hardware.port_guard import PortRefused, check_recorder_port

#: pyserial URL schemes a configured port may use: none opens a local device by a
#: pattern (``hwgrep://`` would open whatever port matches).
GUARDED_SCHEMES = ("socket", "rfc2217", "loop")
#: Pieces per gathering write (Linux takes up to IOV_MAX = 1024).
IOV_BATCH = 512
#: Socket buffer asked for on a TCP link (the kernel caps it at net.core.rmem_max).
SOCKET_BUFFER = 4 << 20


class LinkClosed(ConnectionError):
    """The other end went away."""


class SerialTransport:
    """A recorder on a serial device or any pyserial URL (socket://, loop://, ...)."""

    #: pyserial URL handlers without a file descriptor are polled at this interval.
    POLL_S = 0.005

    def __init__(self, url: str, baudrate: int = 115200, explicit: bool = False) -> None:
        """``explicit``: a person named this port by hand (``dock probe``); otherwise a
        device path must be a recorder's (hardware/port_guard.py) before it is opened."""
        if not explicit:
            _check_configured(url)
        try:
            self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=self.POLL_S)
        except (serial.SerialException, ValueError) as exc:
            raise LinkClosed(f"cannot open {url}: {exc}") from exc
        self.url = url
        self._fd: int | None = None
        with contextlib.suppress(AttributeError, OSError, ValueError):
            self._fd = self.port.fileno()

    def read(self, max_bytes: int, timeout: float) -> bytes:
        try:
            if self._fd is not None:
                ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
                if not ready:
                    return b""
                waiting = self.port.in_waiting
                if waiting == 0:
                    raise LinkClosed(f"{self.url}: device disconnected")
                return self.port.read(min(max_bytes, waiting))
            data = self.port.read(1)
            waiting = self.port.in_waiting
            if waiting:
                data += self.port.read(min(max_bytes - len(data), waiting))
            return data
        except (serial.SerialException, OSError) as exc:
            raise LinkClosed(f"{self.url}: {exc}") from exc

    def read_into(self, buf: memoryview, timeout: float) -> int:
        """``read`` into ``buf``; returns the count (0 on a quiet line)."""
        if self._fd is None:  # a URL handler without a descriptor: read, then copy
            data = self.read(len(buf), timeout)
            buf[: len(data)] = data
            return len(data)
        try:
            ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
            if not ready:
                return 0
            n = os.readv(self._fd, [buf])
        except BlockingIOError:
            return 0
        except (serial.SerialException, OSError) as exc:
            raise LinkClosed(f"{self.url}: {exc}") from exc
        if n == 0:
            raise LinkClosed(f"{self.url}: device disconnected")
        return n

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise LinkClosed(f"{self.url}: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.port.close()


def _check_configured(url: str) -> None:
    """PortRefused unless ``url`` is a recorder's device or a network/loop URL;
    LinkClosed when the device is not there (nothing docked)."""
    scheme, sep, _ = url.partition("://")
    if sep:
        if scheme.lower() not in GUARDED_SCHEMES:
            raise PortRefused(f"port {url} refused: {scheme}:// is not a recorder's link")
        return
    try:
        check_recorder_port(url)
    except PortRefused:
        raise
    except OSError as exc:  # nothing there: never let pyserial open what appears next
        raise LinkClosed(f"cannot open {url}: {exc.strerror or exc}") from exc


class TcpTransport:
    """A recorder (or an emulator) reached over TCP, ``tcp://HOST:PORT``."""

    #: The socket's timeout as last set (None: not set by us yet); subclasses that make
    #: their own socket (an emulated link) start from here too.
    _timeout: float | None = None

    def __init__(self, url: str, connect_timeout: float = 3.0) -> None:
        parsed = urlparse(url)
        if not parsed.hostname or not parsed.port:
            raise ValueError(f"expected tcp://HOST:PORT, got {url!r}")
        try:
            self.sock = socket.create_connection((parsed.hostname, parsed.port), connect_timeout)
        except OSError as exc:
            raise LinkClosed(f"cannot connect to {url}: {exc}") from exc
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Room for a whole session window of the longest frames (16 x 257 KiB): the
        # recorder writes a window at once instead of waking for every few frames.
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        self.url = url
        self._timeout: float | None = None  # the socket's, set only when it changes

    def _set_timeout(self, timeout: float) -> None:
        if timeout != self._timeout:
            self.sock.settimeout(timeout)
            self._timeout = timeout

    def read(self, max_bytes: int, timeout: float) -> bytes:
        self._set_timeout(max(timeout, 0.0))
        try:
            data = self.sock.recv(max_bytes)
        except (TimeoutError, BlockingIOError):
            return b""
        except OSError as exc:
            raise LinkClosed(f"{self.url}: {exc}") from exc
        if not data:
            raise LinkClosed(f"{self.url}: peer closed the connection")
        return data

    def read_into(self, buf: memoryview, timeout: float) -> int:
        """``read`` into ``buf`` (``recv_into``); returns the count (0 on a quiet line)."""
        if timeout != self._timeout:  # the common case, reads back to back: no call
            self._set_timeout(max(timeout, 0.0))
        try:
            n = self.sock.recv_into(buf)
        except (TimeoutError, BlockingIOError):
            return 0
        except OSError as exc:
            raise LinkClosed(f"{self.url}: {exc}") from exc
        if not n:
            raise LinkClosed(f"{self.url}: peer closed the connection")
        return n

    def write(self, data: bytes) -> None:
        self._set_timeout(10.0)
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise LinkClosed(f"{self.url}: {exc}") from exc

    def write_parts(self, parts: Sequence[bytes | memoryview]) -> None:
        """``write`` of the pieces back to back, with ``sendmsg`` (no join)."""
        self._set_timeout(10.0)
        views = [memoryview(p) for p in parts if len(p)]
        try:
            while views:
                n = self.sock.sendmsg(views[:IOV_BATCH])
                while n and views:
                    if n >= len(views[0]):
                        n -= len(views.pop(0))
                    else:
                        views[0], n = views[0][n:], 0
        except OSError as exc:
            raise LinkClosed(f"{self.url}: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
