"""dock/support/crashpoints.py: the test-only kill -9 points of the offload and of a purge."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys

from dock.support import crashpoints

ROOT = pathlib.Path(__file__).resolve().parent.parent
_REACH = re.compile(r"""crashpoints\.reach\(\s*["']([^"']+)["']\s*\)""")


def _run(code: str, value: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, crashpoints.ENV: value}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )


def test_every_point_is_placed_exactly_once_and_every_placed_point_is_known() -> None:
    placed: list[str] = []
    for path in (ROOT / "dock").rglob("*.py"):
        placed += _REACH.findall(path.read_text(encoding="utf-8"))
    assert sorted(placed) == sorted(crashpoints.ALL_POINTS)
    assert not set(crashpoints.POINTS) & set(crashpoints.PURGE_POINTS)


def test_unset_it_does_nothing() -> None:
    assert crashpoints.ENV not in os.environ  # never armed in the test process itself
    assert not crashpoints.ARMED
    for name in crashpoints.ALL_POINTS:
        crashpoints.reach(name)


def test_the_nth_time_the_point_is_reached_the_process_dies_by_sigkill() -> None:
    code = (
        "from dock.support import crashpoints as c\n"
        "for i in range(1, 6):\n"
        "    c.reach('verify.start'); c.reach('copy.chunk'); print(i, flush=True)\n"
    )
    p = _run(code, "copy.chunk:3")
    assert p.returncode == -signal.SIGKILL
    assert p.stdout.split() == ["1", "2"]


def test_a_misspelt_or_malformed_point_refuses_to_start() -> None:
    for value in ("copy.chunks:1", "copy.chunk", "copy.chunk:0", "copy.chunk:x"):
        p = _run("import dock.support.crashpoints", value)
        assert p.returncode == 1, value
        assert "DOCK_CRASH_AT" in p.stderr and "copy.chunk" in p.stderr
