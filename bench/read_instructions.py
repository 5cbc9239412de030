"""Instructions the whole stack spends reading one recording, counted by callgrind.

Wall-clock MB/s on a shared 2-core VM moves by half between runs; instruction counts
do not. Both sides (the reference recorder in a thread, the dock's RecorderClient)
run in this one process over loopback TCP, with the retransmission timers held off
(30 s) so that a slow run under valgrind retransmits nothing and the count repeats.
The count of a run that stops before the read is subtracted, which leaves the read.

    .venv/bin/python bench/read_instructions.py [--mb 32]

compares the working tree with ``--base REV`` (default: the commit before this
session's protocol change, f772a48) checked out in a temporary worktree: valgrind
runs each ``--runs`` times (the thread schedule still moves a count by a few per
cent), and the medians of the read's instructions and their ratio are printed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RUN = r"""
import sys
data_dir, mode, mb = sys.argv[1], sys.argv[2], float(sys.argv[3])
from hardware.emulator.recorder_model import RecorderModel, RecorderSpec
from hardware.emulator.recorder import MAX_READ, RecorderFirmware
from hardware.emulator.server import EmulatorServer
from firmware_protocol.session import SessionConfig
model = RecorderModel.open(data_dir, RecorderSpec(serial="ICOUNT1", recordings=1,
                                                  recording_mb=mb))
if mode == "prepare":
    sys.exit(0)
from dock.daemon.composition import open_transport
from dock.devices.recorder_client import RecorderClient, dock_session_config
slow = dict(rto_initial=30.0, rto_min=30.0, rto_max=60.0)
fw = RecorderFirmware(model, session_config=SessionConfig(max_payload=MAX_READ + 1024,
                                                          window=16, **slow))
dc = dock_session_config()
dc.rto_initial, dc.rto_min, dc.rto_max = 30.0, 30.0, 60.0
with EmulatorServer(fw, "tcp://127.0.0.1:0") as srv:
    with RecorderClient(open_transport(srv.url), session_config=dc) as c:
        c.open()
        (rec,) = c.list_recordings()
        if mode == "read":
            assert c.read_recording(rec, lambda off, data: None) == rec.size
        assert c.session.stats.retransmits == 0, c.session.stats
"""


def count(tree: str, data: str, mode: str, mb: float, script: str) -> int:
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, script, data, mode, str(mb)],
        cwd=tree, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", out.stderr)
    assert found, out.stderr[-2000:]
    return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=32)
    ap.add_argument("--base", default="f772a48")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "base")
        subprocess.run(["git", "worktree", "add", "-q", "--detach", base, a.base],
                       cwd=ROOT, check=True)  # fmt: skip
        try:
            script = os.path.join(tmp, "run.py")
            with open(script, "w", encoding="utf-8") as f:
                f.write(RUN)
            reads: dict[str, list[int]] = {"base": [], "now": []}
            for name, tree in (("base", base), ("now", ROOT)):
                data = os.path.join(tmp, name)
                subprocess.run([sys.executable, script, data, "prepare", str(a.mb)],
                               cwd=tree, env={**os.environ, "PYTHONPATH": tree},
                               check=True)  # fmt: skip
            for _ in range(a.runs):
                for name, tree in (("base", base), ("now", ROOT)):
                    data = os.path.join(tmp, name)
                    whole = count(tree, data, "read", a.mb, script)
                    before = count(tree, data, "noread", a.mb, script)
                    reads[name].append(whole - before)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", base], cwd=ROOT)

    def median(xs: list[int]) -> float:
        return sorted(xs)[len(xs) // 2]

    b, n = median(reads["base"]), median(reads["now"])
    print(f"read of {a.mb:g} MiB, both sides, instructions (callgrind), {a.runs} runs each")
    for label, xs in ((a.base, reads["base"]), ("working tree", reads["now"])):
        runs = [round(x / 1e6, 1) for x in xs]
        print(f"{label:<12} {median(xs) / 1e6:10.1f} M median   (runs: {runs})")
    print(f"ratio        {n / b:10.3f}  of medians")


if __name__ == "__main__":
    main()
