"""The requests the daemon's control socket answers (docs/CONTROL.md), each the same call
``dock`` makes locally; :mod:`.control_server` frames, bounds and serves them.

Apart from the server so the socket's framing and limits (what a hostile client meets)
and what each request does can be read, and changed, one without the other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from dock.daemon.control_server import Handler, RequestFailed, SendProgress
from dock.daemon.maintenance_handlers import maintenance_handlers
from dock.daemon.service import Decision, DockService, Override, Reason
from dock.daemon.web_handlers import web_handlers
from dock.daemon.web_sessions import WebSessions
from dock.devices.recorder_client import (
    AuthenticationFailed,
    LinkError,
    NotPermitted,
    RecorderRefused,
)
from dock.evidence.offload import OffloadReport
from dock.services import requests
from dock.services.daemon_link import DaemonError
from dock.services.errors import RequestError
from dock.storage.store import StoreError


class Args:
    """A request's arguments, checked: unknown names and wrong types are refused."""

    def __init__(self, args: dict[str, Any], allowed: tuple[str, ...]) -> None:
        unknown = set(args) - set(allowed)
        if unknown:
            raise RequestFailed("bad_request", f"unknown argument(s): {', '.join(sorted(unknown))}")
        self.args = args

    def text(self, name: str, required: bool = False) -> str | None:
        value = self.args.get(name)
        if value is None:
            if required:
                raise RequestFailed("bad_request", f"{name} is required")
            return None
        if not isinstance(value, str):
            raise RequestFailed("bad_request", f"{name} must be a string")
        return value

    def flag(self, name: str) -> bool:
        value = self.args.get(name, False)
        if not isinstance(value, bool):
            raise RequestFailed("bad_request", f"{name} must be true or false")
        return value


def offload_summary(report: OffloadReport) -> dict[str, Any]:
    """What ``dock offload`` shows of an offload, as data (the same either way): the
    fields of ``dock.services.devices.OffloadSummary``, ``ok`` last."""
    return {
        "serial": report.serial,
        "archived": report.archived,
        "already_archived": report.already_archived,
        "erased": report.erased,
        "failed": report.failed,
        "not_enough_room": report.not_enough_room,
        # archived and verified but left on the recorder, by design: not a failure
        "kept_on_device": list(report.kept),
        "kept_reason": report.kept_reason,
        "sealed_in": report.bag,
        "seal": report.seal,
        # archived and verified, but not yet in a package: sealed at the next offload
        "seal_failed": report.seal_failed,
        # archived copies that no longer match: not erased from the recorder
        "damaged": report.damaged,
        "ok": report.ok,
    }


def decision_from_dict(data: dict[str, Any]) -> Decision:
    """The decision the daemon sent (``Decision.as_dict``), as the Decision it made, so
    a front end shows it exactly as it shows one made locally; DaemonError when the
    reply is not one."""
    try:
        return Decision(
            granted=bool(data["granted"]),
            slot=data["slot"],
            device=data["device"],
            reasons=[Reason(str(r["code"]), str(r["message"])) for r in data["reasons"]],
            officer_id=data["officer"],
            override_by=data["override_by"],
            assigned_on_device=data["assigned_on_device"],
            not_assigned_why=data["not_assigned_why"],
        )
    except (KeyError, TypeError) as exc:
        raise DaemonError(
            "bad_reply", f"the dock daemon's decision is incomplete ({exc})"
        ) from None


def service_handlers(
    svc: DockService,
    busy: threading.Lock,
    status: Callable[[DockService, list[Any]], dict[str, Any]],
    sessions: WebSessions | None = None,
) -> dict[str, Handler]:
    """The requests the daemon answers, each the same call ``dock`` makes locally.
    ``busy`` is the daemon's one-of-sweep-or-decision lock; ``status`` builds the
    status report from slot views; ``sessions`` the web site's logins (kept in memory,
    30 minutes idle unless given), answered by :mod:`.web_handlers`."""

    def checkout(raw: dict[str, Any], _progress: SendProgress) -> dict[str, Any]:
        args = Args(raw, ("officer", "pin", "badge", "supervisor", "supervisor_pin", "reason"))
        officer, pin, badge = args.text("officer"), args.text("pin"), args.text("badge")
        supervisor, reason = args.text("supervisor"), args.text("reason")
        supervisor_pin = args.text("supervisor_pin")
        if badge is None and officer is None:
            raise RequestFailed("bad_request", "give --officer ID (and a PIN) or --badge")
        override = None
        if supervisor:
            if not reason:
                raise RequestFailed("bad_request", "an override needs --reason")
            if supervisor_pin is None:
                raise RequestFailed("bad_request", "an override needs supervisor_pin")
            override = Override(supervisor, supervisor_pin, reason)
        with busy:
            decision = svc.checkout(officer, None if badge else pin, badge, override)
        return decision.as_dict()

    def cancel_grant(raw: dict[str, Any], _progress: SendProgress) -> dict[str, Any]:
        # The kiosk's cancel: the officer is identified by PIN or badge, as for checkout.
        args = Args(raw, ("officer", "pin", "badge"))
        given = {k: args.text(k) for k in ("officer", "pin", "badge")}
        who = given["officer"] or f"badge:{given['badge']}"
        with busy:
            try:
                withdrawal = requests.call(svc, "custody.cancel_grant", given, actor=who)
            except RequestError as exc:
                raise RequestFailed("bad_request", str(exc)) from None
        return dict(withdrawal.as_dict())

    def handover(raw: dict[str, Any], _progress: SendProgress) -> dict[str, Any]:
        # The kiosk's handover on return (001 art.19(3)): number and PIN for one slot, or
        # (no officer) the next badge read signs it. Not under ``busy``: a signature only
        # writes the register and never waits for a sweep or an offload.
        args = Args(raw, ("slot", "officer", "pin"))
        slot, officer = args.text("slot", required=True), args.text("officer")
        pin = args.text("pin")
        if slot not in svc.views:
            raise RequestFailed("no_slot", f"no slot {slot!r}")
        given: dict[str, Any] = {"slot": slot}
        name = "custody.handover_badge"
        if officer is not None:
            name, given = "custody.handover", {**given, "officer": officer, "pin": pin}
        try:
            return dict(requests.call(svc, name, given, actor=officer or "kiosk"))
        except RequestError as exc:
            raise RequestFailed("bad_request", str(exc)) from None

    def status_request(raw: dict[str, Any], _progress: SendProgress) -> dict[str, Any]:
        refresh = Args(raw, ("refresh",)).flag("refresh")
        with busy:
            views = svc.sweep() if refresh else list(svc.views.values())
        return status(svc, views)

    def offload(raw: dict[str, Any], progress: SendProgress) -> dict[str, Any]:
        slot = Args(raw, ("slot",)).text("slot", required=True)
        assert slot is not None
        if slot not in svc.views:
            raise RequestFailed("no_slot", f"no slot {slot!r}")

        def copied(recording: str, done: int, total: int) -> None:
            progress({"recording": recording, "done": done, "total": total})

        # Not under ``busy``: as the daemon's own offload workers, it may take minutes;
        # the slot's lock keeps other sessions off this recorder meanwhile.
        report = svc.offload(slot, progress=copied)
        if report is None:
            raise RequestFailed(
                "link_failed", f"slot {slot}: the link failed; footage stays on the device"
            )
        return offload_summary(report)

    def enrol(raw: dict[str, Any], _progress: SendProgress) -> dict[str, Any]:
        args = Args(raw, ("slot", "actor"))
        slot, actor = args.text("slot", required=True), args.text("actor", required=True)
        assert slot is not None and actor is not None
        try:
            with busy:
                serial = svc.enrol(slot, actor)
        except (StoreError, KeyError) as exc:
            raise RequestFailed("invalid", str(exc)) from None
        except NotPermitted as exc:  # e.g. a version 1 recorder: nothing was sent
            raise RequestFailed("not_permitted", exc.message) from None
        except (LinkError, RecorderRefused, AuthenticationFailed) as exc:
            # Nothing was committed on either side: asking again is safe.
            raise RequestFailed("link_failed", str(exc)) from None
        return {"serial": serial, "slot": slot}

    return {
        "checkout": checkout, "cancel_grant": cancel_grant, "handover": handover,
        "status": status_request,
        "offload": offload, "enrol": enrol,
        **web_handlers(svc, busy, sessions or WebSessions()),
        **maintenance_handlers(svc),
    }  # fmt: skip
