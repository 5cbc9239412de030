"""The kiosk's page and its JSON calls: the slot grid, a check-out, a cancel and the
handover of a returned recorder (001 art.19(3): who returned it signs, by number and PIN
here or by badge at the dock's reader once the kiosk asked for it).

No login: the kiosk is the dock's own screen, so it answers only the addresses
``[web] kiosk_allowed_from`` names (default 127.0.0.1), on every route. A check-out and
a cancel go to the daemon (``checkout``, ``cancel_grant``), which identifies the officer
by number and PIN (the same lockout and audit as the command line) and audits the
decision with that officer as the actor; the site never says who acts. A PIN is passed
on once and never logged, stored or sent back. The grid's words are made here, in the
page's language, so the script only places text (``textContent``; never markup).
"""

from __future__ import annotations

import datetime
import functools
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, current_app, jsonify, render_template, request
from werkzeug.wrappers import Response

from web_status.auth import dock, public
from web_status.context import DaemonError, DaemonUnavailable
from web_status.home.api import slot_rows
from web_status.i18n import t
from web_status.kiosk import bp

log = logging.getLogger("web_status.kiosk")

F = TypeVar("F", bound=Callable[..., Any])

#: An officer number or PIN typed on the keypad: digits only.
DIGITS = re.compile(r"[0-9]{1,32}")
#: A slot's id as the kiosk sends it back (the grid's own ids).
SLOT_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
#: How long after an offload ends its slot says "footage safe" (seconds).
RETURN_NOTICE_S = 180.0


def kiosk_only(view: F) -> F:
    """Public (no login), but only from the kiosk's own addresses: 403 elsewhere."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        allowed = current_app.extensions["dock_config"].web.kiosk_allowed_from
        if request.remote_addr not in allowed:
            log.info("kiosk refused to %s", request.remote_addr)  # the rule at work
            abort(403)
        return view(*args, **kwargs)

    return public(checked)  # type: ignore[return-value]


@bp.get("")
@kiosk_only
def index() -> str:
    return render_template("kiosk/index.html", words=_words())


@bp.get("/slots")
@kiosk_only
def slots() -> Response:
    """The grid, worded for the page: one card per slot."""
    try:
        report = dock().status()
    except (DaemonUnavailable, DaemonError) as exc:
        log.warning("kiosk: no status from the daemon: %s", exc)
        return _json({"error": t("kiosk.failed")}, 503)
    out_with = _out_with()
    now = _utc(report.get("time_utc"))
    raw = {s.get("slot"): s for s in report.get("slots", [])}
    cards = [_card(row, raw.get(row["slot"], {}), out_with, now) for row in slot_rows(report)]
    return _json({"slots": cards, "badge": _badge(report.get("badge_decision"), now)})


@bp.post("/checkout")
@kiosk_only
def checkout() -> Response:
    """Number and PIN from the keypad to the daemon's check-out decision."""
    given = _keypad()
    if given is None:
        return _json({"error": t("kiosk.bad_input")}, 400)
    try:
        decision = dock().link.request("checkout", {"officer": given[0], "pin": given[1]})
    except (DaemonUnavailable, DaemonError) as exc:
        log.warning("kiosk: check-out not answered: %s", exc)
        return _json({"error": t("kiosk.failed")}, 503)
    if not decision.get("granted"):
        return _json(_worded(decision, None))
    officer = dock().store.officer(str(decision.get("officer")))
    return _json(_worded(decision, officer.name if officer else decision.get("officer")))


@bp.post("/cancel")
@kiosk_only
def cancel() -> Response:
    """The officer cancels their own grant (number and PIN, checked by the daemon)."""
    given = _keypad()
    if given is None:
        return _json({"error": t("kiosk.bad_input")}, 400)
    try:
        done = dock().link.request("cancel_grant", {"officer": given[0], "pin": given[1]})
    except (DaemonUnavailable, DaemonError) as exc:
        log.warning("kiosk: cancel not answered: %s", exc)
        return _json({"error": t("kiosk.failed")}, 503)
    if done.get("cancelled"):
        return _json({"cancelled": True, "title": t("kiosk.cancelled", slot=done.get("slot"))})
    reasons = [str(r.get("message", "")) for r in done.get("reasons") or []]
    return _json({"cancelled": False, "title": t("kiosk.not_cancelled"), "reasons": reasons})


@bp.post("/handover")
@kiosk_only
def handover() -> Response:
    """Whoever returned the recorder in a slot signs the handover: number and PIN (checked
    by the daemon, the check-out's lockout), or none: the next badge read signs it."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) - {"slot", "officer", "pin"}:
        return _json({"error": t("kiosk.bad_input")}, 400)
    slot = body.get("slot")
    if not isinstance(slot, str) or not SLOT_ID.fullmatch(slot):
        return _json({"error": t("kiosk.bad_input")}, 400)
    given: dict[str, str] = {"slot": slot}
    if "officer" in body or "pin" in body:
        keyed = _keypad({"officer": body.get("officer"), "pin": body.get("pin")})
        if keyed is None:
            return _json({"error": t("kiosk.bad_input")}, 400)
        given["officer"], given["pin"] = keyed
    try:
        done = dock().link.request("handover", given)
    except (DaemonUnavailable, DaemonError) as exc:
        log.warning("kiosk: handover not answered: %s", exc)
        return _json({"error": t("kiosk.failed")}, 503)
    if "armed" in done:
        if not done.get("armed"):
            return _json({"signed": False, "title": t("kiosk.handover_not_signed"),
                          "reasons": [t("kiosk.handover_nothing")]})  # fmt: skip
        return _json({"armed": True, "title": t("kiosk.handover_swipe", slot=slot),
                      "seconds": done.get("seconds")})  # fmt: skip
    return _json(_handover_worded(done))


def _handover_worded(done: dict[str, Any]) -> dict[str, Any]:
    """A signature in large type: whose recorder, who handed it back; or why not."""
    if not done.get("signed"):
        code = done.get("code")
        why = {
            "not_verified": t("kiosk.handover_wrong", n=done.get("tries_left")),
            "locked": t("kiosk.handover_locked"),
            "nothing_pending": t("kiosk.handover_nothing"),
            "no_slot": t("kiosk.handover_nothing"),
            "disabled": t("kiosk.handover_disabled"),
        }.get(str(code), str(done.get("message", "")))
        return {"signed": False, "title": t("kiosk.handover_not_signed"), "reasons": [why]}
    name = done.get("returned_by_name") or done.get("returned_by")
    lines = [t("kiosk.handover_by", serial=done.get("serial"), name=name)]
    if done.get("by_custodian") is False:
        holder = done.get("custodian_name") or done.get("custodian")
        lines.append(t("kiosk.handover_other", holder=holder))
    return {
        "signed": True,
        "by_custodian": bool(done.get("by_custodian")),
        "slot": done.get("slot"),
        "title": t("kiosk.handover_signed", slot=done.get("slot")),
        "lines": lines,
    }


# --------------------------------------------------------------------------- helpers
def _json(data: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(data)
    response.status_code = status
    return response


def _keypad(body: Any = None) -> tuple[str, str] | None:
    """(number, PIN) from the JSON body (or ``body``) when both are digits only; else None."""
    if body is None:
        body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) - {"officer", "pin"}:
        return None
    officer, pin = body.get("officer"), body.get("pin")
    if not isinstance(officer, str) or not isinstance(pin, str):
        return None
    if not DIGITS.fullmatch(officer) or not DIGITS.fullmatch(pin):
        return None
    return officer, pin


def _words() -> dict[str, str]:
    """What the script says itself, in the page's language."""
    keys = ("idle", "enter_number", "enter_pin", "next", "ok", "asking", "failed",
            "cancel_mode", "cancel_grant", "checkout_mode", "refused",
            "handover_ask", "handover_pin", "handover_badge", "handover_mode")  # fmt: skip
    return {k: t(f"kiosk.{k}") for k in keys}


def _worded(decision: dict[str, Any], name: Any) -> dict[str, Any]:
    """A check-out decision in large type: the slot to take, its recorder and officer;
    or every reason, in the dock's language (as the daemon worded them)."""
    if not decision.get("granted"):
        reasons = [str(r.get("message", "")) for r in decision.get("reasons") or []]
        return {"granted": False, "title": t("kiosk.refused"), "reasons": reasons}
    lines = [t("kiosk.granted_detail", serial=decision.get("device"), name=name)]
    if decision.get("assigned_on_device") is False:
        lines.append(t("kiosk.not_assigned"))
    return {
        "granted": True,
        "slot": decision.get("slot"),
        "title": t("kiosk.granted", slot=decision.get("slot")),
        "lines": lines,
    }


def _badge(decided: Any, now: datetime.datetime | None) -> dict[str, Any] | None:
    """The latest decision for a badge read at the dock, worded, with its id (shown once)
    and the seconds it stays; None when the daemon has none fresh."""
    if not isinstance(decided, dict) or not isinstance(decided.get("id"), int):
        return None
    expires = _utc(decided.get("expires_utc"))
    if expires is None or now is None or (expires - now).total_seconds() <= 0:
        return None
    name = decided.get("officer_name") or decided.get("officer")
    handed = decided.get("handover")
    worded = (
        _handover_worded({**handed, "signed": True, "returned_by_name": name})
        if isinstance(handed, dict)
        else _worded(decided, name)
    )
    return {
        **worded,
        "id": f"{decided['id']}@{decided.get('at_utc')}",  # one decision, across restarts
        "seconds_left": (expires - now).total_seconds(),
    }


def _utc(text: Any) -> datetime.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _out_with() -> dict[str, tuple[str, str]]:
    """Slot -> (officer's name, serial) of recorders taken from it and still out."""
    store = dock().store
    out: dict[str, tuple[str, str]] = {}
    for c in reversed(store.custody_history(limit=200)):
        if c.in_at is None and c.slot_id not in out:
            officer = store.officer(c.officer_id)
            out[c.slot_id] = (officer.name if officer else c.officer_id, c.serial)
    return out


def _left(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return ""
    if seconds >= 90:
        return t("kiosk.minutes", n=round(seconds / 60))
    return t("kiosk.seconds", n=max(1, round(seconds)))


def _card(
    row: dict[str, Any],
    raw: dict[str, Any],
    out_with: dict[str, tuple[str, str]],
    now: datetime.datetime | None,
) -> dict[str, Any]:
    """One slot as the kiosk shows it: state word, lines under it, and whether it is the
    one to take (a grant waiting in it)."""
    state = str(row.get("state") or "empty")
    lines: list[str] = []
    device = row.get("device")
    grant = raw.get("grant")
    if device:
        lines.append(str(device))
    if state in ("ready", "charging") and row.get("battery_percent") is not None:
        lines.append(t("kiosk.battery", n=round(float(row["battery_percent"]))))
    if state == "offloading":
        offload = row.get("offload") or {}
        percent = offload.get("percent")
        if percent is not None:
            left = _left(offload.get("seconds_left"))
            key = "kiosk.percent_left" if left else "kiosk.percent"
            lines.append(t(key, percent=round(float(percent)), left=left))
    if state == "failed_check":
        lines.extend(str(r.get("message", "")) for r in row.get("reasons") or [])
    if state == "fault" and row.get("error"):
        lines.append(str(row["error"]))
    if isinstance(grant, dict):
        lines.append(t("kiosk.waiting_for", name=grant.get("officer_name") or grant.get("officer")))
    if state == "empty" and row["slot"] in out_with:
        name, serial = out_with[row["slot"]]
        lines.append(t("kiosk.out_with", name=name))
        lines.append(serial)
    handed = raw.get("handover") if device else None
    ask = isinstance(handed, dict) and handed.get("state") == "waiting"
    if isinstance(handed, dict) and not ask:
        lines.append(_handed_back(handed))
    notice = None
    returned = raw.get("returned")
    if isinstance(returned, dict) and _recent(returned.get("at_utc"), now):
        n = returned.get("verified", 0)
        if returned.get("nothing_new"):
            notice = t("kiosk.nothing_new")
        elif returned.get("safe"):
            notice = t("kiosk.safe", n=n)
        else:
            notice = t("kiosk.not_safe", n=n, failed=returned.get("failed", 0))
        if returned.get("officer_name"):
            notice = t("kiosk.notice_for", name=returned["officer_name"], notice=notice)
    label = t(f"kiosk.state.{state}")
    if state == "empty" and row["slot"] in out_with:
        label = t("kiosk.state.checked_out_gone")
    return {
        "slot": row["slot"],
        "title": t("kiosk.slot", slot=row["slot"]),
        "state": state,
        "label": label,
        "lines": lines,
        "notice": notice,
        "safe": bool(isinstance(returned, dict) and returned.get("safe")),
        # a return waiting for its signature: the card asks who returned it
        "handover": t("kiosk.handover_ask") if ask else None,
        # the one to take: granted and still judged fit (a grant revoked by a failed
        # check keeps its words, not the highlight)
        "take": isinstance(grant, dict) and state == "checked_out",
    }


def _handed_back(h: dict[str, Any]) -> str:
    """Who handed the docked recorder back (001 art.19(3)), as its card says it."""
    name = h.get("returned_by_name") or h.get("returned_by")
    if h.get("state") == "unsigned":
        return t("kiosk.handover_unsigned")
    if h.get("state") == "by_other":
        holder = h.get("custodian_name") or h.get("custodian")
        return t("kiosk.handed_back_other", name=name, holder=holder)
    return t("kiosk.handed_back", name=name)


def _recent(at: Any, now: datetime.datetime | None) -> bool:
    when = _utc(at)
    if when is None or now is None:
        return False
    return 0 <= (now - when).total_seconds() <= RETURN_NOTICE_S
