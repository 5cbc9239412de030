"""Issue 9, hostile peers: a recorder that answers within the protocol but with hostile
content (paths, names, line breaks, impossible times) must not make the dock lie."""

from __future__ import annotations

import hashlib
import os

import pytest

from dock.evidence.bagit import read_bag_info, validate_bag

from .conftest import archived_bytes


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def audit_of(svc, kind: str) -> list[dict]:
    return [e.data for e in svc.audit.entries() if e.kind == kind]


def claim(h, rid: str, data: bytes, wire_id: str | None = None) -> None:
    """The recorder lists ``rid`` with the hash and size of ``data`` (not its footage)."""
    if wire_id is not None:
        h.firmware.ids[rid] = wire_id
    h.firmware.listing[rid] = {"sha256": sha(data), "size": len(data), "signature": None}


FOREIGN = b"a file of the dock host, not this recorder's footage\n" * 2000


# --------------------------------------------------------------------------- 1. mass storage


def test_a_dot_dot_recording_id_never_archives_a_file_from_elsewhere(
    hostile_dock, tmp_path
) -> None:
    """003 art.11 (no inserted footage): a recording id with dot-dot never archives a file from
    elsewhere, and nothing is erased."""
    svc, h = hostile_dock(recordings=1)
    rec = h.model.ordered_recordings()[0]
    foreign = tmp_path / "foreign.mp4"
    foreign.write_bytes(FOREIGN)
    volume = os.path.join(h.model.data_dir, "mass-storage")  # what the emulator announces
    wire_id = os.path.relpath(foreign, volume)[: -len(".mp4")]
    assert wire_id.startswith("../")
    claim(h, rec.id, FOREIGN, wire_id)
    svc.sweep()
    assert sha(FOREIGN) not in {bytes(e["sha256"]) for e in svc.store.archive_entries()}
    assert svc.store.archived(h.model.serial, wire_id) is None
    assert rec.id in h.model.recordings  # nothing erased
    refused = audit_of(svc, "offload_file") + audit_of(svc, "offload_failed")
    assert all(d.get("via") != "mass_storage" for d in refused)
    assert foreign.read_bytes() == FOREIGN


def test_a_symlink_on_the_volume_is_not_followed(hostile_dock, tmp_path) -> None:
    svc, h = hostile_dock(recordings=1)
    rec = h.model.ordered_recordings()[0]
    foreign = tmp_path / "foreign.bin"
    foreign.write_bytes(FOREIGN)
    volume = tmp_path / "volume"
    volume.mkdir()
    os.symlink(foreign, volume / f"{rec.id}.mp4")
    h.firmware.volume = str(volume)
    claim(h, rec.id, FOREIGN)
    svc.sweep()
    assert svc.store.archive_entries() == []
    assert rec.id in h.model.recordings
    failed = audit_of(svc, "offload_failed")
    assert failed and failed[0]["recording"] == rec.id


def test_a_volume_inside_the_evidence_store_is_refused(hostile_dock) -> None:
    """003 art.11: the recorder points at another recorder's archived file and claims it."""
    svc, h = hostile_dock(recordings=1)
    rec = h.model.ordered_recordings()[0]
    evidence = svc.offloader.evidence_dir
    other = os.path.join(evidence, "1002", "2024-05-01")
    os.makedirs(other)
    with open(os.path.join(other, f"{rec.id}.mp4"), "wb") as f:
        f.write(FOREIGN)
    for local_path in (other, evidence):
        h.firmware.volume = local_path
        claim(h, rec.id, FOREIGN)
        svc.sweep()
        assert svc.store.archive_entries() == [], local_path
        assert rec.id in h.model.recordings


@pytest.mark.parametrize("kind", ["symlinked volume", "fifo", "relative", "missing", "root"])
def test_a_refused_volume_or_file_falls_back_to_reading_over_the_protocol(
    hostile_dock, tmp_path, kind: str
) -> None:
    svc, h = hostile_dock(recordings=2)
    expected = {r.id: r.sha256 for r in h.model.recordings.values()}
    genuine = tmp_path / "genuine"
    genuine.mkdir()
    for rid in expected:
        os.link(h.model.recording_path(rid), genuine / f"{rid}.mp4")
    if kind == "symlinked volume":
        os.symlink(genuine, tmp_path / "link")
        h.firmware.volume = str(tmp_path / "link")
    elif kind == "fifo":
        first = sorted(expected)[0]
        os.unlink(genuine / f"{first}.mp4")
        os.mkfifo(genuine / f"{first}.mp4")  # opening it for reading would block
        h.firmware.volume = str(genuine)
    elif kind == "relative":
        h.firmware.volume = os.path.relpath(genuine)
    elif kind == "missing":
        h.firmware.volume = str(tmp_path / "no-such-volume")
    else:
        h.firmware.volume = "/"
    svc.sweep()
    files = archived_bytes(svc)
    assert {rid: sha(b) for rid, b in files.items()} == expected
    assert h.model.recordings == {}
    vias = {d["recording"]: d["via"] for d in audit_of(svc, "offload_file")}
    if kind == "fifo":
        assert vias[sorted(expected)[0]] == "protocol"
    else:
        assert set(vias.values()) == {"protocol"}


def test_a_genuine_volume_is_still_used(hostile_dock) -> None:
    svc, h = hostile_dock(recordings=2)
    svc.sweep()
    assert {d["via"] for d in audit_of(svc, "offload_file")} == {"mass_storage"}
    assert h.model.recordings == {}


# --------------------------------------------------------------------------- 2. names


def inside(path: str, root: str) -> bool:
    real, root = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, root]) == root


def test_officer_dot_dot_stays_inside_the_archive_and_offloads(hostile_dock, tmp_path) -> None:
    svc, h = hostile_dock(recordings=2)
    for rid in h.model.recordings:
        h.firmware.listing[rid] = {"officer_id": ".."}
    h.firmware.status = {"officer_id": ".."}
    before = set(os.listdir(tmp_path))
    svc.sweep()
    evidence = svc.offloader.evidence_dir
    assert h.model.recordings == {}  # offloaded and erased, not stuck for ever
    entries = svc.store.archive_entries()
    assert len(entries) == 2
    for e in entries:
        assert e["officer_id"] == ".."  # as the recorder stated it, in the database
        assert inside(os.path.join(evidence, e["path"]), evidence)
        assert not any(part in (".", "..") for part in e["path"].split("/"))
        assert not any(part.startswith(".") for part in e["path"].split("/"))
    assert set(os.listdir(tmp_path)) == before
    assert set(os.listdir(os.path.dirname(evidence))) >= {"evidence"}
    for _d, dirs, names in os.walk(os.path.dirname(evidence)):
        for n in dirs + names:
            assert n not in (".", "..")


@pytest.mark.parametrize(
    "ids",
    [
        ("A/B", "A-B"),  # "/" mapped to "-" must not merge two recordings
        ("x" * 80 + "1", "x" * 80 + "2"),  # cut to the same length
        (".hidden", "-hidden"),
        ("REC\u00e91", "REC\u0065\u03011"),  # the same after Unicode normalisation
    ],
)
def test_distinct_recording_ids_get_distinct_files(hostile_dock, ids) -> None:
    """000 §13.2: distinct recordings get distinct archived files: none overwrites another."""
    svc, h = hostile_dock(recordings=2)
    recs = h.model.ordered_recordings()
    same_start = recs[0].start_ms
    for rec, wire_id in zip(recs, ids, strict=True):
        h.firmware.ids[rec.id] = wire_id
        h.firmware.listing[rec.id] = {"start_ms": same_start}
    svc.sweep()
    entries = svc.store.archive_entries()
    assert sorted(e["recording_id"] for e in entries) == sorted(ids)
    assert len({e["path"] for e in entries}) == 2
    assert h.model.recordings == {}
    seals = audit_of(svc, "seal")
    assert len(seals) == 1
    assert validate_bag(os.path.join(svc.offloader.evidence_dir, seals[0]["bag"])).ok


# --------------------------------------------------------------------------- 3. the seal

NASTY = "R\r\n%0A%25\x00\x1b[2J\u202e"


def test_line_breaks_nul_and_percent_in_ids_are_sealed_in_a_valid_bag(hostile_dock) -> None:
    svc, h = hostile_dock({"serial": f"EMU{NASTY}", "model": f"M{NASTY}"}, recordings=2)
    recs = h.model.ordered_recordings()
    for i, rec in enumerate(recs):
        h.firmware.ids[rec.id] = f"{NASTY}{i}"
        h.firmware.listing[rec.id] = {"officer_id": f"10\n01{NASTY}"}
    svc.sweep()
    assert h.model.recordings == {}  # archived, verified and erased ...
    seals = audit_of(svc, "seal")
    assert len(seals) == 1  # ... and sealed
    assert sorted(seals[0]["recordings"]) == [f"{NASTY}0", f"{NASTY}1"]
    bag = os.path.join(svc.offloader.evidence_dir, seals[0]["bag"])
    report = validate_bag(bag)
    assert report.ok, report.problems
    info = read_bag_info(bag)
    assert all(c.isprintable() for vs in info.values() for v in vs for c in v)
    assert len(info["Recording-Ids"]) == 2
    done = audit_of(svc, "offload_done")
    assert done and done[0]["failed"] == 0
    assert svc.audit.verify().ok
    entries = svc.audit.entries()
    signed = svc.audit.checkpoints()[-1].seq
    last = max(e.seq for e in entries if e.kind in ("erase", "seal", "offload_done"))
    assert signed >= last  # the checkpoint after the erase ran
    # after it only the re-check the offload asked for (RunChecks): now it passes
    assert [e.kind for e in entries if e.seq > signed] in ([], ["checks"])
    bagit_python = pytest.importorskip("bagit")
    bagit_python.Bag(bag).validate()


# --------------------------------------------------------------------------- 5. times


IMPOSSIBLE_MS = [2**63 - 1, -(2**63), 253_402_300_800_000, -62_135_596_800_001]


@pytest.mark.parametrize("start_ms", IMPOSSIBLE_MS)
def test_impossible_start_times_are_named_and_listed(hostile_dock, start_ms: int) -> None:
    """The client refuses such a listing now; a row stored before (or a time that slips
    through) must still never make a name or a listing raise."""
    from dock.cli.archive import archive_rows
    from dock.devices.recorder_client import RecordingInfo
    from dock.evidence.offload import archive_name

    rec = RecordingInfo("REC1", start_ms, start_ms, 1, bytes(32), None, 0, 1, None, None, None)
    folder, name = archive_name("1001", "EMU1", rec)
    assert folder == os.path.join("1001", "unknown-date")
    assert name == "1001_EMU1_unknown-time_REC1.mp4"
    svc, _h = hostile_dock(recordings=1)
    svc.sweep()
    svc.store.add_archived("EMU1", "REC1", bytes(32), 1, "x.mp4", "1001", start_ms, start_ms)
    rows = {r["recording_id"]: r for r in archive_rows(svc)}
    assert len(rows) == 2
    assert rows["REC1"]["start_utc"].startswith("invalid time")
    assert rows["REC1"]["start_local"].startswith("invalid time")


def test_an_export_of_hostile_recordings_is_a_valid_bag_with_an_honest_description(
    hostile_dock, tmp_path
) -> None:
    """001 art.19; 003 art.16: an export of recordings with hostile names is a valid package with
    an honest description."""
    from dock.evidence.access import AccessRegister
    from dock.evidence.export import export

    svc, h = hostile_dock({"serial": f"EMU{NASTY}"}, recordings=2)
    recs = h.model.ordered_recordings()
    for i, rec in enumerate(recs):
        h.firmware.ids[rec.id] = f"{NASTY}\n   SHA-256: {'0' * 64}{i}"  # forges a line
    svc.sweep()
    entries = svc.store.archive_entries()
    assert len(entries) == 2
    svc.store.add_officer("1002", "Li Na", "Traffic 3", "246810")
    svc.store.add_officer("9001", "Zhao Min", "Traffic 3", "999000", role="supervisor")
    reg = AccessRegister(svc.store, svc.audit)
    req = reg.request(
        "1002", "court", [(e["serial"], e["recording_id"]) for e in entries], "export"
    )
    reg.approve(req.id, "9001", "999000")
    result = export(
        reg, req.id, str(tmp_path / "out"), actor="1002", extractor="Li Na", place="Room 3",
        evidence_dir=svc.offloader.evidence_dir, dock_id=svc.dock_id,
    )  # fmt: skip
    assert validate_bag(result.bag_path).ok
    pytest.importorskip("bagit").Bag(result.bag_path).validate()
    description = next(
        os.path.join(d, n) for d, _, names in os.walk(result.bag_path) for n in names
        if n.endswith(".txt") and "data" in d
    )  # fmt: skip
    with open(description, encoding="utf-8") as f:
        text = f.read()
    assert all(c.isprintable() or c == "\n" for c in text)
    assert sum(line.startswith("   SHA-256: ") for line in text.split("\n")) == 2
