"""``dock gaps list|explain``: gaps in recording and their explanations (REQUIREMENTS.md §5).

The dock opens an item for every gap it finds in a returned recorder's logs; a supervisor
closes it with the written explanation 002 art.20 / 001 art.19(2) ask for, on their own
PIN. Wired into ``dock`` by ``add_gap_commands(sub)``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .cli_admin import EXIT_REFUSED, _pin, service_from
from .clock import local_display, utc_iso
from .evidence.gaps import ExplanationItem, GapError, GapRegister
from .text import json_text, shown


def _length(item: ExplanationItem) -> str:
    if item.end_ms is None:
        return "open-ended"
    seconds = max(0, item.end_ms - item.start_ms) / 1000
    if seconds < 120:
        return f"{seconds:g} s"
    return f"{seconds / 60:.0f} min"


def _as_json(item: ExplanationItem) -> dict[str, Any]:
    d = item.as_dict()
    d["start_utc"] = utc_iso(item.start_ms / 1000)
    d["end_utc"] = None if item.end_ms is None else utc_iso(item.end_ms / 1000)
    return d


def cmd_gaps(args: argparse.Namespace) -> int:
    svc = service_from(args)
    register = GapRegister(svc.store, svc.audit)
    if args.action == "list":
        items = register.list_items(args.officer, open_only=not args.all)
        if args.json:
            print(json_text([_as_json(i) for i in items], indent=2))
            return 0
        if not items:
            print("no open explanation items" if not args.all else "no explanation items")
            return 0
        print(f"{'id':>5}  {'recorder':<9} {'officer':<8} {'kind':<12} {'reason':<12} "
              f"{'length':<11} start (recorder clock)  status")  # fmt: skip
        for i in items:
            status = "open" if i.is_open else f"closed by {shown(i.closed_by)}"
            start = local_display(i.start_ms / 1000, svc.timezone)
            print(
                f"{i.id:>5}  {shown(i.serial):<9} {shown(i.officer_id):<8} {shown(i.kind):<12} "
                f"{shown(i.reason):<12} {_length(i):<11} {start}  {status}"
            )
            if i.recording_id or i.detail:
                print(f"{'':>7}{shown(i.recording_id)}: {shown(i.detail, 300)}")
        return 0
    pin = _pin(args.pin, f"PIN for supervisor {args.supervisor}: ")
    try:
        item = register.close_item(args.id, args.supervisor, pin, args.text)
    except GapError as exc:
        print(f"dock gaps explain: {shown(exc, 400)}", file=sys.stderr)
        return EXIT_REFUSED
    print(
        f"item {item.id} ({shown(item.serial)}, {shown(item.kind)}, {shown(item.reason)}) "
        f"closed by {shown(item.closed_by)}"
    )
    return 0


def add_gap_commands(sub: Any) -> None:
    gp = sub.add_parser("gaps", help="gaps in recording: list them, close one with a reason")
    gps = gp.add_subparsers(dest="action", required=True)
    ls = gps.add_parser("list", help="open explanation items (--all: closed ones too)")
    ls.add_argument("--officer", help="only this officer's items")
    ls.add_argument("--all", action="store_true", help="closed items too")
    ls.add_argument("--json", action="store_true")
    ex = gps.add_parser("explain", help="close an item with a written explanation")
    ex.add_argument("id", type=int, help="item id, from 'dock gaps list'")
    ex.add_argument("--supervisor", required=True, help="supervisor number")
    ex.add_argument("--pin", help="the supervisor's PIN (prompted for when omitted)")
    ex.add_argument("--text", required=True, help="the written explanation (audited)")
    gp.set_defaults(func=cmd_gaps)
