"""Each offload's bulk copy in a process of its own: the dock's end of the worker.

Four slots offloading in one interpreter share one GIL (issue 15). Here the link of one
slot is handed to a worker process, forked by a small fork server the dock starts once
(:mod:`.worker_forks`; the dock itself never forks), so the workers share the pages of
the code they import: the dock closes its end, the worker opens the slot's port by its
URL, reads, writes and verifies every file (:func:`dock.evidence.bulk_copy.copy_files`),
and says each outcome in a small message; then the dock opens the port again and
re-opens its session (authenticated as before) for the erases. The slot's lock is held
by the dock all along, so nothing else of the dock talks to that recorder meanwhile.

The worker is bounded from here: each message is one line of at most MAX_MESSAGE bytes,
their number grows only with the bytes copied and the time, and a worker silent for
IDLE_S is killed. It dies with the dock (PR_SET_PDEATHSIG on the fork server, which has
it on the dock, and its standard input closing), never outliving it to write files; a
worker that dies or hangs is a failed recording, said in one line. Links that cannot be
handed over this way (USB through pyusb, ``loop://``, a mass-storage camera) are copied
in process as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from dock.daemon.parts import SlotWiring
from dock.daemon.worker_forks import ForkedWorker, ForkServer
from dock.devices.recorder_client import LinkError, RecorderClient
from dock.evidence.bulk_copy import (
    MAX_JOB,
    MAX_MESSAGE,
    PROGRESS_STEP,
    CopyJob,
    OnMessage,
    WorkerLied,
    decode_line,
    encode_line,
)

log = logging.getLogger("dock.offload")

#: Port URLs a worker can open again by themselves (the dock closes its end first).
HANDED_OVER = ("tcp://", "emulated:", "/", "socket://", "rfc2217://")
#: Seconds the re-opened session has to answer once the worker is done.
REOPEN_TIMEOUT_S = 10.0

#: A worker process: forked by the fork server, or started by a command of its own.
Worker = subprocess.Popen[bytes] | ForkedWorker


#: What a worker runs: the dock's own import path first on its path (argv[1], JSON),
#: the worker's main with the dock's pid (argv[2]).
_WORKER_CODE = (
    "import sys, json; sys.path[:0] = json.loads(sys.argv[1]); "
    "from dock.daemon.offload_worker import run; run(sys.argv[2:])"
)


def worker_env() -> dict[str, str]:
    """The dock's environment, with at most two malloc arenas unless it says otherwise:
    a worker's reader, writer and read-back threads would each grow one (about 10 MiB
    more for four workers, bench/loaded_dock.py)."""
    env = dict(os.environ)
    env.setdefault("MALLOC_ARENA_MAX", "2")
    return env


def code_root() -> str:
    """The folder holding the ``dock`` package this dock runs from (the Debian package's
    /opt/bwc-dock/lib, a checkout, a wheel's site-packages)."""
    import dock

    return os.path.dirname(os.path.dirname(os.path.abspath(dock.__file__)))


def worker_command(entry: str = "run") -> list[str]:
    """How a worker is started: this interpreter in isolated mode (as the package runs
    the dock: no PYTHONPATH, no user site, not the current folder) importing the same
    code as the dock, from where the dock found it (:func:`import_path`); the dock's
    pid. ``entry``
    ``serve_forks``: the fork server the dock's workers are forked from."""
    code = _WORKER_CODE.replace("import run; run(", f"import {entry}; {entry}(")
    return [sys.executable, "-I", "-c", code, json.dumps(import_path()), str(os.getpid())]


def import_path() -> list[str]:
    """Where the dock imports from, for its workers: the folder of its own code first,
    then its own path's absolute folders (the libraries it found there, however: the
    package's folder, a PYTHONPATH the worker's -I would not read, a virtualenv)."""
    path = [code_root()]
    for entry in sys.path:
        if os.path.isabs(entry) and entry not in path:
            path.append(entry)
    return path


class ProcessCopier:
    """A worker process per offload, for slots whose port it can open itself."""

    #: A worker silent this long is killed (a 4 GiB file read back at 10 MB/s stays within).
    IDLE_S = 600.0
    #: After its last message, the worker has this long to exit.
    EXIT_S = 10.0
    #: Workers kept waiting for the next offload at most (forked: each a few MB of its
    #: own, the rest shared with the fork server).
    MAX_IDLE = 4

    def __init__(self, wiring: SlotWiring, command: Sequence[str] | None = None) -> None:
        self.wiring = wiring
        self.command = list(command) if command is not None else None
        #: pid of each worker running now, by slot (tests and the status page look)
        self.running: dict[str, int] = {}
        self._idle: list[Worker] = []
        self._forks: ForkServer | None = None  # started by the spawning thread, once
        self._keep = 0  # workers kept waiting between offloads (prewarm says how many)
        self._lock = threading.Lock()
        self._spawns: queue.Queue[Callable[[], None]] = queue.Queue()
        self._spawner: threading.Thread | None = None

    # ------------------------------------------------------------------ the workers
    def prewarm(self, count: int) -> None:
        """Start ``count`` workers now (in the background), so that an offload does not
        wait for an interpreter to start: ``dock run`` asks for its concurrency."""
        with self._lock:
            self._keep = min(count, self.MAX_IDLE)
            wanted = self._keep - len(self._idle)
        for _ in range(max(0, wanted)):
            self._in_spawner(self._keep_new)

    def close(self) -> None:
        """End the waiting workers (their input closed: each stops at once)."""
        with self._lock:
            idle, self._idle = self._idle, []
            forks, self._forks = self._forks, None
        for proc in idle:
            _end(proc, self.EXIT_S)
        if forks is not None:
            forks.close()

    def _keep_new(self) -> None:
        try:
            proc = self._start()
        except OSError as exc:
            log.warning("offload worker not started ahead: %s", exc.strerror or exc)
            return
        self._give_back(proc)

    def _start(self) -> Worker:
        """A new worker (in the spawning thread): forked by the fork server, started first
        if it is not running; a fresh interpreter if it cannot be, or for a command given."""
        if self.command is None:
            try:
                return self._fork()
            except OSError as exc:
                log.warning("offload workers not forked (%s): each starts an interpreter", exc)
        return subprocess.Popen(
            self.command or worker_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            env=worker_env(),
        )

    def _fork(self) -> ForkedWorker:
        with self._lock:
            forks = self._forks
        if forks is None or not forks.alive:
            if forks is not None:
                forks.close()
            forks = ForkServer(worker_command("serve_forks"), worker_env())
            forks.start()
            with self._lock:
                self._forks = forks
        return forks.fork()

    def _in_spawner(self, step: Callable[[], None]) -> None:
        """Run ``step`` in the one thread that starts workers: it lives as long as the
        dock, so a worker's PR_SET_PDEATHSIG (tied to the thread that forked it) fires
        when the dock dies, not when an offload's thread ends."""
        with self._lock:
            if self._spawner is None:
                self._spawner = threading.Thread(
                    target=self._spawn_forever, name="offload-workers", daemon=True
                )
                self._spawner.start()
        self._spawns.put(step)

    def _spawn_forever(self) -> None:
        while True:
            step = self._spawns.get()
            with contextlib.suppress(Exception):  # each step says its own failure
                step()

    def _take(self) -> Worker:
        """A waiting worker, else one started now (OSError when none can be)."""
        with self._lock:
            while self._idle:
                proc = self._idle.pop()
                if proc.poll() is None:
                    return proc
                _end(proc, self.EXIT_S)
        got: queue.Queue[Worker | OSError] = queue.Queue(maxsize=1)

        def start() -> None:
            try:
                got.put(self._start())
            except OSError as exc:
                got.put(exc)

        self._in_spawner(start)
        try:
            result = got.get(timeout=60)
        except queue.Empty:
            raise OSError("no worker started within 60 s") from None
        if isinstance(result, OSError):
            raise result
        return result

    def _give_back(self, proc: Worker) -> None:
        """A worker that finished its job waits for the next one (or ends: enough wait;
        none waits in a dock that did not ask, such as one ``dock offload``)."""
        with self._lock:
            if len(self._idle) < self._keep and proc.poll() is None:
                self._idle.append(proc)
                return
        _end(proc, self.EXIT_S)

    def takes(self, client: RecorderClient, slot_id: str) -> bool:
        url = self.wiring.ports.get(slot_id, "")
        return isinstance(client, RecorderClient) and url.startswith(HANDED_OVER)

    def copy(
        self, client: RecorderClient, slot_id: str, jobs: list[CopyJob], on_message: OnMessage
    ) -> str | None:
        assert client.identity is not None
        url = self.wiring.ports[slot_id]
        job = {"t": "job", "url": url, "serial": client.identity.serial,
               "jobs": [j.to_json() for j in jobs]}  # fmt: skip
        client.close()  # handed over: the worker opens the port itself
        try:
            why = self._run(slot_id, encode_line(job, MAX_JOB), jobs, on_message)
        except BaseException:
            with contextlib.suppress(Exception):
                self._take_back(client, url)
            raise
        self._take_back(client, url)
        return why

    def _take_back(self, client: RecorderClient, url: str) -> None:
        """The dock's session again, on a port it opens anew (LinkError when it cannot)."""
        try:
            client.transport = self.wiring.open_transport(url)
        except (ConnectionError, ValueError, PermissionError) as exc:
            raise LinkError(f"link not taken back after the copy: {exc}") from exc
        client.reopen(timeout=REOPEN_TIMEOUT_S)

    def _run(
        self, slot_id: str, job: bytes, jobs: list[CopyJob], on_message: OnMessage
    ) -> str | None:
        if len(job) > MAX_JOB:
            return "too many recordings for one worker's job"
        try:
            proc = self._take()
        except OSError as exc:
            return f"offload worker not started: {exc.strerror or exc}"
        self.running[slot_id] = proc.pid
        log.info("slot %s: offload worker pid %d copies %d recording(s) (dock pid %d)",
                 slot_id, proc.pid, len(jobs), os.getpid())  # fmt: skip
        why: str | None = "offload worker interrupted"
        try:
            why = self._talk(proc, job, jobs, on_message)
            return why
        finally:
            self.running.pop(slot_id, None)
            if why is None:
                self._give_back(proc)
            else:  # silent, lying, died or interrupted: not waited for, not kept
                with contextlib.suppress(OSError):
                    proc.kill()
                _end(proc, self.EXIT_S)

    def _talk(
        self, proc: Worker, job: bytes, jobs: list[CopyJob], on_message: OnMessage
    ) -> str | None:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(job)
            proc.stdin.flush()
        except OSError:
            return _died(proc, self.EXIT_S)
        total = sum(j.rec.size for j in jobs)
        started = time.monotonic()
        for count, line in enumerate(_lines(proc.stdout.fileno(), self.IDLE_S), 1):
            if line is None:
                return f"offload worker silent for {self.IDLE_S:g} s: stopped"
            if line == b"":
                return _died(proc, self.EXIT_S)
            allowed = 64 + 8 * len(jobs) + 2 * total // PROGRESS_STEP
            if count > allowed + 2 * (time.monotonic() - started):
                return f"offload worker sent more than {count - 1} messages: stopped"
            try:
                message = decode_line(line)
            except ValueError:
                return "offload worker said something unreadable: stopped"
            kind = message["t"]
            if kind == "end":
                return None
            if kind == "fatal":
                return str(message.get("text", "failed"))[:400].replace("\n", " ")
            try:
                on_message(message)
            except WorkerLied as exc:
                return f"offload worker said what cannot be true ({exc}): stopped"
        return "offload worker: message bound reached"


def _lines(fd: int, idle_s: float) -> Iterator[bytes | None]:
    """Each line read from ``fd`` (with its newline; a last one without it), ``b""`` at
    the end, None after ``idle_s`` without a byte; a line longer than MAX_MESSAGE is
    given as it is (the reader refuses it)."""
    buf = bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        for _ in range(100_000_000):
            nl = buf.find(b"\n")
            if nl >= 0:
                line, buf[:] = bytes(buf[: nl + 1]), buf[nl + 1 :]
                yield line
                continue
            if len(buf) > MAX_MESSAGE:
                yield bytes(buf)  # no newline within the bound: refused by the reader
                return
            if not sel.select(idle_s):
                yield None
                return
            data = os.read(fd, 65536)
            if not data:
                if buf:
                    yield bytes(buf)
                yield b""
                return
            buf += data


def _died(proc: Worker, wait_s: float) -> str:
    """One line for a worker that ended without saying it was done."""
    try:
        code = proc.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        return "offload worker closed its output: stopped"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"offload worker died ({signal.Signals(-code).name})"
    return f"offload worker ended (exit {code}) before it was done"


def _end(proc: Worker, wait_s: float) -> None:
    """The worker gone, whatever it was doing: its input closed, then killed if it stays."""
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        proc.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=wait_s)
