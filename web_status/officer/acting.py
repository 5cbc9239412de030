"""Acting as the logged-in person, and saying no in the page's language: shared by the
officer's and the supervisor's pages (a supervisor is an officer too).

Every change goes to the daemon (``DockView.act``: the ``call`` control request with the
session's token); the daemon runs it through ``dock.services.requests`` as the person it
authenticated. What a person typed is read here, bounded, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import request

from web_status.auth import dock, person
from web_status.context import DaemonError, DaemonUnavailable
from web_status.daemon_words import refusal
from web_status.i18n import t

#: Longest free text taken from a form (an explanation, a reason, a purpose).
TEXT_MAX = 2000
#: Longest short field (an officer number, a PIN, a reference, a case number).
FIELD_MAX = 64
#: Shortest written account or explanation the dock accepts (dock.evidence.gaps).
MIN_EXPLANATION = 10

#: The daemon's error codes with words of their own; any other is "failed".
_CODES = ("not_allowed", "invalid", "refused", "locked", "bad_request", "busy", "timeout")


class Problem(Exception):
    """What to tell the person, in their language, in one line; nothing was done (or
    the daemon said no)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def act(name: str, args: Mapping[str, Any]) -> Any:
    """Request ``name`` of ``dock.services.requests`` in the daemon, as the person logged
    in; Problem (worded) when it is refused or the daemon does not answer."""
    try:
        return dock().act(person().token, name, dict(args))
    except DaemonUnavailable:
        raise Problem(t("officer.err.daemon"), 503) from None
    except DaemonError as exc:
        code = exc.code if exc.code in _CODES else "failed"
        status = 403 if code == "not_allowed" else 503 if code in ("busy", "timeout") else 400
        # The daemon's own words follow ours: they name what was wrong (which item, how
        # many tries are left). It wrote them in English (and audited them so); a Chinese
        # page says the known ones in Chinese with the same numbers (daemon_words), an
        # unknown one as written. Escaped where shown.
        said = refusal(exc.message[:300])
        raise Problem(t(f"officer.err.{code}", detail=said), status) from None


def form_or_json() -> Mapping[str, Any]:
    """The submitted fields: a form's, or a JSON body's (the API; already checked
    against its schema)."""
    if request.is_json:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}
    return request.form


def text(
    fields: Mapping[str, Any],
    name: str,
    label_key: str,
    *,
    limit: int = FIELD_MAX,
    required: bool = True,
    minimum: int = 0,
) -> str:
    """A text field, stripped and bounded; Problem naming the field (by its label) when
    missing, too long or too short."""
    raw = fields.get(name, "")
    value = raw.strip() if isinstance(raw, str) else ""
    label = t(label_key)
    if not value:
        if required:
            raise Problem(t("officer.err.missing", field=label))
        return ""
    if len(value) > limit:
        raise Problem(t("officer.err.too_long", field=label, limit=limit))
    if len(value) < minimum:
        raise Problem(t("officer.err.too_short", field=label, minimum=minimum))
    return value


def pin(fields: Mapping[str, Any], name: str = "pin", label_key: str = "officer.pin") -> str:
    """A PIN as typed (not stripped: it is compared as given), bounded."""
    raw = fields.get(name, "")
    label = t(label_key)
    if not isinstance(raw, str) or not raw:
        raise Problem(t("officer.err.missing", field=label))
    if len(raw) > FIELD_MAX:
        raise Problem(t("officer.err.too_long", field=label, limit=FIELD_MAX))
    return raw


#: The most items one form may name (a page lists fewer; a forged form gets no more).
IDS_MAX = 500


def item_ids(fields: Any, bad_number: str, none_selected: str) -> list[int]:
    """The ``ids`` a form or JSON body names: each a decimal number of at most nine
    digits, at least one, at most IDS_MAX; ``bad_number`` and ``none_selected`` are the
    page's own words for the two refusals."""
    raw = fields.getlist("ids") if hasattr(fields, "getlist") else fields.get("ids", [])
    ids = []
    for v in raw if isinstance(raw, list) else []:
        if isinstance(v, int) and not isinstance(v, bool):
            ids.append(v)
        elif isinstance(v, str) and v.isdigit() and len(v) <= 9:
            ids.append(int(v))
        else:
            raise Problem(bad_number)
    if not ids:
        raise Problem(none_selected)
    return ids[:IDS_MAX]
