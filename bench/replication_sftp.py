"""Replication of a sealed package to a local OpenSSH sshd against ``scp -r`` of the same
package to the same server, in the same run.

The dock's side is the real one: ``ReplicationEngine`` + ``SftpTarget`` (paramiko): every
file uploaded to a ``.part`` name and renamed, then read back from the server and hashed
against the manifests, the queue row and the audit entries. The baseline: ``scp -r`` (the
SFTP protocol, OpenSSH's C client) of the package folder, no verification. Both go to a
fresh folder on the same sshd (tests/sshd_server.py: its own config, keys and port on
127.0.0.1). Runs alternate; the ratio (scp time / dock time: 1.0 = as fast as scp) is the
median of pairs.

    .venv/bin/python bench/replication_sftp.py [--files 4] [--mb 32] [--repeat 5]
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

from dock.config.replication import ReplicationConfig  # noqa: E402
from dock.evidence.bagit import make_bag  # noqa: E402
from dock.evidence.replication import ReplicationEngine  # noqa: E402
from dock.replicas.sftp import SftpTarget  # noqa: E402
from dock.storage.audit import AuditLog  # noqa: E402
from dock.storage.evidence_tables import SealTable  # noqa: E402
from dock.storage.keys import load_or_create_signing_key  # noqa: E402
from dock.storage.store import Store  # noqa: E402
from tests.sshd_server import Sshd  # noqa: E402


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


def run_dock(sshd: Sshd, store: Store, audit: AuditLog, evidence: str, n: int) -> float:
    target = SftpTarget(sshd.target(name=f"t{n}"))
    reader = SftpTarget(sshd.target(name=f"t{n}"))  # read-backs beside the uploads
    engine = ReplicationEngine(store, audit, evidence, f"dock{n}", [target], ReplicationConfig(),
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--mb", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store, audit, evidence = make_package(folder, args.files, args.mb)
        sshd = Sshd(folder / "sshd").start()
        total = args.files * args.mb
        ratios, dock_t, scp_t = [], [], []
        try:
            for n in range(args.repeat):
                first_scp = n % 2 == 0
                s = run_scp(sshd, evidence, n) if first_scp else 0.0
                d = run_dock(sshd, store, audit, evidence, n)
                if not first_scp:
                    s = run_scp(sshd, evidence, n)
                dock_t.append(d)
                scp_t.append(s)
                ratios.append(s / d)
                print(f"run {n + 1}: scp {total / s:7.1f} MiB/s   dock (with verification) "
                      f"{total / d:7.1f} MiB/s   ratio {s / d:.2f}")  # fmt: skip
        finally:
            sshd.stop()
        print(f"{args.files} x {args.mb} MiB: scp best {total / min(scp_t):.1f} MiB/s, dock best "
              f"{total / min(dock_t):.1f} MiB/s; ratio median {statistics.median(ratios):.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}) (target >= 0.8)")  # fmt: skip


if __name__ == "__main__":
    main()
