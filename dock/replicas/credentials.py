"""A secret from its file: the configuration names files readable only by the dock
(``password_file``, ``access_key_file``, ``secret_key_file``), never the secrets."""

from __future__ import annotations

from dock.domain.replica import ReplicaAuthError

#: A secret's file is one short line; anything bigger is not the file meant.
MAX_BYTES = 4096


def read_secret(path: str, key: str, target: str) -> str:
    """The file's first line, stripped; ReplicaAuthError (one line) when it is unreadable
    or empty. The secret itself is never put in a message."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ReplicaAuthError(
            f"{target}: {key} {path!r} is unreadable ({exc.strerror or type(exc).__name__})"
        ) from None
    if len(raw) > MAX_BYTES:
        raise ReplicaAuthError(f"{target}: {key} {path!r} is too big for a secret")
    lines = raw.decode("utf-8", "replace").splitlines()
    secret = lines[0].strip() if lines else ""
    if not secret:
        raise ReplicaAuthError(f"{target}: {key} {path!r} is empty")
    return secret
