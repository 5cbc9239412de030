"""Issue 15: each slot's offload copies in a worker process of its own.

The dock hands a protocol slot's link to a worker (dock/daemon/offload_process.py),
which reads, writes, verifies and publishes; the archive rows, audit entries and
erases stay in the dock. A worker killed mid-file is a failed recording, audited,
with nothing lost; four slots at once under ``dock run`` end bit-identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
from typing import Any

import pytest

from dock.daemon.offload_process import ProcessCopier
from dock.evidence.bulk_copy import decode_line, encode_line
from hardware.emulator.footage import expected_sha256

from .test_cli import DOCK, EMULATOR

MIB = 1 << 20


def _archived(svc: Any) -> dict[str, bytes]:
    out = {}
    for row in svc.store.archive_entries():
        with open(os.path.join(svc.offloader.evidence_dir, row["path"]), "rb") as f:
            out[row["recording_id"]] = hashlib.sha256(f.read()).digest()
    return out


def _partials(root: str) -> list[str]:
    return [n for _, _, names in os.walk(root) for n in names if ".partial-" in n]


def test_a_protocol_slot_is_copied_by_a_worker_process(make_dock) -> None:
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.5})
    svc.offloader.use_mass_storage = False
    copier = svc.offloader.copier
    assert isinstance(copier, ProcessCopier)
    expected = {r.id: r.sha256 for r in recs[0].model.recordings.values()}
    workers: set[int] = set()

    def watch(recording: str, done: int, total: int) -> None:
        pid = copier.running.get("1")
        if pid is not None:
            workers.add(pid)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                assert b"dock.daemon.offload_worker" in f.read()

    report = svc.offload("1", progress=watch)
    assert report is not None and report.ok, report
    assert len(workers) == 1 and os.getpid() not in workers  # one worker, not the dock
    assert _archived(svc) == expected  # bit-identical
    assert recs[0].model.recordings == {}  # erased by the dock after the worker ended
    kinds = [e.kind for e in svc.audit.entries() if e.kind in ("offload_file", "erase")]
    assert kinds == ["offload_file", "offload_file", "erase", "erase"]
    files = [e.data for e in svc.audit.entries() if e.kind == "offload_file"]
    assert {d["via"] for d in files} == {"protocol"}
    assert copier.running == {}


def test_a_worker_killed_mid_file_is_an_audited_failure_and_loses_nothing(make_dock) -> None:
    """001 art.19(4): the worker dying mid-file erases nothing; the next docking finishes."""
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 3, "recording_mb": 4.0})
    svc.offloader.use_mass_storage = False
    model = recs[0].model
    expected = {r.id: r.sha256 for r in model.recordings.values()}
    copier = svc.offloader.copier
    killed: list[str] = []

    def kill_at_first_megabyte(recording: str, done: int, total: int) -> None:
        if not killed and 0 < done < total:  # chosen by progress: mid-file
            os.kill(copier.running["1"], signal.SIGKILL)
            killed.append(recording)

    report = svc.offload("1", progress=kill_at_first_megabyte)
    assert killed and report is not None and not report.ok
    assert len(report.failed) == 1, report.failed
    ((rid, why),) = report.failed.items()
    assert "offload worker died (SIGKILL)" in why
    failed = [e.data for e in svc.audit.entries() if e.kind == "offload_failed"]
    assert [d["recording"] for d in failed] == [rid] and "SIGKILL" in failed[0]["error"]
    assert set(model.recordings) == set(expected)  # nothing erased in that run
    assert rid not in _archived(svc)
    for got, digest in _archived(svc).items():  # what it did publish is recorded, exact
        assert expected[got] == digest
    svc.offload("1")  # docked again: finished, the killed worker's partial file removed
    assert _archived(svc) == expected
    assert model.recordings == {}
    assert _partials(svc.offloader.evidence_dir) == []


def test_a_worker_that_lies_is_stopped_and_its_word_not_taken(make_dock, tmp_path) -> None:
    """A worker claiming a file it did not publish (or somewhere else) is stopped: no row."""
    fake = tmp_path / "liar.py"
    fake.write_text(
        "import json, sys\n"
        "job = json.loads(sys.stdin.readline())\n"
        "j = job['jobs'][0]\n"
        "print(json.dumps({'t': 'published', 'rec': j['rec']['id'], 'path': '/etc/passwd',"
        " 'size': j['rec']['size'], 'sha256': j['rec']['sha256'], 'resumed': False}),"
        " flush=True)\n"
        "sys.stdin.read()\n"
    )
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 1, "recording_mb": 0.1})
    svc.offloader.use_mass_storage = False
    import sys

    svc.offloader.copier.command = [sys.executable, str(fake)]
    report = svc.offload("1")
    assert report is not None and not report.ok
    (why,) = report.failed.values()
    assert "cannot be true" in why and "/etc/passwd" in why
    assert svc.store.archive_entries() == []
    assert len(recs[0].model.recordings) == 1


def test_messages_are_one_bounded_line() -> None:
    line = encode_line({"t": "failed", "rec": "R", "text": "x" * 100_000})
    assert len(line) < 16 * 1024 and line.endswith(b"\n")
    assert decode_line(line)["t"] == "failed"
    for bad in (b"[1]\n", b'{"t": 1}\n', b"{" + b" " * 20_000 + b"}\n", b'{"t": "x"}'):
        try:
            decode_line(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_four_slots_offload_at_once_under_dock_run_bit_identical(tmp_path) -> None:
    slots, per, mb = 4, 2, 1.0
    emus, urls = [], []
    try:
        for i in range(slots):
            p = subprocess.Popen(
                [*EMULATOR, "--listen", "tcp://127.0.0.1:0", "--data-dir",
                 str(tmp_path / f"rec{i}"), "--serial", f"PAR{i}", "--recordings", str(per),
                 "--recording-mb", str(mb), "--legacy"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )  # fmt: skip
            emus.append(p)
            assert p.stdout is not None
            urls.append(p.stdout.readline().strip())
        state, evidence = tmp_path / "state", tmp_path / "evidence"
        cfg = tmp_path / "dock.toml"
        cfg.write_text(
            f'[dock]\nid = "par"\nsite = "s"\nunit = "u"\nstate_dir = "{state}"\n'
            f'evidence_dir = "{evidence}"\n\n[clock]\nsource = "trusted"\n\n'
            + "".join(f'[[slot]]\nid = "{i + 1}"\nport = "{u}"\n\n' for i, u in enumerate(urls))
        )
        base = [*DOCK, "--config", str(cfg)]
        for i in range(slots):
            enrol = subprocess.run(
                [*base, "device", "enrol", "--slot", str(i + 1)], capture_output=True, text=True
            )
            assert enrol.returncode == 0, enrol.stderr
        run = subprocess.run(
            [*base, "run", "--once", "--offload-concurrency", str(slots)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        said = r"offload worker pid (\d+) copies \d+ recording\(s\) \(dock pid (\d+)\)"
        started = re.findall(said, run.stderr)
        assert len(started) == slots, run.stderr[-3000:]
        assert all(w != dock for w, dock in started)  # kept workers, not the dock
        # every recording archived once, bit-identical, and erased from its recorder
        found: dict[tuple[str, str], bytes] = {}
        for folder, _, names in os.walk(evidence):
            if os.path.relpath(folder, evidence).split(os.sep)[0] in ("bags", "quarantine"):
                continue
            for name in names:
                assert not name.startswith("."), name  # no partial left
                serial, rid = name[:-4].split("_")[1], name[:-4].split("_")[-1]
                with open(os.path.join(folder, name), "rb") as f:
                    found[(serial, rid)] = hashlib.sha256(f.read()).digest()
        want = {
            (f"PAR{i}", f"REC{n:06d}"): expected_sha256(f"PAR{i}", n, int(mb * MIB))
            for i in range(slots)
            for n in range(1, per + 1)
        }
        assert found == want
        for i in range(slots):
            with open(tmp_path / f"rec{i}" / "state.json", encoding="utf-8") as f:
                assert json.load(f)["recordings"] == []
    finally:
        for p in emus:
            p.terminate()
            p.wait(timeout=30)


def test_the_daemon_keeps_its_workers_between_offloads(make_dock) -> None:
    """``dock run`` starts its workers ahead and keeps them: a docking does not wait."""
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 1, "recording_mb": 0.2})
    svc.offloader.use_mass_storage = False
    copier = svc.offloader.copier
    copier.prewarm(1)
    from .conftest import wait_until

    assert wait_until(lambda: bool(copier._idle), timeout=60.0)  # forked ahead
    pids: list[int] = []
    svc.offload("1", progress=lambda *_: pids.append(copier.running["1"]))
    recs[0].model._generate_recordings(1, 50_000, interrupted=0)  # filmed again
    recs[0].model.save()
    svc.offload("1", progress=lambda *_: pids.append(copier.running["1"]))
    assert len(set(pids)) == 1 and len(svc.store.archive_entries()) == 2
    copier.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_worker_never_outlives_the_dock(tmp_path) -> None:
    """A dock killed with -9 takes its waiting worker with it (PDEATHSIG, closed input)."""
    import sys

    script = (
        "import sys, time\n"
        "from dock.daemon.offload_process import ProcessCopier\n"
        "from dock.daemon.parts import SlotWiring\n"
        f"c = ProcessCopier(SlotWiring({{}}, None, {str(tmp_path)!r}))\n"
        "c.prewarm(1)\n"
        "for _ in range(3000):\n"
        "    if c._idle: break\n"
        "    time.sleep(0.01)\n"
        "print(c._idle[0].pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    dock = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert dock.stdout is not None
    worker = int(dock.stdout.readline())
    assert _alive(worker)
    dock.kill()
    dock.wait(timeout=30)
    from .conftest import wait_until

    assert wait_until(lambda: not _alive(worker), timeout=10.0)


def test_a_worker_that_finds_another_recorder_copies_nothing(make_dock, monkeypatch) -> None:
    """The worker opens the port itself: if another recorder answers there, it says so in
    one line and copies nothing; the dock's own session comes back to the right one."""
    from dock.daemon import offload_process

    svc, recs = make_dock(
        {"battery_percent": 95.0, "recordings": 1, "recording_mb": 0.1},
        {"battery_percent": 95.0, "recordings": 1, "recording_mb": 0.1},
    )
    svc.offloader.use_mass_storage = False
    real = offload_process.encode_line

    def swapped(message: dict, limit: int = 16 * 1024) -> bytes:
        if message.get("t") == "job":  # the cable now leads to the recorder of slot 2
            message = {**message, "url": recs[1].url}
        return real(message, limit)

    monkeypatch.setattr(offload_process, "encode_line", swapped)
    report = svc.offload("1")
    assert report is not None and not report.ok
    (why,) = report.failed.values()
    assert f"another recorder ({recs[1].model.serial}) answered" in why
    assert svc.store.archive_entries() == []
    assert len(recs[0].model.recordings) == 1 and len(recs[1].model.recordings) == 1
    failed = [e for e in svc.audit.entries() if e.kind == "offload_failed"]
    assert len(failed) == 1 and failed[0].subject == recs[0].model.serial


#: The dock as the Debian package runs it: python3 -I, its code found only on the path
#: the wrapper put first (packaging/build_deb.py ``wrapper``).
_PACKAGED_DOCK = """
import subprocess, sys
sys.path.insert(0, sys.argv[1])
import dock
assert dock.__file__.startswith(sys.argv[1]), dock.__file__
from dock.daemon.offload_process import worker_command
from dock.evidence.bulk_copy import MAX_JOB, encode_line
job = {"t": "job", "url": "tcp://127.0.0.1:1", "serial": "X", "jobs": []}
worker = subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
worker.stdin.write(encode_line(job, MAX_JOB))
worker.stdin.flush()
print(worker.stdout.readline().decode().strip(), flush=True)
worker.stdin.close()
print(worker.wait(timeout=30))
"""


def test_a_worker_starts_where_the_code_is_reachable_only_through_the_dock_path(
    tmp_path,
) -> None:
    """In the installed package the dock's code is on no default path: the worker still
    imports it (from the folder the dock's came from) and serves a job."""
    import sys
    import sysconfig

    venv = tmp_path / "venv"  # an interpreter with the libraries, not the project
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = venv.glob("lib/python3*/site-packages")
    (site / "libraries.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    lib = tmp_path / "lib"  # as /opt/bwc-dock/lib
    lib.mkdir()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__import__("dock").__file__)))
    for top in ("dock", "firmware_protocol", "hardware", "common", "mqtt_contract"):
        (lib / top).symlink_to(os.path.join(root, top))
    python = str(venv / "bin" / "python")
    alone = subprocess.run([python, "-I", "-c", "import dock"], capture_output=True, cwd="/")
    assert alone.returncode != 0  # the project is reachable only through lib
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [python, "-I", "-c", _PACKAGED_DOCK, str(lib)],
        capture_output=True, text=True, timeout=120, cwd=elsewhere,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said, code = done.stdout.splitlines()
    message = decode_line(said.encode() + b"\n")
    assert message["t"] == "fatal" and "Connection" in message["text"], message
    assert code == "-9"  # and it ended at once when its input closed


def test_a_worker_carries_neither_the_configuration_nor_the_key_exchange() -> None:
    """A worker opens a port and copies: it imports neither the configuration, the
    composition root nor cryptography (used only to authenticate and enrol), which made
    each idle worker ~34 MB resident (issue 15)."""
    import sys

    from dock.config.slots import EMULATED_SCHEME
    from dock.daemon import ports
    from hardware.emulator.links import LINK_SCHEME

    assert ports.EMULATED_SCHEME == EMULATED_SCHEME == LINK_SCHEME
    probe = (
        "import sys\n"
        "from dock.daemon import offload_worker, ports\n"
        "try:\n"
        "    ports.open_transport('tcp://127.0.0.1:1')\n"
        "except OSError:\n"
        "    pass\n"
        "heavy = ('dock.config', 'dock.daemon.composition', 'cryptography', 'sqlite3')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_workers_are_forked_by_one_small_server_that_takes_them_along() -> None:
    """The dock (multithreaded) never forks: one server it started forks every worker,
    which share its pages; a worker killed is said as SIGKILL; a request the server does
    not know is refused; when the dock closes the server, its workers end with it."""
    from dock.daemon.offload_process import worker_command
    from dock.daemon.worker_forks import ForkServer

    from .conftest import wait_until

    server = ForkServer(worker_command("serve_forks"))
    server.start()
    assert server.proc is not None and server.alive
    try:
        one, two = server.fork(), server.fork()
        assert _parent(one.pid) == _parent(two.pid) == server.proc.pid
        assert os.getpid() not in (one.pid, two.pid)
        assert _parent(server.proc.pid) == os.getpid()
        job = {"t": "job", "url": "tcp://127.0.0.1:1", "serial": "X", "jobs": []}
        two.stdin.write(encode_line(job, 8 << 20))
        two.stdin.flush()
        said = decode_line(two.stdout.readline())
        assert said["t"] == "fatal" and "Connection" in said["text"]  # a working worker
        one.kill()
        assert one.wait(timeout=30) == -signal.SIGKILL
        assert two.poll() is None
        assert server._sock is not None
        server._sock.send(b"F")  # no descriptors with it: refused, nothing forked
        with pytest.raises(OSError, match="refused"):
            server._answer()
        server._sock.send(b"K 1")  # not its worker: nothing killed
        assert _alive(1)
        three = server.fork()
        assert three.poll() is None
    finally:
        server.close()
    assert wait_until(lambda: not _alive(two.pid) and not _alive(three.pid), timeout=10.0)


def test_workers_run_with_at_most_two_malloc_arenas_unless_the_dock_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each worker's reader, hasher and writer threads would grow a malloc arena each:
    the memory target with 4 offloading (bench/loaded_dock.py) is met with two at most.
    A dock started with its own MALLOC_ARENA_MAX (systemd's Environment=) keeps it."""
    from dock.daemon.offload_process import worker_command, worker_env
    from dock.daemon.worker_forks import ForkServer

    def arenas(pid: int) -> str | None:
        with open(f"/proc/{pid}/environ", "rb") as f:
            pairs = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
        value = pairs.get(b"MALLOC_ARENA_MAX")
        return None if value is None else value.decode()

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    server = ForkServer(worker_command("serve_forks"), worker_env())
    server.start()
    try:
        worker = server.fork()
        assert server.proc is not None
        assert arenas(server.proc.pid) == arenas(worker.pid) == "2"
    finally:
        server.close()
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert worker_env()["MALLOC_ARENA_MAX"] == "4"
