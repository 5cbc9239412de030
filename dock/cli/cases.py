"""``dock case attach|show`` and ``dock confirm-copy``: thin over ``dock.services.cases``
and ``dock.services.archive``."""

from __future__ import annotations

import argparse
import sys
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
from dock.services import cases
from dock.services.errors import Refused, RequestError
from dock.support.text import shown


def cmd_attach(args: argparse.Namespace) -> int:
    """On the keeper's own credentials: an officer or a supervisor, with their PIN."""
    dock = service_from(args)
    who = args.officer or (input("Officer number: ").strip() if sys.stdin.isatty() else "")
    if not who:
        return fail("case attach", "needs the keeper's credentials: --officer ID (an officer "
                    "or supervisor; the PIN is asked for)", EXIT_USAGE)  # fmt: skip
    given = {"case": args.case, "recordings": args.recordings, "officer": who,
             "pin": pin(args.pin, f"PIN for {who}: ")}  # fmt: skip
    try:
        call(dock, args, "case.attach", given)
    except Refused as exc:
        return fail("case attach", f"refused: {exc}", EXIT_REFUSED)
    except RequestError as exc:
        return fail("case", exc, EXIT_USAGE)
    return _show(dock, args)


def cmd_show(args: argparse.Namespace) -> int:
    return _show(service_from(args), args)


def _show(dock: Any, args: argparse.Namespace) -> int:
    rows = cases.recordings(dock, args.case)
    lines = [f"case {shown(args.case)}: {len(rows)} recording(s)"]
    lines += [f"  {shown(r['serial'])}/{shown(r['recording_id'])}  "
              f"{shown(r['officer_id'])}  {shown(r['path'], 300)}" for r in rows]  # fmt: skip
    output(args, rows, lines)
    return 0


def cmd_confirm_copy(args: argparse.Namespace) -> int:
    dock = service_from(args)
    given = {"serial": args.serial, "recording": args.recording, "where": args.where}
    try:
        result = call(dock, args, "archive.confirm_copy", given)
    except RequestError as exc:
        return fail("confirm-copy", exc, EXIT_USAGE)
    where = shown(args.where, 200)
    line = f"{shown(args.serial)}/{shown(args.recording)}: second copy confirmed ({where})"
    output(args, result, [line])
    return 0


def register(sub: Any) -> None:
    ca = add_parser(sub, "case", help="file archived recordings under a case or event number")
    cas = ca.add_subparsers(dest="action", required=True)
    attach = add_parser(cas, "attach", help="file recordings under a case (keeper's PIN)")
    attach.add_argument("case")
    attach.add_argument("recordings", nargs="+", metavar="SERIAL:RECORDING")
    attach.add_argument("--officer", help="the keeper filing it: an officer or supervisor")
    attach.add_argument("--pin", help="their PIN (asked when omitted)")
    add_json(attach)
    attach.set_defaults(func=cmd_attach, request="case.attach")
    show = add_parser(cas, "show", help="the recordings filed under a case")
    show.add_argument("case")
    add_json(show)
    show.set_defaults(func=cmd_show)

    cc = add_parser(sub, "confirm-copy", help="a second copy exists: the recorder may now erase it")
    cc.add_argument("serial")
    cc.add_argument("recording")
    cc.add_argument("--where", required=True, help="where the second copy is kept")
    add_json(cc)
    cc.set_defaults(func=cmd_confirm_copy, request="archive.confirm_copy")
