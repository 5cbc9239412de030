"""``dock access request|approve|refuse|view|copy|list|log|mark|unmark|marks`` and
``dock export``.

Footage leaves the archive only through an approved request (REQUIREMENTS.md section 7):
these commands are the keeper's desk. A view or copy is registered before its files are
written, and only the person the request names (``--actor``) may run it. Refusals exit 1
and are in the audit log too.
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
from dock.evidence.access import CATEGORIES, KINDS, AccessError
from dock.services import access
from dock.support.text import json_text, shown


def cmd_access(args: argparse.Namespace) -> int:
    svc = service_from(args)
    reg = access.register(svc)
    now = svc.clock.now()
    try:
        if args.action == "request":
            given = {"purpose": args.purpose, "kind": args.kind, "recordings": args.recordings,
                     "extractor": args.extractor}  # fmt: skip
            req = call(svc, args, "access.request", given)
            state = req.state(now)
            output(args, req.as_dict(now), [
                f"access request {req.id} ({req.kind}, {len(req.recordings)} recording(s)):",
                "  pending: a supervisor other than you must approve it" if state == "pending"
                else f"  {state}: direct access of a supervisory body (registered)",
            ])  # fmt: skip
        elif args.action in ("view", "copy"):
            given = {"request_id": args.id, "to": args.to, "recordings": args.recordings or None,
                     "place": args.place}  # fmt: skip
            if args.action == "copy":
                given["confirm_confidential"] = args.confirm_confidential
            made = call(svc, args, f"access.{args.action}", given)
            output(args, made, [
                f"{args.action}: {len(made.files)} file(s) in {shown(made.folder, 300)} "
                f"(registered first: entries {', '.join(map(str, made.entries))})",
            ])  # fmt: skip
        elif args.action == "mark":
            given = {"by": args.by, "pin": pin(args.pin, f"PIN for {args.by}: "),
                     "category": args.category, "reason": args.reason,
                     "recordings": args.recordings or None, "case": args.case}  # fmt: skip
            ids = call(svc, args, "access.mark", given)
            output(args, {"marks": ids}, [f"marked confidential: mark(s) {ids}"])
        elif args.action == "unmark":
            given = {"mark_id": args.mark_id, "supervisor": args.supervisor,
                     "pin": pin(args.pin, f"PIN for supervisor {args.supervisor}: "),
                     "reason": args.reason}  # fmt: skip
            call(svc, args, "access.unmark", given)
            output(args, {"released": args.mark_id}, [f"mark {args.mark_id} released"])
        elif args.action == "marks":
            marks = access.marks(svc.store, active_only=not args.all)
            if args.json:
                print(json_text(marks, indent=2))
            for m in [] if args.json else marks:
                what = f"case {m['case_number']}" if m["case_number"] else (
                    f"{m['serial']}/{m['recording_id']}")  # fmt: skip
                state = "released" if m["released_at"] else "in force"
                print(f"{m['id']:>4}  {m['category']:<17} {shown(what, 80)}  {state}  "
                      f"by {shown(m['marked_by'])}  {shown(m['reason'], 200)}")  # fmt: skip
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
             "place": args.place, "iso": args.iso,
             "confirm_confidential": args.confirm_confidential}  # fmt: skip
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
    rq.add_argument("--extractor", help="who is to run it (officer number; default you)")
    add_json(rq)
    rq.set_defaults(func=cmd_access, request="access.request")
    for name, what in (("view", "a working copy to view"), ("copy", "a copy to keep")):
        p = add_parser(acs, name, help=f"{what}, registered before it is made (--actor: the "
                                       "person the approved request names)")  # fmt: skip
        p.add_argument("id", type=int, help="access request number (approved)")
        p.add_argument("--to", required=True, metavar="DIR", help="where the files go")
        p.add_argument("--place", help="where this happens (default: this dock)")
        p.add_argument("recordings", nargs="*", metavar="SERIAL:RECORDING",
                       help="only these (default: all the request names)")  # fmt: skip
        if name == "copy":
            p.add_argument("--confirm-confidential", action="store_true",
                           help="copy recordings marked confidential too")  # fmt: skip
        add_json(p)
        p.set_defaults(func=cmd_access, request=f"access.{name}")
    mk = add_parser(acs, "mark", help="mark recordings or a case confidential")
    mk.add_argument("--by", required=True, help="a supervisor's or the keeper's number")
    mk.add_argument("--pin", help="their PIN (prompted for when omitted)")
    mk.add_argument("--category", required=True, choices=tuple(CATEGORIES))
    mk.add_argument("--reason", required=True)
    mk.add_argument("--case", help="mark a case's recordings (instead of recordings)")
    mk.add_argument("recordings", nargs="*", metavar="SERIAL:RECORDING")
    add_json(mk)
    mk.set_defaults(func=cmd_access, request="access.mark")
    um = add_parser(acs, "unmark", help="release a confidentiality mark (a supervisor)")
    um.add_argument("mark_id", type=int)
    um.add_argument("--supervisor", required=True, help="supervisor number")
    um.add_argument("--pin", help="the supervisor's PIN (prompted for when omitted)")
    um.add_argument("--reason", required=True)
    add_json(um)
    um.set_defaults(func=cmd_access, request="access.unmark")
    ms = add_parser(acs, "marks", help="the confidentiality marks")
    ms.add_argument("--all", action="store_true", help="released ones too")
    add_json(ms)
    ms.set_defaults(func=cmd_access)
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
    ex.add_argument("--extractor", help="the person extracting, by number or name: the one "
                    "the request names, who runs this (--actor)")  # fmt: skip
    ex.add_argument("--place", help="where the extraction takes place (default: this dock)")
    ex.add_argument("--confirm-confidential", action="store_true",
                    help="export recordings marked confidential too")  # fmt: skip
    ex.add_argument("--iso", metavar="FILE", help="also write an ISO 9660 image to burn")
    add_json(ex)
    ex.set_defaults(func=cmd_export, request="access.export")


__all__ = ["cmd_access", "cmd_export", "register"]
