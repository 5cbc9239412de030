"""``[dock]``: who this dock is and where it keeps things."""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common.checker import Bad, Checker, as_str, choice, int_range, nonempty, show

LOCALES = ("zh", "en")
_DOCK_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


@dataclass(frozen=True)
class DockSettings:
    """``[dock]``: who this dock is and where it keeps things."""

    id: str
    site: str
    unit: str
    state_dir: str = "/var/lib/dock"
    evidence_dir: str = "/srv/evidence"
    locale: str = "zh"
    timezone: str = "Asia/Shanghai"
    #: The audit log's newest checkpoint, kept outside its database ("": the default).
    audit_checkpoint_copy: str = ""
    #: Seconds a granted recorder waits in its slot for its officer; then the grant expires.
    grant_expiry_s: int = 120
    #: Seconds a returned recorder may be signed for at the dock (001 art.19(3)); then its
    #: return is registered unsigned (the offload never waits for it).
    handover_window_s: int = 300

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def audit_copy_path(self) -> str:
        """Where the audit log keeps its newest checkpoint outside its database."""
        return self.audit_checkpoint_copy or os.path.join(
            self.state_dir, "audit-copy", "checkpoint.json"
        )


DOCK_KEYS = tuple(f.name for f in dataclasses.fields(DockSettings))


def abs_path(example: str) -> Callable[[Any], str]:
    """An absolute path, normalised: the service's working directory is not fixed."""

    def check(value: Any) -> str:
        text = nonempty(example)(value)
        if not os.path.isabs(text):
            raise Bad(
                f"{show(text)} is a relative path",
                f"give an absolute path (the service's working directory is not fixed), "
                f"e.g. {example}",
            )
        return os.path.normpath(text)

    return check


def _dock_id(value: Any) -> str:
    text = as_str(value, 'id = "dock-01"')
    if not _DOCK_ID.fullmatch(text):
        raise Bad(
            f"{show(text)} is not a valid dock id",
            'use 1 to 32 letters, digits, "_" or "-", e.g. id = "hz-xh-dock01"',
        )
    return text


def _timezone(value: Any) -> str:
    text = as_str(value, 'timezone = "Asia/Shanghai"').strip()
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    else:
        return text
    names = sorted(zoneinfo.available_timezones())
    match = difflib.get_close_matches(text, names, n=1, cutoff=0.6)
    if not match:
        lowered = {n.lower(): n for n in names}
        match = [lowered[text.lower()]] if text.lower() in lowered else []
    hint = f'did you mean "{match[0]}"? ' if match else ""
    raise Bad(
        f"{show(text)} is not an IANA time zone",
        f'{hint}use a name such as "Asia/Shanghai" or "Asia/Urumqi"',
    )


def check_dock(ck: Checker, table: Mapping[str, Any]) -> dict[str, Any]:
    """``[dock]``'s values (INVALID where refused, the problem recorded in ``ck``)."""
    ck.unknown_keys("dock", table, DOCK_KEYS)
    return {
        "id": ck.get(
            table, "dock", "id", _dock_id, missing_fix='name this dock, e.g. id = "hz-xh-dock01"'
        ),
        "site": ck.get(
            table,
            "dock",
            "site",
            nonempty('site = "西湖区行政服务中心"'),
            missing_fix='say where the dock stands, e.g. site = "西湖区行政服务中心"',
        ),
        "unit": ck.get(
            table,
            "dock",
            "unit",
            nonempty('unit = "西湖区市场监督管理局"'),
            missing_fix='name the unit whose footage this is, e.g. unit = "西湖区市场监督管理局"',
        ),
        "state_dir": ck.get(
            table, "dock", "state_dir", abs_path('state_dir = "/var/lib/dock"'), "/var/lib/dock"
        ),
        "evidence_dir": ck.get(
            table,
            "dock",
            "evidence_dir",
            abs_path('evidence_dir = "/srv/evidence"'),
            "/srv/evidence",
        ),
        "locale": ck.get(table, "dock", "locale", choice(LOCALES, 'locale = "zh"'), "zh"),
        "timezone": ck.get(table, "dock", "timezone", _timezone, "Asia/Shanghai"),
        "audit_checkpoint_copy": ck.get(
            table,
            "dock",
            "audit_checkpoint_copy",
            abs_path('audit_checkpoint_copy = "/srv/dock-audit/checkpoint.json"'),
            "",
        ),
        "grant_expiry_s": ck.get(
            table, "dock", "grant_expiry_s", int_range(15, 3600, "grant_expiry_s"), 120
        ),
        "handover_window_s": ck.get(
            table, "dock", "handover_window_s", int_range(30, 86400, "handover_window_s"), 300
        ),
    }
