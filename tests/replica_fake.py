"""A replication target in a local folder, for the engine's unit tests (the real
servers are in tests/sshd_server.py and tests/replica_servers.py): it keeps the
Protocol's promises and can be told to fail."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

from dock.domain.replica import Progress, ReplicaError, ReplicaFull, ReplicaUnavailable


class FolderTarget:
    def __init__(self, root: str, name: str = "fake") -> None:
        self.root = root
        self.name = name
        self.connected = False
        self.down = False  # connect raises ReplicaUnavailable
        self.room: int | None = None  # bytes the target may hold in all
        self.cut_after: int | None = None  # an upload raises ReplicaUnavailable past this
        self.uploads: list[tuple[str, int]] = []  # (relpath, offset) of every upload

    def _p(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/"))

    def connect(self) -> None:
        if self.down:
            raise ReplicaUnavailable(f"{self.name}: connection refused")
        self.connected = True

    def close(self) -> None:
        self.connected = False

    def size(self, relpath: str) -> int | None:
        assert self.connected
        try:
            return os.path.getsize(self._p(relpath))
        except FileNotFoundError:
            return None

    def used(self) -> int:
        return sum(
            os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(self.root) for f in fs
        )

    def upload(
        self, relpath: str, source: BinaryIO, offset: int, size: int, progress: Progress
    ) -> None:
        assert self.connected
        self.uploads.append((relpath, offset))
        path = self._p(relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "r+b" if offset else "wb") as f:
            f.truncate(offset)
            f.seek(offset)
            sent = offset
            while sent < size:
                chunk = source.read(min(65536, size - sent))
                if not chunk:
                    raise ReplicaError("source ended early")
                if self.room is not None and self.used() + len(chunk) > self.room:
                    raise ReplicaFull(f"{self.name}: no space left on the target")
                if self.cut_after is not None and sent + len(chunk) > self.cut_after:
                    f.write(chunk[: self.cut_after - sent])
                    raise ReplicaUnavailable(f"{self.name}: connection lost")
                f.write(chunk)
                sent += len(chunk)
                progress(sent)

    def publish(self, relpath: str, final_relpath: str) -> None:
        if os.path.exists(self._p(final_relpath)):
            raise ReplicaError(f"{final_relpath} exists")
        os.rename(self._p(relpath), self._p(final_relpath))

    def read(self, relpath: str) -> Iterator[bytes]:
        with open(self._p(relpath), "rb") as f:
            while chunk := f.read(65536):
                yield chunk

    def delete(self, relpath: str) -> None:
        os.unlink(self._p(relpath))
