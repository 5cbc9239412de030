"""``dock hold|purge|deadlines``: holds on footage, purging, offload deadlines.

Wired into ``dock`` by :func:`add_retention_commands`. ``dock purge`` is a dry run
unless ``--apply``; ``--apply`` destroys evidence, so it needs two different
supervisors, each with their own PIN (four eyes, 004 att.2 §6: destruction follows an
approved appraisal), and refuses while the dock's clock is not trusted: a clock set
years ahead would otherwise purge footage whose retention is still running. A hold is
released by one supervisor with their PIN. The audit names the supervisors; the login
that typed the command is recorded beside them.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dock.cli.admin import EXIT_REFUSED, EXIT_USAGE, _pin, service_from
from dock.devices.clock import local_display
from dock.evidence.deadlines import deadline_report, overdue_or_at_risk
from dock.evidence.holds import HoldError, HoldRecord, HoldRegister
from dock.evidence.purging import purge
from dock.evidence.retention import HoldKind
from dock.storage.pins import authorise
from dock.support.text import json_text, shown

#: Returns older than this are listed by ``dock deadlines`` only while not done (or --all).
RECENT_S = 7 * 86400


def parse_until(text: str, tz: str, flag: str = "--until") -> float:
    """``--until`` (and ``--to``): a date holds through the end of that local day (the
    longer reading); a date-time without a zone is local to the dock; one with a zone is
    taken as given."""
    zone = ZoneInfo(tz)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1)
            return datetime.combine(day, time(), zone).timestamp()
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{flag} {text!r} is not an ISO date (2027-01-31) or date-time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=zone)
    return t.timestamp()


def parse_from(text: str, tz: str) -> float:
    """``--from``: a date starts at the beginning of that local day (the longer reading);
    a date-time as for :func:`parse_until`."""
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"--from {text!r} is not an ISO date (2027-01-31)") from None
        return datetime.combine(day, time(), ZoneInfo(tz)).timestamp()
    return parse_until(text, tz, "--from")


def _place(register: HoldRegister, args: argparse.Namespace, tz: str) -> HoldRecord:
    """``dock hold add``: on one recording, a case, an officer or an episode."""
    scopes = [
        name
        for name, given in (
            ("recording", args.serial is not None),
            ("case", args.case is not None),
            ("officer", args.officer is not None),
            ("episode", args.episode is not None),
        )
        if given
    ]
    if len(scopes) != 1 or (args.serial is not None and args.recording is None):
        raise ValueError(
            "give one of: SERIAL RECORDING, --case CASE, --officer ID [--from D] [--to D], "
            "--episode CUSTODY_ID"
        )
    if (args.date_from or args.date_to) and scopes != ["officer"]:
        raise ValueError("--from and --to go with --officer")
    until = None if args.until is None else parse_until(args.until, tz)
    common = (args.kind, args.reference, args.actor)
    if args.case is not None:
        return register.place_case(args.case, *common, until=until)
    if args.officer is not None:
        from_at = None if args.date_from is None else parse_from(args.date_from, tz)
        to_at = None if args.date_to is None else parse_until(args.date_to, tz, "--to")
        return register.place_officer(args.officer, *common, from_at, to_at, until)
    if args.episode is not None:
        return register.place_episode(args.episode, *common, until=until)
    return register.place(args.serial, args.recording, *common, until)


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
    register = HoldRegister(svc.store, svc.audit, svc.clock.now)
    try:
        if args.action == "add":
            rec = _place(register, args, svc.timezone)
            what = _target(rec, svc.timezone)
            if rec.scope == "recording":
                print(f"hold {rec.id} placed on {what} ({rec.kind})")
            else:
                n = len(register.covered(rec))
                later = " and any attached later" if rec.scope == "case" else ""
                print(f"hold {rec.id} placed on {what} ({rec.kind}): {n} recording(s) now{later}")
        elif args.action == "release":
            pin = _pin(args.pin, f"PIN for supervisor {args.supervisor}: ")
            rec = register.release(args.id, args.supervisor, pin, args.reason, by=args.actor)
            print(f"hold {rec.id} on {_target(rec, svc.timezone)} released")
        else:
            now = svc.clock.now()
            records = [r for r in register.records() if args.all or r.active(now)]
            counts = {r.id: len(register.covered(r)) for r in records}
            if args.json:
                print(json_text([r.as_dict() | {"recordings_now": counts[r.id]}
                                 for r in records], indent=2))  # fmt: skip
            for r in [] if args.json else records:
                until = "permanent" if r.until is None else local_display(r.until, svc.timezone)
                state = "released" if r.released_at is not None else "active"
                print(
                    f"{r.id:>5}  {_target(r, svc.timezone)}  {r.kind}  "
                    f"{shown(r.reference)!r}  by {shown(r.placed_by)}  until {until}  {state}"
                    + ("" if r.scope == "recording" else f"  ({counts[r.id]} recording(s) now)")
                )
    except HoldError as exc:
        print(f"dock hold: {shown(exc, 400)}", file=sys.stderr)
        return EXIT_REFUSED
    except ValueError as exc:
        print(f"dock hold: {shown(exc, 400)}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _ask(given: str | None, prompt: str) -> str | None:
    """A supervisor number from its option, or asked for at a terminal; None otherwise."""
    if given:
        return given
    if sys.stdin.isatty():
        return input(prompt).strip() or None
    return None


def _four_eyes(svc: Any, args: argparse.Namespace) -> tuple[str, str] | int:
    """The two supervisors approving a purge, both verified (dock.storage.pins, with its
    lockout); or the exit status after a one-line refusal (audited ``purge_refused``)."""
    first = _ask(args.supervisor, "Supervisor number: ")
    second = _ask(args.second_supervisor, "Second supervisor number: ")
    if not first or not second:
        print(
            "dock purge: --apply needs two supervisors (four eyes): --supervisor ID "
            "--second-supervisor ID (their PINs are asked for)",
            file=sys.stderr,
        )
        return EXIT_USAGE

    def refuse(who: str, why: str) -> int:
        data = {"supervisors": [first, second], "why": why, "by": args.actor}
        svc.audit.append("purge_refused", who, "", data)
        print(f"dock purge: refused: {why}; nothing purged", file=sys.stderr)
        return EXIT_REFUSED

    if first == second:
        return refuse(first, "the two supervisors must be two different people")
    trusted, why = svc.clock.synchronised()
    if not trusted:
        return refuse(first, f"the clock is not trusted ({why})")
    for who, given, prompt in (
        (first, args.supervisor_pin, f"PIN for supervisor {first}: "),
        (second, args.second_pin, f"PIN for supervisor {second}: "),
    ):
        ok = authorise(svc.store, svc.audit, who, _pin(given, prompt), "purge")
        if not ok.ok:
            return refuse(who, ok.why)
    return first, second


def cmd_purge(args: argparse.Namespace) -> int:
    svc = service_from(args)
    approved: tuple[str, ...] = ()
    if args.apply:
        checked = _four_eyes(svc, args)
        if isinstance(checked, int):
            return checked
        approved = checked
    register = HoldRegister(svc.store, svc.audit, svc.clock.now)
    report = purge(
        svc.store,
        svc.audit,
        register,
        svc.offloader.seals,
        svc.offloader.evidence_dir,
        svc.policy,
        svc.clock.now(),
        dry_run=not args.apply,
        approved_by=approved,
        actor=args.actor,
    )
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
    add = hos.add_parser(
        "add", help="keep a recording, a case's, an officer's or an episode's recordings"
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
    rel = hos.add_parser("release", help="end a hold (a supervisor, with a reason)")
    rel.add_argument("id", type=int)
    rel.add_argument("--supervisor", required=True, help="supervisor number")
    rel.add_argument(
        "--supervisor-pin", "--pin", dest="pin", help="the supervisor's PIN (asked when omitted)"
    )
    rel.add_argument("--reason", required=True)
    lst = hos.add_parser("list", help="active holds")
    lst.add_argument("--json", action="store_true")
    lst.add_argument("--all", action="store_true", help="released and expired holds too")
    ho.set_defaults(func=cmd_hold)

    pu = sub.add_parser("purge", help="purge footage past retention and not held (dry run)")
    pu.add_argument("--apply", action="store_true", help="really delete (two supervisors)")
    pu.add_argument("--supervisor", help="first supervisor approving --apply")
    pu.add_argument("--supervisor-pin", help="their PIN (asked when omitted)")
    pu.add_argument("--second-supervisor", help="second, different supervisor (four eyes)")
    pu.add_argument("--second-pin", help="their PIN (asked when omitted)")
    pu.add_argument("--json", action="store_true")
    pu.set_defaults(func=cmd_purge)

    dl = sub.add_parser("deadlines", help="offload deadlines of returned recorders")
    dl.add_argument("--json", action="store_true")
    dl.add_argument("--all", action="store_true", help="also returns done more than 7 days ago")
    dl.set_defaults(func=cmd_deadlines)
