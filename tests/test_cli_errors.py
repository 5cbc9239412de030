"""Errors a person can act on (issue 10 §5): `dock` and `dock-hq` as separate processes
meet a full state directory, a configuration file that is not UTF-8 and a reader that
goes away (`| head`). Each is one clear line on stderr and a known exit status, never a
traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCK = [sys.executable, "-m", "dock.cli.main"]
DOCK_HQ = [sys.executable, "-m", "hq.cli"]

EXIT_USAGE = 2  # a configuration error, as both programs already say it
EXIT_STATE = 5  # dock: the state directory cannot be written
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `cat` in `cat | head`


def run(cmd: list[str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )


def write_config(tmp_path: Path, state: str) -> str:
    """A dock.toml that warns about nothing (its warnings would be lines on stderr too);
    its one slot has nobody listening."""
    path = tmp_path / "dock.toml"
    path.write_text(
        f'[dock]\nid = "d1"\nsite = "s"\nunit = "u"\nstate_dir = "{state}"\n'
        f'evidence_dir = "{tmp_path / "evidence"}"\n\n'
        '[[slot]]\nid = "1"\nport = "tcp://127.0.0.1:1"\n',
        encoding="utf-8",
    )
    return str(path)


def fill(folder: str) -> None:
    """Write a file until the filesystem has no room left."""
    with open(os.path.join(folder, "filler"), "wb", buffering=0) as f:  # nothing left to flush
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    os.sync()


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- a full state directory ------------------------------------------------------------


def test_a_full_state_directory_is_one_line_at_start_not_a_traceback(tmp_path, small_tmpfs) -> None:
    state = small_tmpfs("state", "1m")
    cfg = write_config(tmp_path, state)
    fill(state)  # full before the dock ever ran: no database yet
    done = run(DOCK, "--config", cfg, "status")
    line = one_line(done.stderr)
    assert done.returncode == EXIT_STATE, done
    assert line.startswith(f"dock: state directory {state} is full: free space"), line


def test_a_state_directory_that_filled_up_stops_the_daemon_saying_why(
    tmp_path, small_tmpfs
) -> None:
    state = small_tmpfs("state", "1m")
    cfg = write_config(tmp_path, state)
    first = run(DOCK, "--config", cfg, "status")
    assert first.returncode == 0, first.stderr  # the database, key and audit log exist
    fill(state)
    for args in (("status",), ("run", "--once"), ("officer", "list")):
        done = run(DOCK, "--config", cfg, *args)
        line = one_line(done.stderr)
        assert done.returncode == EXIT_STATE, (args, done)
        assert line.startswith(f"dock: state directory {state} is full: free space"), line


# --- a configuration file that is not UTF-8 -------------------------------------------


def test_a_dock_config_that_is_not_utf8_is_a_config_error(tmp_path) -> None:
    cfg = tmp_path / "dock.toml"
    cfg.write_bytes('[dock]\nid = "d1"\nsite = "西湖"\n'.encode("gb18030"))
    done = run(DOCK, "--config", str(cfg), "status")
    line = one_line(done.stderr)
    assert done.returncode == EXIT_USAGE, done
    assert str(cfg) in line and "UTF-8" in line, line


def test_a_dock_hq_config_that_is_not_utf8_is_a_config_error(tmp_path) -> None:
    cfg = tmp_path / "hq.toml"
    cfg.write_bytes('name = "总部"\n'.encode("gb18030"))
    done = run(DOCK_HQ, "alerts", "--config", str(cfg))
    line = one_line(done.stderr)
    assert done.returncode == EXIT_USAGE, done
    assert str(cfg) in line and "UTF-8" in line, line


# --- a reader that goes away: `dock ... | head` ----------------------------------------


def closed_pipe(cmd: list[str], *args: str) -> subprocess.CompletedProcess:
    """Run with standard output into a pipe whose reader has already gone."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.Popen(
            [*cmd, *args], stdout=write, stderr=subprocess.PIPE, text=True, cwd=ROOT
        )
    finally:
        os.close(write)
    _, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", err)


def test_dock_exits_quietly_when_its_reader_goes_away(tmp_path) -> None:
    cfg = write_config(tmp_path, str(tmp_path / "state"))
    added = run(DOCK, "--config", cfg, "officer", "add", "1001", "--name", "Wang Wei",
                "--unit", "Traffic 3", "--pin", "246810")  # fmt: skip
    assert added.returncode == 0, added.stderr
    for args in (("--config", cfg, "officer", "list"), ("--config", cfg, "gaps", "list")):
        done = closed_pipe(DOCK, *args)
        assert (done.returncode, done.stderr) == (EXIT_BROKEN_PIPE, ""), (args, done)
    assert closed_pipe(DOCK, "--help").stderr == ""  # argparse's own exit: quiet too


def test_dock_hq_exits_quietly_when_its_reader_goes_away(tmp_path) -> None:
    db = tmp_path / "hq.db"
    assert run(DOCK_HQ, "fleet", "--db", str(db)).returncode == EXIT_USAGE  # no db yet
    sys.path.insert(0, str(ROOT))
    from hq.store import Store

    Store(str(db)).close()
    for args in (("alerts", "--db", str(db)), ("fleet", "--db", str(db))):
        done = closed_pipe(DOCK_HQ, *args)
        assert (done.returncode, done.stderr) == (EXIT_BROKEN_PIPE, ""), (args, done)
    assert closed_pipe(DOCK_HQ, "--help").stderr == ""  # argparse's own exit: quiet too


def test_a_real_head_reads_the_first_line_and_nothing_is_said(tmp_path) -> None:
    done = subprocess.run(
        f"{sys.executable} -m hq.cli --help | head -1; "
        f"{sys.executable} -m dock.cli.main --help | head -1",
        shell=True, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert done.stderr == "" and len(done.stdout.splitlines()) == 2, done
