"""ISO 9660 images of a package, ready to burn: Joliet names as Windows shows them, Rock
Ridge as Linux and macOS do, plain ISO 9660 names for the rest; each image read back
and compared file by file before it is published."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from typing import BinaryIO, cast

from dock.support.files import hash_file

_JOLIET_BAD = re.compile(r"[*/:;?\\\x00-\x1f]")
JOLIET_MAX = 64  # pycdlib counts UTF-8 bytes (the standard: 64 UCS-2 characters)
ISO_FILE_MAX = 30  # level 3: name + "." + extension, without ";1"
ISO_DIR_MAX = 31


def _cut(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits ``limit`` bytes."""
    while len(text.encode("utf-8")) > limit:
        text = text[:-1]
    return text


def _unique(name: str, used: set[str], limit: int, ext: str = "", mark: str = "~") -> str:
    """``name`` + ``ext`` cut to ``limit`` UTF-8 bytes, made unique with a ``~N`` tail."""
    room = limit - len(ext.encode("utf-8"))
    candidate, n = _cut(name, room) + ext, 1
    while candidate.upper() in used:
        tail = f"{mark}{n}"
        candidate = _cut(name, room - len(tail)) + tail + ext
        n += 1
    used.add(candidate.upper())
    return candidate


def _iso9660_name(name: str, used: set[str], is_dir: bool) -> str:
    """A d-character name (A-Z 0-9 _) for readers that know only plain ISO 9660."""

    def clean(s: str) -> str:
        return re.sub(r"[^A-Z0-9_]", "_", s.upper())

    if is_dir:
        return _unique(clean(name) or "_", used, ISO_DIR_MAX, mark="_")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    suffix = "." + clean(ext)[:8] if ext else "."
    return _unique(clean(stem) or "_", used, ISO_FILE_MAX, suffix, mark="_")


def _joliet_name(name: str, used: set[str]) -> str:
    """The name Windows shows: Unicode kept (Chinese too), cut to 64 UTF-8 bytes (pycdlib's
    limit) with the extension kept; Rock Ridge keeps the full name."""
    clean = _JOLIET_BAD.sub("_", name)
    stem, dot, ext = clean.rpartition(".")
    if dot and stem and len(ext) < 8:
        return _unique(stem, used, JOLIET_MAX, "." + ext)
    return _unique(clean, used, JOLIET_MAX)


class _Hasher:
    """A write-only file that only hashes: reading back an ISO without a temp copy."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.h.update(data)
        return len(data)


def write_iso(bag_dir: str, iso_path: str, volume: str) -> str:
    """Write ``bag_dir`` as an ISO 9660 image (folder at the disc's root), ready to burn.

    Joliet carries the names as Windows shows them (long, Chinese), Rock Ridge as
    Linux/macOS show them, and plain ISO 9660 gets mangled d-character names. The image
    is written under a temporary name, fsynced, read back and every file compared by
    SHA-256 with the bag, and only then renamed into place. Returns the image's SHA-256.
    """
    import pycdlib  # only needed for discs

    top = os.path.basename(os.path.normpath(bag_dir))
    volume = re.sub(r"[^A-Z0-9_]", "_", volume.upper())[:32]
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident=volume, joliet=3, rock_ridge="1.09")
    files: list[tuple[str, str, str, str]] = []  # (disk path, iso, joliet, rock ridge)
    top_iso = _iso9660_name(top, set(), True)
    top_j = "/" + _joliet_name(top, set())
    dirs = {bag_dir: (f"/{top_iso}", top_j, f"/{top}")}
    iso_used: dict[str, set[str]] = {f"/{top_iso}": set()}
    joliet_used: dict[str, set[str]] = {top_j: set()}
    try:
        iso.add_directory(f"/{top_iso}", rr_name=top, joliet_path=top_j)
        for dirpath, dirnames, filenames in os.walk(bag_dir):
            dirnames.sort()
            parent_iso, parent_j, parent_rr = dirs[dirpath]
            names = [(d, True) for d in dirnames] + [(f, False) for f in sorted(filenames)]
            for name, is_dir in names:
                iso_name = _iso9660_name(name, iso_used[parent_iso], is_dir)
                j_name = _joliet_name(name, joliet_used[parent_j])
                iso_p = f"{parent_iso}/{iso_name}"
                j_p, rr_p = f"{parent_j}/{j_name}", f"{parent_rr}/{name}"
                if is_dir:
                    iso.add_directory(iso_p, rr_name=name, joliet_path=j_p)
                    dirs[os.path.join(dirpath, name)] = (iso_p, j_p, rr_p)
                    iso_used[iso_p], joliet_used[j_p] = set(), set()
                else:
                    src = os.path.join(dirpath, name)
                    iso.add_file(src, iso_path=iso_p + ";1", rr_name=name, joliet_path=j_p)
                    files.append((src, iso_p + ";1", j_p, rr_p))
        folder = os.path.dirname(os.path.abspath(iso_path))
        tmp = os.path.join(folder, f".{os.path.basename(iso_path)}.{secrets.token_hex(4)}.tmp")
        try:
            with open(tmp, "xb") as out:
                iso.write_fp(out)
                out.flush()
                os.fsync(out.fileno())
            _check_iso(tmp, files)
            os.chmod(tmp, 0o444)
            if os.path.lexists(iso_path):
                raise FileExistsError(iso_path)
            os.rename(tmp, iso_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    finally:
        iso.close()
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return hash_file(iso_path).hex


def _check_iso(path: str, files: list[tuple[str, str, str, str]]) -> None:
    """Read the image back: every file's bytes by its Joliet name, and its ISO 9660 and
    Rock Ridge names present with the same length (they share the file's extent)."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(path)
    try:
        for src, iso_p, j_p, rr_p in files:
            h = _Hasher()
            iso.get_file_from_iso_fp(cast(BinaryIO, h), joliet_path=j_p)  # it only writes
            if h.h.hexdigest() != hash_file(src).hex:
                raise OSError(f"ISO read-back: {j_p} does not match {src}")
            size = os.path.getsize(src)
            for key, p in (("iso_path", iso_p), ("rr_path", rr_p)):
                if iso.get_record(**{key: p}).get_data_length() != size:
                    raise OSError(f"ISO read-back: {p} is not {size} bytes")
    finally:
        iso.close()
