"""Replication to a real OpenSSH sshd on 127.0.0.1 (tests/sshd_server.py) through
dock/replicas/sftp.py: verified copies, a server killed mid-upload, a corrupted copy, a
full target, refused credentials and an unknown host key."""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dock.config.replication import ReplicationConfig
from dock.domain.replica import ReplicaAuthError
from dock.evidence import replication
from dock.evidence.replication import ReplicationEngine
from dock.replicas import openssh_link, sftp
from dock.replicas.build import target_from_config
from dock.replicas.sftp import SftpTarget
from dock.storage.replication_table import replication_rows
from tests.sshd_server import Sshd, sshd_binary

pytestmark = pytest.mark.skipif(sshd_binary() is None, reason="no sshd (openssh-server)")


@pytest.fixture
def sshd(tmp_path):
    server = Sshd(tmp_path / "sshd").start()
    yield server
    server.stop()


def wait_for(done: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Until ``done()`` (the server's own progress), polled at most ``limit_s`` seconds;
    a test that waited in vain fails here, not later for a reason it hid."""
    deadline = time.monotonic() + limit_s
    for _ in range(int(limit_s / 0.005)):
        if done():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.005)
    raise AssertionError(f"waited {limit_s:.0f} s in vain")


def sealed(make_dock, mb: float = 0.4, **policy):
    svc, recs = make_dock(
        {"battery_percent": 95.0, "recordings": 2, "recording_mb": mb}, policy=policy or None
    )
    svc.offloader.erase_after_verify = svc.policy.erase_on_device == "after_verify"
    svc.sweep()
    assert len(svc.store.archive_entries()) == 2
    return svc, recs


def engine(svc, target, reader=None, **cfg):
    return ReplicationEngine(
        svc.store, svc.audit, svc.offloader.evidence_dir, "dock-7", [target],
        ReplicationConfig(**cfg), readers={target.name: reader} if reader else None,
    )  # fmt: skip


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def local_bag(svc) -> tuple[str, dict[str, bytes]]:
    [seal] = svc.store._db().execute("SELECT bag FROM seals").fetchall()
    bag = seal[0]
    return bag, tree(Path(svc.offloader.evidence_dir) / bag)


#: The SSH layer under the SFTP session: OpenSSH's client (the default where it can
#: serve) and paramiko's own (a password target, or chosen).
CLIENTS = pytest.mark.parametrize(
    "client",
    [
        pytest.param("openssh", marks=pytest.mark.skipif(
            openssh_link.ssh_binary() is None, reason="no ssh (openssh-client)")),
        "paramiko",
    ],
)  # fmt: skip


@CLIENTS
def test_a_package_reaches_sshd_whole_and_verified(make_dock, sshd, client) -> None:
    """A second copy at the unit's storage (004 att.3 art.5; 004 att.2 §4): the package
    arrives whole, is read back and matches its manifest before it counts."""
    svc, _ = sealed(make_dock)
    target = target_from_config(sshd.target(ssh_client=client))
    report = engine(svc, target).run_once()
    assert len(report.replicated) == 1 and not report.failed
    bag, local = local_bag(svc)
    remote = tree(sshd.root_dir / "dock-7" / os.path.basename(bag))
    assert remote == local  # every payload and tag file, byte for byte; no .part left
    [row] = replication_rows(svc.store)
    assert row["state"] == "replicated" and row["target"] == "central"
    entry = next(e for e in svc.audit.entries() if e.kind == "package_replicated")
    assert entry.data["target"] == "central" and entry.data["bag"] == bag
    assert entry.data["verified_by"] == {"read-back": len(local)}  # every file read back
    assert all(e["second_copy_at"] for e in svc.store.archive_entries())


@CLIENTS
def test_a_server_killed_mid_upload_is_resumed_from_the_partial(make_dock, sshd, client) -> None:
    svc, _ = sealed(make_dock, mb=2.0)
    target = SftpTarget(sshd.target(ssh_client=client))
    offsets: list[tuple[str, int]] = []
    upload = target.upload

    def recording_upload(relpath, source, offset, size, progress):
        offsets.append((relpath, offset))
        return upload(relpath, source, offset, size, progress)

    target.upload = recording_upload  # type: ignore[method-assign]
    eng = engine(svc, target)
    killed: list[str] = []
    bag_name = os.path.basename(local_bag(svc)[0])

    def kill_at_a_megabyte(rel: str, sent: int) -> None:
        if rel.startswith("data/") and sent >= 1 << 20 and not killed:
            killed.append(rel)
            # writes are pipelined (255 KiB requests): kill once the server has stored some
            part = sshd.root_dir / "dock-7" / bag_name / (rel + ".part")
            wait_for(lambda: part.exists() and part.stat().st_size > 0)
            sshd.kill()

    eng.on_progress = kill_at_a_megabyte
    report = eng.run_once()
    assert killed and report.failed and not report.replicated
    assert "connection lost" in report.failed[0][2] or "cannot connect" in report.failed[0][2]
    assert replication_rows(svc.store)[0]["state"] == "failed"
    bag, local = local_bag(svc)
    part = sshd.root_dir / "dock-7" / os.path.basename(bag) / (killed[0] + ".part")
    assert 0 < part.stat().st_size < len(local[killed[0]])
    kept = part.stat().st_size

    sshd.start()
    eng.on_progress = None
    eng.retry(None)
    report = eng.run_once()
    assert len(report.replicated) == 1
    assert any(r.endswith(killed[0] + ".part") and o == kept for r, o in offsets)
    assert tree(sshd.root_dir / "dock-7" / os.path.basename(bag)) == local


@pytest.mark.parametrize("beside", [False, True], ids=["read-back-after", "read-back-beside"])
def test_a_corrupted_copy_at_the_target_is_caught_and_sent_again(
    make_dock, sshd, beside: bool
) -> None:
    svc, _ = sealed(make_dock)
    reader = SftpTarget(sshd.target()) if beside else None
    eng = engine(svc, SftpTarget(sshd.target()), reader)
    flipped: list[str] = []

    def flip_a_byte(name: str, remote: str) -> None:
        if "/data/" in remote and not flipped:
            p = sshd.root_dir / remote
            data = bytearray(p.read_bytes())
            data[100] ^= 0x40
            p.write_bytes(bytes(data))
            flipped.append(remote)

    eng.before_verify = flip_a_byte
    report = eng.run_once()
    assert flipped and len(report.replicated) == 1
    kinds = [e.kind for e in svc.audit.entries()]
    assert kinds.count("package_replicated") == 1 and "replication_failed" not in kinds
    bag, local = local_bag(svc)
    assert tree(sshd.root_dir / "dock-7" / os.path.basename(bag)) == local
    entry = next(e for e in svc.audit.entries() if e.kind == "package_replicated")
    assert entry.data["verified_by"] == {"read-back": len(local)}  # each file read back


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as the target's folder needs root")
    where = tmp_path / "small"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_target_fails_clearly_and_nothing_is_replicated(
    make_dock, tmp_path, small_disk
) -> None:
    server = Sshd(tmp_path / "sshd-small", root_dir=small_disk).start()
    try:
        svc, _ = sealed(make_dock)
        report = engine(svc, SftpTarget(server.target())).run_once()
    finally:
        server.stop()
    assert not report.replicated
    why = report.failed[0][2]
    assert "no space left or quota reached" in why and "\n" not in why
    [row] = replication_rows(svc.store)
    assert row["state"] == "failed" and row["reason"] == why
    assert all(e["second_copy_at"] is None for e in svc.store.archive_entries())
    entry = next(e for e in svc.audit.entries() if e.kind == "replication_failed")
    assert entry.data["target"] == "central" and entry.data["reason"] == why


@CLIENTS
def test_wrong_credentials_are_one_clear_line_and_nothing_is_replicated(
    make_dock, sshd, tmp_path, client
) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True)  # fmt: skip
    svc, _ = sealed(make_dock, mb=0.1)
    target = SftpTarget(sshd.target(key_file=str(stranger), ssh_client=client))
    with pytest.raises(ReplicaAuthError, match="login refused for user"):
        target.connect()
    report = engine(svc, target).run_once()
    assert not report.replicated and "login refused" in report.failed[0][2]
    assert replication_rows(svc.store)[0]["state"] == "failed"
    assert all(e["second_copy_at"] is None for e in svc.store.archive_entries())
    assert not any((sshd.root_dir).iterdir())


@CLIENTS
def test_an_unknown_host_key_is_refused(sshd, tmp_path, client) -> None:
    other = tmp_path / "other_host"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, blob = Path(str(other) + ".pub").read_text().split()[:2]
    wrong = tmp_path / "known_wrong"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")
    with pytest.raises(ReplicaAuthError, match="host key differs"):
        SftpTarget(sshd.target(known_hosts_file=str(wrong), ssh_client=client)).connect()
    empty = tmp_path / "known_empty"
    empty.write_text("")
    with pytest.raises(ReplicaAuthError, match="not in known_hosts_file: refused") as err:
        SftpTarget(sshd.target(known_hosts_file=str(empty), ssh_client=client)).connect()
    assert "\n" not in str(err.value)


def test_after_second_copy_the_recorder_keeps_its_copy_until_the_replica_is_verified(
    make_dock, sshd
) -> None:
    """The recorder's copy goes only once a verified second copy exists off the dock
    (004 att.3 art.5; 004 att.2 §4)."""
    svc, recs = sealed(make_dock, mb=0.2, erase_on_device="after_second_copy")
    model = recs[0].model
    svc.offload("1")
    assert len(model.recordings) == 2  # kept: no second copy yet
    eng = engine(svc, SftpTarget(sshd.target()))
    seen: list[int] = []
    eng.before_verify = lambda *a: seen.append(len(model.recordings))
    assert len(eng.run_once().replicated) == 1
    assert seen and set(seen) == {2}  # nothing erased while the copy was being checked
    svc.offload("1")  # the daemon's offload, as after `dock confirm-copy`
    assert model.recordings == {} or len(model.recordings) == 0
    erased = [e for e in svc.audit.entries() if e.kind == "erase"]
    assert len(erased) == 2
    copies = [e for e in svc.audit.entries() if e.kind == "second_copy"]
    assert {e.data["target"] for e in copies} == {"central"}
    assert max(e.seq for e in copies) < min(e.seq for e in erased)


@CLIENTS
def test_remote_sha256sum_verifies_at_the_server_and_catches_a_corrupted_copy(
    make_dock, sshd, monkeypatch, client, read_beside
) -> None:
    """Files as large as those read back beside their upload are hashed at the server
    all the same: nothing is read back of them."""
    monkeypatch.setattr(sftp, "REMOTE_HASH_MIN", 200 << 10)  # data hashed there, tags read
    svc, _ = sealed(make_dock)
    cfg = sshd.target(verify="remote-sha256sum", ssh_client=client)
    target, reader = target_from_config(cfg), target_from_config(cfg)
    read_back: list[str] = []
    read = reader.read

    def recording_read(relpath: str):
        read_back.append(relpath)
        return read(relpath)

    reader.read = recording_read  # type: ignore[method-assign]
    eng = engine(svc, target, reader)
    flipped: list[str] = []

    def flip_a_byte(name: str, remote: str) -> None:
        if "/data/" in remote and not flipped:
            p = sshd.root_dir / remote
            data = bytearray(p.read_bytes())
            data[100] ^= 0x40
            p.write_bytes(bytes(data))
            flipped.append(remote)

    eng.before_verify = flip_a_byte
    report = eng.run_once()
    assert flipped and len(report.replicated) == 1
    assert read_back and not [r for r in read_back if "/data/" in r]  # only the tag files
    kinds = [e.kind for e in svc.audit.entries()]
    assert kinds.count("package_replicated") == 1 and "replication_failed" not in kinds
    bag, local = local_bag(svc)
    assert tree(sshd.root_dir / "dock-7" / os.path.basename(bag)) == local
    entry = next(e for e in svc.audit.entries() if e.kind == "package_replicated")
    data_files = sum(1 for rel in local if rel.startswith("data/"))
    assert entry.data["verified_by"] == {  # what proved the copy, file by file
        "target-sha256sum": data_files,
        "read-back": len(local) - data_files,
    }


def test_remote_sha256sum_on_an_sftp_only_account_fails_in_one_line(
    make_dock, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(sftp, "REMOTE_HASH_MIN", 0)
    server = Sshd(tmp_path / "sftp_only")
    server.config.write_text(server.config.read_text() + "ForceCommand internal-sftp\n")
    server.start()
    try:
        svc, _ = sealed(make_dock)
        eng = engine(svc, SftpTarget(server.target(verify="remote-sha256sum")))
        report = eng.run_once()
        assert not report.replicated and report.failed
        reason = report.failed[0][2]
        assert "sha256sum" in reason and 'verify = "read-back"' in reason and "\n" not in reason
        assert replication_rows(svc.store)[0]["state"] == "failed"
        assert "package_replicated" not in [e.kind for e in svc.audit.entries()]
    finally:
        server.stop()


@pytest.fixture
def read_beside(monkeypatch):
    """Files of 256 KiB and more followed by their read-back, the stored size asked
    every 256 KiB sent: the test packages' 2 MB recordings go the way a 1 GB one does."""
    monkeypatch.setattr(replication, "BESIDE_MIN", 256 << 10)
    monkeypatch.setattr(replication, "BESIDE_STEP", 256 << 10)


def following(reader: SftpTarget, root: Path) -> list[tuple[str, int, int, bool]]:
    """Each range the reader reads while a file grows: (relpath, start, end, whether its
    final name was there yet)."""
    seen: list[tuple[str, int, int, bool]] = []
    open_growing = reader.open_growing

    def recording_open(relpath: str):
        growing = open_growing(relpath)
        read_range = growing.read_range

        def recording_read(start: int, end: int):
            final = root / relpath.removesuffix(replication.PART)
            seen.append((relpath, start, end, final.exists()))
            return read_range(start, end)

        growing.read_range = recording_read  # type: ignore[method-assign]
        return growing

    reader.open_growing = recording_open  # type: ignore[method-assign]
    return seen


@CLIENTS
def test_a_large_file_is_read_back_while_it_is_uploaded(
    make_dock, sshd, read_beside, client
) -> None:
    svc, _ = sealed(make_dock, mb=2.0)
    cfg = sshd.target(ssh_client=client)
    reader = SftpTarget(cfg)
    seen = following(reader, sshd.root_dir)
    eng = engine(svc, SftpTarget(cfg), reader)

    def hold_until_read_beside(rel: str, sent: int) -> None:
        """Half-way through the first recording, the upload waits (bounded) until the
        reader has read some of it: the overlap is chosen, not left to the scheduler."""
        if rel.startswith("data/") and sent >= 1 << 20 and not seen:
            wait_for(lambda: bool(seen))

    eng.on_progress = hold_until_read_beside
    report = eng.run_once()
    assert len(report.replicated) == 1 and not report.failed
    bag, local = local_bag(svc)
    assert tree(sshd.root_dir / "dock-7" / os.path.basename(bag)) == local
    followed = {r.split("/", 2)[2].removesuffix(".part") for r, *_ in seen}
    assert followed and followed <= {rel for rel in local if rel.startswith("data/")}
    assert not seen[0][3]  # read while still being written, before its final name
    for rel in followed:  # every byte read once, in order, from the start
        ranges = [(a, b) for r, a, b, _ in seen if r.endswith(rel + ".part")]
        assert ranges[0][0] == 0 and ranges[-1][1] == len(local[rel])
        assert all(b0 == a1 for (_, b0), (a1, _) in itertools.pairwise(ranges))
    entry = next(e for e in svc.audit.entries() if e.kind == "package_replicated")
    assert entry.data["verified_by"] == {"read-back": len(local)}


def test_a_byte_changed_in_what_was_stored_is_caught_beside_the_upload(
    make_dock, sshd, read_beside
) -> None:
    svc, _ = sealed(make_dock, mb=2.0)
    cfg = sshd.target()
    target, reader = SftpTarget(cfg), SftpTarget(cfg)
    uploads: list[str] = []
    upload = target.upload

    def counting(relpath, *args):
        uploads.append(relpath)
        return upload(relpath, *args)

    target.upload = counting  # type: ignore[method-assign]
    eng = engine(svc, target, reader)
    flipped: list[str] = []

    def flip_a_stored_byte(name: str, remote: str) -> None:
        if remote.endswith(".part") and not flipped:
            part = sshd.root_dir / remote
            wait_for(lambda: part.stat().st_size > 100)  # the server stores what was sent
            with open(part, "r+b") as f:  # in place: the upload goes on
                f.seek(100)
                byte = f.read(1)
                f.seek(100)
                f.write(bytes([byte[0] ^ 0x40]))
            flipped.append(remote)

    eng.before_verify = flip_a_stored_byte
    eng.on_progress = lambda rel, sent: (
        wait_for(lambda: bool(flipped)) if rel.startswith("data/") and sent >= 1 << 20 else None
    )  # the first recording's upload waits (bounded) for its reader to come to it
    report = eng.run_once()
    assert flipped and len(report.replicated) == 1
    bag, local = local_bag(svc)
    assert tree(sshd.root_dir / "dock-7" / os.path.basename(bag)) == local
    assert uploads.count(flipped[0]) == 2  # caught, deleted, sent again
    assert len(uploads) == len(local) + 1


def test_a_server_killed_while_a_read_back_follows_the_upload_fails_and_resumes(
    make_dock, sshd, read_beside
) -> None:
    svc, _ = sealed(make_dock, mb=2.0)
    cfg = sshd.target()
    eng = engine(svc, SftpTarget(cfg), SftpTarget(cfg))
    killed: list[str] = []

    def kill_at_a_megabyte(rel: str, sent: int) -> None:
        if rel.startswith("data/") and sent >= 1 << 20 and not killed:
            killed.append(rel)
            sshd.kill()

    eng.on_progress = kill_at_a_megabyte
    report = eng.run_once()  # returns: the reader does not wait on the dead upload
    assert killed and report.failed and not report.replicated
    sshd.start()
    eng.on_progress = None
    eng.retry(None)
    assert len(eng.run_once().replicated) == 1
    bag, local = local_bag(svc)
    assert tree(sshd.root_dir / "dock-7" / os.path.basename(bag)) == local
