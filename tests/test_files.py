"""dock.support.files: the one copy of each careful file-system step."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

import pytest

from dock.support.files import drop_cache, fsync_dir, hash_blocks, hash_file, write_replacing


def test_hash_file_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)
    path = tmp_path / "f"
    path.write_bytes(data)
    found = hash_file(str(path))
    assert (found.size, found.digest) == (len(data), hashlib.sha256(data).digest())
    assert hash_file(str(path), "md5").hex == hashlib.md5(data).hexdigest()


def test_hash_blocks_reports_progress() -> None:
    done: list[int] = []
    found = hash_blocks([b"ab", b"", b"cde"], on_progress=done.append)
    assert found == (5, hashlib.sha256(b"abcde").digest()) and done == [2, 2, 5]


def test_write_replacing_is_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "copy"
    path.write_bytes(b"old")
    dfd = os.open(tmp_path, os.O_RDONLY)
    try:

        def fails(out: BinaryIO) -> None:
            out.write(b"half")
            raise OSError("disk gone")

        with pytest.raises(OSError, match="disk gone"):
            write_replacing(str(path), fails, dfd)
        assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["copy"]
        write_replacing(str(path), lambda out: out.write(b"new"), dfd)
    finally:
        os.close(dfd)
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["copy"]
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_fsync_dir_and_drop_cache_work_on_real_files(tmp_path: Path) -> None:
    fsync_dir(str(tmp_path))
    (tmp_path / "f").write_bytes(b"x")
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        drop_cache(fd)
    finally:
        os.close(fd)
    with pytest.raises(FileNotFoundError):
        fsync_dir(str(tmp_path / "missing"))
