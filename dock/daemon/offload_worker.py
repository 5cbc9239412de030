"""An offload worker process, started by the dock (``offload_process.worker_command``).

Started by :class:`dock.daemon.offload_process.ProcessCopier`. Reads a job (the slot's
port URL, the recorder's serial, each recording with its archive folder and name) as one
line on standard input, opens the port, checks that the recorder there is the one
named, and copies every recording (:func:`dock.evidence.bulk_copy.copy_files`), saying
each outcome as one line on standard output and ``end`` when done; then waits for the
dock's next job (one at a time). It writes no database and no audit log: the dock
does, from what it says.

It never outlives the dock: the kernel kills it when the dock dies (PR_SET_PDEATHSIG),
and it kills itself when its standard input closes. A crash point armed for a test and
reached here kills the dock first, then this process: the dock's kill -9 at that instant.
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


def _die_with(dock_pid: int) -> bool:
    """Killed by the kernel when the dock dies; False if it has died already."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the closed input still ends it
        pass
    crashpoints.die_with(dock_pid)
    return os.getppid() == dock_pid


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


def run(argv: list[str] | None = None) -> None:
    """The worker's process from start to end (what :func:`worker_command` runs)."""
    code = main(argv)
    sys.stderr.flush()
    os._exit(code)  # every message is flushed; no teardown under a reading thread


if __name__ == "__main__":
    run()
