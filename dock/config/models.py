"""``[[model]]``: recorders that do not speak the dock's protocol, described once per model.

A mass-storage camera (``driver = "ums"``) proves nothing about itself, so its model
says how the dock tells one camera from another (``identity``): the ``device`` group of
its file names (``name_pattern``, GA/T 947-style by default), its volume serial, or an id
file on the volume (``id_file`` read, ``id_regex`` matched). A slot names its model
(``[[slot]] model = "..."``). docs/CONFIG.md documents each key.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.checker import INVALID, Bad, Checker, as_str, choice, kind, show

MODEL_DRIVERS = ("ums", "vendor")
#: How a mass-storage camera's claimed identity is read (dock/devices/ums/identity.py).
KINDS = ("id_file", "volume_serial", "file_names")
#: GA/T 947-style names: ``<device>_<officer>_<YYYYMMDDhhmmss>[_<seq>].MP4`` (local time).
DEFAULT_NAME_PATTERN = (
    r"(?P<device>[A-Za-z0-9]{1,32})_(?P<officer>[A-Za-z0-9]{1,32})_"
    r"(?P<time>\d{14})(?:_(?P<seq>\d{1,6}))?\.(?i:mp4|mov|avi|wav|jpg)"
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}")


@dataclass(frozen=True)
class ModelConfig:
    name: str
    driver: str = "ums"
    identity: str = "file_names"
    id_file: str = ""
    id_regex: str = r"(?P<id>[A-Za-z0-9._-]{1,64})"
    name_pattern: str = DEFAULT_NAME_PATTERN
    vendor: str = ""


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
        }
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
