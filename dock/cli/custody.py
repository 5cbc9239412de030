"""``dock checkout``, ``dock status`` and ``dock handover``: thin over
``dock.services.custody``, ``dock.services.status`` and ``dock.services.handover_views``."""

from __future__ import annotations

import argparse
from typing import Any

from dock.cli.common import (
    EXIT_REFUSED,
    EXIT_USAGE,
    add_json,
    add_parser,
    ask_daemon,
    build_or_exit,
    call,
    daemon_failed,
    fail,
    load_or_exit,
    pin,
)
from dock.daemon.control_handlers import decision_from_dict
from dock.domain.fleet import ratio_line
from dock.services.daemon_link import DaemonError
from dock.services.errors import RequestError
from dock.services.handover_views import register as handover_register
from dock.services.status import status_report
from dock.support.text import json_text, shown


def cmd_checkout(args: argparse.Namespace) -> int:
    """Decided by the running daemon when there is one (it owns the recorders), else here."""
    cfg = load_or_exit(args)
    wants_pin = args.officer is not None and args.badge is None
    override = bool(args.supervisor and args.reason)
    given = {
        "officer": args.officer,
        "pin": pin(args.pin, "PIN: ") if wants_pin else None,
        "badge": args.badge,
        "supervisor": args.supervisor,
        "supervisor_pin": pin(args.supervisor_pin, "Supervisor PIN: ") if override else None,
        "reason": args.reason,
    }
    try:
        remote = ask_daemon(cfg, "checkout", given)
    except DaemonError as exc:
        return daemon_failed("checkout", exc)
    try:
        if remote is not None:
            decision = decision_from_dict(remote)
        else:
            decision = call(build_or_exit(cfg), args, "custody.checkout", given)
    except RequestError as exc:
        return fail("checkout", exc, EXIT_USAGE)
    except DaemonError as exc:
        return daemon_failed("checkout", exc)
    print_decision(decision, args.json)
    return 0 if decision.granted else EXIT_REFUSED


def print_decision(decision: Any, as_json: bool) -> None:
    if as_json:
        print(json_text(decision.as_dict(), indent=2))
    elif decision.granted:
        print(f"granted: take slot {decision.slot} (recorder {shown(decision.device)})")
        if decision.assigned_on_device is False:
            why = shown(decision.not_assigned_why, 300)
            print(f"  officer not written to the recorder: {why}")
    else:
        print("refused:")
        for r in decision.reasons:
            print(f"  [{r.code}] {shown(r.message, 300)}")


def cmd_status(args: argparse.Namespace) -> int:
    """The running daemon looks at every slot when there is one, else this command."""
    cfg = load_or_exit(args)
    try:
        report = ask_daemon(cfg, "status", {"refresh": True})
    except DaemonError as exc:
        return daemon_failed("status", exc)
    if report is None:
        dock = build_or_exit(cfg)
        report = status_report(dock, dock.sweep())
    if args.json:
        print(json_text(report, indent=2))
    else:
        print_status(report)
    return 0


def print_status(report: dict[str, Any]) -> None:
    """The status table on standard output (``dock status``)."""
    print("\n".join(status_lines(report)), flush=True)


def status_lines(report: dict[str, Any]) -> list[str]:
    """The status table as lines (``dock status``; ``dock run`` on a terminal)."""
    out: list[str] = []
    clock = report["clock"]
    trusted = "trusted" if clock["trusted"] else "NOT trusted"
    reason = shown(clock["reason"], 200)
    head = f"dock {shown(report['dock'])}   {report['time_local']}"
    out.append(f"{head}   clock: {trusted} ({reason})")
    out.append(f"{'slot':>4}  {'device':<9} {'state':<13} {'batt':>5} {'free GiB':>9}  reasons")
    for r in report["slots"]:
        state = "take-away" if r["awaiting_takeaway"] else r["state"].replace("_", " ")
        batt = "" if r["battery_percent"] is None else f"{r['battery_percent']} %"
        free = "" if r["storage_free_bytes"] is None else f"{r['storage_free_bytes'] / 2**30:.1f}"
        why_not = "; ".join(f["message"] for f in r["failed"]) or (r["error"] or "")
        device, why_not = shown(r["device"]), shown(why_not, 300)
        out.append(f"{shown(r['slot']):>4}  {device:<9} {state:<13} {batt:>5} {free:>9}  {why_not}")
    for r in report["slots"]:
        g = r.get("guarantees") or {}
        if g.get("driver", "protocol") != "protocol":  # what this recorder cannot give
            out.append(f"slot {shown(r['slot'])}: {guarantees_line(g)}")
    for r in report["slots"]:
        said = handover_line(r.get("handover"))
        if said:
            out.append(f"slot {shown(r['slot'])}: {said}")
    for r in report.get("not_returned") or ():
        out.append(
            f"NOT RETURNED: {shown(r['serial'])} of officer {shown(r['officer_id'])}, "
            f"checked out {r['out_at']}, due back by {r['due_local']}"
        )
    for r in report["slots"]:  # 004 att.2 §9: only enrolled recorders are accepted
        if any(f.get("code") == "device_unknown" for f in r["failed"]):
            out.append(
                f"UNKNOWN RECORDER in slot {shown(r['slot'])}: {shown(r['device'])} is not "
                "enrolled: not offloaded, not checked out, nothing written to it"
            )
    out.append(ratio_line(report["fleet"]))
    return out


def guarantees_line(g: dict[str, str]) -> str:
    """One line of a recorder's driver and guarantees, the missing ones said plainly."""
    words = {
        "hash": {
            "capture": "hash taken at capture",
            "offload": "hash taken at offload (no capture hash)",
        },
        "erase": {"erase": "erased after verification", "keep": "footage kept on the device"},
        "clock": {"set": "clock set", "read": "clock only read", "none": "clock unknown"},
        "identity": {"proven": "identity proven", "claimed": "identity claimed (not proven)"},
        "battery": {"reported": "battery reported", "unknown": "battery unknown"},
    }
    said = [words[k].get(g[k], g[k]) for k in words if k in g]
    via = f", read via {g['read_via']}" if g.get("read_via") else ""
    return f"driver {shown(g.get('driver'))}{via}: " + "; ".join(shown(x) for x in said)


def handover_line(h: dict[str, Any] | None) -> str | None:
    """The handover of a docked recorder's return, when it needs a look (001 art.19(3),
    003 art.21(2)): waiting for a signature, returned by someone else, or unsigned."""
    if not h or h.get("state") == "signed":
        return None
    holder = shown(h.get("custodian"))
    if h.get("state") == "waiting":
        return f"return of {holder}'s recorder waits to be signed for (until {h.get('due_utc')})"
    if h.get("state") == "by_other":
        by = shown(h.get("returned_by"))
        return f"RETURNED BY {by}, not by its custodian {holder} (signed by {h.get('how')})"
    return f"return of {holder}'s recorder NOT SIGNED FOR (handover unsigned)"


def cmd_handover(args: argparse.Namespace) -> int:
    """``sign``: whoever returned the recorder in a slot signs the handover (001 art.19(3)),
    through the daemon when one runs, else here; ``list``: the handover register."""
    cfg = load_or_exit(args)
    if args.action == "list":
        rows = handover_register(build_or_exit(cfg).store, args.serial)
        if args.json:
            print(json_text(rows, indent=2))
            return 0
        if not rows:
            print("no handover registered")
        for h in rows:
            by = shown(h.get("returned_by") or "-")
            flag = "" if h["state"] == "signed" else f"  {h['state'].upper().replace('_', ' ')}"
            who = f"custodian {shown(h['custodian'])}  returned by {by} ({h['how']}){flag}"
            print(f"{h['at_utc']}  {shown(h['serial']):<9} slot {shown(h['slot'])}  {who}")
        return 0
    given = {"slot": args.slot, "officer": args.officer, "pin": pin(args.pin, "PIN: ")}
    try:
        result = ask_daemon(cfg, "handover", given)
        if result is None:
            result = call(build_or_exit(cfg), args, "custody.handover", given)
    except RequestError as exc:
        return fail("handover", exc, EXIT_USAGE)
    except DaemonError as exc:
        return daemon_failed("handover", exc)
    if args.json:
        print(json_text(result, indent=2))
    elif result.get("signed"):
        other = "" if result.get("by_custodian") else f", NOT its custodian {result['custodian']}"
        print(f"signed: {shown(result['serial'])} in slot {shown(result['slot'])} handed back "
              f"by {shown(result['returned_by'])}{other}")  # fmt: skip
    else:
        print(f"not signed: {shown(result.get('message'), 300)}")
    return 0 if result.get("signed") else EXIT_REFUSED


def register(sub: Any) -> None:
    co = add_parser(sub, "checkout", help="check a recorder out to an officer")
    co.add_argument("--officer", help="officer number")
    co.add_argument("--pin", help="officer PIN (prompted for when omitted)")
    co.add_argument("--badge", help="badge id as read by the badge reader")
    co.add_argument("--supervisor", help="supervisor number, to override failed checks")
    co.add_argument("--supervisor-pin")
    co.add_argument("--reason", help="why the override is needed (audited)")
    add_json(co)
    co.set_defaults(func=cmd_checkout, request="custody.checkout")

    st = add_parser(sub, "status", help="check every slot now and show the result")
    add_json(st)
    st.set_defaults(func=cmd_status)

    ho = add_parser(sub, "handover", help="the handover on return (001 art.19(3))")
    hs = ho.add_subparsers(dest="action", required=True)
    sign = add_parser(hs, "sign", help="sign for the recorder returned to a slot")
    sign.add_argument("--slot", required=True)
    sign.add_argument("--officer", required=True, help="who returned it")
    sign.add_argument("--pin", help="their PIN (prompted for when omitted)")
    add_json(sign)
    sign.set_defaults(func=cmd_handover, request="custody.handover")
    ls = add_parser(hs, "list", help="the handover register, newest first")
    ls.add_argument("--serial", help="one recorder's")
    add_json(ls)
    ls.set_defaults(func=cmd_handover)
