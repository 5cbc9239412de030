"""``dock hold|purge|deadlines``: holds on footage, purging, offload deadlines.

Wired into ``dock`` by :func:`register`. ``dock purge`` is a dry run
unless ``--apply``; ``--apply`` destroys evidence, so it needs two different
supervisors, each with their own PIN (four eyes, 004 att.2 §6: destruction follows an
approved appraisal), and refuses while the dock's clock is not trusted: a clock set
years ahead would otherwise purge footage whose retention is still running. A hold is
released by one supervisor with their PIN. The audit names the supervisors; the login
that typed the command is recorded beside them.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from dock.cli.common import (
    EXIT_REFUSED,
    EXIT_USAGE,
    add_json,
    add_parser,
    ask,
    call,
    fail,
    output,
    pin,
    service_from,
)
from dock.devices.clock import local_display
from dock.evidence.deadlines import deadline_report, overdue_or_at_risk
from dock.evidence.holds import HoldError, HoldRecord
from dock.evidence.retention import HoldKind
from dock.services import holds
from dock.services.errors import Refused, RequestError
from dock.support.text import json_text, shown

#: Returns older than this are listed by ``dock deadlines`` only while not done (or --all).
RECENT_S = 7 * 86400


def _target(r: HoldRecord, tz: str) -> str:
    """What a hold is on, for a person: local times."""
    if r.scope == "recording":
        return f"{shown(r.serial)}/{shown(r.recording_id)}"
    if r.scope == "case":
        return f"case {shown(r.case_number)}"
    if r.scope == "officer":
        span = "" if r.from_at is None else f" from {local_display(r.from_at, tz)}"
        span += "" if r.to_at is None else f" to {local_display(r.to_at, tz)}"
        return f"officer {shown(r.officer_id)}{span}"
    return shown(r.target(), 200)


def cmd_hold(args: argparse.Namespace) -> int:
    svc = service_from(args)
    try:
        if args.action == "add":
            return _add(svc, args)
        if args.action == "release":
            given = {"hold_id": args.id, "supervisor": args.supervisor, "reason": args.reason,
                     "pin": pin(args.pin, f"PIN for supervisor {args.supervisor}: ")}  # fmt: skip
            rec = call(svc, args, "hold.release", given)
            output(args, rec, [f"hold {rec.id} on {_target(rec, svc.timezone)} released"])
            return 0
        return _list(svc, args)
    except HoldError as exc:
        return fail("hold", exc, EXIT_REFUSED)
    except ValueError as exc:  # RequestError among them
        return fail("hold", exc, EXIT_USAGE)


def _add(svc: Any, args: argparse.Namespace) -> int:
    """``dock hold add``: on one recording, a case, an officer or an episode."""
    given = {
        name: getattr(args, name)
        for name in ("kind", "reference", "serial", "recording", "case", "officer",
                     "date_from", "date_to", "episode", "until")
    }  # fmt: skip
    rec = call(svc, args, "hold.add", given)
    what = _target(rec, svc.timezone)
    if rec.scope == "recording":
        line = f"hold {rec.id} placed on {what} ({rec.kind})"
    else:
        n = len(holds.register(svc).covered(rec))
        later = " and any attached later" if rec.scope == "case" else ""
        line = f"hold {rec.id} placed on {what} ({rec.kind}): {n} recording(s) now{later}"
    output(args, rec, [line])
    return 0


def _list(svc: Any, args: argparse.Namespace) -> int:
    register = holds.register(svc)
    now = svc.clock.now()
    records = [r for r in register.records() if args.all or r.active(now)]
    counts = {r.id: len(register.covered(r)) for r in records}
    lines = []
    for r in records:
        until = "permanent" if r.until is None else local_display(r.until, svc.timezone)
        state = "released" if r.released_at is not None else "active"
        lines.append(
            f"{r.id:>5}  {_target(r, svc.timezone)}  {r.kind}  "
            f'"{shown(r.reference)}"  by {shown(r.placed_by)}  until {until}  {state}'
            + ("" if r.scope == "recording" else f"  ({counts[r.id]} recording(s) now)")
        )
    output(args, [r.as_dict() | {"recordings_now": counts[r.id]} for r in records], lines)
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    """A dry run, or with --apply the two supervisors (four eyes) and their PINs."""
    svc = service_from(args)
    given: dict[str, Any] = {"apply": args.apply}
    if args.appraisal is not None:  # 004 att.2 §6: the approved appraisal it follows
        given["appraisal"] = args.appraisal
    if args.apply:
        first = ask(args.supervisor, "Supervisor number: ")
        second = ask(args.second_supervisor, "Second supervisor number: ")
        if not first or not second:
            why = ("--apply needs two supervisors (four eyes): --supervisor ID "
                   "--second-supervisor ID (their PINs are asked for)")  # fmt: skip
            return fail("purge", why, EXIT_USAGE)
        if args.appraisal is None:
            why = ("--apply needs the approved appraisal it follows: --appraisal ID "
                   "(dock appraisal propose, then approve; 004 att.2 §6)")  # fmt: skip
            return fail("purge", why, EXIT_USAGE)
        given |= {
            "supervisor": first,
            "supervisor_pin": pin(args.supervisor_pin, f"PIN for supervisor {first}: "),
            "second_supervisor": second,
            "second_pin": pin(args.second_pin, f"PIN for supervisor {second}: "),
        }
    try:
        report = call(svc, args, "purge.run", given)
    except RequestError as exc:
        return fail("purge", exc, EXIT_USAGE)
    except Refused as exc:
        return fail("purge", f"refused: {exc}; nothing purged", EXIT_REFUSED)
    if args.json:
        print(json_text(report.as_dict(), indent=2))
    else:
        _print_purge(report)
    return EXIT_REFUSED if report.failed else 0


def _print_purge(report: Any) -> None:
    dry = report.dry_run
    verb = "would purge" if dry else "purged"
    for bag in report.pending:
        print(f"unfinished purge of {shown(bag, 300)}: finished by dock purge --apply")
    for done in report.completed:
        print(f"finished an unfinished purge: {shown(done, 300)}")
    for item in report.items:
        what = f"{shown(item['serial'])}/{shown(item['recording_id'])}  {shown(item['path'], 300)}"
        if item["action"] in ("purged", "would_purge"):
            print(f"{verb}: {what}")
        elif item["action"] == "failed":
            print(f"FAILED: {what}: {shown(item['reason'], 300)}")
        elif item["action"] == "keep" and not item["reason"].startswith("retention:"):
            print(f"keep: {what}: {shown(item['reason'], 300)}")  # plain retention: counted
    for r in report.resealed:
        old, n = shown(r["bag"], 300), r["remaining"]
        if dry:
            print(f"package {old} would be re-sealed with its {n} remaining recording(s)")
        else:
            print(f"package {old} re-sealed as {shown(r['as'], 300)} ({n} remaining)")
    for bag in report.removed:
        print(f"package {shown(bag, 300)} {'would be ' if dry else ''}removed: all of it purged")
    kept = ", ".join(f"{code} {n}" for code, n in sorted(report.kept.items())) or "none"
    print(
        f"{report.considered} recording(s) considered, {len(report.purged)} {verb}, "
        f"kept: {kept}" + ("  (dry run: add --apply to purge)" if dry else "")
    )


def cmd_deadlines(args: argparse.Namespace) -> int:
    svc = service_from(args)
    now = svc.clock.now()
    rows = deadline_report(svc.store, svc.policy, svc.timezone, now)
    if not args.all:
        recent = now - RECENT_S
        rows = [
            r
            for r in rows
            if r["state"] not in ("done", "done_late")
            or datetime.fromisoformat(r["returned_at"]).timestamp() >= recent
        ]
    if args.json:
        print(json_text(rows, indent=2))
    else:
        for r in rows:
            left = r["remaining_s"] / 3600
            where = f"AWAY since {r['out_at']}" if r["away"] else f"returned {r['returned_at']}"
            print(
                f"{shown(r['serial']):<10} {shown(r['officer_id']):<8} {where}  "
                f"due {r['deadline_local']} (from the {r['deadline_from'].replace('_', ' ')} "
                f"{r['started_at']})  {r['state']:<9} {left:+.1f} h"
            )
        alert = overdue_or_at_risk(rows)
        away = sum(1 for r in rows if r["away"])
        print(f"{len(rows)} episode(s) listed ({away} away), {len(alert)} overdue or at risk")
    return EXIT_REFUSED if any(r["state"] == "overdue" for r in rows) else 0


def register(sub: Any) -> None:
    """``dock hold add|release|list``, ``dock purge``, ``dock deadlines``."""
    ho = add_parser(sub, "hold", help="place, release or list holds on archived footage")
    hos = ho.add_subparsers(dest="action", required=True)
    add = add_parser(
        hos, "add", help="keep a recording, a case's, an officer's or an episode's recordings"
    )
    add.add_argument("serial", nargs="?", help="with RECORDING: hold one recording")
    add.add_argument("recording", nargs="?")
    add.add_argument("--case", help="every recording attached to the case, now and later")
    add.add_argument("--officer", help="the officer's recordings (optionally --from/--to)")
    add.add_argument("--from", dest="date_from", help="ISO date or date-time (with --officer)")
    add.add_argument("--to", dest="date_to", help="ISO date (inclusive) or date-time")
    add.add_argument("--episode", type=int, help="custody episode id: its recordings")
    add.add_argument("--kind", required=True, choices=[k.value for k in HoldKind])
    add.add_argument("--reference", required=True, help="case, complaint or petition number")
    add.add_argument("--until", help="ISO date or date-time (default: permanent)")
    add_json(add)
    add.set_defaults(func=cmd_hold, request="hold.add")
    rel = add_parser(hos, "release", help="end a hold (a supervisor, with a reason)")
    rel.add_argument("id", type=int)
    rel.add_argument("--supervisor", required=True, help="supervisor number")
    rel.add_argument(
        "--supervisor-pin", "--pin", dest="pin", help="the supervisor's PIN (asked when omitted)"
    )
    rel.add_argument("--reason", required=True)
    add_json(rel)
    rel.set_defaults(func=cmd_hold, request="hold.release")
    lst = add_parser(hos, "list", help="active holds")
    add_json(lst)
    lst.add_argument("--all", action="store_true", help="released and expired holds too")
    lst.set_defaults(func=cmd_hold)

    pu = add_parser(sub, "purge", help="purge footage past retention and not held (dry run)")
    pu.add_argument("--apply", action="store_true", help="really delete (two supervisors)")
    pu.add_argument("--supervisor", help="first supervisor approving --apply")
    pu.add_argument("--supervisor-pin", help="their PIN (asked when omitted)")
    pu.add_argument("--second-supervisor", help="second, different supervisor (four eyes)")
    pu.add_argument("--second-pin", help="their PIN (asked when omitted)")
    pu.add_argument("--appraisal", type=int,
                    help="the approved appraisal it follows (needed with --apply)")  # fmt: skip
    add_json(pu)
    pu.set_defaults(func=cmd_purge, request="purge.run")

    dl = add_parser(sub, "deadlines", help="offload deadlines of recorders, away or returned")
    add_json(dl)
    dl.add_argument("--all", action="store_true", help="also returns done more than 7 days ago")
    dl.set_defaults(func=cmd_deadlines)
