"""Message body codec: a request id followed by tag-length-value fields.

Pure and schema-driven. A body is ``REQ_ID (u32)`` then fields, each
``TAG (u8) LEN (u32) VALUE``. Unknown tags are skipped, so a newer peer may add
fields an older one ignores; missing required fields, wrong lengths and bad UTF-8
raise :class:`MalformedMessage`, which a responder answers with ERROR MALFORMED.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from functools import cached_property
from typing import Any

FIELD_HEAD = struct.Struct(">BI")
REQ_ID = struct.Struct(">I")


class FieldType(enum.Enum):
    U8 = "u8"
    U16 = "u16"
    U32 = "u32"
    U64 = "u64"
    I32 = "i32"
    I64 = "i64"
    BOOL = "bool"
    STR = "str"
    BYTES = "bytes"
    NESTED = "nested"


_INT_FORMATS: dict[FieldType, struct.Struct] = {
    FieldType.U8: struct.Struct(">B"),
    FieldType.U16: struct.Struct(">H"),
    FieldType.U32: struct.Struct(">I"),
    FieldType.U64: struct.Struct(">Q"),
    FieldType.I32: struct.Struct(">i"),
    FieldType.I64: struct.Struct(">q"),
    FieldType.BOOL: struct.Struct(">?"),
}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    tag: int
    name: str
    type: FieldType
    required: bool = False
    repeated: bool = False
    nested: Schema | None = None
    #: For BYTES: exact length required (e.g. 32 for a SHA-256), or None.
    size: int | None = None


@dataclass(frozen=True)
class Schema:
    name: str
    fields: tuple[FieldSpec, ...] = ()

    @cached_property
    def _tags(self) -> dict[int, FieldSpec]:
        return {f.tag: f for f in self.fields}

    @cached_property
    def _names(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}

    def by_tag(self) -> dict[int, FieldSpec]:
        return self._tags

    def by_name(self) -> dict[str, FieldSpec]:
        return self._names


class MalformedMessage(ValueError):
    """A body that does not match its schema."""


def encode_body(schema: Schema, req_id: int, values: dict[str, Any]) -> bytes:
    """Encode ``values`` (field name -> value; lists for repeated) after ``req_id``."""
    parts = [REQ_ID.pack(req_id & 0xFFFFFFFF)]
    _encode_parts(schema, values, parts)
    return b"".join(parts)  # the one copy a large READ reply costs


def encode_fields(schema: Schema, values: dict[str, Any]) -> bytes:
    parts: list[bytes] = []
    _encode_parts(schema, values, parts)
    return b"".join(parts)


def _encode_parts(schema: Schema, values: dict[str, Any], parts: list[bytes]) -> None:
    specs = schema.by_name()
    unknown = set(values) - set(specs)
    if unknown:
        raise ValueError(f"{schema.name}: unknown field(s) {sorted(unknown)}")
    for spec in schema.fields:
        value = values.get(spec.name)
        if value is None:
            if spec.required:
                raise ValueError(f"{schema.name}: missing required field {spec.name!r}")
            continue
        for item in value if spec.repeated else (value,):
            raw = _encode_value(spec, item)
            parts.append(FIELD_HEAD.pack(spec.tag, len(raw)))
            parts.append(raw)


def _encode_value(spec: FieldSpec, value: Any) -> bytes:
    t = spec.type
    if t in _INT_FORMATS:
        try:
            return _INT_FORMATS[t].pack(value)
        except struct.error as exc:
            raise ValueError(f"field {spec.name!r}: {value!r} does not fit {t.value}") from exc
    if t is FieldType.STR:
        return str(value).encode("utf-8")
    if t is FieldType.BYTES:
        raw = bytes(value)
        if spec.size is not None and len(raw) != spec.size:
            raise ValueError(f"field {spec.name!r} must be {spec.size} bytes")
        return raw
    assert spec.nested is not None
    return encode_fields(spec.nested, value)


def decode_body(schema: Schema, body: bytes | memoryview) -> tuple[int, dict[str, Any]]:
    """Return (req_id, values). Raises MalformedMessage."""
    if len(body) < REQ_ID.size:
        raise MalformedMessage(f"{schema.name}: body shorter than its request id")
    (req_id,) = REQ_ID.unpack_from(body)
    return req_id, decode_fields(schema, memoryview(body)[REQ_ID.size :])


def decode_fields(schema: Schema, data: memoryview) -> dict[str, Any]:
    specs = schema.by_tag()
    out: dict[str, Any] = {}
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < FIELD_HEAD.size:
            raise MalformedMessage(f"{schema.name}: truncated field header at byte {pos}")
        tag, length = FIELD_HEAD.unpack_from(data, pos)
        pos += FIELD_HEAD.size
        if length > end - pos:
            raise MalformedMessage(
                f"{schema.name}: field {tag} claims {length} bytes, {end - pos} left"
            )
        raw = data[pos : pos + length]
        pos += length
        spec = specs.get(tag)
        if spec is None:
            continue  # a newer peer's field: skip it
        value = _decode_value(schema, spec, raw)
        if spec.repeated:
            out.setdefault(spec.name, []).append(value)
        elif spec.name in out:
            raise MalformedMessage(f"{schema.name}: field {spec.name!r} repeated")
        else:
            out[spec.name] = value
    for spec in schema.fields:
        if spec.name not in out:
            if spec.required:
                raise MalformedMessage(f"{schema.name}: missing required field {spec.name!r}")
            if spec.repeated:
                out[spec.name] = []
    return out


def _decode_value(schema: Schema, spec: FieldSpec, raw: memoryview) -> Any:
    t = spec.type
    fmt = _INT_FORMATS.get(t)
    if fmt is not None:
        if len(raw) != fmt.size:
            raise MalformedMessage(f"{schema.name}: field {spec.name!r} needs {fmt.size} bytes")
        value = fmt.unpack(raw)[0]
        if t is FieldType.BOOL and raw[0] > 1:
            raise MalformedMessage(f"{schema.name}: field {spec.name!r} is not 0 or 1")
        return value
    if t is FieldType.STR:
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage(f"{schema.name}: field {spec.name!r} is not UTF-8") from exc
    if t is FieldType.BYTES:
        if spec.size is not None and len(raw) != spec.size:
            raise MalformedMessage(f"{schema.name}: field {spec.name!r} must be {spec.size} bytes")
        return bytes(raw)
    assert spec.nested is not None
    return decode_fields(spec.nested, raw)
