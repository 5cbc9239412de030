"""What the dock needs from a replication target: the unit's central storage.

A sealed package leaves the dock as files under one folder at the target. Each transport
(SFTP, SMB, S3: one module each, built on a kept library) fits :class:`ReplicaTarget`;
the replication engine alone decides what to send, in what order, and when a package
counts as the second copy (after every file was read back from the target and matched
the manifest). Paths given to a target are relative, "/"-separated, made by the engine
from names the dock chose (never from a recorder), and checked by :func:`safe_relpath`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO, Protocol, runtime_checkable


class ReplicaError(Exception):
    """The target could not do what was asked; the message is one line for a person."""


class ReplicaUnavailable(ReplicaError):
    """The target cannot be reached now (network, server down, timeout): try again later."""


class ReplicaAuthError(ReplicaError):
    """The target refused the dock's credentials: nothing will work until a person acts."""


class ReplicaFull(ReplicaError):
    """The target has no room (or a quota) for what was sent."""


#: Called with the bytes sent so far for the current file, as they go.
Progress = Callable[[int], None]


class ReplicaTarget(Protocol):
    """One configured target. Not thread-safe: the engine uses one at a time."""

    #: The name the configuration gives it (shown in status, audit entries, MQTT).
    name: str

    def connect(self) -> None:
        """Open the session (raises ReplicaUnavailable / ReplicaAuthError)."""

    def close(self) -> None:
        """Close the session; safe to call twice or after a failed connect."""

    def size(self, relpath: str) -> int | None:
        """Bytes stored at ``relpath``, or None when nothing is there."""

    def upload(
        self, relpath: str, source: BinaryIO, offset: int, size: int, progress: Progress
    ) -> None:
        """Write ``source`` (positioned at ``offset``) to ``relpath`` from ``offset`` on,
        until ``size`` bytes are there: offset 0 starts the file afresh, a larger one
        continues a partial upload (resumable transfers). Parents are created as needed.
        The engine uploads to a temporary name and then calls :meth:`publish`."""

    def publish(self, relpath: str, final_relpath: str) -> None:
        """Rename a finished upload to its final name (replacing nothing: a final name
        already present raises ReplicaError, the engine then verifies what is there)."""

    def read(self, relpath: str) -> Iterator[bytes]:
        """The stored bytes, in chunks, read back from the target (not from a cache of
        ours) so the engine can hash them against the manifest."""

    def delete(self, relpath: str) -> None:
        """Remove one file (a corrupt copy found at verification, a stale partial)."""


@runtime_checkable
class TargetDigest(Protocol):
    """A target that can be configured to hash what it stored itself (SFTP's
    ``verify = "remote-sha256sum"``): trusted as the server's own reading, see
    docs/SECURITY.md."""

    def sha256_at_target(self, relpath: str) -> str | None:
        """The SHA-256 (64 lowercase hex) the target computed of the file it stored,
        after making it durable; None when this target is configured to be read back."""


class GrowingFile(Protocol):
    """A file at the target opened for reading while it is still being written."""

    def stored(self) -> int:
        """The file's size at the target now."""

    def read_range(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` as the target returns them now (fewer at its end)."""

    def close(self) -> None:
        """Close the file; safe to call twice."""


@runtime_checkable
class ReadBeside(Protocol):
    """A target whose second session can read a file still being written (SFTP): a
    large file's read-back then follows its own upload instead of waiting for its end.
    What is read this way proves the copy only when all of it matches and the file was
    then put in place whole; anything else is read back again from its final name."""

    def follows_uploads(self) -> bool:
        """Whether this session reads files back at all (False: the target hashes what
        it stored itself, :class:`TargetDigest`, and nothing is read while it grows)."""

    def open_growing(self, relpath: str) -> GrowingFile:
        """``relpath``, open for :meth:`GrowingFile.read_range` while it grows."""


def safe_relpath(relpath: str) -> str:
    """``relpath`` if it is a plain relative "/"-path (no empty, ".", ".." parts, no
    backslash, NUL or control character); ValueError otherwise."""
    parts = relpath.split("/")
    if not relpath or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a plain relative path: {relpath!r}")
    if any(c == "\\" or ord(c) < 0x20 or c == "\x7f" for c in relpath):
        raise ValueError(f"not a plain relative path: {relpath!r}")
    return relpath


__all__ = [
    "GrowingFile",
    "Progress",
    "ReadBeside",
    "ReplicaAuthError",
    "ReplicaError",
    "ReplicaFull",
    "ReplicaTarget",
    "ReplicaUnavailable",
    "TargetDigest",
    "safe_relpath",
]
