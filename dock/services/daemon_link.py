"""The client of the dock daemon's local control interface (docs/CONTROL.md).

One Unix-socket connection per request: connect with a timeout, send one JSON line,
read progress lines and then one reply line, each bounded in length. The daemon owns
the recorders; a front end (``dock checkout``, the web process) asks it, and needs
neither the USB devices nor the signing key. With no daemon listening the caller is
told so (:class:`DaemonUnavailable`) before anything was sent, so it may do the work
itself; any failure after the request was sent is a :class:`DaemonError`, never a
reason to do it again locally (the daemon may have done it).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

#: The socket's name in the state directory.
SOCKET_NAME = "control.sock"
#: Longest line either side sends or accepts, newline included.
MAX_LINE_BYTES = 64 * 1024
#: Seconds to connect: a listening daemon accepts at once.
CONNECT_TIMEOUT_S = 2.0
#: Seconds to wait for the next line of the reply: a check-out may wait for a sweep in
#: progress and then sweep every slot itself; an offload sends progress as it copies.
REPLY_TIMEOUT_S = 120.0
#: What ``sun_path`` holds on Linux, terminating NUL included.
_SUN_PATH_MAX = 108

#: ``on_progress(progress)`` for each progress line of a long request (an offload).
OnProgress = Callable[[dict[str, Any]], None]

_ids = itertools.count(1)


def control_socket_path(state_dir: str) -> str:
    """Where the daemon of the dock whose state is in ``state_dir`` listens."""
    return os.path.join(state_dir, SOCKET_NAME)


class DaemonUnavailable(Exception):
    """No daemon listens on the socket (missing, refused, a stale file): nothing was
    sent, so the caller may do the work itself."""


class DaemonError(Exception):
    """The daemon answered with an error, or the exchange failed after the request was
    sent: ``code`` as in docs/CONTROL.md, ``message`` one line to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@contextlib.contextmanager
def reachable_path(path: str) -> Iterator[str]:
    """``path`` as bind/connect can take it: a path longer than ``sun_path`` is reached
    through ``/proc/self/fd`` of its directory (test and state directories can be deep)."""
    if len(os.fsencode(path)) < _SUN_PATH_MAX:
        yield path
        return
    folder, name = os.path.split(path)
    fd = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        short = f"/proc/self/fd/{fd}/{name}"
        if len(os.fsencode(short)) >= _SUN_PATH_MAX:
            raise DaemonUnavailable(f"socket name too long: {name!r}")
        yield short
    finally:
        os.close(fd)


def connect(path: str, timeout: float = CONNECT_TIMEOUT_S) -> socket.socket:
    """A connected socket, or DaemonUnavailable when nothing listens at ``path``. A
    daemon whose queue of waiting connections is full is tried again until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            with reachable_path(path) as where:
                sock.connect(where)
            return sock
        except BlockingIOError:
            sock.close()
            if time.monotonic() >= deadline:
                raise DaemonError(
                    "timeout", f"the dock daemon at {path} is too busy to accept"
                ) from None
            time.sleep(0.02)
        except PermissionError as exc:
            sock.close()
            raise DaemonError(
                "forbidden",
                f"may not use the dock daemon's socket {path}: {exc.strerror} "
                "(only the dock's user and group may)",
            ) from None
        except TimeoutError:
            sock.close()
            raise DaemonError("timeout", f"the dock daemon at {path} does not accept") from None
        except OSError as exc:
            sock.close()
            # Missing, refused (a stale file: nothing listens), not a socket.
            raise DaemonUnavailable(f"no dock daemon at {path} ({exc.strerror or exc})") from None


def encode(message: dict[str, Any]) -> bytes:
    """One JSON line; ValueError when longer than MAX_LINE_BYTES."""
    line = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    if len(line) > MAX_LINE_BYTES:
        raise ValueError(f"request of {len(line)} bytes: at most {MAX_LINE_BYTES}")
    return line


class LineReader:
    """Lines from a socket, each at most ``limit`` bytes, each within ``timeout`` s."""

    def __init__(self, sock: socket.socket, limit: int = MAX_LINE_BYTES) -> None:
        self.sock = sock
        self.limit = limit
        self.buffer = b""

    def line(self, timeout: float) -> bytes | None:
        """The next line without its newline; None at end of stream (a partial line at
        the end counts as none); ValueError when too long, TimeoutError when too slow."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            if len(self.buffer) >= self.limit:
                raise ValueError(f"line longer than {self.limit} bytes")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete line in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(min(65536, self.limit + 1 - len(self.buffer)))
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        if len(line) + 1 > self.limit:
            raise ValueError(f"line longer than {self.limit} bytes")
        return line


class DaemonLink:
    """Requests to the daemon listening at ``path`` (see the module docstring)."""

    def __init__(
        self,
        path: str,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        reply_timeout: float = REPLY_TIMEOUT_S,
    ) -> None:
        self.path = path
        self.connect_timeout = connect_timeout
        self.reply_timeout = reply_timeout

    def request(
        self,
        name: str,
        args: dict[str, Any] | None = None,
        on_progress: OnProgress | None = None,
    ) -> dict[str, Any]:
        """The result of request ``name``; DaemonUnavailable before anything was sent,
        DaemonError for an error reply or a failure after sending."""
        request_id = next(_ids)
        line = encode({"id": request_id, "request": name, "args": args or {}})
        sock = connect(self.path, self.connect_timeout)
        try:
            try:
                sock.settimeout(self.reply_timeout)
                sock.sendall(line)
            except OSError as exc:
                raise DaemonError("link_failed", f"sending to the dock daemon: {exc}") from None
            return self._reply(LineReader(sock), request_id, on_progress)
        finally:
            sock.close()

    def _reply(
        self, reader: LineReader, request_id: int, on_progress: OnProgress | None
    ) -> dict[str, Any]:
        while True:
            try:
                raw = reader.line(self.reply_timeout)
            except TimeoutError:
                raise DaemonError(
                    "timeout", f"the dock daemon did not answer within {self.reply_timeout:g} s"
                ) from None
            except ValueError as exc:
                raise DaemonError("bad_reply", f"from the dock daemon: {exc}") from None
            except OSError as exc:
                raise DaemonError("link_failed", f"reading from the dock daemon: {exc}") from None
            if raw is None:
                raise DaemonError("link_failed", "the dock daemon closed the connection")
            reply = _parse_reply(raw, request_id)
            if "progress" in reply:
                if on_progress is not None and isinstance(reply["progress"], dict):
                    on_progress(reply["progress"])
                continue
            if reply.get("ok") is True and isinstance(reply.get("result"), dict):
                return reply["result"]
            error = reply.get("error")
            if isinstance(error, dict):
                code, message = error.get("code"), error.get("message")
                if isinstance(code, str) and isinstance(message, str):
                    raise DaemonError(code, message)
            raise DaemonError("bad_reply", "the dock daemon's reply has no result nor error")


def _parse_reply(raw: bytes, request_id: int) -> dict[str, Any]:
    try:
        reply = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise DaemonError("bad_reply", "the dock daemon's reply is not JSON") from None
    if not isinstance(reply, dict) or reply.get("id") != request_id:
        raise DaemonError("bad_reply", "the dock daemon's reply is not for this request")
    return reply
