"""The dock's Ed25519 signing key: created once, kept private, shown as a fingerprint.

The key signs audit-log checkpoints and exports, so whoever can read it can forge
them: the file must be readable by the dock's user only (mode 0600). It is stored as
unencrypted PKCS#8 PEM so that an auditor's ``openssl pkey -in KEY -pubout`` works.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from typing import TYPE_CHECKING

from dock.support.files import fsync_dir

# cryptography is imported inside the functions that sign or load: the web site reads
# the audit log (fingerprints of raw keys) and stays 6 MiB smaller without it.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

#: A PEM Ed25519 key is ~120 bytes; anything far bigger is not our key file.
_MAX_KEY_FILE_BYTES = 64 * 1024


class KeyFileError(Exception):
    """The key file is unsafe or unusable; the message names the path and the fix."""


def load_or_create_signing_key(path: str) -> Ed25519PrivateKey:
    """The dock's signing key at ``path``, created (mode 0600) on first start.

    Creation writes a temporary file (O_CREAT|O_EXCL, 0600), fsyncs it, then links it
    to ``path`` (atomic and exclusive) and fsyncs the directory: a crash never leaves a
    half-written key, and two processes starting at once end up with the same key.
    Refuses a key file that group or others may read, or that does not hold an
    Ed25519 private key: raising is safer than silently signing with a leaked key or
    silently replacing a damaged one (which would change the dock's identity).
    """
    try:
        return _load(path)
    except FileNotFoundError:
        pass
    _create(path)
    return _load(path)


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The raw 32-byte public key (RFC 8032), of a private or a public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public: bytes | Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """A short display form of a public key: the first 8 bytes of its SHA-256, in hex.

    For people comparing keys by eye (a supervisor checking an export against the dock's
    label); verification itself always uses the full key.
    """
    raw = public if isinstance(public, bytes) else public_key_bytes(public)
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return ":".join(digest[i : i + 4] for i in range(0, 16, 4))


def _load(path: str) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)  # of the file we actually read, not of whatever the name is now
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"signing key {path} is not a regular file")
        if st.st_mode & 0o077:
            raise KeyFileError(
                f"signing key {path} is readable by group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); anyone who can read it can forge "
                f"audit checkpoints. Fix: chmod 600 {path} (and consider the key leaked: "
                "move it away so a new one is created, and tell headquarters the new "
                "fingerprint)"
            )
        data = os.read(fd, _MAX_KEY_FILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        if len(data) > _MAX_KEY_FILE_BYTES:
            raise ValueError("file too large")
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(_unusable(path, f"cannot be parsed ({exc})")) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(_unusable(path, f"holds a {type(key).__name__}, not an Ed25519 key"))
    return key


def _unusable(path: str, why: str) -> str:
    return (
        f"signing key {path} {why}. Fix: restore the dock's key from backup; or, to start "
        f"a new identity, move {path} away (a new key is created at the next start) and "
        "give headquarters the new fingerprint: checkpoints signed by the old key then "
        "verify only with the old public key"
    )


def _create(path: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        try:
            view = memoryview(pem)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process won: use its key
            os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(directory)
