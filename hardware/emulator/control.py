"""The running emulated fleet's control socket: a wearer's hands, for demos and tests.

``dock run --emulate`` listens on ``<state>/recorders/control.sock`` (mode 0600). One
JSON object per line in, one per line out::

    {"command": "status"}                          -> {"ok": true, "bays": [...]}
    {"command": "undock", "slot": "1"}             -> the recorder is taken out
    {"command": "record", "slot": "1", "seconds": 30}  -> it films, away from the dock
    {"command": "dock", "slot": "1"}               -> it is put back in its bay

Errors are ``{"ok": false, "error": "one line"}``; the fleet keeps running. Lines are
at most MAX_LINE bytes, a connection is served at most MAX_REQUESTS requests and is
dropped after IDLE_S without one; at most MAX_CLIENTS connections at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Mapping
from typing import Any

from hardware.emulator.bays import Bay, BayError
from hardware.emulator.links import bind_link, unlink_link

log = logging.getLogger("recorder.control")

MAX_LINE = 4096
MAX_REQUESTS = 100
MAX_CLIENTS = 8
IDLE_S = 30.0
COMMANDS = ("status", "undock", "record", "dock")


def answer(bays: Mapping[str, Bay], request: object) -> dict[str, Any]:
    """The reply to one decoded request."""
    if not isinstance(request, dict):
        return _error('a request is a JSON object, e.g. {"command": "status"}')
    command = request.get("command")
    if command not in COMMANDS:
        return _error(f"unknown command {_short(command)}: use {', '.join(COMMANDS)}")
    if command == "status":
        return {"ok": True, "bays": [bay.as_dict() for bay in bays.values()]}
    slot = request.get("slot")
    bay = bays.get(slot) if isinstance(slot, str) else None
    if bay is None:
        return _error(f"no slot {_short(slot)}: the slots are {', '.join(bays)}")
    try:
        if command == "undock":
            bay.undock()
        elif command == "dock":
            bay.dock()
        else:
            seconds = request.get("seconds")
            if not isinstance(seconds, int) or isinstance(seconds, bool):
                return _error('record needs whole seconds, e.g. {"seconds": 30}')
            return {"ok": True, **bay.recording_dict(bay.record(seconds))}
    except BayError as exc:
        return _error(str(exc))
    return {"ok": True, **bay.as_dict()}


def _error(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        if not self.server.clients.acquire(blocking=False):
            self._send(_error(f"busy: at most {MAX_CLIENTS} control connections at once"))
            return
        try:
            self.connection.settimeout(IDLE_S)
            for _ in range(MAX_REQUESTS):
                try:
                    line = self.rfile.readline(MAX_LINE + 1)
                except (TimeoutError, OSError):
                    return
                if not line:
                    return
                if len(line) > MAX_LINE:
                    self._send(_error(f"line longer than {MAX_LINE} bytes: connection closed"))
                    return
                self._send(self._one(line))
        finally:
            self.server.clients.release()

    def _one(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return _error("not JSON: send one JSON object per line")
        try:
            with self.server.busy:
                return answer(self.server.bays, request)
        except Exception as exc:  # the fleet outlives any one command's failure
            log.exception("control command failed")
            return _error(f"failed: {type(exc).__name__}: {exc}".replace("\n", " "))

    def _send(self, reply: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            self.wfile.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False  # stop() never waits for an idle client

    def __init__(self, path: str, bays: Mapping[str, Bay]) -> None:
        super().__init__(path, _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = bind_link(path, backlog=MAX_CLIENTS)
        self.bays = bays
        self.busy = threading.Lock()  # one command at a time
        self.clients = threading.BoundedSemaphore(MAX_CLIENTS)


class FleetControl:
    """Serves the control socket at ``path`` for ``bays`` (slot id -> bay)."""

    def __init__(self, bays: Mapping[str, Bay], path: str) -> None:
        self.path = path
        self._server = _Server(path, bays)
        self._inode = os.stat(path).st_ino
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.2,), name="emulator-control", daemon=True
        )

    def start(self) -> FleetControl:
        self._thread.start()
        return self

    def stop(self) -> None:
        """No more commands: the socket is closed and removed."""
        self._server.shutdown()
        self._server.server_close()
        unlink_link(self.path, self._inode)


class ControlError(Exception):
    """The control socket could not be reached or answered nonsense (one line)."""


def ask(path: str, request: Mapping[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Send one request to the fleet at control socket ``path``; its decoded reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            sock.sendall(json.dumps(dict(request)).encode() + b"\n")
            with sock.makefile("rb") as f:
                line = f.readline(MAX_LINE * 16)
        except OSError as exc:
            raise ControlError(
                f"{path}: cannot reach the emulated recorders ({exc.strerror or exc}); "
                "is `dock run --emulate` running?"
            ) from None
    try:
        reply = json.loads(line)
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        raise ControlError(f"{path}: no answer from the emulated recorders")
    return reply
