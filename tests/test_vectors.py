"""The published test vectors and PROTOCOL.md agree with the implementation.

The vectors are checked against the code (decode, re-encode, decoder outputs, auth,
CRCs), the committed JSON must equal a fresh generation, and the message tables,
enumerations and worked examples in PROTOCOL.md must match messages.py and the
vectors, so neither the JSON nor the document can drift from the code silently.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from firmware_protocol import auth
from firmware_protocol.codec import FieldSpec, FieldType, MalformedMessage, Schema
from firmware_protocol.framing import (
    ABSOLUTE_MAX_PAYLOAD,
    END,
    FRAME_VERSION,
    HEADER,
    HEADER_SIZE,
    OVERHEAD,
    START,
    TRAILER_SIZE,
    Frame,
    FrameDecoder,
    FrameError,
    FrameErrorCode,
    FrameKind,
    crc16_ccitt_false,
    encode_frame,
)
from firmware_protocol.messages import (
    EVENT,
    PRIVILEGED,
    RECORDING,
    REPLIES,
    REQUESTS,
    SELF_TEST_ITEM,
    Capability,
    ErrorCode,
    EventKind,
    FaultFlag,
    Message,
    MsgType,
    RecordingFlag,
    StopReason,
    UnknownMessage,
    decode,
    encode,
    schema_for,
)
from firmware_protocol.session import SYN_PAYLOAD
from hardware.emulator.recorder import _CAPABILITY_FOR
from tests.make_vectors import OUTPUT, build_vectors, from_json, render, to_json

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "firmware_protocol" / "PROTOCOL.md"
VECTORS: dict[str, Any] = json.loads(OUTPUT.read_text(encoding="utf-8"))
ALL_FRAMES = VECTORS["frames"] + VECTORS["session_frames"]


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["name"] for i in items]


# ----------------------------------------------------------------- the file itself
def test_committed_vectors_equal_a_fresh_generation() -> None:
    fresh = render(build_vectors())
    assert fresh == OUTPUT.read_text(encoding="utf-8"), (
        "firmware_protocol/vectors/vectors.json is stale: run "
        "`.venv/bin/python tests/make_vectors.py` and commit the result"
    )


def test_generation_is_deterministic() -> None:
    assert render(build_vectors()) == render(build_vectors())


def test_names_are_unique() -> None:
    for section in ("frames", "session_frames", "decoder", "bodies"):
        names = _ids(VECTORS[section])
        assert len(names) == len(set(names)), section


# ----------------------------------------------------------------- CRCs
def _crc_from_catalogue(p: dict[str, Any], data: bytes) -> int:
    """A bit-by-bit CRC driven only by the catalogue parameters in the vectors."""
    width, poly = p["width"], p["poly"]
    top, mask = 1 << (width - 1), (1 << width) - 1
    reg = p["init"]
    for byte in data:
        if p["refin"]:
            byte = int(f"{byte:08b}"[::-1], 2)
        reg ^= byte << (width - 8)
        for _ in range(8):
            reg = ((reg << 1) ^ poly) & mask if reg & top else (reg << 1) & mask
    if p["refout"]:
        reg = int(f"{reg:0{width}b}"[::-1], 2)
    return reg ^ p["xorout"]


@pytest.mark.parametrize("vec", VECTORS["crc"], ids=_ids(VECTORS["crc"]))
def test_crc_check_values(vec: dict[str, Any]) -> None:
    data = bytes.fromhex(vec["input"])
    assert data == b"123456789"
    impl = crc16_ccitt_false if vec["width"] == 16 else zlib.crc32
    assert impl(data) == vec["check"]
    assert _crc_from_catalogue(vec, data) == vec["check"]
    sample = bytes(range(256)) * 3
    assert _crc_from_catalogue(vec, sample) == impl(sample)


def test_crc_catalogue_values() -> None:
    by_name = {v["name"]: v for v in VECTORS["crc"]}
    assert by_name["CRC-16/CCITT-FALSE"]["check"] == 0x29B1
    assert by_name["CRC-32/ISO-HDLC"]["check"] == 0xCBF43926


# ----------------------------------------------------------------- valid frames
def test_every_message_type_has_request_and_reply_vectors() -> None:
    seen: set[tuple[str, bool]] = set()
    for vec in VECTORS["frames"]:
        if vec.get("message"):
            seen.add((vec["message"]["type"], vec["message"]["is_reply"]))
    for t in MsgType:
        if t is MsgType.ERROR:
            assert ("ERROR", True) in seen
        else:
            assert (t.name, False) in seen, f"no request vector for {t.name}"
            assert (t.name, True) in seen, f"no reply vector for {t.name}"
    kinds = {v["header"]["kind"] for v in VECTORS["session_frames"]}
    assert kinds == {"SYN", "SYN_ACK", "ACK", "NAK", "RST"}


def _every_field(schema: Schema, prefix: str = "") -> set[str]:
    out = set()
    for spec in schema.fields:
        out.add(f"{prefix}{schema.name}.{spec.name}")
        if spec.nested is not None:
            out |= _every_field(spec.nested)
    return out


def _fields_seen(schema: Schema, fields: dict[str, Any]) -> set[str]:
    out = set()
    specs = schema.by_name()
    for name, value in fields.items():
        out.add(f"{schema.name}.{name}")
        spec = specs[name]
        if spec.nested is not None:
            for item in value if spec.repeated else [value]:
                out |= _fields_seen(spec.nested, item)
    return out


def test_every_field_appears_in_some_frame_vector() -> None:
    wanted: set[str] = set()
    for table in (REQUESTS, REPLIES):
        for schema in table.values():
            wanted |= _every_field(schema)
    seen: set[str] = set()
    for vec in VECTORS["frames"]:
        msg = vec.get("message")
        if msg:
            _, _, schema = schema_for(vec["header"]["msg_type"])
            seen |= _fields_seen(schema, msg["fields"])
    # Kept only so a version 2 recorder can name what it refuses (section 5.3).
    version_1_only = {"Enrol.secret"}
    assert wanted - seen == version_1_only


@pytest.mark.parametrize("vec", ALL_FRAMES, ids=_ids(ALL_FRAMES))
def test_valid_frame(vec: dict[str, Any]) -> None:
    raw = bytes.fromhex(vec["frame"])
    h = vec["header"]
    payload = bytes.fromhex(vec["payload"])
    kind = FrameKind[h["kind"]]

    # decode: exactly one frame with the stated header values and payload
    assert FrameDecoder().feed(raw) == [Frame(kind, h["seq"], h["ack"], h["msg_type"], payload)]
    # layout: START, header, HCRC, payload, CRC, END, every byte sent as it is
    assert raw.startswith(START) and raw.endswith(END)
    assert len(raw) == OVERHEAD + len(payload)
    body = raw[len(START) : -len(END)]  # VERSION..CRC
    assert body[HEADER_SIZE:-TRAILER_SIZE] == payload
    assert HEADER.unpack_from(body) == (
        h["version"],
        int(kind),
        h["seq"],
        h["ack"],
        h["msg_type"],
        h["length"],
    )
    assert h["length"] == len(payload)
    assert crc16_ccitt_false(body[: HEADER.size]) == h["header_crc"]
    assert int.from_bytes(body[HEADER.size : HEADER_SIZE], "big") == h["header_crc"]
    assert zlib.crc32(body[:-TRAILER_SIZE]) == h["crc"]
    assert int.from_bytes(body[-TRAILER_SIZE:], "big") == h["crc"]

    # re-encode: the same bytes
    assert encode_frame(kind, h["seq"], h["ack"], h["msg_type"], payload) == raw

    if "syn" in vec:
        s = vec["syn"]
        assert SYN_PAYLOAD.pack(s["session_id"], s["window"], s["max_payload"]) == payload
    if kind is not FrameKind.MSG:
        assert "message" not in vec
        return
    m = vec["message"]
    if m is None:
        with pytest.raises(UnknownMessage):
            decode(h["msg_type"], payload)
        return
    msg = decode(h["msg_type"], payload)
    assert msg.msg_type.name == m["type"]
    assert msg.is_reply == m["is_reply"]
    assert msg.req_id == m["req_id"]
    assert to_json(msg.fields) == m["fields"]
    _, _, schema = schema_for(h["msg_type"])
    rebuilt = Message(
        MsgType[m["type"]], m["is_reply"], m["req_id"], from_json(schema, m["fields"])
    )
    wire, body = encode(rebuilt)
    if "authenticator" in vec:
        body += _authenticator_by_hand(vec["authenticator"], m["is_reply"], wire, body)
    assert (wire, body) == (h["msg_type"], payload)
    assert encode_frame(kind, h["seq"], h["ack"], wire, body) == raw


def _authenticator_by_hand(a: dict[str, Any], is_reply: bool, wire: int, body: bytes) -> bytes:
    """Section 5.4 written out: tag 255, length 36, counter, HMAC over label, session
    id, counter, wire type and the body before the field; checked against the vector."""
    k = VECTORS["session_key"]
    label = b"BWC-REP-2" if is_reply else b"BWC-REQ-2"
    head = struct.pack(">IIH", k["session_id"], a["counter"], wire)
    mac = hmac.new(bytes.fromhex(k["session_key"]), label + head + body, hashlib.sha256)
    assert mac.hexdigest() == a["mac"]
    return bytes([255]) + (36).to_bytes(4, "big") + a["counter"].to_bytes(4, "big") + mac.digest()


def test_privileged_frames_carry_authenticators_in_order() -> None:
    """Every privileged request after AUTH_PROVE, and its reply, is sealed; counters
    rise by one from 1."""
    counters = []
    for vec in VECTORS["frames"]:
        m = vec.get("message")
        if not m or (m["type"] == "ERROR" and "authenticator" not in vec):
            continue
        privileged = MsgType[m["type"]] in PRIVILEGED or vec["name"].startswith("enrol_rekey")
        if vec["name"].startswith("set_time_unauthenticated"):
            assert "authenticator" not in vec
        elif privileged or m["type"] == "ERROR":
            assert "authenticator" in vec, vec["name"]
            if not m["is_reply"]:
                counters.append(vec["authenticator"]["counter"])
        else:
            assert "authenticator" not in vec, vec["name"]
    assert counters == list(range(1, len(counters) + 1)) and len(counters) >= 5


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> tuple[bytes, bytes]:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return prk, hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def test_session_key_vector() -> None:
    k = VECTORS["session_key"]
    s = k["serial"].encode()
    salt = bytes.fromhex(k["host_nonce"]) + bytes.fromhex(k["device_nonce"])
    info = b"BWC-SESSION-2" + len(s).to_bytes(2, "big") + s + k["session_id"].to_bytes(4, "big")
    assert (salt.hex(), info.hex()) == (k["hkdf_salt"], k["hkdf_info"])
    prk, key = _hkdf(bytes.fromhex(k["secret"]), salt, info)
    assert (prk.hex(), key.hex()) == (k["hkdf_prk"], k["session_key"])
    assert k["secret"] == VECTORS["auth"]["secret"]
    assert k["host_nonce"] == VECTORS["auth"]["host_nonce"]
    assert k["session_id"] == VECTORS["session_frames"][0]["syn"]["session_id"]
    args = (k["serial"], k["session_id"], salt[:32], salt[32:])
    assert auth.session_key(bytes.fromhex(k["secret"]), *args).hex() == k["session_key"]


def test_enrol_vector() -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    e = VECTORS["enrol"]
    host = X25519PrivateKey.from_private_bytes(bytes.fromhex(e["host_private_key"]))
    device = X25519PrivateKey.from_private_bytes(bytes.fromhex(e["device_private_key"]))
    assert host.public_key().public_bytes_raw().hex() == e["host_public_key"]
    assert device.public_key().public_bytes_raw().hex() == e["device_public_key"]
    shared = device.exchange(host.public_key())  # the recorder's side of the same result
    assert shared.hex() == e["shared"]
    s = e["serial"].encode()
    salt = bytes.fromhex(e["host_public_key"]) + bytes.fromhex(e["device_public_key"])
    info = b"BWC-ENROL-2" + len(s).to_bytes(2, "big") + s
    prk, secret = _hkdf(shared, salt, info)
    assert (salt.hex(), info.hex(), prk.hex(), secret.hex()) == (
        e["hkdf_salt"],
        e["hkdf_info"],
        e["hkdf_prk"],
        e["secret"],
    )
    signed = b"BWC-ENROL-2 signature" + len(s).to_bytes(2, "big") + s + salt
    assert signed.hex() == e["signed_message"]
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(e["device_signing_public_key"]))
    key.verify(bytes.fromhex(e["signature"]), signed)
    by_name = {v["name"]: v["message"]["fields"] for v in VECTORS["frames"] if v.get("message")}
    assert by_name["enrol_rekey_request"]["host_public_key"] == e["host_public_key"]
    assert by_name["enrol_rekey_reply"]["device_public_key"] == e["device_public_key"]
    assert by_name["enrol_rekey_reply"]["signature"] == e["signature"]


# ----------------------------------------------------------------- decoder vectors
def _output_json(item: Frame | FrameError) -> dict[str, Any]:
    if isinstance(item, Frame):
        return {
            "frame": {
                "kind": item.kind.name,
                "seq": item.seq,
                "ack": item.ack,
                "msg_type": item.msg_type,
                "payload": item.payload.hex(),
            }
        }
    return {
        "error": item.code.value,
        "discarded": item.discarded,
        "seq": item.seq,
        "kind": None if item.kind is None else item.kind.name,
    }


@pytest.mark.parametrize("vec", VECTORS["decoder"], ids=_ids(VECTORS["decoder"]))
def test_decoder_vector(vec: dict[str, Any]) -> None:
    dec = FrameDecoder(vec["max_payload"])
    for step in vec["feeds"]:
        got = dec.feed(bytes.fromhex(step["data"]))
        assert [_output_json(i) for i in got] == step["outputs"]
        assert dec.buffered == step["buffered"]


@pytest.mark.parametrize("vec", VECTORS["decoder"], ids=_ids(VECTORS["decoder"]))
def test_decoder_vector_accounts_for_every_byte(vec: dict[str, Any]) -> None:
    """Frames + discarded + still buffered = bytes fed: no byte is dropped unreported."""
    fed = sum(len(step["data"]) // 2 for step in vec["feeds"])
    used = 0
    for step in vec["feeds"]:
        for out in step["outputs"]:
            if "frame" in out:
                f = out["frame"]
                used += len(
                    encode_frame(
                        FrameKind[f["kind"]],
                        f["seq"],
                        f["ack"],
                        f["msg_type"],
                        bytes.fromhex(f["payload"]),
                    )
                )
            else:
                used += out["discarded"]
    assert used + vec["feeds"][-1]["buffered"] == fed


def test_decoder_vectors_cover_every_error_code() -> None:
    seen = {
        out["error"]
        for vec in VECTORS["decoder"]
        for step in vec["feeds"]
        for out in step["outputs"]
        if "error" in out
    }
    assert seen == {c.value for c in FrameErrorCode}


def test_constants() -> None:
    c = VECTORS["constants"]
    assert bytes.fromhex(c["start"]) == START and bytes.fromhex(c["end"]) == END
    assert c["frame_version"] == FRAME_VERSION
    assert c["header_size"] == HEADER_SIZE == 18
    assert c["frame_overhead"] == OVERHEAD == len(START) + HEADER_SIZE + TRAILER_SIZE + len(END)
    assert c["absolute_max_payload"] == ABSOLUTE_MAX_PAYLOAD


# ----------------------------------------------------------------- body vectors
@pytest.mark.parametrize("vec", VECTORS["bodies"], ids=_ids(VECTORS["bodies"]))
def test_body_vector(vec: dict[str, Any]) -> None:
    payload = bytes.fromhex(vec["payload"])
    outcome = vec["outcome"]
    if outcome == "MalformedMessage":
        with pytest.raises(MalformedMessage):
            decode(vec["wire_type"], payload)
    elif outcome == "UnknownMessage":
        with pytest.raises(UnknownMessage) as info:
            decode(vec["wire_type"], payload)
        assert info.value.req_id == vec["req_id"]
        assert info.value.wire_type == vec["wire_type"]
    else:
        assert outcome == "ok"
        msg = decode(vec["wire_type"], payload)
        m = vec["message"]
        assert (msg.msg_type.name, msg.is_reply, msg.req_id) == (
            m["type"],
            m["is_reply"],
            m["req_id"],
        )
        assert to_json(msg.fields) == m["fields"]


# ----------------------------------------------------------------- auth, signature
def test_auth_vector() -> None:
    a = VECTORS["auth"]
    secret = bytes.fromhex(a["secret"])
    hn, dn = bytes.fromhex(a["host_nonce"]), bytes.fromhex(a["device_nonce"])
    serial = a["serial"]
    s = serial.encode("utf-8")
    host_input = b"BWC-AUTH-1 host" + len(s).to_bytes(2, "big") + s + dn + hn
    device_input = b"BWC-AUTH-1 device" + len(s).to_bytes(2, "big") + s + hn + dn
    assert host_input.hex() == a["host_mac_input"]
    assert device_input.hex() == a["device_mac_input"]
    assert hmac.new(secret, host_input, hashlib.sha256).hexdigest() == a["host_mac"]
    assert hmac.new(secret, device_input, hashlib.sha256).hexdigest() == a["device_mac"]
    assert auth.host_proof(secret, serial, hn, dn).hex() == a["host_mac"]
    assert auth.device_proof(secret, serial, hn, dn).hex() == a["device_mac"]


def test_auth_vector_matches_the_auth_frames() -> None:
    a = VECTORS["auth"]
    by_name = {v["name"]: v["message"]["fields"] for v in VECTORS["frames"] if v.get("message")}
    assert by_name["auth_challenge_request"]["host_nonce"] == a["host_nonce"]
    assert by_name["auth_challenge_reply"]["device_nonce"] == a["device_nonce"]
    assert by_name["auth_prove_request"]["host_mac"] == a["host_mac"]
    assert by_name["auth_prove_reply"]["device_mac"] == a["device_mac"]


def test_signature_vector() -> None:
    s = VECTORS["signature"]
    content = bytes(range(256)) * 16
    assert hashlib.sha256(content).hexdigest() == s["sha256"]
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(s["public_key"]))
    key.verify(bytes.fromhex(s["signature"]), bytes.fromhex(s["sha256"]))  # raises if bad
    by_name = {v["name"]: v["message"]["fields"] for v in VECTORS["frames"] if v.get("message")}
    assert by_name["hello_reply"]["device_public_key"] == s["public_key"]
    first = by_name["list_recordings_reply"]["recordings"][0]
    assert (first["sha256"], first["signature"]) == (s["sha256"], s["signature"])


# ----------------------------------------------------------------- PROTOCOL.md
def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _cells(line: str) -> list[str]:
    return [c.strip().strip("`").strip() for c in line.strip().strip("|").split("|")]


def _tables(text: str) -> dict[str, list[list[str]]]:
    """Markdown tables keyed by the first `Name` in backticks on the line before them."""
    lines = text.splitlines()
    tables: dict[str, list[list[str]]] = {}
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("|") and (i == 0 or not lines[i - 1].strip()):
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            names = re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", lines[j]) if j >= 0 else []
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            body = [r for r in rows[1:] if not all(set(c) <= set(":- ") for c in r)]
            if names:
                tables.setdefault(names[0], body)
            continue
        i += 1
    return tables


def _type_text(spec: FieldSpec) -> str:
    t = spec.nested.name if spec.type is FieldType.NESTED and spec.nested else spec.type.value
    if spec.size is not None:
        t += f"[{spec.size}]"
    return f"repeated {t}" if spec.repeated else t


def _all_schemas() -> list[Schema]:
    return [*REQUESTS.values(), *REPLIES.values(), RECORDING, EVENT, SELF_TEST_ITEM]


@pytest.mark.parametrize("schema", _all_schemas(), ids=lambda s: s.name)
def test_doc_field_table_matches_schema(schema: Schema) -> None:
    text = _doc()
    assert f"`{schema.name}`" in text, f"PROTOCOL.md never names {schema.name}"
    tables = _tables(text)
    if not schema.fields:
        assert not tables.get(schema.name), f"{schema.name} has no fields"
        return
    assert schema.name in tables, f"PROTOCOL.md has no field table for `{schema.name}`"
    got = [tuple(r[:4]) for r in tables[schema.name]]
    want = [
        (str(f.tag), f.name, _type_text(f), "yes" if f.required else "no") for f in schema.fields
    ]
    assert got == want


def test_doc_message_type_table() -> None:
    rows = _tables(_doc())["MsgType"]
    got = {r[1]: r for r in rows}
    assert set(got) == {t.name for t in MsgType}
    for t in MsgType:
        value, _, privileged, capability = got[t.name][:4]
        assert int(value, 0) == int(t), t.name
        assert (privileged == "yes") == (t in PRIVILEGED), t.name
        need = _CAPABILITY_FOR.get(t)
        assert capability == (need.name if need else "-"), t.name


@pytest.mark.parametrize(
    "enum_cls",
    [ErrorCode, Capability, EventKind, StopReason, RecordingFlag, FaultFlag],
    ids=lambda e: e.__name__,
)
def test_doc_enumeration_table(enum_cls: type) -> None:
    rows = _tables(_doc())[enum_cls.__name__]
    got = {r[1]: int(r[0], 0) for r in rows}
    assert got == {m.name: int(m) for m in enum_cls}


def test_doc_frame_layout_table() -> None:
    rows = _tables(_doc())["encode_frame"]
    fields = ["START", "VERSION", "KIND", "SEQ", "ACK", "TYPE", "LEN", "HCRC"]
    fields += ["PAYLOAD", "CRC", "END"]
    assert [r[2] for r in rows] == fields
    sizes = [len(START), *[struct.calcsize(">" + c) for c in HEADER.format[1:]], 2]
    sizes += [None, TRAILER_SIZE, len(END)]  # None: the payload, n bytes
    offset, after_payload = 0, False
    for row, size in zip(rows, sizes, strict=True):
        assert row[0] == (f"{offset}+*n*" if after_payload else str(offset)), row
        assert row[1] == ("*n*" if size is None else str(size)), row
        if size is None:
            after_payload = True
        else:
            offset += size
    assert offset == OVERHEAD
    assert rows[0][3] == " ".join(f"0x{x:02X}" for x in START)
    assert rows[-1][3] == " ".join(f"0x{x:02X}" for x in END)


def test_doc_frame_kind_table() -> None:
    rows = _tables(_doc())["FrameKind"]
    assert {r[1]: int(r[0], 0) for r in rows} == {k.name: int(k) for k in FrameKind}


def test_doc_frame_error_table() -> None:
    """The error list of section 2.5 is FrameErrorCode, and says what each report carries."""
    rows = _tables(_doc())["FrameErrorCode"]
    assert [r[0] for r in rows] == [c.value for c in FrameErrorCode]
    discarded = {r[0]: r[1] for r in rows}
    carries_seq = {r[0]: r[2] == "yes" for r in rows}
    assert {r[2] for r in rows} <= {"yes", "no"}
    for vec in VECTORS["decoder"]:
        for step in vec["feeds"]:
            for out in step["outputs"]:
                if "error" not in out:
                    continue
                code = out["error"]
                assert (out["seq"] is not None) == carries_seq[code], (vec["name"], out)
                assert (out["kind"] is not None) == carries_seq[code], (vec["name"], out)
                if discarded[code].isdigit():
                    assert out["discarded"] == int(discarded[code]), (vec["name"], out)


def test_doc_has_a_section_per_message() -> None:
    headings = [line for line in _doc().splitlines() if line.startswith("#")]
    for t in MsgType:
        assert any(re.search(rf"\b{t.name}\b", h) for h in headings), t.name


def test_doc_examples_match_the_vectors() -> None:
    text = _doc()
    by_name = {v["name"]: v["frame"] for v in ALL_FRAMES}
    examples = re.findall(r"<!-- vector: (\w+) -->\s*```text\n(.*?)```", text, re.S)
    names = [n for n, _ in examples]
    assert {"syn", "syn_ack", "hello_request", "hello_reply", "read_reply"} <= set(names)
    for name, block in examples:
        hex_part = "".join(line.split("|")[0] for line in block.splitlines())
        assert "".join(hex_part.split()) == by_name[name], f"example {name} is stale"


def test_doc_names_only_existing_vectors() -> None:
    """Every "vector `name`" in PROTOCOL.md is a vector in the file (or a section of it)."""
    known = {
        v["name"]
        for section in ("frames", "session_frames", "decoder", "bodies")
        for v in VECTORS[section]
    } | set(VECTORS)
    named = re.findall(r"[Vv]ectors?\s+`(\w+)`", _doc())
    assert "damaged_carrier_exposes_embedded_frame" in named
    assert set(named) - known == set()
