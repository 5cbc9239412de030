"""The daemon's local control interface: one owner of the recorders (docs/CONTROL.md).

``dock run`` serves a Unix stream socket, ``<state_dir>/control.sock``; front ends (the
``dock`` commands that touch recorders, later the web process) send it one JSON line
and read one reply, so only the daemon opens recorders and holds the signing key.

Access control is the file's permissions: the socket is mode 0660, owned by the
daemon's user and group, so the dock's user and the members of its group may connect
and nobody else (reaching it also needs search permission on the state directory).
Credentials (PINs) travel only over this socket and are never logged; the log names
each request, who sent it (the peer's uid and pid) and how it ended.

Every client is treated as hostile: lines are bounded (64 KiB), so are the connections
served at once and the time a request may take to arrive; bad JSON, an unknown request
or a wrong type gets an error reply, and nothing a client sends stops the daemon.
What each request does is in :mod:`.control_handlers`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import stat
import struct
import threading
from collections.abc import Callable, Mapping
from typing import IO, Any

from dock.services.daemon_link import (
    MAX_LINE_BYTES,
    DaemonError,
    DaemonUnavailable,
    LineReader,
    connect,
    control_socket_path,
    encode,
    reachable_path,
)

log = logging.getLogger("dock.daemon.control")

#: Connections served at once; more are answered ``busy`` and closed.
MAX_CONNECTIONS = 16
#: Connections waiting to be accepted (the accept loop takes them at once; more wait
#: in the kernel than are served, so a crowd is answered ``busy``, not left hanging).
LISTEN_BACKLOG = 128
#: Seconds a client has to send its whole request line.
IDLE_TIMEOUT_S = 10.0
#: Seconds a reply (or progress) line may take to be taken by the client; a client
#: that stops reading is dropped, the work it asked for goes on.
SEND_TIMEOUT_S = 5.0
#: Longest error message sent (characters).
MESSAGE_LIMIT = 2000

#: ``progress(data)`` sends a progress line for the request being served.
SendProgress = Callable[[dict[str, Any]], None]
#: A request's handler: its arguments and a progress sender -> its result.
Handler = Callable[[dict[str, Any], SendProgress], dict[str, Any]]


class RequestFailed(Exception):
    """A handler's refusal or failure, sent as ``{"ok": false, "error": ...}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ControlUnavailable(Exception):
    """The control socket cannot be served (another daemon runs for this state
    directory, or something that is not a socket is in its place): one line to show."""


def _one_line(text: object) -> str:
    words = " ".join(str(text).split())
    return words[:MESSAGE_LIMIT]


def _peer(conn: socket.socket) -> str:
    """``uid=U pid=P`` of the connected process, for the log."""
    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", raw)
    except OSError:
        return "uid=? pid=?"
    return f"uid={uid} pid={pid}"


class ControlServer:
    """Serves ``handlers`` on the Unix socket ``path``; see the module docstring."""

    def __init__(
        self,
        path: str,
        handlers: Mapping[str, Handler],
        group: int | None = None,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_line: int = MAX_LINE_BYTES,
    ) -> None:
        self.path = path
        self.handlers = dict(handlers)
        self.group = os.getegid() if group is None else group
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self.max_line = max_line
        self._listener: socket.socket | None = None
        self._lock_file: IO[str] | None = None
        self._inode: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._accepting: threading.Thread | None = None
        self._guard = threading.Lock()
        self._serving: set[threading.Thread] = set()

    # ------------------------------------------------------------------ life
    def claim(self) -> ControlServer:
        """Make this the one daemon of its state directory, before it touches anything
        (ControlUnavailable, one line, when another daemon has it). Idempotent."""
        if self._lock_file is None:
            try:
                os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
            except OSError as exc:
                raise ControlUnavailable(f"cannot create {self.path}: {exc.strerror}") from None
            self._claim()
        return self

    def start(self, handlers: Mapping[str, Handler] | None = None) -> ControlServer:
        """Claim the socket if not yet done, listen, and serve ``handlers`` (else those
        given at construction) in a thread."""
        if handlers is not None:
            self.handlers = dict(handlers)
        self.claim()
        try:
            self._listen()
        except OSError as exc:
            self._release()
            raise ControlUnavailable(f"cannot listen on {self.path}: {exc.strerror}") from None
        except BaseException:
            self._release()
            raise
        self._accepting = threading.Thread(target=self._accept_loop, name="control", daemon=True)
        self._accepting.start()
        log.info("control interface listening on %s", self.path)
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Stop accepting, let requests being served finish (bounded: an offload asked
        for here ends as the daemon's own would), remove the socket."""
        self._stop.set()
        if self._accepting is not None:
            self._accepting.join(timeout=5.0)
        with self._guard:
            serving = list(self._serving)
        for thread in serving:
            thread.join(timeout=timeout)
        if self._listener is not None:
            self._listener.close()
        with contextlib.suppress(OSError):
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._inode:  # ours, not a later daemon's
                os.unlink(self.path)
        self._release()

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _claim(self) -> None:
        """One daemon per state directory: a lock held for the daemon's life, then a
        socket file left behind by a killed daemon is replaced only if nothing answers."""
        try:
            lock = open(self.path + ".lock", "a")  # noqa: SIM115 - held until stop()
        except OSError as exc:
            raise ControlUnavailable(f"cannot use {self.path}.lock: {exc.strerror}") from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ControlUnavailable(
                f"another dock daemon is already running for {os.path.dirname(self.path)}"
            ) from None
        self._lock_file = lock
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            self._release()
            raise ControlUnavailable(
                f"{self.path} is not a socket: move it away and start the dock again"
            )
        try:
            connect(self.path, timeout=1.0).close()
        except DaemonUnavailable:
            return  # stale: replaced atomically when we listen
        except DaemonError:
            pass
        self._release()
        raise ControlUnavailable(f"another dock daemon is already answering on {self.path}")

    def _listen(self) -> None:
        """Bind under a temporary name, set mode 0660 and the group, listen, and only
        then rename over the final name: never reachable with looser permissions."""
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with reachable_path(tmp) as where:
                listener.bind(where)
            os.chown(tmp, -1, self.group)
            os.chmod(tmp, 0o660)
            listener.listen(LISTEN_BACKLOG)
            listener.settimeout(0.2)  # the accept loop sees stop() within this
            os.replace(tmp, self.path)
        except BaseException:
            listener.close()
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        st = os.stat(self.path)
        self._inode = (st.st_dev, st.st_ino)
        self._listener = listener

    def _release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # ------------------------------------------------------------------ serving
    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stop.is_set():
                    return
                log.warning("control interface: accept failed: %s", exc)
                self._stop.wait(0.1)
                continue
            self._admit(conn)

    def _admit(self, conn: socket.socket) -> None:
        with self._guard:
            full = len(self._serving) >= self.max_connections
            if not full:
                thread = threading.Thread(
                    target=self._serve, args=(conn,), name="control-conn", daemon=True
                )
                self._serving.add(thread)
        if full:
            log.info("control interface: too many connections; one refused")
            self._send(conn, _error(None, "busy", "too many connections: try again"), 0.5)
            conn.close()
            return
        thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._serve_one(conn)
        except Exception:  # nothing a client does stops the daemon
            log.exception("control interface: a connection failed")
        finally:
            conn.close()
            with self._guard:
                self._serving.discard(threading.current_thread())

    def _serve_one(self, conn: socket.socket) -> None:
        reader = LineReader(conn, self.max_line)
        try:
            raw = reader.line(self.idle_timeout_s)
        except TimeoutError:
            self._send(conn, _error(None, "timeout", "no complete request line in time"))
            return
        except ValueError:
            self._send(conn, _error(None, "too_long", f"a line is at most {self.max_line} bytes"))
            return
        except OSError:
            return
        if raw is None:
            return
        try:
            message = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            self._send(conn, _error(None, "bad_json", "the request is not a JSON object"))
            return
        request_id = message.get("id") if isinstance(message, dict) else None
        if not _valid_id(request_id):
            request_id = None
        problem = _malformed(message)
        if problem is not None:
            self._send(conn, _error(request_id, "bad_request", problem))
            return
        name, args = message["request"], message.get("args") or {}
        handler = self.handlers.get(name)
        if handler is None:
            known = ", ".join(sorted(self.handlers))
            self._send(conn, _error(request_id, "unknown_request", f"known requests: {known}"))
            return
        gone = threading.Event()

        def progress(data: dict[str, Any]) -> None:
            if not gone.is_set() and not self._send(conn, {"id": request_id, "progress": data}):
                gone.set()  # the client left: the work goes on without telling it

        peer = _peer(conn)
        try:
            result = handler(args, progress)
        except RequestFailed as exc:
            log.info("control request %s from %s: %s", name, peer, exc.code)
            self._send(conn, _error(request_id, exc.code, exc.message))
            return
        except Exception as exc:
            log.exception("control request %s from %s failed", name, peer)
            self._send(
                conn, _error(request_id, "internal", f"internal error ({type(exc).__name__})")
            )
            return
        log.debug("control request %s from %s: ok", name, peer)  # what it did is logged
        self._send(conn, {"id": request_id, "ok": True, "result": result})

    def _send(
        self, conn: socket.socket, message: dict[str, Any], timeout: float = SEND_TIMEOUT_S
    ) -> bool:
        """Send one line; False when the client is gone or does not read."""
        try:
            line = encode(message)
        except ValueError:
            line = encode(_error(message.get("id"), "internal", "the reply was too long"))
        try:
            conn.settimeout(timeout)
            conn.sendall(line)
        except OSError:
            return False
        return True


def _valid_id(value: object) -> bool:
    return value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool))


def _malformed(message: object) -> str | None:
    """Why a parsed request is not one (None: it is)."""
    if not isinstance(message, dict):
        return "the request is not a JSON object"
    if not _valid_id(message.get("id")):
        return "id must be a string, a number or null"
    if not isinstance(message.get("request"), str):
        return "request must be a string"
    if not isinstance(message.get("args", {}), (dict, type(None))):
        return "args must be an object"
    extra = set(message) - {"id", "request", "args"}
    if extra:
        return f"unknown field(s): {', '.join(sorted(extra))}"
    return None


def _error(request_id: object, code: str, message: str) -> dict[str, Any]:
    return {"id": request_id, "ok": False, "error": {"code": code, "message": _one_line(message)}}


def claim_control(state_dir: str) -> ControlServer:
    """The control socket of the dock whose state is in ``state_dir``, claimed for this
    daemon and not yet served (ControlUnavailable, one line, when another daemon runs);
    ``start(control_handlers.service_handlers(...))`` once the service is built,
    ``stop()`` at the end."""
    return ControlServer(control_socket_path(state_dir), {}).claim()
