"""The S3 replication target against a real S3 server, Ceph's radosgw (Debian's ceph,
one monitor and one memstore OSD started here on 127.0.0.1, ~15 s), and against moto's
S3 stand-in (not a real server; cheap, and a second reading of the API).

Faults: radosgw killed mid-multipart (chosen by the bytes sent) then the upload resumed
from size() after its restart; the link cut mid-multipart (a relay cut from the progress
callback); cut after the last part, before the upload is completed; wrong keys; a user
quota (ReplicaFull); an object changed at the server; an existing final name; hostile
names. Without Ceph's binaries (scripts/bootstrap.sh ensure_s3_server) the Ceph runs are
skipped saying why; without moto_server (the test extras) the moto runs are.
"""

from __future__ import annotations

import dataclasses
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions as bex
import pytest

from dock.config.replication import ReplicationConfig, TargetConfig
from dock.domain.replica import ReplicaAuthError, ReplicaError, ReplicaFull, ReplicaUnavailable
from dock.evidence.replication import ReplicationEngine
from dock.replicas.build import target_from_config
from dock.replicas.s3 import MIN_PART, S3Target, map_error
from tests.replica_servers import CephRgw, MotoS3, TcpCutter, find, free_port

MiB = 1024 * 1024
PART = MIN_PART  # 5 MiB parts keep the files small

HAVE_MOTO = find("moto_server", str(Path(sys.executable).parent / "moto_server")) is not None
HAVE_CEPH = all(find(n) for n in ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin"))
needs_ceph = pytest.mark.skipif(
    not HAVE_CEPH, reason="no Ceph radosgw (Debian's ceph: scripts/bootstrap.sh ensure_s3_server)"
)
needs_moto = pytest.mark.skipif(not HAVE_MOTO, reason="no moto_server (the test extras)")


@pytest.fixture(scope="module")
def ceph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CephRgw]:
    if not HAVE_CEPH:
        pytest.skip("no Ceph radosgw (Debian's ceph: scripts/bootstrap.sh ensure_s3_server)")
    with CephRgw(tmp_path_factory.mktemp("ceph")) as server:
        print(f"ceph: OSD up after {server.osd_attempts} start(s)")
        yield server


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    if not HAVE_MOTO:
        pytest.skip("no moto_server (the test extras: pip install -e '.[test]')")
    with MotoS3(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(params=["ceph", "moto"])
def server(request: pytest.FixtureRequest) -> Any:
    """Each transport test runs against the real server and against the stand-in."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return f"dock-7/{request.node.name.replace('[', '-').replace(']', '')}"


def target(m: Any, prefix: str, url: str | None = None, secret: str | None = None) -> S3Target:
    return S3Target(
        "objects", url or m.url, m.bucket, prefix, m.access_key,
        m.secret_key if secret is None else secret, timeout=5, part_size=PART,
    )  # fmt: skip


def raw(m: Any) -> Any:
    return boto3.client(
        "s3", endpoint_url=m.url, region_name="us-east-1",
        aws_access_key_id=m.access_key, aws_secret_access_key=m.secret_key,
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


@pytest.mark.parametrize("length", [0, 1000, PART, 2 * PART + 7])
def test_upload_publish_read_back(server: Any, prefix: str, length: int) -> None:
    data = os.urandom(length)
    t = target(server, prefix)
    t.connect()
    assert t.size("pkg/a.mp4.part") is None
    seen = send(t, "pkg/a.mp4.part", data)
    assert seen == sorted(seen) and seen[-1] == length
    assert t.size("pkg/a.mp4.part") == length
    t.publish("pkg/a.mp4.part", "pkg/a.mp4")
    assert t.size("pkg/a.mp4.part") is None
    assert b"".join(t.read("pkg/a.mp4")) == data
    got = raw(server).get_object(Bucket=server.bucket, Key=f"{prefix}/pkg/a.mp4")
    assert got["Body"].read() == data
    t.delete("pkg/a.mp4")
    assert t.size("pkg/a.mp4") is None
    t.close()


def test_link_cut_mid_multipart_then_upload_continues_from_size(server: Any, prefix: str) -> None:
    data = os.urandom(4 * PART + 3)
    relay = TcpCutter(server.port).start()
    t = target(server, prefix, url=f"http://127.0.0.1:{relay.port}")
    cut: list[int] = []

    def cut_after_two_parts(done: int) -> None:
        if done >= 2 * PART and not cut:
            cut.append(done)
            relay.cut()

    with pytest.raises(ReplicaUnavailable) as err:
        t.upload("pkg/big.part", io.BytesIO(data), 0, len(data), cut_after_two_parts)
    assert cut and "unreachable" in one_line(err.value)
    with pytest.raises(ReplicaUnavailable):
        t.size("pkg/big.part")

    relay.start()  # the link is back, same port; the server kept the parts
    have = t.size("pkg/big.part")
    assert have == PART  # two parts held, the last one sent is sent again
    resumed = send(t, "pkg/big.part", data, offset=have)
    assert resumed == [2 * PART, 3 * PART, 4 * PART, len(data)]
    assert t.size("pkg/big.part") == len(data)
    assert b"".join(t.read("pkg/big.part")) == data
    relay.cut()


def test_cut_before_completion_never_reports_the_whole_size(server: Any, prefix: str) -> None:
    # Every part is at the server but CompleteMultipartUpload never arrived: size() must
    # stay below the file's size, or the engine would publish an object that is not there.
    data = os.urandom(2 * PART)
    relay = TcpCutter(server.port).start()
    t = target(server, prefix, url=f"http://127.0.0.1:{relay.port}")

    def cut_at_end(done: int) -> None:
        if done == len(data):
            relay.cut()

    with pytest.raises(ReplicaUnavailable):
        t.upload("pkg/a.part", io.BytesIO(data), 0, len(data), cut_at_end)
    relay.start()
    have = t.size("pkg/a.part")
    assert have is not None and have < len(data)
    with pytest.raises(ReplicaError):  # nothing finished to publish
        t.publish("pkg/a.part", "pkg/a")
    send(t, "pkg/a.part", data, offset=have)
    t.publish("pkg/a.part", "pkg/a")
    assert b"".join(t.read("pkg/a")) == data
    relay.cut()


def test_an_offset_the_server_does_not_hold_is_refused_and_zero_starts_afresh(
    server: Any, prefix: str
) -> None:
    data = os.urandom(3 * PART)
    t = target(server, prefix)
    with pytest.raises(ReplicaError) as err:
        send(t, "pkg/a.part", data, offset=PART)  # no unfinished upload there
    assert "start at 0" in one_line(err.value)
    with pytest.raises(ReplicaError):
        send(t, "pkg/small.part", b"abc", offset=1)  # a small object cannot be continued
    seen = send(t, "pkg/a.part", data)
    assert seen[0] == PART and b"".join(t.read("pkg/a.part")) == data
    other = os.urandom(2 * PART + 1)
    send(t, "pkg/a.part", other)  # offset 0 replaces what was there
    assert b"".join(t.read("pkg/a.part")) == other


@needs_moto
def test_wrong_keys_are_an_auth_error_and_nothing_is_written_moto(tmp_path: Path) -> None:
    with MotoS3(tmp_path, auth=True) as m:
        t = target(m, "dock-7", secret="not-the-secret")
        with pytest.raises(ReplicaAuthError) as err:
            t.connect()
        assert "refused the credentials" in one_line(err.value)
        with pytest.raises(ReplicaAuthError):
            send(t, "pkg/a.bin", b"footage")
        listed = raw(m).list_objects_v2(Bucket=m.bucket)
        assert listed.get("KeyCount", 0) == 0
        good = target(m, "dock-7")
        good.connect()  # the right keys pass the same checks


def test_an_object_changed_at_the_server_is_read_back_changed(server: Any, prefix: str) -> None:
    data = os.urandom(2 * PART + 5)
    t = target(server, prefix)
    send(t, "pkg/a.bin", data)
    assert b"".join(t.read("pkg/a.bin")) == data
    changed = bytearray(data)
    changed[PART + 1] ^= 0x01
    raw(server).put_object(Bucket=server.bucket, Key=f"{prefix}/pkg/a.bin", Body=bytes(changed))
    assert b"".join(t.read("pkg/a.bin")) == bytes(changed)


def test_publish_refuses_an_existing_final_name(server: Any, prefix: str) -> None:
    t = target(server, prefix)
    send(t, "pkg/a.bin", b"first copy")
    send(t, "pkg/a.bin.part", b"another")
    with pytest.raises(ReplicaError) as err:
        t.publish("pkg/a.bin.part", "pkg/a.bin")
    assert type(err.value) is ReplicaError and "exists" in one_line(err.value)
    assert b"".join(t.read("pkg/a.bin")) == b"first copy"
    assert b"".join(t.read("pkg/a.bin.part")) == b"another"


def test_delete_drops_an_unfinished_upload_too(server: Any, prefix: str) -> None:
    data = os.urandom(3 * PART)
    relay = TcpCutter(server.port).start()
    t = target(server, prefix, url=f"http://127.0.0.1:{relay.port}")

    def cut(done: int) -> None:
        if done >= 2 * PART:
            relay.cut()

    with pytest.raises(ReplicaUnavailable):
        t.upload("pkg/a.part", io.BytesIO(data), 0, len(data), cut)
    relay.start()
    assert t.size("pkg/a.part") == PART
    t.delete("pkg/a.part")
    assert t.size("pkg/a.part") is None
    relay.cut()


# -- the real server's own faults ---------------------------------------------------------


@needs_ceph
def test_radosgw_killed_mid_multipart_then_upload_continues_from_size(
    ceph: CephRgw, prefix: str
) -> None:
    data = os.urandom(4 * PART + 11)
    t = target(ceph, prefix)
    killed: list[int] = []

    def kill_after_two_parts(done: int) -> None:
        if done >= 2 * PART and not killed:
            killed.append(done)
            ceph.kill_gateway()

    with pytest.raises(ReplicaUnavailable) as err:
        t.upload("pkg/big.part", io.BytesIO(data), 0, len(data), kill_after_two_parts)
    assert killed and "unreachable" in one_line(err.value)
    with pytest.raises(ReplicaUnavailable):
        t.size("pkg/big.part")

    ceph.start_gateway()  # same port; the parts were kept by the OSD
    have = t.size("pkg/big.part")
    assert have == PART  # two parts held, the last one sent is sent again
    resumed = send(t, "pkg/big.part", data, offset=have)
    assert resumed == [2 * PART, 3 * PART, 4 * PART, len(data)]
    t.publish("pkg/big.part", "pkg/big")
    assert b"".join(t.read("pkg/big")) == data


@needs_ceph
def test_wrong_keys_are_an_auth_error_and_nothing_is_written_ceph(ceph: CephRgw) -> None:
    for key, secret in ((ceph.access_key, "not-the-secret"), ("NOSUCHKEY", ceph.secret_key)):
        t = S3Target("objects", ceph.url, ceph.bucket, "wrong-keys", key, secret, timeout=5)
        with pytest.raises(ReplicaAuthError) as err:
            t.connect()
        assert "refused the credentials" in one_line(err.value)
        with pytest.raises(ReplicaAuthError):
            send(t, "pkg/a.bin", b"footage")
    listed = raw(ceph).list_objects_v2(Bucket=ceph.bucket, Prefix="wrong-keys/")
    assert listed.get("KeyCount", 0) == 0


@needs_ceph
def test_over_the_users_quota_is_replica_full(ceph: CephRgw) -> None:
    t = S3Target(
        "objects", ceph.url, ceph.tight_bucket, "dock-7", ceph.tight_key, ceph.tight_secret,
        timeout=5, part_size=PART,
    )  # fmt: skip
    send(t, "pkg/fits.bin", os.urandom(MiB))
    with pytest.raises(ReplicaFull) as err:
        send(t, "pkg/too-big.bin", os.urandom(ceph.TIGHT_BYTES))  # one PutObject
    assert "quota" in one_line(err.value)
    with pytest.raises(ReplicaFull):
        send(t, "pkg/too-big-multipart.bin", os.urandom(2 * PART))


# -- without a server ---------------------------------------------------------------------

HOSTILE = ["../x", "/etc/passwd", "a/../../b", "a\\b", "a/\x00b", "a/\nb", "", "a//b", "./a"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_before_anything_is_sent(name: str) -> None:
    t = S3Target("o", f"http://127.0.0.1:{free_port()}", "b", "p", "k", "s", timeout=2)
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
    t = S3Target("o", f"http://127.0.0.1:{free_port()}", "b", "p", "k", "s", timeout=2)
    with pytest.raises(ReplicaUnavailable) as err:
        t.connect()
    assert "unreachable" in one_line(err.value)


def test_bad_configuration_is_refused_when_made() -> None:
    with pytest.raises(ValueError):
        S3Target("o", "ftp://x", "b")
    with pytest.raises(ValueError):
        S3Target("o", "https://x", "a/b")
    with pytest.raises(ValueError):
        S3Target("o", "https://x", "b", part_size=MiB)
    with pytest.raises(ValueError):
        S3Target("o", "https://x", "b", prefix="../up")


def test_the_port_said_for_an_s3_target_is_its_schemes_own() -> None:
    """A target without a port is reached on its scheme's port: what the CLI and the
    status say must be what the S3 client dials (80 for http, 443 for https)."""
    plain = TargetConfig("o", "s3", "nas.local", bucket="b", scheme="http")
    tls = TargetConfig("o", "s3", "nas.local", bucket="b")
    assert (plain.effective_port, tls.effective_port) == (80, 443)
    assert TargetConfig("o", "s3", "nas.local", port=7480, scheme="http").effective_port == 7480


def client_error(code: str, status: int, message: str = "m") -> bex.ClientError:
    return bex.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "PutObject",
    )


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("AccessDenied", 403, ReplicaAuthError),
        ("InvalidAccessKeyId", 403, ReplicaAuthError),
        ("SignatureDoesNotMatch", 403, ReplicaAuthError),
        ("EntityTooLarge", 400, ReplicaFull),
        ("XMinioStorageFull", 507, ReplicaFull),
        ("QuotaExceeded", 403, ReplicaFull),  # a quota, even where sent as 403
        ("InsufficientStorage", 507, ReplicaFull),
        ("SlowDown", 503, ReplicaUnavailable),
        ("InternalError", 500, ReplicaUnavailable),
        ("NoSuchBucket", 404, ReplicaError),
    ],
)
def test_error_mapping(code: str, status: int, kind: type[ReplicaError]) -> None:
    assert type(map_error(client_error(code, status), "o", "upload")) is kind


def test_connection_errors_are_unavailable_and_server_text_is_escaped() -> None:
    down = bex.EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    assert isinstance(map_error(down, "o", "x"), ReplicaUnavailable)
    assert isinstance(map_error(bex.NoCredentialsError(), "o", "x"), ReplicaAuthError)
    evil = map_error(client_error("Odd\nCode", 400, "line\r\nFAKE\x1b[2J" + "z" * 5000), "o", "x")
    text = one_line(evil)
    assert "\x1b" not in text and len(text) < 400


def test_built_from_its_configuration_by_the_factory(server: Any, tmp_path: Path) -> None:
    (tmp_path / "s3.id").write_text(server.access_key + "\n")
    (tmp_path / "s3.key").write_text(server.secret_key + "\n")
    cfg = TargetConfig(
        name="objects", kind="s3", host="127.0.0.1", port=server.port, scheme="http",
        path="/bwc//dock-7/", bucket=server.bucket, access_key_file=str(tmp_path / "s3.id"),
        secret_key_file=str(tmp_path / "s3.key"), connect_timeout_s=5, io_timeout_s=5,
    )  # fmt: skip
    t = target_from_config(cfg)
    assert isinstance(t, S3Target) and t.name == "objects"
    send(t, "pkg/a.bin", b"footage")
    got = raw(server).get_object(Bucket=server.bucket, Key="bwc/dock-7/pkg/a.bin")
    assert got["Body"].read() == b"footage"
    with pytest.raises(ReplicaAuthError) as err:
        target_from_config(dataclasses.replace(cfg, secret_key_file=str(tmp_path / "none")))
    assert "secret_key_file" in one_line(err.value) and server.secret_key not in str(err.value)


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


def test_the_engine_replicates_to_s3_and_catches_a_corrupted_copy(
    make_dock: Any, server: Any, prefix: str
) -> None:
    svc = sealed_dock(make_dock)
    eng = engine_for(svc, target(server, prefix))
    s3 = raw(server)
    flipped: list[str] = []

    def flip_a_byte(name: str, remote: str) -> None:
        if "/data/" in remote and not flipped:
            key = f"{prefix}/{remote}"
            data = bytearray(s3.get_object(Bucket=server.bucket, Key=key)["Body"].read())
            data[100] ^= 0x40
            s3.put_object(Bucket=server.bucket, Key=key, Body=bytes(data))
            flipped.append(remote)

    eng.before_verify = flip_a_byte
    report = eng.run_once()
    assert flipped and len(report.replicated) == 1 and not report.failed
    assert [e.kind for e in svc.audit.entries()].count("package_replicated") == 1
    bag, local = local_tree(svc)
    base = f"{prefix}/dock-7/{bag}/"
    listed = s3.list_objects_v2(Bucket=server.bucket, Prefix=base)["Contents"]
    remote = {
        o["Key"][len(base) :]: s3.get_object(Bucket=server.bucket, Key=o["Key"])["Body"].read()
        for o in listed
    }
    assert remote == local  # the corrupted file sent again; no .part left
    assert all(e["second_copy_at"] for e in svc.store.archive_entries())


@needs_ceph
def test_the_engine_with_wrong_s3_keys_replicates_nothing(make_dock: Any, ceph: CephRgw) -> None:
    svc = sealed_dock(make_dock)
    t = S3Target("objects", ceph.url, ceph.bucket, "wrong-engine", ceph.access_key, "bad")
    report = engine_for(svc, t).run_once()
    assert report.failed and not report.replicated
    assert "refused the credentials" in report.failed[0][2]
    assert not any(e["second_copy_at"] for e in svc.store.archive_entries())
    listed = raw(ceph).list_objects_v2(Bucket=ceph.bucket, Prefix="wrong-engine/")
    assert listed.get("KeyCount", 0) == 0
