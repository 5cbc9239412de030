"""An offload worker process, and the fork server the dock's workers are forked from.

Started by :class:`dock.daemon.offload_process.ProcessCopier`: forked by
:func:`serve_forks` (one process the dock starts with ``worker_command("serve_forks")``),
or an interpreter of its own (``worker_command()``). Reads a job (the slot's
port URL, the recorder's serial, each recording with its archive folder and name) as one
line on standard input, opens the port, checks that the recorder there is the one
named, and copies every recording (:func:`dock.evidence.bulk_copy.copy_files`), saying
each outcome as one line on standard output and ``end`` when done; then waits for the
dock's next job (one at a time). It writes no database and no audit log: the dock
does, from what it says.

It never outlives the dock: the kernel kills it when its parent dies (PR_SET_PDEATHSIG:
the dock, or the fork server, which dies with the dock the same way), and it kills
itself when its standard input closes. A crash point armed for a test and reached here
kills the dock first, then this process: the dock's kill -9 at that instant.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from dock.daemon.ports import open_transport
from dock.devices.recorder_client import RecorderClient
from dock.evidence.bulk_copy import MAX_JOB, CopyJob, copy_files, decode_line, encode_line
from dock.support import crashpoints

#: Seconds the recorder has to answer the worker's session.
OPEN_TIMEOUT_S = 10.0
#: Jobs one worker serves before it ends (the dock starts another).
JOBS_MAX = 10_000
_PR_SET_PDEATHSIG = 1


def _die_with(dock_pid: int, parent: int | None = None) -> bool:
    """Killed by the kernel when our parent dies (the dock, or the fork server that dies
    with it); False if it has died already."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the closed input still ends it
        pass
    crashpoints.die_with(dock_pid)
    return os.getppid() == (dock_pid if parent is None else parent)


def _read_jobs(fd: int, jobs: queue.Queue[bytes]) -> None:
    """Each job line from the dock, in turn; when the dock closes our input (it ended,
    or gave up on us), stop at once, whatever is under way. Reads the descriptor itself,
    holding no lock of a buffered reader at exit."""
    buf = bytearray()
    with contextlib.suppress(OSError):
        while data := os.read(fd, 65536):
            buf += data
            while (nl := buf.find(b"\n")) >= 0:
                jobs.put(bytes(buf[: nl + 1]))
                del buf[: nl + 1]
            if len(buf) > MAX_JOB:
                break  # not a job the dock sends
    os.kill(os.getpid(), signal.SIGKILL)


def serve(line: bytes, emit: Callable[[dict[str, Any]], None]) -> None:
    """One job: the port opened, the recorder checked, every recording copied; ``end``
    when done, ``fatal`` (one line) when the job could not be done at all."""
    try:
        job = decode_line(line, MAX_JOB)
        jobs = [CopyJob.from_json(j) for j in job["jobs"]]
        client = RecorderClient(open_transport(str(job["url"])))
        try:
            ident = client.open(timeout=OPEN_TIMEOUT_S)
            if ident.serial != job["serial"]:
                emit({"t": "fatal", "text": f"another recorder ({ident.serial[:64]}) answered"})
                return
            copy_files(client, jobs, emit)
        finally:
            client.close()
    except Exception as exc:  # said in one line to the dock, never a traceback
        emit({"t": "fatal", "text": f"{type(exc).__name__}: {exc}".replace("\n", " ")})
        return
    emit({"t": "end"})


def main(argv: list[str] | None = None) -> int:
    """Serve jobs until the dock closes our input (bounded: JOBS_MAX jobs, then exit)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit() or not _die_with(int(args[0])):
        return 2
    return _work()


def _work() -> int:
    """The worker's loop over its standard input and output (jobs in, messages out)."""
    logging.basicConfig(level=logging.WARNING, format="offload worker: %(name)s: %(message)s")
    out = sys.stdout.buffer
    said = threading.Lock()

    def emit(message: dict[str, Any]) -> None:
        with said:
            out.write(encode_line(message))
            out.flush()

    jobs: queue.Queue[bytes] = queue.Queue(maxsize=1)
    threading.Thread(
        target=_read_jobs, args=(sys.stdin.fileno(), jobs), name="jobs", daemon=True
    ).start()
    for _ in range(JOBS_MAX):
        try:
            serve(jobs.get(), emit)
        except OSError:  # our output is gone: the dock is
            return 1
    return 0


def serve_forks(argv: list[str]) -> None:
    """The fork server: ``argv`` is the dock's pid; its standard input a Unix
    SOCK_SEQPACKET socket to the dock. Started once, single-threaded, having imported
    only what a worker needs; each request forks one worker, which shares these pages
    with the server and its siblings (a worker's own memory is what it changes).

    Requests (one datagram each): ``F`` with two descriptors (the worker's input and
    output) forks a worker on them, answered ``F <pid>``; ``K <pid>`` kills a worker of
    ours not yet reaped. Each worker's end is said as ``X <pid> <code>`` (the code as
    subprocess gives it: negative for a signal). Anything else is answered ``E``. When the
    dock closes the socket the server exits, and its workers die with it
    (PR_SET_PDEATHSIG); it dies with the dock the same way."""
    if len(argv) != 1 or not argv[0].isdigit() or not _die_with(int(argv[0])):
        os._exit(2)
    dock_pid = int(argv[0])
    import gc
    import selectors
    import socket

    from dock.daemon import ports

    ports.preload()  # shared by every worker, not imported by each
    sock = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    gc.freeze()  # what the server holds stays out of the workers' collections (shared)
    live: set[int] = set()
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    with contextlib.suppress(OSError):  # the dock's end gone: so is the dock, or it closed us
        _serve_forks(sock, sel, live, (wake_r, wake_w), dock_pid)
    os._exit(0)


def _serve_forks(sock: Any, sel: Any, live: set[int], wake: tuple[int, int], dock_pid: int) -> None:
    import socket

    wake_r = wake[0]
    server = os.getpid()
    for _ in range(1 << 40):  # ends when the dock closes the socket (or dies)
        ready = {key.fd for key, _ in sel.select()}
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
        for _reap in range(len(live)):
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            live.discard(pid)
            sock.send(f"X {pid} {os.waitstatus_to_exitcode(status)}".encode())
        if sock.fileno() not in ready:
            continue
        msg, anc, _flags, _addr = sock.recvmsg(64, socket.CMSG_SPACE(2 * 4))
        fds = _descriptors(anc)
        if not msg:
            os._exit(0)  # the dock closed its end: our workers die with us
        if msg == b"F" and len(fds) == 2 and len(live) < FORKS_MAX:
            pid = os.fork()
            if pid == 0:
                sel.close()
                _forked(sock, fds, wake, dock_pid, server)
            live.add(pid)
            sock.send(f"F {pid}".encode())
        elif msg[:2] == b"K " and msg[2:].isdigit():  # never answered
            if int(msg[2:]) in live:  # not reaped: its pid is not anyone else's
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(msg[2:]), signal.SIGKILL)
        else:
            sock.send(b"E")
        for fd in fds:
            os.close(fd)


#: Workers one fork server runs at once, at most (the dock runs a few).
FORKS_MAX = 64


def _descriptors(anc: list[tuple[int, int, bytes]]) -> list[int]:
    """The descriptors passed with a request (SCM_RIGHTS)."""
    import socket

    fds: list[int] = []
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds.extend(int.from_bytes(data[i : i + 4], sys.byteorder) for i in range(0, usable, 4))
    return fds


def _forked(sock: Any, fds: list[int], wake: tuple[int, int], dock_pid: int, server: int) -> None:
    """A worker just forked by the server: its input and output on 0 and 1, nothing of
    the server's kept open; never returns."""
    code = 2
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in wake:
            os.close(fd)
        sock.close()
        os.dup2(fds[0], 0)
        os.dup2(fds[1], 1)
        for fd in fds:
            os.close(fd)
        if _die_with(dock_pid, parent=server):
            code = _work()
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def run(argv: list[str] | None = None) -> None:
    """The worker's process from start to end (what :func:`worker_command` runs)."""
    code = main(argv)
    sys.stderr.flush()
    os._exit(code)  # every message is flushed; no teardown under a reading thread


if __name__ == "__main__":
    run()
