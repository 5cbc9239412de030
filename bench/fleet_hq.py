"""A simulated fleet's health and events through one local Mosquitto into dock-hq.

50,000 MQTT connections do not fit this machine, so the fleet's MESSAGE RATE is
simulated instead: a few publisher processes, each one paho client speaking for its
share of the docks (a topic, boot and seq numbers per simulated dock, payloads in the
form ``mqtt_contract.contract.encode`` gives them). Headquarters is the real ``Monitor`` (SQLite
WAL/FULL, alerts, manual acks after commit) in its own process; the broker is a
Mosquitto of our own on a free 127.0.0.1 port.

Phases, each at a controlled rate (the rate is the real one; only the durations are
compressed):

* baseline: the same stream into a bare paho subscriber that only counts (and reads
  the ``time`` of one message in 50 for its lag), ramped until it falls behind: the
  ceiling of Mosquitto + paho + these publishers on this machine;
* steady: N docks at one health a minute (N / 60 health/s), the first minute of the
  fleet (every dock is new to the database);
* shift change: the steady health plus every dock checking in 12 devices within
  5 minutes (N * 12 / 300 events/s);
* ramp: the shift-change mix (health : events = 5 : 12) at rising total rates until
  the p95 lag passes 2 s, the backlog grows, or the publishers cannot go faster.

Lag is the monitor's own: commit time minus the payload's ``time`` (the publisher's
clock when it published). Every step waits for headquarters to drain before the next.

    .venv/bin/python bench/fleet_hq.py            # about 4 minutes
    .venv/bin/python bench/fleet_hq.py --quick    # about 1.5 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hq.config import BrokerSettings  # noqa: E402
from mqtt_contract import contract  # noqa: E402
from tests.broker import Broker  # noqa: E402

LAG_TARGET_S = 2.0
SHIFT_CHECKINS = 12  # per dock ...
SHIFT_WINDOW_S = 300.0  # ... within five minutes
HEALTH_INTERVAL_S = 60.0
SLOTS = 4
BARE_LAG_EVERY = 50  # the bare subscriber reads the time of one message in this many
PUB_BATCH_MAX = 400  # messages a publisher sends per pass before looking at the clock
PUB_IDLE_S = 0.002
POLL_S = 0.5
DRAIN_TIMEOUT_S = 30.0
ACK_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 20.0
REPLY_TIMEOUT_S = 30.0
JOIN_TIMEOUT_S = 15.0


# ---------------------------------------------------------------------- payloads

_T_MARK = "1999-09-09T09:09:09.999Z"
_SEQ_MARK, _LAST_MARK = 918273645, 546372819


def _health_body(boot: str, seq: int, t: str, last: int, dock: str) -> dict[str, Any]:
    slots = [
        {
            "slot": str(n),
            "state": "ready",
            "serial": f"BWC-{dock}-{n}",
            "battery_pct": 96,
            "battery_health_pct": 88,
            "storage_free_bytes": 52_000_000_000,
            "drift_s": 0.012,
            "recordings_pending": 0,
        }
        for n in range(1, SLOTS + 1)
    ]
    part = {
        "uptime_s": 3600.0,
        "load_1m": 0.2,
        "cpu_temp_c": 51.5,
        "memory_used_pct": 31.0,
        "disk_free_bytes": 100_000_000_000,
        "evidence_free_bytes": 900_000_000_000,
        "outbox_pending": 0,
        "last_event": {"boot": boot, "seq": last},
        # as a dock sends it (a dock that has not restarted: only this boot)
        "boots": [{"boot": boot, "seq": last}],
    }
    return {"boot": boot, "seq": seq, "time": t, "dock": part, "slots": slots}


def _event_body(boot: str, seq: int, t: str, dock: str) -> dict[str, Any]:
    serial = f"BWC-{dock}-2"
    return {
        "type": contract.EventType.CHECKIN.value,
        "boot": boot,
        "seq": seq,
        "time": t,
        "actor": "dock",
        "subject": serial,
        "audit_seq": seq,
        "data": {
            "officer": f"O-{dock}",
            "serial": serial,
            "slot": "2",
            "custody": "docked",
        },
    }


def _template(kind: contract.Kind, body: dict[str, Any]) -> str:
    """``contract.encode``'s output with %-placeholders where the values change."""
    text = contract.encode(kind, body).decode()
    assert "%" not in text
    for old, new in (
        ('"@BOOT@"', '"%(boot)s"'),
        ("@DOCK@", "%(dock)s"),
        (f'"{_T_MARK}"', '"%(time)s"'),
        (str(_SEQ_MARK), "%(seq)d"),
        (str(_LAST_MARK), "%(last)d"),
    ):
        text = text.replace(old, new)
    return text


HEALTH_T = _template(
    contract.Kind.HEALTH, _health_body("@BOOT@", _SEQ_MARK, _T_MARK, _LAST_MARK, "@DOCK@")
)
EVENT_T = _template(contract.Kind.EVENT, _event_body("@BOOT@", _SEQ_MARK, _T_MARK, "@DOCK@"))


def _self_check() -> None:
    """The fast payloads are byte for byte what contract.encode gives."""
    t = contract.utc(time.time())
    v = {"boot": "0123abcd", "seq": 7, "time": t, "last": 3, "dock": "dock00042"}
    health = _health_body("0123abcd", 7, t, 3, "dock00042")
    assert (HEALTH_T % v).encode() == contract.encode(contract.Kind.HEALTH, health)
    event = _event_body("0123abcd", 7, t, "dock00042")
    assert (EVENT_T % v).encode() == contract.encode(contract.Kind.EVENT, event)


def dock_name(i: int) -> tuple[str, str]:
    return f"site{i // 100:04d}", f"dock{i:05d}"


# ---------------------------------------------------------------------- publishers


def _client(client_id: str, port: int) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    return mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)


def publisher(idx: int, nproc: int, docks: int, port: int, run_id: str, conn: Connection) -> None:
    """One paho client speaking for docks idx, idx + nproc, ...; runs the phases the
    parent sends: ("run", health/s, events/s, seconds, start_at) -> counts."""
    client = _client(f"fleet-sim-{run_id}-{idx}", port)
    client.max_inflight_messages_set(1000)  # many docks' worth of messages in flight
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    mine = list(range(idx, docks, nproc))
    names = [dock_name(i) for i in mine]
    boots = [f"{run_id}{i:08x}" for i in mine]
    h_topics = [contract.dock_topic(s, d, contract.Kind.HEALTH) for s, d in names]
    e_topics = [contract.dock_topic(s, d, contract.Kind.EVENT, "checkin") for s, d in names]
    h_seq = [0] * len(mine)
    e_seq = [0] * len(mine)
    hi = ei = 0
    try:
        for _ in range(1000):  # commands; the parent sends a handful
            cmd = conn.recv()
            if cmd[0] != "run":
                break
            _, h_rate, e_rate, duration, start_at = cmd
            time.sleep(max(0.0, start_at - time.time()))
            t0 = time.monotonic()
            sent_h = sent_e = 0
            last_info = None
            late = 0.0
            unsent = 0
            deadline = t0 + duration
            for _ in range(int(duration / PUB_IDLE_S) * 4 + 1000):
                now = time.monotonic()
                if now >= deadline:
                    break
                el = now - t0
                due_h = min(PUB_BATCH_MAX, int(h_rate * el) - sent_h)
                due_e = min(PUB_BATCH_MAX, int(e_rate * el) - sent_e)
                late = max(late, (int(h_rate * el) - sent_h) / h_rate if h_rate else 0.0)
                if due_h <= 0 and due_e <= 0:
                    time.sleep(PUB_IDLE_S)
                    continue
                # Messages paho has not written yet: the fleet's side of any lag.
                unsent = max(unsent, len(client._out_packet))
                t = contract.utc(time.time())
                # Interleave the two kinds in proportion within a pass (Bresenham).
                due_h, due_e = max(due_h, 0), max(due_e, 0)
                n, acc = due_h + due_e, 0
                for _ in range(n):
                    acc += due_h
                    if acc >= n:
                        acc -= n
                        j = hi
                        hi = (hi + 1) % len(mine)
                        h_seq[j] += 1
                        v = {
                            "boot": boots[j],
                            "seq": h_seq[j],
                            "time": t,
                            "last": e_seq[j],
                            "dock": names[j][1],
                        }
                        last_info = client.publish(h_topics[j], (HEALTH_T % v).encode(), qos=1)
                        sent_h += 1
                    else:
                        j = ei
                        ei = (ei + 1) % len(mine)
                        e_seq[j] += 1
                        v = {"boot": boots[j], "seq": e_seq[j], "time": t, "dock": names[j][1]}
                        last_info = client.publish(e_topics[j], (EVENT_T % v).encode(), qos=1)
                        sent_e += 1
            sent_at = time.monotonic() - t0
            if last_info is not None:
                last_info.wait_for_publish(ACK_TIMEOUT_S)
            conn.send(
                {
                    "health": sent_h,
                    "events": sent_e,
                    "elapsed": sent_at,
                    "late_s": late,
                    "unsent": unsent,
                    "acked_all": last_info is None or last_info.is_published(),
                }
            )
    finally:
        client.disconnect()
        client.loop_stop()


# ---------------------------------------------------------------------- subscribers


def bare_subscriber(port: int, run_id: str, conn: Connection) -> None:
    """Counts messages (QoS 1, acked by paho); reads the time of one in 50 for its lag."""
    from paho.mqtt.subscribeoptions import SubscribeOptions

    state = {"count": 0, "lags": []}
    marker = b'"time":"'

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        state["count"] += 1
        if state["count"] % BARE_LAG_EVERY == 0:
            p = msg.payload.find(marker) + len(marker)
            sent = contract.parse_utc(msg.payload[p : p + 24].decode())
            state["lags"].append(time.time() - sent)

    def on_connect(c: Any, *_a: Any) -> None:
        c.subscribe(contract.FLEET_FILTER, options=SubscribeOptions(qos=1))

    subscribed = mp.Event()
    client = _client(f"fleet-bare-{run_id}", port)
    client.on_message = on_message
    client.on_connect = on_connect
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    try:
        conn.send(subscribed.wait(READY_TIMEOUT_S))
        for _ in range(100_000):
            if conn.recv() != "stats":
                break
            lags, state["lags"] = state["lags"], []
            conn.send({"count": state["count"], "queued": 0, "lags": lags, "every": BARE_LAG_EVERY})
    finally:
        client.disconnect()
        client.loop_stop()


def hq_process(port: int, db: str, conn: Connection) -> None:
    """dock-hq's Monitor, alone in this process; stats and new lag samples on request."""
    from hq.monitor import Monitor

    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    monitor = Monitor(db, BrokerSettings(host="127.0.0.1", port=port), name="fleetbench")
    monitor.start()
    seen = 0
    try:
        conn.send(monitor.wait_subscribed(READY_TIMEOUT_S))
        for _ in range(100_000):
            if conn.recv() != "stats":
                break
            stats = monitor.stats()
            # Every lag sample since the last poll (the summary only keeps p50/p95 of the
            # last 10,000): read from the monitor's own deque under its lock.
            lag = monitor._lag_publish  # a benchmark looking inside
            with monitor._stats_lock:
                new = lag.count - seen
                lost = max(0, new - len(lag.samples))
                lags = list(lag.samples)[len(lag.samples) - min(new, len(lag.samples)) :]
                seen = lag.count
            c = stats["counts"]
            conn.send(
                {
                    "count": c["committed"],
                    "queued": stats["queued"],
                    "lags": lags,
                    "lost_samples": lost,
                    "every": 1,
                    "counts": c,
                    "summary": stats["lag_publish_s"],
                }
            )
    finally:
        monitor.stop()
        conn.send("stopped")


# ---------------------------------------------------------------------- the parent


@dataclass
class Step:
    name: str
    target: float  # msg/s
    seconds: float
    sent: int = 0
    achieved: float = 0.0
    late_s: float = 0.0
    unsent: int = 0
    backlog_end: int = 0
    queued_max: int = 0
    drain_s: float = 0.0
    drained: bool = False
    lags: list[float] = field(default_factory=list)
    lag_every: int = 1
    cpu: dict[str, float] = field(default_factory=dict)
    ok: bool = False
    why: str = ""

    def pct(self, p: float) -> float | None:
        if not self.lags:
            return None
        s = sorted(self.lags)
        return s[min(len(s) - 1, int(p / 100 * len(s)))]


class Rig:
    def __init__(self, port: int, docks: int, nproc: int, run_id: str) -> None:
        self.port, self.docks, self.nproc, self.run_id = port, docks, nproc, run_id
        self.pubs: list[tuple[mp.Process, Connection]] = []
        self.total_sent = 0
        self.procs: dict[str, list[psutil.Process]] = {}

    def start_publishers(self) -> None:
        for i in range(self.nproc):
            mine, theirs = mp.Pipe()
            p = mp.Process(
                target=publisher,
                args=(i, self.nproc, self.docks, self.port, self.run_id, theirs),
                daemon=True,
            )
            p.start()
            self.pubs.append((p, mine))
        self.procs["publishers"] = [psutil.Process(p.pid) for p, _ in self.pubs]

    def stop_publishers(self) -> None:
        for p, conn in self.pubs:
            if p.is_alive():
                with contextlib.suppress(OSError):
                    conn.send(("stop",))
        _reap([p for p, _ in self.pubs])
        self.pubs = []

    def cpu(self) -> dict[str, float]:
        out = {}
        for name, procs in self.procs.items():
            total = 0.0
            for p in procs:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    pass
            out[name] = total
        return out

    def step(
        self, sub: Connection, name: str, h_rate: float, e_rate: float, seconds: float
    ) -> Step:
        st = Step(name, h_rate + e_rate, seconds)
        st.lags += _ask(sub)["lags"]  # leftovers of the previous step belong to it
        st.lags.clear()
        cpu0, w0 = self.cpu(), time.monotonic()
        start_at = time.time() + 0.3
        n = self.nproc
        for _, conn in self.pubs:
            conn.send(("run", h_rate / n, e_rate / n, seconds, start_at))
        # Poll headquarters while the publishers run; bounded by time and count.
        replies = []
        deadline = time.monotonic() + seconds + ACK_TIMEOUT_S + 5
        for _ in range(int((seconds + ACK_TIMEOUT_S + 5) / POLL_S) + 10):
            stats = _ask(sub)
            st.lags += stats["lags"]
            st.queued_max = max(st.queued_max, stats["queued"])
            if all(conn.poll() for _, conn in self.pubs) or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        for _, conn in self.pubs:
            replies.append(conn.recv() if conn.poll(REPLY_TIMEOUT_S) else None)
        if any(r is None for r in replies):
            raise RuntimeError("a publisher did not report")
        st.sent = sum(r["health"] + r["events"] for r in replies)
        self.total_sent += st.sent
        st.achieved = st.sent / max(r["elapsed"] for r in replies)
        st.late_s = max(r["late_s"] for r in replies)
        st.unsent = sum(r["unsent"] for r in replies)
        stats = _ask(sub)
        st.lags += stats["lags"]
        st.backlog_end = self.total_sent - stats["count"]
        cpu1, w1 = self.cpu(), time.monotonic()
        st.cpu = {k: (cpu1[k] - cpu0.get(k, 0.0)) / (w1 - w0) for k in cpu1}
        # Drain before the next step, so one step's backlog is not the next one's.
        t0 = time.monotonic()
        for _ in range(int(DRAIN_TIMEOUT_S / 0.1) + 1):
            if stats["count"] >= self.total_sent or time.monotonic() - t0 > DRAIN_TIMEOUT_S:
                break
            time.sleep(0.1)
            stats = _ask(sub)
            st.lags += stats["lags"]
            st.queued_max = max(st.queued_max, stats["queued"])
        st.drain_s = time.monotonic() - t0
        st.drained = stats["count"] >= self.total_sent
        st.lag_every = stats["every"]
        p95 = st.pct(95)
        reasons = []
        if st.achieved < 0.95 * st.target:
            reasons.append(f"publishers reached only {st.achieved:.0f}/s")
        if p95 is None or p95 > LAG_TARGET_S:
            reasons.append(f"p95 lag {p95:.2f} s" if p95 is not None else "no lag samples")
        if st.backlog_end > st.target * LAG_TARGET_S or not st.drained:
            reasons.append(f"backlog {st.backlog_end} at the end")
        st.ok, st.why = not reasons, "; ".join(reasons)
        return st


def _ask(conn: Connection) -> dict[str, Any]:
    conn.send("stats")
    if not conn.poll(REPLY_TIMEOUT_S):
        raise RuntimeError("subscriber process did not answer")
    return conn.recv()


def _reap(procs: list[mp.Process]) -> None:
    for p in procs:
        p.join(JOIN_TIMEOUT_S)
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(5)
        if p.is_alive():
            p.kill()
            p.join(5)


class BenchBroker(Broker):
    """tests/broker.py's Mosquitto, but logging no more than connections (``log_type all`` writes a
    line per PUBLISH) and saving persistence at the default interval, not every second."""

    def _write_conf(self) -> None:
        super()._write_conf()
        text = self.conf_path.read_text()
        text = text.replace(
            "log_type all\n",
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n",
        )
        text = text.replace("autosave_interval 1\n", "autosave_interval 1800\n")
        self.conf_path.write_text(text)


def _fmt(v: float | None, unit: str = "") -> str:
    return "-" if v is None else f"{v:.3f}{unit}"


def _row(who: str, st: Step) -> str:
    cpu = " ".join(f"{k} {v * 100:3.0f}%" for k, v in st.cpu.items())
    return (
        f"{who:5} {st.name:14} {st.target:7.0f} {st.achieved:7.0f} {_fmt(st.pct(50)):>6} "
        f"{_fmt(st.pct(95)):>6} {_fmt(max(st.lags) if st.lags else None):>6} "
        f"{st.backlog_end:7d} {st.queued_max:7d} {st.unsent:6d} {st.drain_s:5.1f} "
        f"{'ok' if st.ok else 'NO':3} {cpu}" + (f"  ({st.why})" if st.why else "")
    )


def ramp(rig: Rig, sub: Connection, who: str, rates: list[int], seconds: float) -> list[Step]:
    h_frac = (1 / HEALTH_INTERVAL_S) / (1 / HEALTH_INTERVAL_S + SHIFT_CHECKINS / SHIFT_WINDOW_S)
    steps = []
    for rate in rates:
        st = rig.step(sub, f"ramp {rate}", rate * h_frac, rate * (1 - h_frac), seconds)
        steps.append(st)
        print(_row(who, st), flush=True)
        if not st.ok:
            break
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short phases (about 1.5 minutes)")
    ap.add_argument("--docks", type=int, default=50_000, help="simulated fleet size")
    ap.add_argument("--publishers", type=int, default=2, help="publisher processes")
    ap.add_argument("--steady-s", type=float, default=None)
    ap.add_argument("--burst-s", type=float, default=None)
    ap.add_argument("--step-s", type=float, default=None, help="seconds per ramp step")
    ap.add_argument("--ramp", default=None, help="comma-separated msg/s for dock-hq's ramp")
    ap.add_argument("--bare-ramp", default=None, help="comma-separated msg/s for the baseline")
    a = ap.parse_args()
    q = a.quick
    steady_s = a.steady_s or (15.0 if q else 60.0)
    burst_s = a.burst_s or (20.0 if q else 75.0)
    step_s = a.step_s or (6.0 if q else 10.0)
    hq_ramp = "3000,6000,9000" if q else "3000,4500,6000,7500,9000"
    bare_ramp = "4000,8000,12000" if q else "4000,6000,8000,10000,12000,16000"
    hq_rates = [int(x) for x in (a.ramp or hq_ramp).split(",")]
    bare_rates = [int(x) for x in (a.bare_ramp or bare_ramp).split(",")]
    _self_check()
    health_rate = a.docks / HEALTH_INTERVAL_S
    event_rate = a.docks * SHIFT_CHECKINS / SHIFT_WINDOW_S
    per_dock_burst = 1 / HEALTH_INTERVAL_S + SHIFT_CHECKINS / SHIFT_WINDOW_S
    print(
        f"fleet {a.docks} docks: steady {health_rate:.0f} health/s; shift change "
        f"+{event_rate:.0f} check-ins/s = {health_rate + event_rate:.0f} msg/s; "
        f"{os.cpu_count()} CPUs, {a.publishers} publisher processes",
        flush=True,
    )
    tmp = tempfile.mkdtemp(prefix="bench-fleet-hq-")
    run_id = f"{os.getpid() % 0xFFFF:04x}"
    broker = BenchBroker(tmp, persistence=True)
    children: list[mp.Process] = []
    header = (
        "who   step            target    sent  p50 s  p95 s  max s backlog  queued unsent drain "
        "ok  CPU (% of one core)"
    )
    results: dict[str, Any] = {}
    try:
        broker.start()
        rig = Rig(broker.port, a.docks, a.publishers, run_id)
        rig.procs["broker"] = [psutil.Process(broker.pid)]
        print(header, flush=True)

        # Baseline: the bare subscriber.
        mine, theirs = mp.Pipe()
        bare = mp.Process(target=bare_subscriber, args=(broker.port, run_id, theirs), daemon=True)
        bare.start()
        children.append(bare)
        if not (mine.poll(READY_TIMEOUT_S) and mine.recv()):
            raise RuntimeError("bare subscriber did not subscribe")
        rig.procs["sub"] = [psutil.Process(bare.pid)]
        rig.start_publishers()
        time.sleep(1.0)
        results["bare"] = ramp(rig, mine, "bare", bare_rates, step_s)
        rig.stop_publishers()
        mine.send("stop")
        _reap([bare])

        # dock-hq.
        rig.total_sent = 0
        mine, theirs = mp.Pipe()
        db = os.path.join(tmp, "fleet.sqlite3")
        hq = mp.Process(target=hq_process, args=(broker.port, db, theirs), daemon=True)
        hq.start()
        children.append(hq)
        if not (mine.poll(READY_TIMEOUT_S) and mine.recv()):
            raise RuntimeError("dock-hq did not subscribe")
        rig.procs["sub"] = [psutil.Process(hq.pid)]
        rig.start_publishers()
        time.sleep(1.0)
        steady = rig.step(mine, "steady", health_rate, 0.0, steady_s)
        print(_row("hq", steady), flush=True)
        burst = rig.step(mine, "shift change", health_rate, event_rate, burst_s)
        print(_row("hq", burst), flush=True)
        results["hq"] = [steady, burst, *ramp(rig, mine, "hq", hq_rates, step_s)]
        rig.stop_publishers()
        final = _ask(mine)
        mine.send("stop")
        if mine.poll(JOIN_TIMEOUT_S):
            mine.recv()
        _reap([hq])
        results["final"] = final
        results["db_mb"] = sum(
            os.path.getsize(os.path.join(tmp, f))
            for f in os.listdir(tmp)
            if f.startswith("fleet.sqlite3")
        ) / (1 << 20)
        results["sent"] = rig.total_sent
    finally:
        for p in children:
            if p.is_alive():
                p.terminate()
        _reap(children)
        if "rig" in locals():
            rig.stop_publishers()
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, a.docks, per_dock_burst)


def _best(steps: list[Step]) -> Step | None:
    good = [s for s in steps if s.ok and s.name.startswith("ramp")]
    return max(good, key=lambda s: s.achieved) if good else None


def report(results: dict[str, Any], docks: int, per_dock_burst: float) -> None:
    hq_steps: list[Step] = results["hq"]
    steady, burst = hq_steps[0], hq_steps[1]
    c = results["final"]["counts"]
    bare_best, hq_best = _best(results["bare"]), _best(hq_steps[2:])
    bare_all = results["bare"]
    bare_cap = bare_best.achieved if bare_best else 0.0
    bare_limited = bare_all[-1].ok or "publishers" in bare_all[-1].why
    hq_cap = hq_best.achieved if hq_best else 0.0
    print()
    print(f"== results ({time.strftime('%Y-%m-%d')}, {docks} docks) ==")
    print(
        f"messages sent to dock-hq {results['sent']}, received {c['received']}, committed "
        f"{c['committed']}, duplicates {c['duplicates']}, rejected {c['rejected']}, "
        f"alerts opened {c['alerts_opened']}, batches {c['batches']} "
        f"(mean {c['committed'] / max(1, c['batches']):.0f} per batch); "
        f"db {results['db_mb']:.0f} MB"
    )
    for label, st in (("steady (1 health/min)", steady), ("shift change", burst)):
        print(
            f"{label:22} {st.target:6.0f} msg/s: lag p50 {_fmt(st.pct(50), ' s')}, p95 "
            f"{_fmt(st.pct(95), ' s')}, max {_fmt(max(st.lags) if st.lags else None, ' s')}; "
            f"dock-hq CPU {st.cpu.get('sub', 0) * 100:.0f}% of a core; "
            f"{'kept up' if st.ok else 'did NOT keep up: ' + st.why}"
        )
    more = " (or more: the publishers were the limit)" if bare_limited else ""
    print(f"bare subscriber sustained {bare_cap:.0f} msg/s{more}")
    print(
        f"dock-hq sustained {hq_cap:.0f} msg/s (shift-change mix) = "
        f"{hq_cap * HEALTH_INTERVAL_S:.0f} docks at 1 health/min, "
        f"{hq_cap / per_dock_burst:.0f} docks in a shift change; "
        f"ratio to the bare subscriber {hq_cap / bare_cap if bare_cap else float('nan'):.2f}"
    )
    target = burst.target
    print(
        f"burst headroom: {hq_cap / target if target else float('nan'):.1f} x the "
        f"{docks}-dock shift change ({target:.0f} msg/s)"
    )
    met = steady.ok and burst.ok and c["committed"] == results["sent"] and not c["duplicates"]
    print(f"target ({docks} docks + shift change, lag < {LAG_TARGET_S:g} s): ", end="")
    print("MET" if met else "NOT met")


if __name__ == "__main__":
    main()
