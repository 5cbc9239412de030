"""BagIt packages on real files: build, seal, validate, tamper, crash."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import stat
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.version import __version__
from dock.evidence import bagit
from dock.evidence.bagit import (
    Bag,
    HashMismatchError,
    make_bag,
    read_bag_info,
    tagmanifest_digest,
    validate_bag,
)

ROOT = Path(__file__).resolve().parent.parent
INFO = {"Source-Organization": "Traffic 3", "External-Identifier": "episode-42"}
FILES = {
    "2024/1001_EMU0001_20240501T080000.mp4": b"\x00\x01footage" * 1000,
    "with space.txt": b"officer note\n",
    "案件 0042/执法记录 视频.mp4": "中文内容".encode() * 50,
    "empty.log": b"",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_sources(base: Path, files: dict[str, bytes], mode: int = 0o644) -> dict[str, str]:
    """Source files (flat names, unlike the bag paths) -> payload mapping."""
    base.mkdir(parents=True, exist_ok=True)
    payload = {}
    for i, (rel, data) in enumerate(files.items()):
        src = base / f"src-{i}.bin"
        src.write_bytes(data)
        src.chmod(mode)
        payload[rel] = str(src)
    return payload


def read_manifest(path: Path) -> dict[str, str]:
    """An independent reader: path (percent-decoded) -> hex digest."""
    out = {}
    for line in path.read_bytes().decode("utf-8").split("\n"):
        if line:
            digest, rel = line.split("  ", 1)
            rel = re.sub(r"%(0D|0A|25)", lambda m: {"0D": "\r", "0A": "\n", "25": "%"}[m[1]], rel)
            out[rel] = digest
    return out


def leftovers(parent: Path) -> list[str]:
    return [n for n in os.listdir(parent) if n.startswith(bagit.TMP_PREFIX)]


def writable(path: Path) -> None:
    path.chmod(0o644)


@pytest.fixture
def made(tmp_path) -> tuple[Bag, dict[str, str]]:
    payload = write_sources(tmp_path / "src", FILES)
    return make_bag(str(tmp_path / "out" / "bag"), payload, INFO), payload


@pytest.fixture(autouse=True)
def _out_dir(tmp_path) -> None:
    (tmp_path / "out").mkdir()


# --------------------------------------------------------------------------- building


def test_bag_validates_and_manifest_gives_the_files_sha256(made) -> None:
    bag, _payload = made
    root = Path(bag.path)
    assert validate_bag(bag.path) == bagit.BagReport(True, [])
    assert validate_bag(bag.path, fast=True).ok
    assert (root / "bagit.txt").read_bytes() == (
        b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    )
    assert read_manifest(root / "manifest-sha256.txt") == {
        f"data/{rel}": sha256(data) for rel, data in FILES.items()
    }
    for rel, data in FILES.items():
        assert (root / "data" / rel).read_bytes() == data
    tags = read_manifest(root / "tagmanifest-sha256.txt")
    assert tags == {
        name: sha256((root / name).read_bytes())
        for name in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt")
    }
    seal = sha256((root / "tagmanifest-sha256.txt").read_bytes())
    assert bag.tagmanifest_sha256 == seal == tagmanifest_digest(bag.path)


def test_payload_oxum_and_bag_info(made) -> None:
    bag, _ = made
    octets = sum(len(d) for d in FILES.values())
    assert bag.payload_oxum == f"{octets}.{len(FILES)}"
    info = read_bag_info(bag.path)
    assert info["Payload-Oxum"] == [bag.payload_oxum]
    assert info["Source-Organization"] == ["Traffic 3"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", info["Bagging-Date"][0])
    assert info["Bag-Software-Agent"][0].startswith(f"bwc-dock {__version__} ")


def test_sources_untouched_and_bag_payload_read_only(tmp_path) -> None:
    """000 §13.2: sealing leaves the sources untouched and the package's payload read-only."""
    payload = write_sources(tmp_path / "src", FILES, mode=0o640)
    before = {src: (Path(src).read_bytes(), os.stat(src)) for src in payload.values()}
    bag = make_bag(str(tmp_path / "out" / "bag"), payload, INFO)
    for src, (data, st0) in before.items():
        st1 = os.stat(src)
        assert Path(src).read_bytes() == data
        assert stat.S_IMODE(st1.st_mode) == 0o640  # still writable by its owner
        assert st1.st_mtime_ns == st0.st_mtime_ns
        assert st1.st_nlink == 1  # a writable source is copied, never linked
    for rel in FILES:
        st = os.stat(Path(bag.path, "data", rel))
        assert stat.S_IMODE(st.st_mode) == 0o444
    for name in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt"):
        assert stat.S_IMODE(os.stat(Path(bag.path, name)).st_mode) == 0o444


def test_read_only_source_is_hard_linked_and_known_hash_is_not_reread(
    tmp_path, monkeypatch
) -> None:
    payload = write_sources(tmp_path / "src", FILES, mode=0o444)
    known = {rel: hashlib.sha256(data).digest() for rel, data in FILES.items()}

    def no_rereads(*_args: object, **_kw: object) -> None:
        raise AssertionError("a linked file with a known hash was read again")

    monkeypatch.setattr(bagit, "_hash_file", no_rereads)
    bag = make_bag(str(tmp_path / "out" / "bag"), payload, INFO, known_sha256=known)
    monkeypatch.undo()
    for rel, src in payload.items():
        assert os.stat(Path(bag.path, "data", rel)).st_ino == os.stat(src).st_ino
        assert stat.S_IMODE(os.stat(src).st_mode) == 0o444
    assert validate_bag(bag.path).ok


def test_read_only_source_linked_without_known_hash_is_hashed(tmp_path) -> None:
    payload = write_sources(tmp_path / "src", FILES, mode=0o444)
    bag = make_bag(str(tmp_path / "out" / "bag"), payload, INFO)
    assert read_manifest(Path(bag.path, "manifest-sha256.txt")) == {
        f"data/{rel}": sha256(data) for rel, data in FILES.items()
    }


def test_wrong_known_sha256_is_caught_when_copying(tmp_path) -> None:
    """001 art.19(4): a file that does not match its known hash is caught when it is copied into a
    package."""
    payload = write_sources(tmp_path / "src", FILES, mode=0o444)
    known = {rel: hashlib.sha256(data).digest() for rel, data in FILES.items()}
    known["with space.txt"] = hashlib.sha256(b"what offload saw").digest()
    with pytest.raises(HashMismatchError) as caught:
        make_bag(str(tmp_path / "out" / "bag"), payload, INFO, link=False, known_sha256=known)
    assert caught.value.rel_path == "with space.txt"
    assert caught.value.stage == "source"
    assert caught.value.found == sha256(FILES["with space.txt"])
    assert not (tmp_path / "out" / "bag").exists()
    assert leftovers(tmp_path / "out") == []


def test_link_across_filesystems_falls_back_to_a_verified_copy(tmp_path, monkeypatch) -> None:
    payload = write_sources(tmp_path / "src", FILES, mode=0o444)

    def exdev(*_args: object, **_kw: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(bagit.os, "link", exdev)
    known = {"empty.log": hashlib.sha256(b"not empty").digest()}
    with pytest.raises(HashMismatchError):
        make_bag(str(tmp_path / "out" / "bag"), payload, INFO, known_sha256=known)
    bag = make_bag(str(tmp_path / "out" / "bag"), payload, INFO)
    for rel, src in payload.items():
        assert os.stat(Path(bag.path, "data", rel)).st_ino != os.stat(src).st_ino
    assert validate_bag(bag.path).ok


def test_empty_payload_is_a_valid_bag(tmp_path) -> None:
    bag = make_bag(str(tmp_path / "out" / "bag"), {}, {})
    assert bag.payload_oxum == "0.0"
    assert validate_bag(bag.path).ok


def test_existing_bag_dir_is_refused(made) -> None:
    bag, payload = made
    with pytest.raises(FileExistsError):
        make_bag(bag.path, payload, INFO)
    assert validate_bag(bag.path).ok


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    "bad",
    ["../escape.mp4", "a/../../b", "/etc/passwd", "", "a//b", "./a", "a/", "a/./b", "nul\x00"],
)
def test_unsafe_paths_are_refused(tmp_path, bad: str) -> None:
    payload = write_sources(tmp_path / "src", {bad: b"x"})
    with pytest.raises(ValueError, match="refused"):
        make_bag(str(tmp_path / "out" / "bag"), payload, INFO)
    assert os.listdir(tmp_path / "out") == []


def test_duplicate_paths_are_refused(tmp_path) -> None:
    nfc, nfd = unicodedata.normalize("NFC", "é.mp4"), unicodedata.normalize("NFD", "é.mp4")
    assert nfc != nfd
    payload = write_sources(tmp_path / "src", {nfc: b"1", nfd: b"2"})
    with pytest.raises(ValueError, match="duplicates"):
        make_bag(str(tmp_path / "out" / "bag"), payload, INFO)
    payload = write_sources(tmp_path / "src2", {"a": b"1", "a/b": b"2"})
    with pytest.raises(ValueError, match="is a file"):
        make_bag(str(tmp_path / "out" / "bag"), payload, INFO)
    assert os.listdir(tmp_path / "out") == []


def test_cr_lf_and_percent_are_percent_encoded_in_the_manifest(tmp_path) -> None:
    files = {"50%.txt": b"a", "line\nbreak": b"b", "cr\rname": b"c", "%0A literal": b"d"}
    bag = make_bag(str(tmp_path / "out" / "bag"), write_sources(tmp_path / "src", files), {})
    text = Path(bag.path, "manifest-sha256.txt").read_text(encoding="utf-8")
    for encoded in ("data/50%25.txt", "data/line%0Abreak", "data/cr%0Dname", "data/%250A literal"):
        assert f"  {encoded}\n" in text
    assert len(text.splitlines()) == len(files)
    assert read_manifest(Path(bag.path, "manifest-sha256.txt")) == {
        f"data/{rel}": sha256(data) for rel, data in files.items()
    }
    assert validate_bag(bag.path).ok


# --------------------------------------------------------------------------- bag-info


def test_long_values_are_folded_and_read_back(tmp_path) -> None:
    english = " ".join(f"word{i}" for i in range(60))
    chinese = "执法记录仪视频证据导出说明" * 12
    info = {
        "External-Description": english,
        "Internal-Sender-Description": chinese,
        "Contact-Name": ["Wang Wei", "Li Na"],
    }
    bag = make_bag(str(tmp_path / "out" / "bag"), {}, info)
    lines = Path(bag.path, "bag-info.txt").read_text(encoding="utf-8").split("\n")
    assert all(len(line) <= bagit.LINE_WIDTH for line in lines)
    assert any(line.startswith(" ") for line in lines)  # folded, not truncated
    read = read_bag_info(bag.path)
    assert read["External-Description"] == [english]
    assert read["Internal-Sender-Description"] == [chinese]
    assert read["Contact-Name"] == ["Wang Wei", "Li Na"]
    assert validate_bag(bag.path).ok


@pytest.mark.parametrize(
    "info",
    [
        {"Payload-Oxum": "1.1"},
        {"Bad:Label": "x"},
        {" Padded": "x"},
        {"Note": 42},
    ],
)
def test_bad_bag_info_is_refused_before_touching_the_disk(tmp_path, info) -> None:
    with pytest.raises(ValueError):
        make_bag(str(tmp_path / "out" / "bag"), {}, info)
    assert os.listdir(tmp_path / "out") == []


HOSTILE_VALUES = {
    "Note": "two\nlines\r\nand CR\rhere",
    "Recording-Ids": ["REC\x00NUL", "\x1b[2J\x07\x9b\u202eRLO", " leading", "trailing\t", "a\\x0a"],
    "Contact-Name": "王伟 " * 30 + "\n" + "x" * 100,
}


def test_line_breaks_and_controls_in_values_are_escaped_never_refused(tmp_path) -> None:
    """RFC 8493 section 2.2.2: a line break in a value would end the element; what a
    recorder stated is written escaped, one element per (folded) line, and read back."""
    from dock.support.text import escaped

    bag = make_bag(str(tmp_path / "out" / "bag"), {}, HOSTILE_VALUES)
    text = Path(bag.path, "bag-info.txt").read_text(encoding="utf-8")
    assert all(c.isprintable() or c == "\n" for c in text)
    lines = text.split("\n")
    assert all(line.startswith(" ") or ": " in line or not line for line in lines)
    info = read_bag_info(bag.path)
    assert info["Note"] == ["two\\x0alines\\x0d\\x0aand CR\\x0dhere"]
    assert info["Recording-Ids"] == [
        "REC\\x00NUL",
        "\\x1b[2J\\x07\\x9b\\u202eRLO",
        "\\x20leading",
        "trailing\\x09",
        "a\\\\x0a",  # a literal backslash is doubled: "\\x0a" is never a forgery
    ]
    assert info["Contact-Name"] == [escaped(HOSTILE_VALUES["Contact-Name"])]
    assert validate_bag(bag.path).ok


def test_caller_may_set_bagging_date(tmp_path) -> None:
    bag = make_bag(str(tmp_path / "out" / "bag"), {}, {"Bagging-Date": "2024-05-01"})
    assert read_bag_info(bag.path)["Bagging-Date"] == ["2024-05-01"]


# --------------------------------------------------------------------------- tampering


def flip_byte(root: Path) -> None:
    f = root / "data" / "with space.txt"
    writable(f)
    data = bytearray(f.read_bytes())
    data[0] ^= 0x01
    f.write_bytes(bytes(data))


def delete_file(root: Path) -> None:
    (root / "data" / "案件 0042" / "执法记录 视频.mp4").unlink()


def add_file(root: Path) -> None:
    (root / "data" / "planted.mp4").write_bytes(b"not from the recorder")


def edit_bag_info(root: Path) -> None:
    f = root / "bag-info.txt"
    writable(f)
    f.write_text(f.read_text(encoding="utf-8").replace("Traffic 3", "Traffic 4"), "utf-8")


def edit_manifest(root: Path) -> None:
    f = root / "manifest-sha256.txt"
    writable(f)
    digest = sha256(b"planted")
    text = re.sub(r"^[0-9a-f]{64}(?=  data/with space.txt)", digest, f.read_text(), flags=re.M)
    f.write_text(text)


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (flip_byte, r"data/with space\.txt: sha256 mismatch \(manifest-sha256\.txt says"),
        (
            delete_file,
            r"data/案件 0042/执法记录 视频\.mp4: listed in manifest-sha256\.txt but missing",
        ),
        (add_file, r"data/planted\.mp4: in the payload but not listed in manifest-sha256\.txt"),
        (edit_bag_info, r"bag-info\.txt: sha256 mismatch \(tagmanifest-sha256\.txt says"),
        (edit_manifest, r"manifest-sha256\.txt: sha256 mismatch \(tagmanifest-sha256\.txt says"),
    ],
)
def test_tampering_is_reported(made, tamper, expected: str) -> None:
    """000 §10: tampering with a sealed package is reported."""
    bag, _ = made
    seal = tagmanifest_digest(bag.path)
    tamper(Path(bag.path))
    report = validate_bag(bag.path)
    assert not report.ok
    assert any(re.match(expected, p) for p in report.problems), report.problems
    assert tagmanifest_digest(bag.path) == seal  # the seal itself untouched: files are caught


@pytest.mark.parametrize("tamper", [delete_file, add_file])
def test_fast_validation_sees_presence_and_oxum(made, tamper) -> None:
    bag, _ = made
    tamper(Path(bag.path))
    report = validate_bag(bag.path, fast=True)
    assert not report.ok
    assert any(p.startswith("Payload-Oxum: bag-info.txt says") for p in report.problems)


def test_fast_validation_misses_a_same_size_change_full_does_not(made) -> None:
    """000 §10; 004 att.2 §4: a same-size change is caught by full validation."""
    bag, _ = made
    flip_byte(Path(bag.path))
    assert validate_bag(bag.path, fast=True).ok
    assert not validate_bag(bag.path).ok


def test_regenerated_manifests_validate_but_break_the_seal(made) -> None:
    """000 §10: Why the seal goes to the audit log: a forger can redo every manifest."""
    bag, _ = made
    root = Path(bag.path)
    flip_byte(root)
    add_file(root)

    def rewrite(name: str, text: str) -> None:
        writable(root / name)
        (root / name).write_text(text, encoding="utf-8")

    def lines(names: list[str]) -> str:
        return "".join(f"{sha256((root / n).read_bytes())}  {n}\n" for n in names)

    payload = sorted(p for p in (root / "data").rglob("*") if p.is_file())
    rewrite("manifest-sha256.txt", lines([str(p.relative_to(root)) for p in payload]))
    oxum = f"{sum(p.stat().st_size for p in payload)}.{len(payload)}"
    info = (root / "bag-info.txt").read_text(encoding="utf-8")
    rewrite("bag-info.txt", re.sub(r"Payload-Oxum: .*", f"Payload-Oxum: {oxum}", info))
    rewrite("tagmanifest-sha256.txt", lines(["bagit.txt", "bag-info.txt", "manifest-sha256.txt"]))
    assert validate_bag(bag.path).ok
    assert tagmanifest_digest(bag.path) != bag.tagmanifest_sha256


def test_not_a_bag(tmp_path) -> None:
    (tmp_path / "plain").mkdir()
    report = validate_bag(str(tmp_path / "plain"))
    assert not report.ok
    assert "bagit.txt: missing" in report.problems
    assert not validate_bag(str(tmp_path / "nowhere")).ok


def test_symlink_in_payload_is_reported(made, tmp_path) -> None:
    bag, _ = made
    (tmp_path / "elsewhere.mp4").write_bytes(b"x")
    os.symlink(tmp_path / "elsewhere.mp4", Path(bag.path, "data", "link.mp4"))
    report = validate_bag(bag.path)
    assert "data/link.mp4: not a regular file" in report.problems


# --------------------------------------------------------------------------- crashes


def test_exception_before_rename_leaves_no_bag_and_no_temp(tmp_path, monkeypatch) -> None:
    payload = write_sources(tmp_path / "src", FILES)

    def crash(_tmp: str, _bag_dir: str) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(bagit, "_publish", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        make_bag(str(tmp_path / "out" / "bag"), payload, INFO)
    assert os.listdir(tmp_path / "out") == []
    for rel, src in payload.items():
        assert Path(src).read_bytes() == FILES[rel]


CRASHER = """
import os, sys
from dock.evidence import bagit
bagit._publish = lambda tmp, bag_dir: os._exit(3)  # the process dies before the rename
bagit.make_bag(sys.argv[1], {"a.mp4": sys.argv[2]}, {"Source-Organization": "x"})
"""


def test_hard_crash_leaves_only_a_temp_that_the_next_make_bag_removes(tmp_path) -> None:
    out = tmp_path / "out"
    payload = write_sources(tmp_path / "src", FILES)
    src = payload["with space.txt"]
    done = subprocess.run(
        [sys.executable, "-c", CRASHER, str(out / "bag"), src],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert not (out / "bag").exists()
    [temp] = leftovers(out)
    assert (out / temp / "data" / "a.mp4").exists()  # it really got that far

    # A temp still being built elsewhere (its flock held) must be left alone.
    busy = out / f"{bagit.TMP_PREFIX}busy"
    busy.mkdir()
    fd = os.open(busy, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        bag = make_bag(str(out / "bag"), payload, INFO)
        assert leftovers(out) == [busy.name]
    finally:
        os.close(fd)
    assert validate_bag(bag.path).ok
    assert sorted(os.listdir(out)) == sorted(["bag", busy.name])


# --------------------------------------------------------------------------- properties

NAME = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00/"),
    min_size=1,
    max_size=24,
).filter(lambda s: s not in (".", ".."))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    files=st.dictionaries(
        st.lists(NAME, min_size=1, max_size=3).map("/".join),
        st.binary(max_size=2048),
        max_size=6,
    ),
    link=st.booleans(),
)
def test_round_trip_of_random_names_and_contents(files: dict[str, bytes], link: bool) -> None:
    nfc = [unicodedata.normalize("NFC", rel) for rel in files]
    clash = len(set(nfc)) != len(nfc) or any(
        other.startswith(rel + "/") for rel in nfc for other in nfc
    )
    with tempfile.TemporaryDirectory() as tmp:
        payload = write_sources(Path(tmp, "src"), files, mode=0o444 if link else 0o644)
        if clash:
            with pytest.raises(ValueError):
                make_bag(os.path.join(tmp, "bag"), payload, INFO, link=link)
            return
        bag = make_bag(os.path.join(tmp, "bag"), payload, INFO, link=link)
        report = validate_bag(bag.path)
        assert report.ok, report.problems
        assert read_manifest(Path(bag.path, "manifest-sha256.txt")) == {
            f"data/{rel}": sha256(data) for rel, data in files.items()
        }
        assert bag.payload_oxum == f"{sum(map(len, files.values()))}.{len(files)}"
        for rel, data in files.items():
            assert Path(bag.path, "data", rel).read_bytes() == data


# --------------------------------------------------------------------------- interop


def test_bagit_python_agrees(made) -> None:
    bagit_python = pytest.importorskip("bagit")
    bag, _ = made
    theirs = bagit_python.Bag(bag.path)
    theirs.validate()
    assert theirs.info["Payload-Oxum"] == bag.payload_oxum


def test_bagit_python_validates_hostile_names_and_values(tmp_path) -> None:
    """Names with CR, LF, ESC, C1, bidi override; bag-info values with line breaks and
    NUL. (Not ``%``: bagit-python 1.8/1.9 neither encodes nor decodes ``%25``, which
    RFC 8493 section 2.1.3 requires; the dock's own payload names never hold one.)"""
    bagit_python = pytest.importorskip("bagit")
    files = {
        "line\nbreak.mp4": b"1",
        "cr\rname.mp4": b"2",
        "crlf\r\nname.mp4": b"3",
        "esc\x1b[2J\x07\x9b.mp4": b"4",
        "rlo\u202egpm.exe": b"5",
        "folder\nwith break/inner\rfile": b"6",
    }
    payload = write_sources(tmp_path / "src", files)
    bag = make_bag(str(tmp_path / "out" / "bag"), payload, HOSTILE_VALUES)
    assert validate_bag(bag.path).ok
    theirs = bagit_python.Bag(bag.path)
    theirs.validate()
    assert sorted(theirs.payload_files()) == sorted(f"data/{rel}" for rel in files)
    assert theirs.info["Payload-Oxum"] == bag.payload_oxum
    assert theirs.info["Note"] == read_bag_info(bag.path)["Note"][0]
