"""``dock hold|purge|deadlines``: holds on footage, purging, offload deadlines.

Wired into ``dock`` by :func:`add_retention_commands`. ``dock purge`` is a dry run
unless ``--apply``, and refuses ``--apply`` while the dock's clock is not trusted: a
clock set years ahead would otherwise purge footage whose retention is still running.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .cli_admin import EXIT_REFUSED, EXIT_USAGE, _pin, service_from
from .clock import local_display
from .evidence.holds import (
    HoldError,
    HoldRegister,
    deadline_report,
    overdue_or_at_risk,
    purge,
)
from .evidence.retention import HoldKind
from .text import json_text, shown

#: Returns older than this are listed by ``dock deadlines`` only while not done (or --all).
RECENT_S = 7 * 86400


def parse_until(text: str, tz: str) -> float:
    """``--until``: a date holds through the end of that local day (the longer reading);
    a date-time without a zone is local to the dock; one with a zone is taken as given."""
    zone = ZoneInfo(tz)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1)
            return datetime.combine(day, time(), zone).timestamp()
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--until {text!r} is not an ISO date (2027-01-31) or date-time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=zone)
    return t.timestamp()


def cmd_hold(args: argparse.Namespace) -> int:
    svc = service_from(args)
    register = HoldRegister(svc.store, svc.audit, svc.clock.now)
    try:
        if args.action == "add":
            until = None if args.until is None else parse_until(args.until, svc.timezone)
            rec = register.place(
                args.serial, args.recording, args.kind, args.reference, args.actor, until
            )
            what = f"{shown(rec.serial)}/{shown(rec.recording_id)}"
            print(f"hold {rec.id} placed on {what} ({rec.kind})")
        elif args.action == "release":
            pin = _pin(args.pin, "Supervisor PIN: ")
            rec = register.release(args.id, args.supervisor, pin, args.reason)
            print(f"hold {rec.id} on {shown(rec.serial)}/{shown(rec.recording_id)} released")
        else:
            now = svc.clock.now()
            records = [r for r in register.records() if args.all or r.active(now)]
            if args.json:
                print(json_text([r.as_dict() for r in records], indent=2))
            for r in [] if args.json else records:
                until = "permanent" if r.until is None else local_display(r.until, svc.timezone)
                state = "released" if r.released_at is not None else "active"
                print(
                    f"{r.id:>5}  {shown(r.serial)}/{shown(r.recording_id)}  {r.kind}  "
                    f"{r.reference!r}  by {shown(r.placed_by)}  until {until}  {state}"
                )
    except HoldError as exc:
        print(f"dock hold: {shown(exc, 400)}", file=sys.stderr)
        return EXIT_REFUSED
    except ValueError as exc:
        print(f"dock hold: {shown(exc, 400)}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    svc = service_from(args)
    if args.apply:
        trusted, why = svc.clock.synchronised()
        if not trusted:
            print(f"dock purge: the clock is not trusted ({why}); nothing purged", file=sys.stderr)
            return EXIT_REFUSED
    register = HoldRegister(svc.store, svc.audit, svc.clock.now)
    report = purge(
        svc.store,
        svc.audit,
        register,
        svc.offloader.evidence_dir,
        svc.policy,
        svc.clock.now(),
        dry_run=not args.apply,
        actor=args.actor,
    )
    if args.json:
        print(json_text(report.as_dict(), indent=2))
    else:
        _print_purge(report)
    return EXIT_REFUSED if report.failed else 0


def _print_purge(report: Any) -> None:
    verb = "purged" if not report.dry_run else "would purge"
    for item in report.items:
        what = f"{shown(item['serial'])}/{shown(item['recording_id'])}  {shown(item['path'], 300)}"
        if item["action"] in ("purged", "would_purge"):
            print(f"{verb}: {what}")
        elif item["action"] == "failed":
            print(f"FAILED: {what}: {shown(item['reason'], 300)}")
        elif item["action"] == "keep" and not item["reason"].startswith("retention:"):
            print(f"keep: {what}: {shown(item['reason'], 300)}")  # plain retention: counted
    for bag in report.bags_partial:
        print(f"bag {'now' if not report.dry_run else 'would be'} partial: {shown(bag, 300)}")
    kept = ", ".join(f"{code} {n}" for code, n in sorted(report.kept.items())) or "none"
    print(
        f"{report.considered} recording(s) considered, {len(report.purged)} {verb}, "
        f"kept: {kept}" + ("  (dry run: add --apply to purge)" if report.dry_run else "")
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
            print(
                f"{shown(r['serial']):<10} {shown(r['officer_id']):<8} "
                f"returned {r['returned_at']}  "
                f"due {r['deadline_local']}  {r['state']:<9} {left:+.1f} h"
            )
        alert = overdue_or_at_risk(rows)
        print(f"{len(rows)} return(s) listed, {len(alert)} overdue or at risk")
    return EXIT_REFUSED if any(r["state"] == "overdue" for r in rows) else 0


def add_retention_commands(sub: Any) -> None:
    """``dock hold add|release|list``, ``dock purge``, ``dock deadlines``."""
    ho = sub.add_parser("hold", help="place, release or list holds on archived footage")
    hos = ho.add_subparsers(dest="action", required=True)
    add = hos.add_parser("add", help="keep one recording beyond its retention")
    add.add_argument("serial")
    add.add_argument("recording")
    add.add_argument("--kind", required=True, choices=[k.value for k in HoldKind])
    add.add_argument("--reference", required=True, help="case, complaint or petition number")
    add.add_argument("--until", help="ISO date or date-time (default: permanent)")
    rel = hos.add_parser("release", help="end a hold (a supervisor, with a reason)")
    rel.add_argument("id", type=int)
    rel.add_argument("--supervisor", required=True, help="supervisor number")
    rel.add_argument("--pin", help="the supervisor's PIN (prompted for when omitted)")
    rel.add_argument("--reason", required=True)
    lst = hos.add_parser("list", help="active holds")
    lst.add_argument("--json", action="store_true")
    lst.add_argument("--all", action="store_true", help="released and expired holds too")
    ho.set_defaults(func=cmd_hold)

    pu = sub.add_parser("purge", help="purge footage past retention and not held (dry run)")
    pu.add_argument("--apply", action="store_true", help="really delete (audited)")
    pu.add_argument("--json", action="store_true")
    pu.set_defaults(func=cmd_purge)

    dl = sub.add_parser("deadlines", help="offload deadlines of returned recorders")
    dl.add_argument("--json", action="store_true")
    dl.add_argument("--all", action="store_true", help="also returns done more than 7 days ago")
    dl.set_defaults(func=cmd_deadlines)
