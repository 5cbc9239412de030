"""A loaded dock: check-out decisions, memory and idle CPU with 20 slots while 4 offload.

Twenty recorders in other processes (as separate hardware; dealt over
``--recorder-processes``, 4, so that four offloads are not limited by one recorder
interpreter), each on its own TCP port (``--throttle 35``: behind a USB 2.0-paced link).
The daemon is this process, composed as ``dock run`` composes it: ``build_service``,
the offload pool at ``--concurrency`` (4), a sweep every ``--interval`` s and badge
decisions under the one busy lock, the maintenance jobs in their threads. Phases:

1. idle: ``--decisions`` badge reads on the idle dock (the baseline), each followed by
   the bare round trips of the same grant (open + authenticate + assign), as
   bench/checkout_latency.py does;
2. four officers take four recorders, which film ``--mb`` MiB each and come back (their
   footage read over the wire protocol; ``--via volume``: from their mass-storage volume): the
   daemon's own sweep finds them returned and offloads all four at once; meanwhile the
   same kind of badge reads are decided for the other slots (one every ``--gap`` s) and
   the daemon's resident memory is sampled: this process's VmRSS and VmHWM and every
   process it started (the recorders' process excepted), RSS and PSS summed;
3. after the offloads: the daemon's CPU over ``--idle-seconds`` of its sweeps, against
   the CPU of bare STATUS sweeps of every slot (one per interval: the least a sweep needs).

    .venv/bin/python bench/loaded_dock.py                       # smoke: 4 x 64 MiB
    .venv/bin/python bench/loaded_dock.py --mb 256 --decisions 60
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from checkout_latency import config_on, pct  # noqa: E402
from throttle_relay import BUFFER_KIB  # noqa: E402
from throttle_relay import start as start_relay  # noqa: E402
from throttle_relay import stop as stop_relay  # noqa: E402

from dock.daemon.composition import build_service, open_transport  # noqa: E402
from dock.daemon.model import Decision  # noqa: E402
from dock.devices.recorder_client import RecorderClient  # noqa: E402
from dock.services.status import status_report  # noqa: E402
from hardware.screens import ConsoleScreen  # noqa: E402

#: Recorders of the given indices: one TCP server each; "film SERIAL BYTES" on stdin
#: makes that recorder film one clip of BYTES (answered "ok SERIAL" once written).
FLEET = r"""
import sys, os
sys.path.insert(0, sys.argv[1])
from hardware.emulator.recorder_model import RecorderModel, RecorderSpec
from hardware.emulator.recorder import RecorderFirmware
from hardware.emulator.server import EmulatorServer
base, indices = sys.argv[2], [int(i) for i in sys.argv[3].split(",")]
servers, models = [], {}
for i in indices:
    spec = RecorderSpec(serial=f"B{i:04d}", recordings=0, battery_percent=95.0)
    model = RecorderModel.open(os.path.join(base, spec.serial), spec)
    models[spec.serial] = model
    servers.append(EmulatorServer(RecorderFirmware(model), "tcp://127.0.0.1:0").start())
print(" ".join(s.url for s in servers), flush=True)
for line in sys.stdin:
    cmd, serial, size = line.split()
    models[serial].film(1, size=int(size), duration_ms=60_000)
    print("ok", serial, flush=True)
"""

MS = 1000.0


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return f.read().strip()


def start_fleet(
    slots: int, base: str, processes: int
) -> tuple[list[subprocess.Popen[str]], list[str], dict[str, subprocess.Popen[str]]]:
    """The recorders dealt round-robin over ``processes`` processes (one interpreter
    serving several offloads at once would be their limit, not the dock): the
    processes, the URL of each slot's recorder, and the process of each serial."""
    fleet, owner, urls = [], {}, [""] * slots
    for j in range(min(processes, slots)):
        indices = list(range(j, slots, processes))
        proc = subprocess.Popen(
            [sys.executable, "-c", FLEET, ROOT, base, ",".join(map(str, indices))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        fleet.append(proc)
        for i in indices:
            owner[f"B{i:04d}"] = proc
    for j, proc in enumerate(fleet):
        for i, url in zip(range(j, slots, processes), read_line(proc, 120).split(), strict=True):
            urls[i] = url
    return fleet, urls, owner


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line from the recorders' process, or an error after ``timeout`` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError(f"the recorders' process said nothing in {timeout:g} s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("the recorders' process ended")
    return line


def status_kib(pid: int | str, keys: tuple[str, ...]) -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":")[0]
                if key in keys:
                    found[key] = int(line.split()[1])
    except OSError:
        pass
    return found


def pss_kib(pid: int | str) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Daemon:
    """The dock's processes (this one and whatever it starts, the recorders' excepted)."""

    def __init__(self, not_ours: set[int]) -> None:
        self.me = psutil.Process()
        self.not_ours = not_ours  # the recorders' process and the links' relays

    def children(self) -> list[psutil.Process]:
        others = set(self.not_ours)
        for pid in self.not_ours:
            with contextlib.suppress(psutil.Error):
                others |= {p.pid for p in psutil.Process(pid).children(recursive=True)}
        return [p for p in self.me.children(recursive=True) if p.pid not in others]

    def memory(self) -> dict[str, float]:
        """MiB: this process's VmRSS/VmHWM, and RSS/PSS summed over it and its children."""
        own = status_kib("self", ("VmRSS", "VmHWM"))
        kids = self.children()
        rss = own.get("VmRSS", 0) + sum(status_kib(p.pid, ("VmRSS",)).get("VmRSS", 0) for p in kids)
        pss = pss_kib("self") + sum(pss_kib(p.pid) for p in kids)
        return {
            "rss": own.get("VmRSS", 0) / 1024,
            "hwm": own.get("VmHWM", 0) / 1024,
            "rss_sum": rss / 1024,
            "pss_sum": pss / 1024,
            "children": float(len(kids)),
        }

    def cpu_seconds(self) -> dict[int, float]:
        """CPU seconds so far of this process and each child (by pid)."""
        out = {0: sum(self.me.cpu_times()[:2])}
        for p in self.children():
            with contextlib.suppress(psutil.Error):
                out[p.pid] = sum(p.cpu_times()[:2])
        return out


def thread_cpu() -> dict[tuple[int, str], float]:
    """CPU seconds of each live thread of this process, keyed by (native id, name)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[tuple[int, str], float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[(int(tid), names.get(int(tid), "?"))] = (int(fields[11]) + int(fields[12])) / tick
    return out


class Sampler(threading.Thread):
    """The daemon's memory every ``every`` s until stopped: the peak of each figure."""

    def __init__(self, daemon: Daemon, every: float = 0.2) -> None:
        super().__init__(name="bench-memory", daemon=True)
        self.dock, self.every = daemon, every
        self.peak: dict[str, float] = {}
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for key, value in self.dock.memory().items():
                self.peak[key] = max(self.peak.get(key, 0.0), value)
            self.samples += 1
            self.halt.wait(self.every)

    def stop(self) -> dict[str, float]:
        self.halt.set()
        self.join(timeout=10)
        return self.peak


def stop_fleet(fleet: list[subprocess.Popen[str]]) -> None:
    """End the recorder processes: their input closed, then killed if one lingers
    (bounded: 30 s each)."""
    for proc in fleet:
        if proc.stdin is not None:
            proc.stdin.close()
    for proc in fleet:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def main() -> None:
    if "MALLOC_ARENA_MAX" not in os.environ:  # the daemon as dock.service runs it
        os.execve(sys.executable, [sys.executable, *sys.argv],
                  {**os.environ, "MALLOC_ARENA_MAX": "2"})  # fmt: skip
    ap = argparse.ArgumentParser()
    ap.add_argument("--slots", type=int, default=20)
    ap.add_argument("--returned", type=int, default=4, help="recorders back with footage")
    ap.add_argument("--mb", type=float, default=64, help="footage per returned recorder, MiB")
    ap.add_argument("--concurrency", type=int, default=4, help="the daemon's offloads at once")
    ap.add_argument("--via", choices=("protocol", "volume"), default="protocol",
                    help="footage over the wire protocol or the mass-storage volume")  # fmt: skip
    ap.add_argument("--decisions", type=int, default=40, help="badge reads per phase (most)")
    ap.add_argument("--gap", type=float, default=0.1, help="seconds between badge reads")
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between sweeps")
    ap.add_argument("--idle-seconds", type=float, default=20.0)
    ap.add_argument("--idle-before", type=float, default=0.0,
                    help="also the idle CPU over this many seconds before the returns")  # fmt: skip
    ap.add_argument("--timeout", type=float, default=600.0, help="bound on the offloads")
    ap.add_argument("--recorder-processes", type=int, default=4,
                    help="processes the recorders are dealt over")  # fmt: skip
    ap.add_argument("--link-buffer", type=int, default=BUFFER_KIB, metavar="KIB",
                    help="with --throttle: relay socket buffers (0: the kernel's)")  # fmt: skip
    ap.add_argument("--throttle", type=float, default=0.0, metavar="MBPS",
                    help="each recorder behind its own link of MBPS (35: USB 2.0)")  # fmt: skip
    a = ap.parse_args()
    if not 0 < a.returned < a.slots:
        ap.error("--returned must be between 1 and --slots - 1")
    print(f"load average at start: {loadavg()}", flush=True)
    tmp = tempfile.mkdtemp(prefix="bench-loaded-", dir=os.environ.get("BENCH_DIR"))
    fleet, urls, owner = start_fleet(a.slots, os.path.join(tmp, "rec"), a.recorder_processes)
    stop = threading.Event()
    svc: Any = None
    relays: list[subprocess.Popen[str]] = []
    try:
        if a.throttle:  # bench/throttle_relay.py: one paced relay process per recorder
            for i, url in enumerate(urls):
                relay, urls[i] = start_relay(url, a.throttle, a.link_buffer)
                relays.append(relay)
        cfg = config_on(urls, os.path.join(tmp, "dock"))
        svc = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
        svc.offload_concurrency = a.concurrency
        svc.offloader.use_mass_storage = a.via == "volume"
        for slot in svc.views:
            svc.enrol(slot, "bench")
        officers = 2 * a.decisions + a.returned
        for i in range(officers):
            svc.store.add_officer(f"{5000 + i}", f"Officer {i}", "Unit", "246810", f"B-{i}")
        secret = {d.serial: d.secret for d in svc.store.devices()}
        svc.sweep()  # docking: the full inspection of every recorder
        daemon = Daemon({*(p.pid for p in fleet), *(r.pid for r in relays)})

        busy = threading.Lock()  # dock run's: one of sweep / decision at a time
        sweeps: list[float] = []

        def loop() -> None:  # dock run's loop: a sweep and its status report per interval
            while not stop.wait(a.interval):
                t = time.perf_counter()
                with busy:
                    status_report(svc, svc.sweep())
                sweeps.append(time.perf_counter() - t)

        threading.Thread(target=loop, name="bench-sweeps", daemon=True).start()
        svc.start_maintenance(a.interval)

        n = iter(range(officers))
        out: list[str] = []  # granted, not yet taken and returned

        def decide(exclude: set[str], offloading: set[str] | None = None) -> dict[str, Any]:
            """One badge read (and its bare grant round trips); re-dock when all are out."""
            free = a.slots - len(exclude)
            if len(out) >= free:  # every free recorder granted: they come back
                with busy:
                    for slot in out:
                        svc.taken(slot)
                    svc.sweep()
                out.clear()
            i = next(n)
            running = len(svc.offloads.busy()) if offloading is None else len(offloading)
            t0 = time.perf_counter()
            with busy:
                d = svc.badge_read(f"B-{i}")
            took = time.perf_counter() - t0
            if not isinstance(d, Decision) or not d.granted or d.slot is None:
                raise RuntimeError(f"badge B-{i} not granted: {d}")
            out.append(d.slot)
            t0 = time.perf_counter()
            with RecorderClient(open_transport(svc.views[d.slot].port)) as c:
                c.open()
                c.authenticate(secret[d.device])
                c.assign(f"{5000 + i}", f"Officer {i}", "Unit")
            bare = time.perf_counter() - t0
            after = len(svc.offloads.busy())
            return {"t": took, "bare": bare, "running": min(running, after), "slot": d.slot,
                    "serial": d.device}  # fmt: skip

        # Phase 1: the idle dock (baseline).
        idle = []
        for _ in range(a.decisions):
            idle.append(decide(set()))
            time.sleep(a.gap)
        with busy:  # all back in their slots before the returns
            for slot in out:
                svc.taken(slot)
            svc.sweep()
        out.clear()
        mem_idle = daemon.memory()
        before_cpu = None
        if a.idle_before > 0:
            c0, w0 = daemon.cpu_seconds(), time.perf_counter()
            time.sleep(a.idle_before)
            c1, w1 = daemon.cpu_seconds(), time.perf_counter()
            before_cpu = sum(c1[k] - c0[k] for k in c1 if k in c0) / (w1 - w0)

        # Phase 2: four recorders out, filming, back; decisions during their offloads.
        carriers = [decide(set()) for _ in range(a.returned)]
        out.clear()  # these are the returned ones, not re-docked by decide()
        returned = {c["slot"] for c in carriers}
        size = int(a.mb * (1 << 20))
        for c in carriers:
            proc = owner[c["serial"]]
            assert proc.stdin is not None
            proc.stdin.write(f"film {c['serial']} {size}\n")
            proc.stdin.flush()
            read_line(proc, 600)
        sampler = Sampler(daemon)
        sampler.start()
        t_return = time.perf_counter()
        with busy:
            for slot in returned:
                svc.taken(slot)  # the next sweep of the daemon finds them back: a return
        deadline = time.monotonic() + 60
        while not svc.offloads.busy() and time.monotonic() < deadline:
            time.sleep(0.02)
        t_started = time.perf_counter()
        loaded = []
        while svc.offloads.busy() and len(loaded) < a.decisions:
            loaded.append(decide(returned))
            time.sleep(a.gap)
        svc.wait_offloads(timeout=a.timeout)
        t_done = time.perf_counter()
        peak = sampler.stop()
        archived = len(svc.store.archive_entries())
        if archived != a.returned:
            raise RuntimeError(f"{archived} recordings archived, {a.returned} expected")

        # Phase 3: idle CPU after the offloads, against bare STATUS sweeps.
        settle = len(sweeps) + 2
        deadline = time.monotonic() + 10 * a.interval + 30
        while len(sweeps) < settle and time.monotonic() < deadline:
            time.sleep(0.05)

        def bare_status_sweep() -> float:
            c0 = time.thread_time()
            for u in urls:
                with RecorderClient(open_transport(u)) as c:
                    c.open()
                    c.status()
            return time.thread_time() - c0

        bare_cpu = statistics.median(bare_status_sweep() for _ in range(5))
        threads0 = thread_cpu()
        cpu0, w0, s0 = daemon.cpu_seconds(), time.perf_counter(), len(sweeps)
        time.sleep(a.idle_seconds)
        cpu1, w1, s1 = daemon.cpu_seconds(), time.perf_counter(), len(sweeps)
        threads1 = thread_cpu()
        by_thread = {k[1]: threads1[k] - threads0[k] for k in threads1 if k in threads0}
        by_thread["threads that ended (the sweeps' per-slot inspections, ...)"] = (
            cpu1[0] - cpu0[0] - sum(by_thread.values())
        )
        idle_cpu = sum(cpu1[k] - cpu0[k] for k in cpu1 if k in cpu0) / (w1 - w0)
        mem_after = daemon.memory()
    finally:
        stop.set()
        if svc is not None:
            svc.stop_maintenance(timeout=30)
        for relay in relays:
            stop_relay(relay)
        stop_fleet(fleet)
        shutil.rmtree(tmp, ignore_errors=True)

    def line(name: str, rows: list[dict[str, Any]]) -> str:
        t = [r["t"] for r in rows]
        b = [r["bare"] for r in rows]
        if not rows:
            return f"| {name} | 0 | | | | |"
        p50, p95, b95 = pct(t, 50) * MS, pct(t, 95) * MS, pct(b, 95) * MS
        cells = [f"{v:.1f} ms" for v in (p50, p95, b95, p95 - b95)]
        return f"| {name} | {len(rows)} | " + " | ".join(cells) + " |"

    all4 = [r for r in loaded if r["running"] >= a.returned]
    mb_total = a.returned * size / 1e6
    buffers = f"{a.link_buffer} KiB" if a.link_buffer else "the kernel's"
    links = f" on links of {a.throttle:g} MB/s (relay buffers {buffers})"
    print(f"\n{a.slots} slots, {a.returned} x {a.mb:g} MiB returned, offload concurrency "
          f"{a.concurrency}, footage via the {a.via}{links if a.throttle else ''}, "
          f"sweep every {a.interval:g} s, "
          f"a badge every {a.gap:g} s")  # fmt: skip
    print(f"offloads: {t_started - t_return:.1f} s from return to the first offload running, "
          f"{t_done - t_started:.1f} s running ({mb_total / (t_done - t_started):.0f} MB/s "
          f"aggregate); {len(loaded)} decisions during them, {len(all4)} with all "
          f"{a.returned} running; returned: {', '.join(sorted(c['serial'] for c in carriers))}"
          )  # fmt: skip
    print("\n| badge to decision | decisions | p50 | p95 | bare grant round trips p95 | "
          "our overhead at p95 |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(line("idle dock (baseline)", idle))
    print(line("during the offloads", loaded))
    print(line(f"... with all {a.returned} running", all4))
    p95_idle = pct([r["t"] for r in idle], 95)
    if loaded:
        p95 = pct([r["t"] for r in loaded], 95)
        verdict = "met" if p95 <= 0.3 else "NOT met"
        print(f"\ndecision p95 during the offloads {p95 * MS:.1f} ms, {p95 / p95_idle:.1f} x "
              f"the idle dock's (target within 300 ms: {verdict})")  # fmt: skip
    print("\n| daemon memory, MiB | this process VmRSS | VmHWM | RSS summed with its children | "
          "PSS summed | children |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, m in (("idle, before the returns (baseline)", mem_idle),
                    (f"peak during the offloads ({sampler.samples} samples)", peak),
                    ("after the idle window", mem_after)):  # fmt: skip
        print(f"| {name} | {m['rss']:.1f} | {m['hwm']:.1f} | {m['rss_sum']:.1f} | "
              f"{m['pss_sum']:.1f} | {m['children']:.0f} |")  # fmt: skip
    # The target is read against PSS: the workers are forked from one server and share
    # its pages, which a sum of RSS counts once per process (that sum is printed too).
    worst = max(peak.get("pss_sum", 0.0), mem_after["pss_sum"]) * 1.048576
    rss = max(peak.get("rss_sum", 0.0), mem_after["rss_sum"], mem_after["hwm"]) * 1.048576
    print(f"peak memory of the daemon and its workers {worst:.1f} MB PSS summed "
          f"(target under 120 MB: {'met' if worst < 120 else 'NOT met'}); "
          f"RSS summed {rss:.1f} MB, shared pages counted once per process")  # fmt: skip
    baseline = bare_cpu / a.interval
    print(f"\n| idle CPU, % of one core | {a.idle_seconds:g} s, {s1 - s0} sweeps |")
    print("| --- | ---: |")
    print(f"| bare STATUS sweep of {a.slots} slots every {a.interval:g} s (baseline) | "
          f"{baseline * 100:.2f} |")  # fmt: skip
    if before_cpu is not None:
        print(f"| the daemon before the returns ({a.idle_before:g} s) | {before_cpu * 100:.2f} |")
    print(f"| the daemon after the offloads | {idle_cpu * 100:.2f} |")
    print(f"idle CPU {idle_cpu * 100:.2f} % of a core, {idle_cpu / baseline:.1f} x the bare "
          f"sweeps (target under 1 %: {'met' if idle_cpu < 0.01 else 'NOT met'})")  # fmt: skip
    top = sorted(by_thread.items(), key=lambda kv: -kv[1])[:6]
    print("where: " + ", ".join(f"{k} {v / (w1 - w0) * 100:.2f} %" for k, v in top))
    if sweeps:
        print(f"daemon sweeps: {len(sweeps)}, median {statistics.median(sweeps) * MS:.0f} ms, "
              f"max {max(sweeps) * MS:.0f} ms")  # fmt: skip
    print(f"load average at end: {loadavg()}")


if __name__ == "__main__":
    main()
