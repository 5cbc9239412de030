"""``dock appraisal propose|approve|reject|list``: destruction follows an approved appraisal
(004 att.2 §6). A keeper or supervisor proposes recordings (or ``--candidates``: those a
purge now would take) with a reason, on their own number and PIN; a supervisor other than
the proposer approves or rejects it. ``dock purge --apply --appraisal ID`` then purges
only what it lists."""

from __future__ import annotations

import argparse
from typing import Any

from dock.cli.common import (
    EXIT_REFUSED,
    EXIT_USAGE,
    add_json,
    add_parser,
    call,
    fail,
    output,
    pin,
    service_from,
)
from dock.devices.clock import local_display
from dock.services import appraisals
from dock.services.errors import Refused
from dock.support.text import shown


def _line(a: Any, tz: str) -> str:
    state = a.state
    if a.state == "approved" and a.expires_at is not None:
        state += f" by {shown(a.decided_by)} until {local_display(a.expires_at, tz)}"
    elif a.state == "rejected":
        state += f" by {shown(a.decided_by)}: {shown(a.note, 200)}"
    return (
        f"appraisal {a.id}: {len(a.recordings)} recording(s) proposed by {shown(a.proposed_by)} "
        f"{local_display(a.proposed_at, tz)} ({shown(a.reason, 200)}): {state}"
    )


def cmd_appraisal(args: argparse.Namespace) -> int:
    svc = service_from(args)
    tz = svc.timezone
    try:
        if args.action == "propose":
            given: dict[str, Any] = {
                "proposer": args.proposer, "reason": args.reason,
                "pin": pin(args.pin, f"PIN for {args.proposer}: "),
                "recordings": args.recordings or None, "candidates": args.candidates,
            }  # fmt: skip
            rec = call(svc, args, "appraisal.propose", given)
        elif args.action == "approve":
            given = {"appraisal_id": args.id, "supervisor": args.supervisor,
                     "pin": pin(args.pin, f"PIN for supervisor {args.supervisor}: ")}  # fmt: skip
            rec = call(svc, args, "appraisal.approve", given)
        elif args.action == "reject":
            given = {"appraisal_id": args.id, "supervisor": args.supervisor,
                     "reason": args.reason,
                     "pin": pin(args.pin, f"PIN for supervisor {args.supervisor}: ")}  # fmt: skip
            rec = call(svc, args, "appraisal.reject", given)
        else:
            found = appraisals.listing(svc)
            output(args, [a.as_dict() for a in found], [_line(a, tz) for a in found])
            return 0
    except Refused as exc:
        return fail("appraisal", f"refused: {exc}", EXIT_REFUSED)
    except ValueError as exc:  # RequestError among them
        return fail("appraisal", exc, EXIT_USAGE)
    output(args, rec.as_dict(), [_line(rec, tz)])
    return 0


def register(sub: Any) -> None:
    """``dock appraisal propose|approve|reject|list``."""
    ap = add_parser(sub, "appraisal", help="appraisals: destruction follows an approved one")
    aps = ap.add_subparsers(dest="action", required=True)
    pr = add_parser(aps, "propose", help="propose recordings for destruction, with a reason")
    pr.add_argument("recordings", nargs="*", help="SERIAL:RECORDING ...")
    pr.add_argument("--candidates", action="store_true",
                    help="every recording a purge now would take")  # fmt: skip
    pr.add_argument("--proposer", required=True, help="keeper's or supervisor's number")
    pr.add_argument("--pin", help="their PIN (asked when omitted)")
    pr.add_argument("--reason", required=True)
    add_json(pr)
    pr.set_defaults(func=cmd_appraisal, request="appraisal.propose")
    for action, help_text in (("approve", "approve an appraisal (not its proposer)"),
                              ("reject", "reject an appraisal, saying why")):  # fmt: skip
        p = add_parser(aps, action, help=help_text)
        p.add_argument("id", type=int)
        p.add_argument("--supervisor", required=True, help="supervisor number")
        p.add_argument("--pin", help="the supervisor's PIN (asked when omitted)")
        if action == "reject":
            p.add_argument("--reason", required=True)
        add_json(p)
        p.set_defaults(func=cmd_appraisal, request=f"appraisal.{action}")
    ls = add_parser(aps, "list", help="every appraisal and its decision")
    add_json(ls)
    ls.set_defaults(func=cmd_appraisal)


__all__ = ["register"]
