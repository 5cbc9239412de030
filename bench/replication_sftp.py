"""Replication of a sealed package to a local OpenSSH sshd against ``scp -r`` of the same
package to the same server, in the same run.

The dock's side is the real one: ``ReplicationEngine`` + ``SftpTarget`` (paramiko's SFTP
over OpenSSH's client, the default for a key target; "paramiko" below: over paramiko's own
SSH layer, ``ssh_client = "paramiko"``): every file uploaded to a ``.part`` name and
renamed, then read back from the server and hashed against the manifests, the queue row
and the audit entries. The baseline: ``scp -r`` (the SFTP protocol, OpenSSH's C client) of
the package folder, no verification. Both go to a fresh folder on the same sshd
(tests/sshd_server.py: its own config, keys and port on 127.0.0.1). Each round runs scp,
both verification modes (``verify = "read-back"``, the default, and
``"remote-sha256sum"``: the server hashes what it stored) and the default mode over
paramiko's SSH layer, in a rotating order; the ratio (scp time / dock time: 1.0 = as fast
as scp) is the median over rounds. Each round also times the SFTP target's bare upload
and bare read of the same files (no engine, no verification; the default client) to show
where the time goes. The load average is printed: the machine is shared.

    .venv/bin/python bench/replication_sftp.py [--files 4] [--mb 32] [--repeat 7]
        [--throttle 12.5]

``--throttle MBPS``: scp and the dock both reach sshd through one paced link
(bench/throttle_relay.py ``--shared``: MBPS each way, shared by every connection, full
duplex as an Ethernet link is; 12.5 = 100 Mbit/s), the link a dock has to its unit.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from throttle_relay import start as start_relay  # noqa: E402
from throttle_relay import stop as stop_relay  # noqa: E402

from dock.config.replication import ReplicationConfig  # noqa: E402
from dock.evidence.bagit import make_bag  # noqa: E402
from dock.evidence.replication import ReplicationEngine  # noqa: E402
from dock.replicas.sftp import SftpTarget  # noqa: E402
from dock.storage.audit import AuditLog  # noqa: E402
from dock.storage.evidence_tables import SealTable  # noqa: E402
from dock.storage.keys import load_or_create_signing_key  # noqa: E402
from dock.storage.store import Store  # noqa: E402
from tests.sshd_server import Sshd  # noqa: E402


def through_relay(sshd: Sshd, url: str) -> None:
    """Point the bench's scp and targets at the relay in front of ``sshd``."""
    port = int(url.rsplit(":", 1)[1])
    line = sshd.known_hosts.read_text().split(" ", 1)[1]
    sshd.known_hosts.write_text(f"[127.0.0.1]:{port} {line}")
    sshd.port = port


def make_package(folder: Path, files: int, mb: int) -> tuple[Store, AuditLog, str]:
    """A store with one sealed package of ``files`` x ``mb`` MiB (incompressible)."""
    src = folder / "src"
    src.mkdir()
    payload = {}
    for n in range(files):
        p = src / f"REC{n:06d}.mp4"
        with open(p, "wb") as f:
            for i in range(mb):
                f.write(hashlib.shake_256(f"{n}-{i}".encode()).digest(1 << 20))
        payload[p.name] = str(p)
    evidence = folder / "evidence"
    bag_rel = "bags/bench/bench_package"
    (evidence / "bags" / "bench").mkdir(parents=True)
    bag = make_bag(str(evidence / bag_rel), payload, {"Source-Organization": "bench"})
    store = Store(str(folder / "dock.db"))
    audit = AuditLog(
        str(folder / "audit.db"), load_or_create_signing_key(str(folder / "k")), "bench"
    )
    SealTable(store).put_audited("BENCH", bag_rel, bag.tagmanifest_sha256, bag.payload_oxum, 0.0)
    return store, audit, str(evidence)


#: The dock's sides: name -> (verify, ssh_client).
SIDES = {
    "read-back": ("read-back", "auto"),
    "remote-sha256sum": ("remote-sha256sum", "auto"),
    "paramiko read-back": ("read-back", "paramiko"),
}


def run_dock(sshd: Sshd, store: Store, audit: AuditLog, evidence: str, n: int, side: str) -> float:
    verify, client = SIDES[side]
    cfg = sshd.target(name=f"{verify}-{client}-{n}", verify=verify, ssh_client=client)
    target, reader = SftpTarget(cfg), SftpTarget(cfg)  # the reader verifies beside uploads
    dock_id = f"dock{n}-{side.replace(' ', '-')}"  # a folder of its own at the target
    engine = ReplicationEngine(store, audit, evidence, dock_id, [target],
                               ReplicationConfig(),
                               readers={target.name: reader})  # fmt: skip
    t0 = time.perf_counter()
    report = engine.run_once()
    elapsed = time.perf_counter() - t0
    assert len(report.replicated) == 1, report
    return elapsed


def run_scp(sshd: Sshd, evidence: str, n: int) -> float:
    dest = sshd.root_dir / f"scp{n}"
    dest.mkdir()
    cmd = ["scp", "-q", "-r", "-P", str(sshd.port), "-i", str(sshd.client_key),
           "-o", f"UserKnownHostsFile={sshd.known_hosts}", "-o", "StrictHostKeyChecking=yes",
           "-o", "BatchMode=yes", os.path.join(evidence, "bags/bench/bench_package"),
           f"{sshd.user}@127.0.0.1:{dest}/"]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def run_bare(sshd: Sshd, evidence: str, n: int) -> tuple[float, float]:
    """Seconds for SftpTarget alone to upload the payload files, then to read them back."""
    bag = Path(evidence) / "bags/bench/bench_package/data"
    files = sorted(bag.iterdir())
    target = SftpTarget(sshd.target(name=f"bare{n}"))
    target.connect()
    try:
        t0 = time.perf_counter()
        for p in files:
            with open(p, "rb") as f:
                target.upload(f"bare{n}/{p.name}", f, 0, p.stat().st_size, lambda _s: None)
        t1 = time.perf_counter()
        for p in files:
            h = hashlib.sha256()
            for chunk in target.read(f"bare{n}/{p.name}"):
                h.update(chunk)
        t2 = time.perf_counter()
    finally:
        target.close()
    return t1 - t0, t2 - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--mb", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--throttle", type=float, default=0.0, metavar="MBPS",
                    help="both through one link paced to MBPS each way (12.5: 100 Mbit/s)",
                    )  # fmt: skip
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store, audit, evidence = make_package(folder, args.files, args.mb)
        sshd = Sshd(folder / "sshd").start()
        relay = None
        if args.throttle:
            relay, url = start_relay(f"tcp://127.0.0.1:{sshd.port}", args.throttle, 0, shared=True)
            through_relay(sshd, url)
        total = args.files * args.mb
        payload = sum(p.stat().st_size for p in (Path(evidence) / "bags").rglob("data/*"))
        times: dict[str, list[float]] = {"scp": [], **{side: [] for side in SIDES}}
        ratios: dict[str, list[float]] = {side: [] for side in SIDES}
        loads = []
        try:
            for n in range(args.repeat):
                order = list(times)[n % len(times) :] + list(times)[: n % len(times)]
                got = {}
                for what in order:
                    if what == "scp":
                        got[what] = run_scp(sshd, evidence, n)
                    else:
                        got[what] = run_dock(sshd, store, audit, evidence, n, what)
                up, down = run_bare(sshd, evidence, n)
                loads.append(os.getloadavg()[0])
                for what, t in got.items():
                    times[what].append(t)
                for what in ratios:
                    ratios[what].append(got["scp"] / got[what])
                mib = payload / (1 << 20)
                sides = " | ".join(f"{side} {total / got[side]:6.1f} MiB/s "
                                   f"({ratios[side][-1]:.2f})" for side in SIDES)  # fmt: skip
                print(f"run {n + 1}: scp {total / got['scp']:6.1f} MiB/s | {sides} | "
                      f"bare upload {mib / up:6.1f}, bare read {mib / down:6.1f} MiB/s | "
                      f"load {loads[-1]:.2f}", flush=True)  # fmt: skip
        finally:
            if relay is not None:
                stop_relay(relay)
            sshd.stop()
        if args.throttle:
            print(f"through one link paced to {args.throttle:g} MB/s each way (shared)")
        print(f"{args.files} x {args.mb} MiB, {args.repeat} rounds, load average "
              f"{min(loads):.2f}-{max(loads):.2f} (2 cores here):")  # fmt: skip
        for what, ts in times.items():
            line = f"  {what:18s} median {total / statistics.median(ts):6.1f} MiB/s"
            if what in ratios:
                r = ratios[what]
                line += (f"   ratio median {statistics.median(r):.2f} "
                         f"({min(r):.2f}-{max(r):.2f}) (target >= 0.8)")  # fmt: skip
            print(line)


if __name__ == "__main__":
    main()
