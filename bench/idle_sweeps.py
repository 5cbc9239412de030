"""The idle dock's sweeps with 20 slots: CPU per sweep against bare STATUS sweeps.

Twenty emulated recorders in other processes (as bench/loaded_dock.py deals them), the
daemon's service composed as ``dock run`` composes it. Measured in this process, over
the same number of sweeps, alternately (``--rounds``), so that a busy neighbour hits
both alike:

* the daemon: ``--sweeps`` routine sweeps (STATUS-only, each with its status report);
* the baseline: as many bare STATUS sweeps (open a session with each recorder, STATUS,
  close), the least a sweep needs.

CPU seconds of this process (every thread; the recorders are not counted) per sweep,
and the ratio. ``--callgrind``: run under ``valgrind --tool=callgrind
--instr-atstart=no`` and only the sweeps are counted (instructions do not depend on the
machine's load): ``--mode daemon`` or ``--mode bare`` once each, then compare the files'
``totals``. ``--clock system``: the dock's clock asked of the operating system
(timedatectl, chronyc, adjtimex), as on a real dock; its commands' CPU is reported too.

    .venv/bin/python bench/idle_sweeps.py                  # 3 rounds of 30 sweeps each
    valgrind --tool=callgrind --instr-atstart=no .venv/bin/python bench/idle_sweeps.py \\
        --callgrind --mode daemon --sweeps 20 --handoff 3
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from checkout_latency import config_on  # noqa: E402
from loaded_dock import loadavg, start_fleet, stop_fleet  # noqa: E402

from dock.daemon.composition import build_service, open_transport  # noqa: E402
from dock.devices.recorder_client import RecorderClient  # noqa: E402
from dock.services.status import status_report  # noqa: E402
from hardware.screens import ConsoleScreen  # noqa: E402

MS = 1000.0


def cpu() -> tuple[float, float]:
    """CPU seconds so far of this process and of its ended children (commands run)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def per_sweep(run: Callable[[], object], sweeps: int) -> tuple[float, float]:
    """CPU seconds per sweep: this process's, and the commands' it ran."""
    own0, kids0 = cpu()
    for _ in range(sweeps):
        run()
    own1, kids1 = cpu()
    return (own1 - own0) / sweeps, (kids1 - kids0) / sweeps


def callgrind(on: bool) -> None:
    """Instrumentation on or off (this process runs under callgrind)."""
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slots", type=int, default=20)
    ap.add_argument("--sweeps", type=int, default=30, help="sweeps per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clock", choices=("trusted", "system"), default="trusted")
    ap.add_argument("--callgrind", action="store_true",
                    help="count only the sweeps (under callgrind --instr-atstart=no)")  # fmt: skip
    ap.add_argument("--mode", choices=("daemon", "bare"), default="daemon",
                    help="with --callgrind: which sweeps to count")  # fmt: skip
    ap.add_argument("--handoff", type=float, default=0.0, metavar="S",
                    help="a slot's wait before one more sweep worker starts (under callgrind,"
                         " ~50x slower: 3, so that it happens as at full speed)")  # fmt: skip
    a = ap.parse_args()
    if a.handoff > 0:
        import dock.daemon.sweep_workers as sweep_workers

        sweep_workers.HANDOFF_S = a.handoff
    print(f"load average at start: {loadavg()}", flush=True)
    tmp = tempfile.mkdtemp(prefix="bench-idle-", dir=os.environ.get("BENCH_DIR"))
    fleet, urls, _ = start_fleet(a.slots, os.path.join(tmp, "rec"), 4)
    try:
        cfg = config_on(urls, os.path.join(tmp, "dock"))
        cfg = dataclasses.replace(cfg, clock=dataclasses.replace(cfg.clock, source=a.clock))
        svc: Any = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
        for slot in svc.views:
            svc.enrol(slot, "bench")
        svc.sweep()  # docking: the full inspection of every recorder
        status_report(svc, svc.sweep())

        def daemon() -> None:
            status_report(svc, svc.sweep())

        def bare() -> None:
            for u in urls:
                with RecorderClient(open_transport(u)) as c:
                    c.open()
                    c.status()

        if a.callgrind:
            run = daemon if a.mode == "daemon" else bare
            callgrind(True)
            for _ in range(a.sweeps):
                run()
            callgrind(False)
            print(f"{a.mode}: {a.sweeps} sweeps counted; Ir per sweep = the file's totals / "
                  f"{a.sweeps}")  # fmt: skip
            return
        ours, base, cmds = [], [], []
        for _ in range(a.rounds):
            b, _k = per_sweep(bare, a.sweeps)
            d, k = per_sweep(daemon, a.sweeps)
            base.append(b)
            ours.append(d)
            cmds.append(k)
        pool = getattr(svc.inspection, "_workers", None)  # older code: a thread per slot
        workers = pool.workers() if pool is not None else "per-slot"
    finally:
        stop_fleet(fleet)
        shutil.rmtree(tmp, ignore_errors=True)
    b, d, k = statistics.median(base), statistics.median(ours), statistics.median(cmds)
    print(f"\n{a.slots} slots, {a.rounds} rounds of {a.sweeps} sweeps each, clock {a.clock}, "
          f"{workers} sweep workers")  # fmt: skip
    print("\n| CPU per sweep (median of rounds) | ms | % of a core at a sweep every 2 s |")
    print("| --- | ---: | ---: |")
    print(f"| bare STATUS sweep (baseline) | {b * MS:.1f} | {b / 2 * 100:.2f} |")
    print(f"| the daemon's sweep and status report | {d * MS:.1f} | {d / 2 * 100:.2f} |")
    if a.clock == "system":
        print(f"| ... the clock's commands it ran | {k * MS:.1f} | {k / 2 * 100:.2f} |")
    print(f"\nthe daemon's sweep {d / b:.2f} x the bare sweep; rounds: daemon "
          f"{', '.join(f'{x * MS:.1f}' for x in ours)} ms, bare "
          f"{', '.join(f'{x * MS:.1f}' for x in base)} ms")  # fmt: skip
    print(f"load average at end: {loadavg()}")


if __name__ == "__main__":
    main()
