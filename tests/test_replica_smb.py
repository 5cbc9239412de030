"""The SMB replication target against a real Samba (smbd started here on 127.0.0.1).

Faults: wrong password, smbd killed mid-upload (chosen by the bytes sent), a full share
(a 2 MiB tmpfs), a file changed at the target, an existing final name, hostile names.
smbd needs root (it switches to the share's user); without root, or without Samba
(scripts/bootstrap.sh installs it), the server tests are skipped saying why.
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path
from typing import Any

import pytest
from smbprotocol.exceptions import SMBConnectionClosed, SMBOSError
from smbprotocol.header import NtStatus

from dock.config.replication import ReplicationConfig, TargetConfig
from dock.domain.replica import ReplicaAuthError, ReplicaError, ReplicaFull, ReplicaUnavailable
from dock.evidence.replication import ReplicationEngine
from dock.replicas.build import target_from_config
from dock.replicas.smb import SmbTarget, map_error
from tests.replica_servers import Samba, ServerError, find, free_port

MiB = 1024 * 1024

needs_samba = pytest.mark.skipif(
    os.geteuid() != 0 or find("smbd") is None,
    reason="smbd needs root and Debian's samba package (scripts/bootstrap.sh ensure_smbd)",
)


@pytest.fixture
def samba(tmp_path: Path) -> Samba:
    share = tmp_path / "share"
    share.mkdir()
    server = Samba(tmp_path / "smbd", share)
    try:
        server.start()
    except ServerError as exc:  # pragma: no cover - shows the log in the failure
        pytest.fail(str(exc))
    yield server
    server.kill()


def target(s: Samba, password: str | None = None) -> SmbTarget:
    return SmbTarget(
        "nas", "127.0.0.1", s.port, s.share, "dock-7", s.user,
        s.password if password is None else password, timeout=10,
    )  # fmt: skip


def send(t: Any, relpath: str, data: bytes, offset: int = 0) -> list[int]:
    seen: list[int] = []
    src = io.BytesIO(data)
    src.seek(offset)
    t.upload(relpath, src, offset, len(data), seen.append)
    return seen


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "\r" not in text
    return text


@needs_samba
def test_upload_publish_and_read_back_over_an_encrypted_session(samba: Samba) -> None:
    data = os.urandom(3 * MiB + 17)
    t = target(samba)
    t.connect()
    assert t.size("pkg/data/a.mp4.part") is None
    seen = send(t, "pkg/data/a.mp4.part", data)
    assert seen == sorted(seen) and seen[-1] == len(data)
    assert t.size("pkg/data/a.mp4.part") == len(data)
    t.publish("pkg/data/a.mp4.part", "pkg/data/a.mp4")
    assert t.size("pkg/data/a.mp4.part") is None
    assert b"".join(t.read("pkg/data/a.mp4")) == data
    assert (samba.share_path / "dock-7/pkg/data/a.mp4").read_bytes() == data
    sessions = [s for c in t._cache.values() for s in c.session_table.values()]
    assert sessions and all(s.encrypt_data for s in sessions)  # SMB 3 encryption in use
    t.delete("pkg/data/a.mp4")
    t.delete("pkg/data/a.mp4")  # gone already: not an error
    assert t.size("pkg/data/a.mp4") is None
    t.close()
    t.close()


@needs_samba
def test_a_server_that_cannot_encrypt_is_refused_not_used_in_clear(tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    with Samba(tmp_path / "smbd", share, encrypt="off") as server:
        t = target(server)
        with pytest.raises(ReplicaError) as err:
            send(t, "pkg/a.bin", b"footage")
        assert "encryption is required" in one_line(err.value)
        assert list(share.iterdir()) == []
        clear = SmbTarget("nas", "127.0.0.1", server.port, server.share, "", server.user,
                          server.password, encrypt=False)  # fmt: skip
        send(clear, "a.bin", b"x")  # by keywords only: a configured target always encrypts
        assert (share / "a.bin").read_bytes() == b"x"


@needs_samba
def test_wrong_password_is_an_auth_error_and_nothing_is_written(samba: Samba) -> None:
    t = target(samba, password="not-the-password")
    with pytest.raises(ReplicaAuthError) as err:
        t.connect()
    assert "refused the credentials" in one_line(err.value)
    with pytest.raises(ReplicaAuthError):
        send(t, "pkg/a.bin", b"footage")
    assert list(samba.share_path.iterdir()) == []


@needs_samba
def test_smbd_killed_mid_upload_then_upload_continues_from_size(samba: Samba) -> None:
    data = os.urandom(12 * MiB + 5)
    t = target(samba)
    killed: list[int] = []

    def kill_at_5_mib(done: int) -> None:
        if done >= 5 * MiB and not killed:
            killed.append(done)
            samba.kill()

    with pytest.raises(ReplicaUnavailable) as err:
        t.upload("pkg/big.part", io.BytesIO(data), 0, len(data), kill_at_5_mib)
    assert killed and "unreachable" in one_line(err.value)
    with pytest.raises(ReplicaUnavailable):  # down: a clear "try later", not a traceback
        t.size("pkg/big.part")

    samba.start()  # same port, same share
    have = t.size("pkg/big.part")
    assert have is not None and killed[0] <= have < len(data)
    resumed = send(t, "pkg/big.part", data, offset=have)
    assert resumed[0] > have and resumed[-1] == len(data)
    assert len(resumed) < len(data) // MiB  # it did not start again
    assert b"".join(t.read("pkg/big.part")) == data


@needs_samba
def test_a_full_share_is_replica_full(tmp_path: Path, small_tmpfs) -> None:
    share = Path(small_tmpfs("tiny", "2m"))
    with Samba(tmp_path / "smbd", share) as server:
        t = target(server)
        with pytest.raises(ReplicaFull) as err:
            send(t, "pkg/too-big.part", os.urandom(4 * MiB))
        assert "full" in one_line(err.value)


@needs_samba
def test_read_returns_the_servers_bytes_after_a_change_at_the_target(samba: Samba) -> None:
    data = os.urandom(2 * MiB)
    t = target(samba)
    send(t, "pkg/a.bin", data)
    assert b"".join(t.read("pkg/a.bin")) == data
    stored = samba.share_path / "dock-7/pkg/a.bin"
    changed = bytearray(data)
    changed[MiB + 3] ^= 0xFF
    stored.write_bytes(bytes(changed))  # bit rot, or someone at the NAS
    assert b"".join(t.read("pkg/a.bin")) == bytes(changed)  # same session: no cache
    stored.write_bytes(data[:100])
    assert b"".join(t.read("pkg/a.bin")) == data[:100]
    assert t.size("pkg/a.bin") == 100


@needs_samba
def test_publish_refuses_an_existing_final_name(samba: Samba) -> None:
    t = target(samba)
    send(t, "pkg/a.bin", b"first copy")
    send(t, "pkg/a.bin.part", b"another")
    with pytest.raises(ReplicaError) as err:
        t.publish("pkg/a.bin.part", "pkg/a.bin")
    assert type(err.value) is ReplicaError and "exists" in one_line(err.value)
    assert b"".join(t.read("pkg/a.bin")) == b"first copy"
    assert b"".join(t.read("pkg/a.bin.part")) == b"another"


@needs_samba
def test_offset_zero_starts_afresh_and_drops_a_longer_stale_file(samba: Samba) -> None:
    t = target(samba)
    send(t, "pkg/a.part", os.urandom(MiB))
    send(t, "pkg/a.part", b"short")
    assert b"".join(t.read("pkg/a.part")) == b"short"


# -- without a server ---------------------------------------------------------------------

HOSTILE = ["../x", "/etc/passwd", "a/../../b", "a\\b", "a/\x00b", "a/\nb", "", "a//b", "./a"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_before_anything_is_sent(name: str) -> None:
    # Nothing listens on this port: any attempt to send would be ReplicaUnavailable.
    t = SmbTarget("nas", "127.0.0.1", free_port(), "evidence", "f", "u", "p", timeout=2)
    for call in (
        lambda: t.size(name),
        lambda: t.upload(name, io.BytesIO(b"x"), 0, 1, lambda n: None),
        lambda: t.publish("ok", name),
        lambda: t.publish(name, "ok"),
        lambda: list(t.read(name)),
        lambda: t.delete(name),
    ):
        with pytest.raises(ValueError):
            call()


def test_nothing_listening_is_unavailable_in_one_line() -> None:
    t = SmbTarget("nas", "127.0.0.1", free_port(), "evidence", "", "u", "p", timeout=2)
    with pytest.raises(ReplicaUnavailable) as err:
        t.connect()
    assert "unreachable" in one_line(err.value)


def test_bad_configuration_is_refused_when_made() -> None:
    for server, share in (("", "s"), ("a b", "s"), ("h", ""), ("h", "a/b"), ("\\\\h", "s")):
        with pytest.raises(ValueError):
            SmbTarget("nas", server, 445, share, "", "u", "p")
    with pytest.raises(ValueError):
        SmbTarget("nas", "h", 445, "s", "../up", "u", "p")


def test_error_mapping_and_escaping() -> None:
    full = SMBOSError(NtStatus.STATUS_DISK_FULL, "\\\\h\\s\\f")
    assert isinstance(map_error(full, "nas", "upload"), ReplicaFull)
    quota = SMBOSError(0xC0000044, "\\\\h\\s\\f")
    assert isinstance(map_error(quota, "nas", "upload"), ReplicaFull)
    assert isinstance(
        map_error(ConnectionRefusedError(111, "refused"), "n", "x"), ReplicaUnavailable
    )
    assert isinstance(map_error(TimeoutError("timed out"), "n", "x"), ReplicaUnavailable)
    assert isinstance(map_error(SMBConnectionClosed("closed"), "n", "x"), ReplicaUnavailable)
    evil = map_error(ValueError("boom\nFAKE LOG LINE\x1b[31m"), "n\nx", "x")
    text = str(evil)
    assert "\n" not in text and "\x1b" not in text and "\\n" in text
    assert len(str(map_error(ValueError("y" * 10_000), "n", "x"))) < 400


@needs_samba
def test_built_from_its_configuration_by_the_factory(samba: Samba, tmp_path: Path) -> None:
    pw = tmp_path / "smb.pw"
    pw.write_text(samba.password + "\n")
    cfg = TargetConfig(
        name="nas", kind="smb", host="127.0.0.1", port=samba.port, path="/bwc//dock-7/",
        share=samba.share, user=samba.user, password_file=str(pw), connect_timeout_s=5,
    )  # fmt: skip
    t = target_from_config(cfg)
    assert isinstance(t, SmbTarget) and t.name == "nas"
    send(t, "pkg/a.bin", b"footage")
    assert (samba.share_path / "bwc/dock-7/pkg/a.bin").read_bytes() == b"footage"
    t.close()


def test_an_unreadable_password_file_is_an_auth_error_in_one_line(tmp_path: Path) -> None:
    cfg = TargetConfig(
        name="nas", kind="smb", host="127.0.0.1", share="s", user="u",
        password_file=str(tmp_path / "missing.pw"),
    )  # fmt: skip
    with pytest.raises(ReplicaAuthError) as err:
        target_from_config(cfg)
    assert "password_file" in one_line(err.value)
    (tmp_path / "empty.pw").write_text("\n")
    with pytest.raises(ReplicaAuthError):
        SmbTarget(dataclasses.replace(cfg, password_file=str(tmp_path / "empty.pw")))


# -- the replication engine over this transport -------------------------------------------


def sealed_dock(make_dock: Any) -> Any:
    svc, _ = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.4})
    svc.sweep()
    assert len(svc.store.archive_entries()) == 2
    return svc


def local_tree(svc: Any) -> tuple[str, dict[str, bytes]]:
    [(bag,)] = svc.store._db().execute("SELECT bag FROM seals").fetchall()
    root = Path(svc.offloader.evidence_dir) / bag
    files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    return os.path.basename(bag), files


def engine_for(svc: Any, t: Any) -> ReplicationEngine:
    return ReplicationEngine(
        svc.store, svc.audit, svc.offloader.evidence_dir, "dock-7", [t], ReplicationConfig()
    )


@needs_samba
def test_the_engine_replicates_to_smb_and_catches_a_corrupted_copy(
    make_dock: Any, samba: Samba
) -> None:
    svc = sealed_dock(make_dock)
    t = SmbTarget("nas", "127.0.0.1", samba.port, samba.share, "units", samba.user,
                  samba.password, timeout=10)  # fmt: skip
    eng = engine_for(svc, t)
    flipped: list[str] = []

    def flip_a_byte(name: str, remote: str) -> None:
        if "/data/" in remote and not flipped:
            p = samba.share_path / "units" / remote
            data = bytearray(p.read_bytes())
            data[100] ^= 0x40
            p.write_bytes(bytes(data))
            flipped.append(remote)

    eng.before_verify = flip_a_byte
    report = eng.run_once()
    assert flipped and len(report.replicated) == 1 and not report.failed
    kinds = [e.kind for e in svc.audit.entries()]
    assert kinds.count("package_replicated") == 1
    bag, local = local_tree(svc)
    root = samba.share_path / "units/dock-7" / bag
    remote = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert remote == local  # the corrupted file sent again; no .part left
    assert all(e["second_copy_at"] for e in svc.store.archive_entries())


@needs_samba
def test_the_engine_with_a_wrong_smb_password_replicates_nothing(
    make_dock: Any, samba: Samba
) -> None:
    svc = sealed_dock(make_dock)
    report = engine_for(svc, target(samba, password="wrong")).run_once()
    assert report.failed and not report.replicated
    assert "refused the credentials" in report.failed[0][2]
    assert not any(e["second_copy_at"] for e in svc.store.archive_entries())
    assert list(samba.share_path.iterdir()) == []
