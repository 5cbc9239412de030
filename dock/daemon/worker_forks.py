"""The dock's end of the offload workers' fork server (``offload_worker.serve_forks``).

A fresh interpreter per worker costs ~20 MB resident each, nearly all of it the same
imported code. So the dock starts one small single-threaded process once (it imports
only a worker's modules) and asks it for each worker: it forks, and the workers share
its pages (each one's own memory is what it changes). The dock itself never forks
(it is multithreaded); the server is started like any worker (``worker_command``).

Each worker is handed its input and output as two pipe ends over a Unix SOCK_SEQPACKET
socket (SCM_RIGHTS); what the dock holds of it (:class:`ForkedWorker`) behaves as the
``subprocess.Popen`` it replaces: ``stdin``, ``stdout``, ``poll``, ``wait``, ``kill``,
the exit code told by the server, which reaps it. Everything dies with the dock: the
server by PR_SET_PDEATHSIG (started from the dock's one long-lived spawning thread) and
its socket closing, each worker by PR_SET_PDEATHSIG on the server and its input closing.
"""

from __future__ import annotations

import array
import collections
import contextlib
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import IO

#: Seconds the server has to answer a fork.
FORK_TIMEOUT_S = 30.0
#: Exit codes kept for workers not yet waited on, at most.
CODES_KEPT = 4096


class ForkServer:
    """One fork server process, started on first use (:meth:`start`), and the workers it
    forked for the dock."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.command = list(command)
        self.env = dict(env) if env is not None else None  # None: the dock's own
        self.proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._cond = threading.Condition()
        self._forked: collections.deque[int] = collections.deque()  # pids, or -1: refused
        self._codes: dict[int, int] = {}
        self._asking = threading.Lock()  # one fork request at a time
        self._alive = False

    @property
    def alive(self) -> bool:
        return self._alive

    def start(self) -> None:
        """Start the server (from the thread its PR_SET_PDEATHSIG is tied to: it must live
        as long as the dock). OSError when it cannot be started."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = subprocess.Popen(
                self.command,
                stdin=theirs.fileno(),
                stdout=subprocess.DEVNULL,
                close_fds=True,
                env=self.env,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        with self._cond:
            self.proc, self._sock, self._alive = proc, ours, True
            self._forked.clear()
        threading.Thread(target=self._hear, args=(ours,), name="offload-forks", daemon=True).start()

    def close(self) -> None:
        """End the server (its socket closed: it exits, and its workers with it)."""
        with self._cond:
            sock, proc, self._sock = self._sock, self.proc, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def fork(self) -> ForkedWorker:
        """A new worker, forked by the server (OSError when it cannot be)."""
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            with self._asking:
                sock = self._sock
                if sock is None or not self._alive:
                    raise OSError("the offload workers' fork server is not running")
                fds = array.array("i", [in_r, out_w])
                sock.sendmsg([b"F"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
                pid = self._answer()
        except BaseException:
            for fd in (in_w, out_r):
                os.close(fd)
            raise
        finally:
            os.close(in_r)
            os.close(out_w)
        return ForkedWorker(self, pid, os.fdopen(in_w, "wb"), os.fdopen(out_r, "rb"))

    def _answer(self) -> int:
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._forked or not self._alive, timeout=FORK_TIMEOUT_S
            ):
                raise OSError(f"the fork server did not answer within {FORK_TIMEOUT_S:g} s")
            if not self._forked:
                raise OSError("the offload workers' fork server ended")
            pid = self._forked.popleft()
        if pid < 0:
            raise OSError("the fork server refused (too many workers, or a bad request)")
        return pid

    def _hear(self, sock: socket.socket) -> None:
        """The server's messages, until it ends: each fork's pid, each worker's end."""
        for _ in range(1 << 40):
            try:
                msg = sock.recv(64)
            except OSError:
                msg = b""
            if not msg:
                break
            words = msg.split()
            with self._cond:
                if words[0] == b"F" and len(words) == 2 and words[1].isdigit():
                    self._forked.append(int(words[1]))
                elif words[0] == b"X" and len(words) == 3 and words[1].isdigit():
                    self._codes[int(words[1])] = int(words[2])
                    while len(self._codes) > CODES_KEPT:
                        del self._codes[next(iter(self._codes))]
                elif words[0] == b"E":
                    self._forked.append(-1)
                self._cond.notify_all()
        with self._cond:
            if self._sock is sock:
                self._alive = False
            self._cond.notify_all()

    def code(self, pid: int) -> int | None:
        """A worker's exit code if it ended (one the server no longer runs: killed)."""
        with self._cond:
            return self._code(pid)

    def _code(self, pid: int) -> int | None:
        if pid in self._codes:
            return self._codes[pid]
        return None if self._alive else -signal.SIGKILL  # died with the server

    def wait(self, pid: int, timeout: float | None) -> int:
        with self._cond:
            if not self._cond.wait_for(lambda: self._code(pid) is not None, timeout=timeout):
                raise subprocess.TimeoutExpired(f"offload worker {pid}", timeout or 0.0)
            code = self._code(pid)
            assert code is not None
            return code

    def kill(self, pid: int) -> None:
        """SIGKILL to a worker the server has not reaped (never to a reused pid)."""
        with self._cond:
            sock = self._sock if self._code(pid) is None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.send(f"K {pid}".encode())


class ForkedWorker:
    """A worker forked by the server, as much of ``subprocess.Popen`` as the dock uses."""

    def __init__(self, server: ForkServer, pid: int, stdin: IO[bytes], stdout: IO[bytes]):
        self.server, self.pid, self.stdin, self.stdout = server, pid, stdin, stdout

    def poll(self) -> int | None:
        return self.server.code(self.pid)

    def wait(self, timeout: float | None = None) -> int:
        return self.server.wait(self.pid, timeout)

    def kill(self) -> None:
        self.server.kill(self.pid)
