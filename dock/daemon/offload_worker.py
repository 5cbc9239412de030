"""The worker process of one offload: ``python -m dock.daemon.offload_worker DOCK_PID``.

Started by :class:`dock.daemon.offload_process.ProcessCopier`. Reads its job (the
slot's port URL, the recorder's serial, each recording with its archive folder and
name) as one line on standard input, opens the port, checks that the recorder there
is the one named, and copies every recording (:func:`dock.evidence.bulk_copy.copy_files`),
saying each outcome as one line on standard output. It writes no database and no audit
log: the dock does, from what it says.

It never outlives the dock: the kernel kills it when the dock dies (PR_SET_PDEATHSIG),
and it kills itself when its standard input closes. A crash point armed for a test and
reached here kills the dock first, then this process: the dock's kill -9 at that instant.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
from typing import Any

from dock.daemon.composition import open_transport
from dock.devices.recorder_client import RecorderClient
from dock.evidence.bulk_copy import MAX_JOB, CopyJob, copy_files, decode_line, encode_line
from dock.support import crashpoints

#: Seconds the recorder has to answer the worker's session.
OPEN_TIMEOUT_S = 10.0
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


def _watch_input(fd: int) -> None:
    """The dock closed our input (it ended, or gave up on us): stop at once. Reads the
    descriptor itself, holding no lock of the buffered reader at exit."""
    with contextlib.suppress(OSError):
        while os.read(fd, 4096):
            pass
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
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

    stdin = sys.stdin.buffer
    try:
        job = decode_line(stdin.readline(MAX_JOB + 1), MAX_JOB)
        jobs = [CopyJob.from_json(j) for j in job["jobs"]]
        threading.Thread(target=_watch_input, args=(stdin.fileno(),), daemon=True).start()
        client = RecorderClient(open_transport(str(job["url"])))
        try:
            ident = client.open(timeout=OPEN_TIMEOUT_S)
            if ident.serial != job["serial"]:
                emit({"t": "fatal", "text": f"another recorder ({ident.serial[:64]}) answered"})
                return 1
            copy_files(client, jobs, emit)
        finally:
            client.close()
        emit({"t": "end"})
    except Exception as exc:  # said in one line to the dock, never a traceback
        text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        try:
            emit({"t": "fatal", "text": text})
        except OSError:
            return 1
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)  # every message is flushed; no teardown under a reading thread
