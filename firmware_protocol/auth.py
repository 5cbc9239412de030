"""Challenge-response authentication (PROTOCOL.md section 5).

Both sides hold a 32-byte secret provisioned at enrolment. The dock sends a fresh
nonce, the recorder answers with its own, the dock proves knowledge of the secret
over both nonces and the serial, and the recorder proves it back. Pure functions:
the caller supplies the randomness.
"""

from __future__ import annotations

import hashlib
import hmac

HOST_LABEL = b"BWC-AUTH-1 host"
DEVICE_LABEL = b"BWC-AUTH-1 device"
NONCE_SIZE = 32
SECRET_SIZE = 32


def _mac(secret: bytes, label: bytes, serial: str, first: bytes, second: bytes) -> bytes:
    if len(secret) != SECRET_SIZE:
        raise ValueError(f"secret must be {SECRET_SIZE} bytes")
    s = serial.encode("utf-8")
    msg = label + len(s).to_bytes(2, "big") + s + first + second
    return hmac.new(secret, msg, hashlib.sha256).digest()


def host_proof(secret: bytes, serial: str, host_nonce: bytes, device_nonce: bytes) -> bytes:
    """What the dock sends in AUTH_PROVE."""
    return _mac(secret, HOST_LABEL, serial, device_nonce, host_nonce)


def device_proof(secret: bytes, serial: str, host_nonce: bytes, device_nonce: bytes) -> bytes:
    """What the recorder answers, so the dock knows the recorder is genuine too."""
    return _mac(secret, DEVICE_LABEL, serial, host_nonce, device_nonce)


def verify(expected: bytes, given: bytes) -> bool:
    return hmac.compare_digest(expected, given)
