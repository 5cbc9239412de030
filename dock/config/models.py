"""``[[model]]``: recorders that do not speak the dock's protocol, described once per model.

A mass-storage camera (``driver = "ums"``) proves nothing about itself, so its model
says how the dock tells one camera from another (``identity``): the ``device`` group of
its file names (``name_pattern``, GA/T 947-style by default), its volume serial, or an id
file on the volume (``id_file`` read, ``id_regex`` matched). A slot names its model
(``[[slot]] model = "..."``). A model with ``driver = "vendor"`` also says how its vendor
command set differs from the common one (USB ids, endpoints, LEN values, optional clock
and battery queries: hardware/vendor_usb.py's ``VendorModel``). docs/CONFIG.md documents
each key.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.checker import (
    INVALID,
    Bad,
    Checker,
    as_float,
    as_str,
    choice,
    int_range,
    kind,
    show,
)

MODEL_DRIVERS = ("ums", "vendor")
#: How a mass-storage camera's claimed identity is read (dock/devices/ums/identity.py).
KINDS = ("id_file", "volume_serial", "file_names")
#: GA/T 947-style names: ``<device>_<officer>_<YYYYMMDDhhmmss>[_<seq>].MP4`` (local time).
DEFAULT_NAME_PATTERN = (
    r"(?P<device>[A-Za-z0-9]{1,32})_(?P<officer>[A-Za-z0-9]{1,32})_"
    r"(?P<time>\d{14})(?:_(?P<seq>\d{1,6}))?\.(?i:mp4|mov|avi|wav|jpg)"
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}")
#: A vendor command's name, as hardware/vendor_usb.py sends it (``@CMD;LEN;ARG;#``).
_COMMAND = re.compile(r"[A-Za-z][A-Za-z0-9]{1,7}")
#: The commands whose LEN a model may override (hardware.vendor_usb.DEFAULT_LENGTHS).
VENDOR_COMMANDS = ("Ver", "Gdv", "Sdt", "Stm", "ATH")


@dataclass(frozen=True)
class ModelConfig:
    name: str
    driver: str = "ums"
    identity: str = "file_names"
    id_file: str = ""
    id_regex: str = r"(?P<id>[A-Za-z0-9._-]{1,64})"
    name_pattern: str = DEFAULT_NAME_PATTERN
    vendor: str = ""
    # --- driver = "vendor" only: how its command set differs from the common one
    vendor_id: int = 0x4255
    product_id: int = 0x0001
    ep_out: int = 0x01
    ep_in: int = 0x81
    #: Command reading the camera's clock (answer ``@Gtm;OK;YYYYMMDDHHMMSS;#``); "": none.
    time_query: str = ""
    #: Command reading the battery percentage; "": none.
    battery_query: str = ""
    #: LEN per command where the model's differs from the common set's.
    lengths: tuple[tuple[str, int], ...] = ()
    #: LEN is the argument's own length instead of the nominal one.
    actual_lengths: bool = False
    timeout_s: float = 2.0

    def vendor_options(self) -> dict[str, Any]:
        """The model's differences as hardware.vendor_usb.VendorModel's fields."""
        out: dict[str, Any] = {
            "name": self.name, "vendor_id": self.vendor_id, "product_id": self.product_id,
            "ep_out": self.ep_out, "ep_in": self.ep_in, "actual_lengths": self.actual_lengths,
            "timeout_s": self.timeout_s,
        }  # fmt: skip
        for key in ("time_query", "battery_query"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.lengths:
            out["lengths"] = {**_DEFAULT_LENGTHS, **dict(self.lengths)}
        return out


_DEFAULT_LENGTHS = {"Ver": 8, "Gdv": 8, "Sdt": 8, "Stm": 6, "ATH": 8}
#: Keys that only a ``driver = "vendor"`` model may have.
VENDOR_KEYS = ("vendor_id", "product_id", "ep_out", "ep_in", "time_query", "battery_query",
               "lengths", "actual_lengths", "timeout_s")  # fmt: skip

MODEL_KEYS = tuple(f.name for f in dataclasses.fields(ModelConfig))


def _name(value: Any) -> str:
    text = as_str(value, 'name = "DSJ-V8"')
    if not _NAME.fullmatch(text):
        raise Bad(f"{show(text)} is not a model name", "1 to 40 letters, digits, space, . _ -")
    return text


def _regex(groups: tuple[str, ...]) -> Any:
    def check(value: Any) -> str:
        text = as_str(value, "a regular expression in single quotes")
        try:
            compiled = re.compile(text)
        except re.error as exc:
            raise Bad(
                f"not a regular expression ({exc})", "fix it, e.g. test it in Python"
            ) from None
        missing = [g for g in groups if g not in compiled.groupindex]
        if missing:
            raise Bad(f"has no group named {missing[0]!r}", f"add (?P<{missing[0]}>...)")
        return text

    return check


def _id_file(value: Any) -> str:
    text = as_str(value, 'id_file = "DEVICE.TXT"')
    parts = text.split("/")
    if not text or any(p in ("", ".", "..") for p in parts) or "\x00" in text:
        raise Bad(f"{show(text)} is not a path on the volume", 'e.g. id_file = "SYSTEM/ID.TXT"')
    return text


def _command(value: Any) -> str:
    text = as_str(value, 'time_query = "Gtm"')
    if not _COMMAND.fullmatch(text):
        raise Bad(f"{show(text)} is not a command name", '2 to 8 letters and digits, e.g. "Gtm"')
    return text


def _lengths(value: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, dict):
        raise Bad(f"expected a table, got {kind(value)}", "write lengths = { Stm = 8 }")
    out = []
    for command, length in value.items():
        if command not in VENDOR_COMMANDS:
            raise Bad(f"{show(command)} is not a command of the set",
                      f"use {', '.join(VENDOR_COMMANDS)}")  # fmt: skip
        out.append((command, int_range(0, 999, f"lengths.{command}")(length)))
    return tuple(out)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Bad(f"expected true or false, got {kind(value)}", "actual_lengths = true")
    return value


def _timeout(value: Any) -> float:
    number = as_float(value, "timeout_s = 2.0")
    if not 0 < number <= 60:
        raise Bad(f"{number} is out of range", "use seconds above 0, at most 60")
    return number


def _vendor_values(ck: Checker, table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The vendor keys of one [[model]] (their defaults where absent)."""
    get = functools.partial(ck.get, table, where)
    return {
        "vendor_id": get("vendor_id", int_range(0, 0xFFFF, "vendor_id"), 0x4255),
        "product_id": get("product_id", int_range(0, 0xFFFF, "product_id"), 0x0001),
        "ep_out": get("ep_out", int_range(0x01, 0x0F, "ep_out"), 0x01),
        "ep_in": get("ep_in", int_range(0x81, 0x8F, "ep_in"), 0x81),
        "time_query": get("time_query", _command, ""),
        "battery_query": get("battery_query", _command, ""),
        "lengths": get("lengths", _lengths, ()),
        "actual_lengths": get("actual_lengths", _flag, False),
        "timeout_s": get("timeout_s", _timeout, 2.0),
    }


def check_models(ck: Checker, data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every ``[[model]]``'s values (none: an empty list)."""
    raw = data.get("model")
    if raw is None:
        return []
    if not isinstance(raw, list):
        ck.problem("model", f"expected [[model]] tables, got {kind(raw)}", "write [[model]]")
        return []
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for n, table in enumerate(raw, start=1):
        where = f"model[{n}]"
        if not isinstance(table, dict):
            ck.problem(where, f"expected a table, got {kind(table)}", "write it as [[model]]")
            continue
        ck.unknown_keys(where, table, MODEL_KEYS)
        get = functools.partial(ck.get, table, where)
        values = {
            "name": get("name", _name, missing_fix='e.g. name = "DSJ-V8"'),
            "driver": get("driver", choice(MODEL_DRIVERS, 'driver = "ums"'), "ums"),
            "identity": get("identity", choice(KINDS, 'identity = "file_names"'), "file_names"),
            "id_file": get("id_file", _id_file, ""),
            "id_regex": get("id_regex", _regex(()), ModelConfig.id_regex),
            "name_pattern": get("name_pattern", _regex(("device", "time")), DEFAULT_NAME_PATTERN),
            "vendor": get("vendor", lambda v: as_str(v, 'vendor = "..."'), ""),
            **_vendor_values(ck, table, where),
        }
        given = [k for k in VENDOR_KEYS if k in table]
        if given and values["driver"] == "ums":
            ck.problem(f"{where}.{given[0]}", 'only a driver = "vendor" model has it',
                       'set driver = "vendor", or remove the key')  # fmt: skip
        if values["identity"] == "id_file" and not values["id_file"]:
            ck.problem(f"{where}.id_file", "identity = \"id_file\" needs it",
                       'name the file, e.g. id_file = "SYSTEM/ID.TXT"')  # fmt: skip
        if values["name"] is not INVALID:
            if values["name"] in names:
                ck.problem(f"{where}.name", f"{show(values['name'])} is named twice",
                           "give each model its own name")  # fmt: skip
            names.add(values["name"])
        out.append(values)
    return out
