"""``dock gaps list|account|explain|return|file``: gaps in recording and their
explanations (REQUIREMENTS.md §5).

The dock opens an item for every interruption and fault it finds in a returned recorder's
logs (manual stops only where the policy asks: ``explain_manual_stops``); recording that
could not continue (battery, storage full, device fault) also raises an alert at once
(002 art.20). Three steps follow, in this order (001 art.19(2); the table is
``dock/domain/explanations.py``): the item's officer writes the account on their own PIN
(``account``); a supervisor who is not that officer reviews it on theirs, accepting it
with a written explanation (``explain``: one item, several, a range ``12-30``, or
``--all-open-for OFFICER``) or returning it with a reason (``return``), when the officer
writes it again; the records keeper files the reviewed item (``file``).
Wired into ``dock`` by ``register(sub)``.
"""

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
from dock.devices.clock import local_display, utc_iso
from dock.domain.explanations import State
from dock.evidence.gaps import ExplanationItem, GapError
from dock.services import gaps
from dock.services.errors import Refused, RequestError
from dock.support.text import json_text, shown


def _length(item: ExplanationItem) -> str:
    if item.end_ms is None:
        return "open-ended"
    seconds = max(0, item.end_ms - item.start_ms) / 1000
    if seconds < 120:
        return f"{seconds:g} s"
    return f"{seconds / 60:.0f} min"


def _as_json(item: ExplanationItem) -> dict[str, Any]:
    d = item.as_dict()
    d["state"] = str(item.state)
    d["start_utc"] = utc_iso(item.start_ms / 1000)
    d["end_utc"] = None if item.end_ms is None else utc_iso(item.end_ms / 1000)
    return d


def cmd_gaps(args: argparse.Namespace) -> int:
    svc = service_from(args)
    register = gaps.register(svc)
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
            status = _status(i)
            start = local_display(i.start_ms / 1000, svc.timezone)
            print(
                f"{i.id:>5}  {shown(i.serial):<9} {shown(i.officer_id):<8} {shown(i.kind):<12} "
                f"{shown(i.reason):<12} {_length(i):<11} {start}  {status}"
            )
            if i.recording_id or i.detail:
                print(f"{'':>7}{shown(i.recording_id)}: {shown(i.detail, 300)}")
            if i.account:
                print(f"{'':>7}account: {shown(i.account, 300)}")
            if i.return_reason and i.state is State.OPEN:
                print(f"{'':>7}returned by {shown(i.returned_by)}: {shown(i.return_reason, 300)}")
            if i.explanation:
                print(f"{'':>7}explanation: {shown(i.explanation, 300)}")
            if i.filing:
                print(f"{'':>7}filing note: {shown(i.filing, 300)}")
        return 0
    if args.action == "account":
        given = {"item_id": args.id, "officer": args.officer, "text": args.text,
                 "pin": pin(args.pin, f"PIN for officer {args.officer}: ")}  # fmt: skip
        try:
            item = call(svc, args, "gaps.account", given)
        except GapError as exc:
            return fail("gaps account", exc, EXIT_REFUSED)
        output(args, _as_json(item), [
            f"account added to item {item.id} ({shown(item.serial)}, {shown(item.kind)}, "
            f"{shown(item.reason)}); a supervisor reviews it"
        ])  # fmt: skip
        return 0
    if args.action in ("return", "file"):
        return _return_or_file(svc, args)
    return _explain(svc, args)


def _status(i: ExplanationItem) -> str:
    """Where an item is, in one short phrase (its state and who took the last step)."""
    match i.state:
        case State.OPEN:
            return "returned: account needed" if i.returned_at else "account needed"
        case State.ACCOUNTED:
            return "account written: review needed"
        case State.REVIEWED:
            return f"reviewed by {shown(i.reviewed_by)}: to file"
        case State.FILED:
            return f"filed by {shown(i.filed_by)} (reviewed by {shown(i.reviewed_by)})"
    return f"closed by {shown(i.closed_by)}"


def _return_or_file(svc: Any, args: argparse.Namespace) -> int:
    what = f"gaps {args.action}"
    try:
        ids = item_ids(args.ids)
    except ValueError as exc:
        return fail(what, exc, EXIT_USAGE)
    if args.action == "return":
        given = {"supervisor": args.supervisor, "text": args.text, "ids": ids,
                 "pin": pin(args.pin, f"PIN for supervisor {args.supervisor}: ")}  # fmt: skip
    else:
        given = {"keeper": args.keeper, "note": args.note, "ids": ids,
                 "pin": pin(args.pin, f"PIN for keeper {args.keeper}: ")}  # fmt: skip
    try:
        items = call(svc, args, args.request, given)
    except RequestError as exc:
        return fail(what, exc, EXIT_USAGE)
    except (GapError, Refused) as exc:
        return fail(what, exc, EXIT_REFUSED)
    said = "returned to officer" if args.action == "return" else "filed by"
    output(args, [_as_json(i) for i in items], [
        f"item {item.id} ({shown(item.serial)}, {shown(item.kind)}, {shown(item.reason)}) "
        + (f"{said} {shown(item.officer_id)}: account needed again" if args.action == "return"
           else f"{said} {shown(item.filed_by)}")
        for item in items
    ])  # fmt: skip
    return 0


def item_ids(words: list[str]) -> list[int]:
    """Item ids from ``12``, ``12-30`` (inclusive), in the order given; ValueError says
    what is wrong."""
    ids: list[int] = []
    for word in words:
        first, dash, last = word.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"{word!r} is not an item id or a range such as 12-30")
        lo, hi = int(first), int(last) if dash else int(first)
        if hi < lo:
            raise ValueError(f"range {word!r} runs backwards: write {hi}-{lo}")
        if hi - lo >= 10_000:
            raise ValueError(f"range {word!r} is too long (at most 10000 items at once)")
        ids.extend(range(lo, hi + 1))
    return ids


def _explain(svc: Any, args: argparse.Namespace) -> int:
    if bool(args.ids) == bool(args.all_open_for):
        return fail("gaps explain", "give item ids (12 14 20-25) or --all-open-for OFFICER",
                    EXIT_USAGE)  # fmt: skip
    try:
        ids = item_ids(args.ids)
    except ValueError as exc:
        return fail("gaps explain", exc, EXIT_USAGE)
    given = {"supervisor": args.supervisor, "text": args.text, "ids": ids,
             "all_open_for": args.all_open_for,
             "pin": pin(args.pin, f"PIN for supervisor {args.supervisor}: ")}  # fmt: skip
    try:
        items = call(svc, args, "gaps.explain", given)
    except RequestError as exc:
        return fail("gaps explain", exc, EXIT_USAGE)
    except (GapError, Refused) as exc:
        return fail("gaps explain", exc, EXIT_REFUSED)
    output(args, [_as_json(i) for i in items], [
        f"item {item.id} ({shown(item.serial)}, {shown(item.kind)}, {shown(item.reason)}) "
        f"reviewed by {shown(item.reviewed_by)}: accepted; the keeper files it"
        for item in items
    ])  # fmt: skip
    return 0


def register(sub: Any) -> None:
    gp = add_parser(sub, "gaps", help="gaps in recording: list, account, review, file")
    gps = gp.add_subparsers(dest="action", required=True)
    ls = add_parser(gps, "list", help="items not yet filed (--all: filed and closed too)")
    ls.add_argument("--officer", help="only this officer's items")
    ls.add_argument("--all", action="store_true", help="closed items too")
    add_json(ls)
    ls.set_defaults(func=cmd_gaps)
    ac = add_parser(gps, "account", help="the officer's own account of an item (before review)")
    ac.add_argument("id", type=int, help="item id, from 'dock gaps list'")
    ac.add_argument("--officer", required=True, help="the item's officer, writing it")
    ac.add_argument("--pin", help="the officer's PIN (prompted for when omitted)")
    ac.add_argument("--text", required=True, help="the account (stored with the item, audited)")
    add_json(ac)
    ac.set_defaults(func=cmd_gaps, request="gaps.account")
    ex = add_parser(
        gps, "explain", help="review items, accepting their accounts (one, several, a range)"
    )
    ex.add_argument("ids", nargs="*", metavar="ID", help="item ids or ranges: 12 14 20-25")
    ex.add_argument("--all-open-for", metavar="OFFICER", help="every open item of this officer")
    ex.add_argument("--supervisor", required=True, help="supervisor number")
    ex.add_argument("--pin", help="the supervisor's PIN (prompted for when omitted)")
    ex.add_argument("--text", required=True, help="the written explanation (audited)")
    add_json(ex)
    ex.set_defaults(func=cmd_gaps, request="gaps.explain")
    rt = add_parser(gps, "return", help="return accounts to their officers, with a reason")
    rt.add_argument("ids", nargs="+", metavar="ID", help="item ids or ranges: 12 14 20-25")
    rt.add_argument("--supervisor", required=True, help="supervisor number")
    rt.add_argument("--pin", help="the supervisor's PIN (prompted for when omitted)")
    rt.add_argument("--text", required=True, help="why it is returned (the officer sees it)")
    add_json(rt)
    rt.set_defaults(func=cmd_gaps, request="gaps.return")
    fl = add_parser(gps, "file", help="the records keeper files reviewed items")
    fl.add_argument("ids", nargs="+", metavar="ID", help="item ids or ranges: 12 14 20-25")
    fl.add_argument("--keeper", required=True, help="the records keeper's number")
    fl.add_argument("--pin", help="the keeper's PIN (prompted for when omitted)")
    fl.add_argument("--note", help="where it is filed (optional)")
    add_json(fl)
    fl.set_defaults(func=cmd_gaps, request="gaps.file")
