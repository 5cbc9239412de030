"""Authentication, session keys, request MACs and enrolment keys (PROTOCOL.md section 5).

Both sides hold a 32-byte secret provisioned at enrolment. The dock sends a fresh
nonce, the recorder answers with its own, the dock proves knowledge of the secret
over both nonces and the serial, and the recorder proves it back (version 1 and 2).

Version 2 binds authority to the session: both sides derive a session key from the
secret, both nonces and the session id, and every privileged request (and its reply)
carries a counter and a MAC under that key, so another host on the cable cannot
continue, replay or splice the session. Enrolment derives the secret from an X25519
exchange (the caller does the curve arithmetic; this module only derives keys), so a
passive listener learns nothing. Pure functions: callers supply the randomness.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from .codec import FIELD_HEAD, REQ_ID, MalformedMessage

HOST_LABEL = b"BWC-AUTH-1 host"
DEVICE_LABEL = b"BWC-AUTH-1 device"
SESSION_KEY_LABEL = b"BWC-SESSION-2"
ENROL_KEY_LABEL = b"BWC-ENROL-2"
ENROL_SIGNATURE_LABEL = b"BWC-ENROL-2 signature"
REQUEST_LABEL = b"BWC-REQ-2"
REPLY_LABEL = b"BWC-REP-2"
NONCE_SIZE = 32
SECRET_SIZE = 32
KEY_SIZE = 32
MAC_SIZE = 32
#: The tag of the authenticator field, reserved in every message body (version 2).
AUTH_TAG = 255
AUTH_FIELD_SIZE = 4 + MAC_SIZE  # counter (u32) || MAC
_AUTH_HEAD = FIELD_HEAD.pack(AUTH_TAG, AUTH_FIELD_SIZE)
_COUNTER = struct.Struct(">I")
_MAC_HEAD = struct.Struct(">IIH")  # session id, counter, wire type


class BadAuthenticator(ValueError):
    """A privileged body whose authenticator is missing, misplaced or does not verify."""


def _serial_bytes(serial: str) -> bytes:
    s = serial.encode("utf-8")
    return len(s).to_bytes(2, "big") + s


def _mac(secret: bytes, label: bytes, serial: str, first: bytes, second: bytes) -> bytes:
    if len(secret) != SECRET_SIZE:
        raise ValueError(f"secret must be {SECRET_SIZE} bytes")
    msg = label + _serial_bytes(serial) + first + second
    return hmac.new(secret, msg, hashlib.sha256).digest()


def host_proof(secret: bytes, serial: str, host_nonce: bytes, device_nonce: bytes) -> bytes:
    """What the dock sends in AUTH_PROVE."""
    return _mac(secret, HOST_LABEL, serial, device_nonce, host_nonce)


def device_proof(secret: bytes, serial: str, host_nonce: bytes, device_nonce: bytes) -> bytes:
    """What the recorder answers, so the dock knows the recorder is genuine too."""
    return _mac(secret, DEVICE_LABEL, serial, host_nonce, device_nonce)


def verify(expected: bytes, given: bytes) -> bool:
    return hmac.compare_digest(expected, given)


# ---------------------------------------------------------------------- HKDF (RFC 5869)
def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int = KEY_SIZE) -> bytes:
    """HKDF-SHA256 extract-then-expand; stdlib only, so a firmware can mirror it."""
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF length out of range")
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    out, block = b"", b""
    for i in range((length + 31) // 32):
        block = hmac.new(prk, block + info + bytes([i + 1]), hashlib.sha256).digest()
        out += block
    return out[:length]


def session_key(
    secret: bytes, serial: str, session_id: int, host_nonce: bytes, device_nonce: bytes
) -> bytes:
    """The key both sides hold after a successful AUTH_PROVE in version 2."""
    if len(secret) != SECRET_SIZE:
        raise ValueError(f"secret must be {SECRET_SIZE} bytes")
    info = SESSION_KEY_LABEL + _serial_bytes(serial) + _COUNTER.pack(session_id & 0xFFFFFFFF)
    return hkdf_sha256(secret, host_nonce + device_nonce, info)


def enrol_secret(shared: bytes, serial: str, host_public: bytes, device_public: bytes) -> bytes:
    """The new shared secret, from the X25519 result of ENROL (version 2)."""
    if len(shared) != 32 or shared == bytes(32):
        raise ValueError("X25519 result must be 32 bytes and not all zero")
    return hkdf_sha256(shared, host_public + device_public, ENROL_KEY_LABEL + _serial_bytes(serial))


def enrol_signed_message(serial: str, host_public: bytes, device_public: bytes) -> bytes:
    """What a recorder with SIGNATURE signs with its device key in ENROL's reply."""
    return ENROL_SIGNATURE_LABEL + _serial_bytes(serial) + host_public + device_public


# ---------------------------------------------------------------------- authenticators
def _authenticator(
    key: bytes, label: bytes, session_id: int, counter: int, wire_type: int, inner: bytes
) -> bytes:
    head = _MAC_HEAD.pack(session_id & 0xFFFFFFFF, counter, wire_type & 0xFFFF)
    return hmac.new(key, label + head + inner, hashlib.sha256).digest()


def seal(
    key: bytes, *, reply: bool, session_id: int, counter: int, wire_type: int, body: bytes
) -> bytes:
    """Append the authenticator field (tag 255: counter || MAC) to an encoded body."""
    if not 0 < counter <= 0xFFFFFFFF:
        raise ValueError("counter must be 1..2^32-1")
    label = REPLY_LABEL if reply else REQUEST_LABEL
    mac = _authenticator(key, label, session_id, counter, wire_type, body)
    return body + _AUTH_HEAD + _COUNTER.pack(counter) + mac


def split_authenticator(body: bytes | memoryview) -> tuple[bytes, int, bytes] | None:
    """(body without the authenticator, counter, MAC), or None if there is none.

    The authenticator must be the body's last field and occur once; anything else
    is malformed (raises MalformedMessage), so a MAC always covers every other field.
    """
    data = bytes(body)
    if len(data) < REQ_ID.size:
        raise MalformedMessage("body shorter than its request id")
    pos, end, found = REQ_ID.size, len(data), None
    while pos < end:
        if end - pos < FIELD_HEAD.size:
            raise MalformedMessage(f"truncated field header at byte {pos}")
        tag, length = FIELD_HEAD.unpack_from(data, pos)
        if length > end - pos - FIELD_HEAD.size:
            raise MalformedMessage(f"field {tag} runs past the end of the body")
        if tag == AUTH_TAG:
            if found is not None or length != AUTH_FIELD_SIZE:
                raise MalformedMessage("authenticator repeated or of the wrong size")
            found = pos
        pos += FIELD_HEAD.size + length
    if found is None:
        return None
    if found + FIELD_HEAD.size + AUTH_FIELD_SIZE != end:
        raise MalformedMessage("authenticator is not the last field")
    value = data[found + FIELD_HEAD.size :]
    return data[:found], _COUNTER.unpack_from(value)[0], value[4:]


def check(
    key: bytes,
    *,
    reply: bool,
    session_id: int,
    wire_type: int,
    body: bytes | memoryview,
    after: int,
) -> int:
    """Verify a sealed body; returns its counter. Raises BadAuthenticator.

    ``after`` is the highest counter accepted so far in this session: a counter
    not above it is a replay (requests) or a reply to another request (replies:
    pass the request's counter - 1).
    """
    parts = split_authenticator(body)
    if parts is None:
        raise BadAuthenticator("no authenticator")
    inner, counter, mac = parts
    label = REPLY_LABEL if reply else REQUEST_LABEL
    if not hmac.compare_digest(
        _authenticator(key, label, session_id, counter, wire_type, inner), mac
    ):
        raise BadAuthenticator("authenticator does not verify")
    if counter <= after:
        raise BadAuthenticator(f"counter {counter} replayed (last accepted {after})")
    return counter
