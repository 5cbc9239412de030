"""``dock access request|approve|refuse|list|log`` and ``dock export``.

Footage leaves the archive only through an approved request (REQUIREMENTS.md section 7):
these commands are the keeper's desk. Refusals exit 1 and are in the audit log too.
"""

from __future__ import annotations

import argparse
from typing import Any

from dock.cli.common import (
    EXIT_REFUSED,
    add_json,
    add_parser,
    call,
    fail,
    output,
    pin,
    service_from,
)
from dock.devices.clock import utc_iso
from dock.evidence.access import KINDS, AccessError
from dock.services import access
from dock.support.text import json_text, shown


def cmd_access(args: argparse.Namespace) -> int:
    svc = service_from(args)
    reg = access.register(svc)
    now = svc.clock.now()
    try:
        if args.action == "request":
            given = {"purpose": args.purpose, "kind": args.kind, "recordings": args.recordings}
            req = call(svc, args, "access.request", given)
            output(args, req.as_dict(now), [
                f"access request {req.id} ({req.kind}, {len(req.recordings)} recording(s)):",
                "  pending: a supervisor other than you must approve it",
            ])  # fmt: skip
        elif args.action in ("approve", "refuse"):
            given = {"request_id": args.id, "supervisor": args.supervisor,
                     "pin": pin(args.pin, f"PIN for supervisor {args.supervisor}: ")}  # fmt: skip
            if args.action == "approve":
                req = call(svc, args, "access.approve", given | {"days": args.days})
                line = f"access request {req.id} approved until {utc_iso(req.expires_at or 0)}"
            else:
                req = call(svc, args, "access.refuse", given | {"reason": args.reason})
                line = f"access request {req.id} refused: {shown(req.refused_reason, 300)}"
            output(args, req.as_dict(now), [line])
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
            entries = reg.log(args.request_id)
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
        return fail("access", exc, EXIT_REFUSED)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    svc = service_from(args)
    given = {"request_id": args.id, "to": args.to, "extractor": args.extractor,
             "place": args.place, "iso": args.iso}  # fmt: skip
    try:
        result = call(svc, args, "access.export", given)
    except (AccessError, ValueError) as exc:
        return fail("export", exc, EXIT_REFUSED)
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


def register(sub: Any) -> None:
    """Add ``access`` and ``export`` to the ``dock`` command line's subparsers."""
    ac = add_parser(sub, "access", help="request, approve and register access to footage")
    acs = ac.add_subparsers(dest="action", required=True)
    rq = add_parser(acs, "request", help="ask to view, copy or export recordings")
    rq.add_argument("--purpose", required=True, help="why (registered and audited)")
    rq.add_argument("--kind", required=True, choices=KINDS)
    rq.add_argument("recordings", nargs="+", metavar="SERIAL:RECORDING")
    add_json(rq)
    rq.set_defaults(func=cmd_access, request="access.request")
    for name in ("approve", "refuse"):
        p = add_parser(acs, name, help=f"{name} a pending request (supervisor's own PIN)")
        p.add_argument("id", type=int)
        p.add_argument("--supervisor", required=True, help="supervisor number")
        p.add_argument("--pin", help="the supervisor's PIN (prompted for when omitted)")
        if name == "approve":
            p.add_argument("--days", type=float, help="approval valid for (default 7)")
        else:
            p.add_argument("--reason", required=True)
        add_json(p)
        p.set_defaults(func=cmd_access, request=f"access.{name}")
    ls = add_parser(acs, "list", help="the requests and their state")
    add_json(ls)
    ls.set_defaults(func=cmd_access)
    lg = add_parser(acs, "log", help="the register: who viewed/copied/exported what, when, where")
    lg.add_argument("--request", dest="request_id", type=int, help="only this request")
    add_json(lg)
    lg.set_defaults(func=cmd_access)

    ex = add_parser(sub, "export", help="export an approved request as a disc-ready package")
    ex.add_argument("id", type=int, help="access request number (kind export, approved)")
    ex.add_argument("--to", required=True, metavar="DIR", help="where the package goes")
    ex.add_argument("--extractor", required=True, help="the person extracting (named)")
    ex.add_argument("--place", required=True, help="where the extraction takes place")
    ex.add_argument("--iso", metavar="FILE", help="also write an ISO 9660 image to burn")
    add_json(ex)
    ex.set_defaults(func=cmd_export, request="access.export")


__all__ = ["cmd_access", "cmd_export", "register"]
