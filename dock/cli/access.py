"""``dock access request|approve|refuse|list|log`` and ``dock export``.

Footage leaves the archive only through an approved request (REQUIREMENTS.md section 7):
these commands are the keeper's desk. Refusals exit 1 and are in the audit log too.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dock.cli.admin import EXIT_REFUSED, _pin, service_from
from dock.devices.clock import utc_iso
from dock.evidence.access import KINDS, AccessError, AccessRegister, export, parse_recording
from dock.support.text import json_text, shown


def _register(svc: Any) -> AccessRegister:
    return AccessRegister(svc.store, svc.audit, clock=svc.clock.now)


def cmd_access(args: argparse.Namespace) -> int:
    svc = service_from(args)
    reg = _register(svc)
    now = svc.clock.now()
    try:
        if args.action == "request":
            recordings = [parse_recording(r) for r in args.recordings]
            req = reg.request(args.actor, args.purpose, recordings, args.kind)
            print(f"access request {req.id} ({req.kind}, {len(req.recordings)} recording(s)):")
            print("  pending: a supervisor other than you must approve it")
        elif args.action in ("approve", "refuse"):
            pin = _pin(args.pin, f"PIN for supervisor {args.supervisor}: ")
            if args.action == "approve":
                valid = None if args.days is None else args.days * 86400
                req = reg.approve(args.id, args.supervisor, pin, valid_for_s=valid)
                print(f"access request {req.id} approved until {utc_iso(req.expires_at or 0)}")
            else:
                req = reg.refuse(args.id, args.supervisor, pin, args.reason)
                print(f"access request {req.id} refused: {req.refused_reason}")
        elif args.action == "list":
            rows = [r.as_dict(now) for r in reg.requests()]
            if args.json:
                print(json_text(rows, indent=2))
            for r in [] if args.json else rows:
                print(
                    f"{r['id']:>4}  {r['state']:<8} {r['kind']:<6} {shown(r['requester']):<10} "
                    f"{len(r['recordings'])} rec  {shown(r['purpose'], 300)}"
                )
        else:
            entries = reg.log(args.request)
            for e in entries:
                e["at"] = utc_iso(e["at"])
            if args.json:
                print(json_text(entries, indent=2))
            for e in [] if args.json else entries:
                print(
                    f"{e['at']}  #{e['request_id']:<4} {e['action']:<6} {shown(e['who']):<12} "
                    f"{shown(e['what'], 200)}  @ {shown(e['place'], 200)}"
                )
    except (AccessError, ValueError) as exc:
        print(f"dock access: {shown(exc, 400)}", file=sys.stderr)
        return EXIT_REFUSED
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    svc = service_from(args)
    reg = _register(svc)
    try:
        result = export(
            reg,
            args.id,
            args.to,
            extractor=args.extractor,
            place=args.place,
            evidence_dir=svc.offloader.evidence_dir,
            dock_id=svc.dock_id,
            iso_path=args.iso,
            unit=getattr(svc.offloader, "organization", ""),
            timezone=svc.timezone,
            actor=args.actor,
        )
    except AccessError as exc:
        print(f"dock export: {shown(exc, 400)}", file=sys.stderr)
        return EXIT_REFUSED
    summary = {
        "bag": result.bag_path,
        "tagmanifest_sha256": result.tagmanifest_sha256,
        "iso": result.iso_path,
        "iso_sha256": result.iso_sha256,
    }
    if args.json:
        print(json_text(summary, indent=2))
    else:
        print(f"exported to {shown(result.bag_path, 300)}")
        print(f"  seal (SHA-256 of tagmanifest-sha256.txt): {result.tagmanifest_sha256}")
        if result.iso_path:
            print(f"  disc image {result.iso_path} (SHA-256 {result.iso_sha256})")
    return 0


def add_access_commands(sub: Any) -> None:
    """Add ``access`` and ``export`` to the ``dock`` command line's subparsers."""
    ac = sub.add_parser("access", help="request, approve and register access to footage")
    acs = ac.add_subparsers(dest="action", required=True)
    rq = acs.add_parser("request", help="ask to view, copy or export recordings")
    rq.add_argument("--purpose", required=True, help="why (registered and audited)")
    rq.add_argument("--kind", required=True, choices=KINDS)
    rq.add_argument("recordings", nargs="+", metavar="SERIAL:RECORDING")
    for name in ("approve", "refuse"):
        p = acs.add_parser(name, help=f"{name} a pending request (supervisor's own PIN)")
        p.add_argument("id", type=int)
        p.add_argument("--supervisor", required=True, help="supervisor number")
        p.add_argument("--pin", help="the supervisor's PIN (prompted for when omitted)")
        if name == "approve":
            p.add_argument("--days", type=float, help="approval valid for (default 7)")
        else:
            p.add_argument("--reason", required=True)
    ls = acs.add_parser("list", help="the requests and their state")
    ls.add_argument("--json", action="store_true")
    lg = acs.add_parser("log", help="the register: who viewed/copied/exported what, when, where")
    lg.add_argument("--request", type=int, help="only this request")
    lg.add_argument("--json", action="store_true")
    ac.set_defaults(func=cmd_access)

    ex = sub.add_parser("export", help="export an approved request as a disc-ready package")
    ex.add_argument("id", type=int, help="access request number (kind export, approved)")
    ex.add_argument("--to", required=True, metavar="DIR", help="where the package goes")
    ex.add_argument("--extractor", required=True, help="the person extracting (named)")
    ex.add_argument("--place", required=True, help="where the extraction takes place")
    ex.add_argument("--iso", metavar="FILE", help="also write an ISO 9660 image to burn")
    ex.add_argument("--json", action="store_true")
    ex.set_defaults(func=cmd_export)


__all__ = ["add_access_commands", "cmd_access", "cmd_export"]
