"""The MQTT contract: topics and payloads round-trip, bad ones are refused with a reason,
and mqtt_contract/MQTT.md lists exactly what mqtt_contract/contract.py knows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mqtt_contract.contract import (
    DOCKS,
    ID_RE,
    SCHEMA,
    Address,
    Command,
    ContractError,
    DockState,
    EventType,
    Kind,
    command_filter,
    decode,
    dock_topic,
    encode,
    parse_topic,
    parse_utc,
    signing_bytes,
    utc,
)

DOC = (Path(__file__).parent.parent / "mqtt_contract" / "MQTT.md").read_text(encoding="utf-8")

ids = st.from_regex(ID_RE, fullmatch=True)
times = st.floats(min_value=0, max_value=4102444800, allow_nan=False)  # 1970..2100
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@given(ids, ids, st.sampled_from(list(Kind)), ids)
def test_topics_round_trip(site: str, dock: str, kind: Kind, name: str) -> None:
    named = kind in (Kind.SLOT, Kind.EVENT, Kind.CMD)
    topic = dock_topic(site, dock, kind, name if named else "")
    assert parse_topic(topic) == Address(site, dock, kind, name if named else "")
    assert topic.startswith(f"{DOCKS}/{site}/{dock}/")


@pytest.mark.parametrize(
    "topic",
    [
        "bwc/v2/docks/s/d/state",  # another contract version
        "bwc/v1/docks/s/d",  # no kind
        "bwc/v1/docks/s/d/weather",  # unknown kind
        "bwc/v1/docks/s/d/event",  # an event needs its type
        "bwc/v1/docks/s/d/state/extra",  # state takes no name
        "bwc/v1/docks/s/d/slot/1/more",
        "bwc/v1/docks/s p/d/state",  # not an id
        "bwc/v1/hq/status",
    ],
)
def test_foreign_topics_are_refused(topic: str) -> None:
    with pytest.raises(ContractError):
        parse_topic(topic)


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "a b", "-x", "x" * 65])
def test_ids_that_cannot_be_one_topic_level_are_refused(bad: str) -> None:
    with pytest.raises(ContractError):
        dock_topic(bad, "d", Kind.STATE)
    with pytest.raises(ContractError):
        dock_topic("s", bad, Kind.STATE)


def test_command_filter_matches_only_commands() -> None:
    assert command_filter("s", "d") == "bwc/v1/docks/s/d/cmd/+"


@given(times)
def test_times_round_trip_to_the_millisecond(t: float) -> None:
    text = utc(t)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    assert parse_utc(text) <= t < parse_utc(text) + 0.001  # truncated, never rounded up
    assert utc(parse_utc(text)) == text


@pytest.mark.parametrize("bad", ["2026-11-22 09:00:00Z", "2026-11-22T09:00:00+08:00", "x", 5])
def test_times_in_other_forms_are_refused(bad: object) -> None:
    with pytest.raises(ContractError):
        parse_utc(bad)  # type: ignore[arg-type]


@given(st.sampled_from(list(EventType)), ids, st.integers(1, 2**62), times, json_values)
def test_events_round_trip_and_extra_fields_are_kept(etype, boot, seq, t, extra) -> None:
    body = {"type": etype.value, "boot": boot, "seq": seq, "time": utc(t), "data": {"x": extra}}
    decoded = decode(Kind.EVENT, encode(Kind.EVENT, {**body, "future_field": extra}))
    assert decoded == {"schema": SCHEMA, **body, "future_field": extra}


VALID = {
    Kind.STATE: {"state": "ready", "boot": "b", "time": "2026-11-22T09:00:00.000Z"},
    Kind.EVENT: {
        "type": "checkin", "boot": "b", "seq": 1, "time": "2026-11-22T09:00:00.000Z", "data": {},
    },
    Kind.CMD: {
        "id": "1", "site": "s", "dock": "d", "command": "status",
        "issued": "2026-11-22T09:00:00.000Z", "by": "x", "args": {}, "sig": "",
    },
}  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "change", "why"),
    [
        (Kind.STATE, {"state": "sleeping"}, "unknown state"),
        (Kind.STATE, {"boot": None}, "'boot' missing"),
        (Kind.EVENT, {"seq": 0}, "seq starts at 1"),
        (Kind.EVENT, {"seq": True}, "'seq' missing or not int"),
        (Kind.EVENT, {"seq": "3"}, "'seq' missing or not int"),
        (Kind.EVENT, {"type": "party"}, "unknown type"),
        (Kind.EVENT, {"time": "yesterday"}, "ISO 8601"),
        (Kind.EVENT, {"schema": 2}, "schema 2 not understood"),
        (Kind.CMD, {"command": "self_destruct"}, "unknown command"),
    ],
)
def test_bad_payloads_are_refused_with_a_reason(kind: Kind, change: dict, why: str) -> None:
    payload = {"schema": SCHEMA, **VALID[kind], **change}
    with pytest.raises(ContractError, match=why):
        decode(kind, json.dumps(payload))


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b"\xff\xfe", b"null"])
def test_undecodable_payloads_are_refused(raw: bytes) -> None:
    with pytest.raises(ContractError):
        decode(Kind.EVENT, raw)


@given(json_values, json_values)
def test_signing_bytes_ignore_the_signature_and_key_order(a, b) -> None:
    one = {"id": "1", "args": {"a": a, "b": b}, "sig": "x"}
    two = {"sig": "other", "args": {"b": b, "a": a}, "id": "1"}
    assert signing_bytes(one) == signing_bytes(two)
    assert b"sig" not in signing_bytes(one).split(b'"args"')[0]


# --- the document and the code list the same things -----------------------------------


def _table_first_column(heading: str) -> set[str]:
    section = DOC.split(heading, 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        if line.startswith("| `"):
            rows.append(line)
    names: set[str] = set()
    for row in rows:
        names.update(re.findall(r"`([a-z_.]+)`", row.split("|")[1]))
    return names


def test_mqtt_md_lists_every_event_type() -> None:
    assert _table_first_column("### event") == {e.value for e in EventType}


def test_mqtt_md_lists_every_command() -> None:
    assert _table_first_column("### command") == {c.value for c in Command}


def test_mqtt_md_topic_map_has_every_kind_and_state() -> None:
    topics = re.findall(r"^\| `bwc/v1/docks/<site>/<dock>/([a-z]+)", DOC, flags=re.M)
    assert set(topics) == {k.value for k in Kind}
    for state in DockState:
        assert f"`{state.value}`" in DOC


def test_slot_states_on_the_wire_are_the_docks_state_machine() -> None:
    from dock.domain.slot_state import SlotState as DockSlotState
    from mqtt_contract.contract import SlotState

    assert [s.value for s in SlotState] == [s.value for s in DockSlotState]
    for state in SlotState:
        assert f"`{state.value}`" in DOC


@pytest.mark.parametrize(
    "bad", ["2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-22T24:00:00Z"]
)
def test_times_that_are_not_real_dates_are_refused(bad: str) -> None:
    with pytest.raises(ContractError, match="not a real date"):
        parse_utc(bad)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant: str) -> None:
    raw = (
        '{"schema":1,"type":"checkin","boot":"b","seq":1,"time":"2026-11-22T09:00:00.000Z",'
        f'"data":{{"x":{constant}}}}}'
    )
    with pytest.raises(ContractError, match="not JSON"):
        decode(Kind.EVENT, raw)


def test_headquarters_presence_round_trips() -> None:
    from mqtt_contract.contract import hq_online, hq_status

    assert hq_online(hq_status(online=True))
    assert not hq_online(hq_status(online=False))
    for junk in (b"", b"online", b"[1]", b'{"state": "ONLINE"}'):
        assert not hq_online(junk)
