"""``dock case open|close|episode|attach|show|party`` and ``dock confirm-copy``: thin over
``dock.services.cases`` and ``dock.services.archive``."""

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


def _who(args: argparse.Namespace) -> str:
    return args.officer or (input("Officer number: ").strip() if sys.stdin.isatty() else "")


def _case_request(args: argparse.Namespace, request: str, given: dict[str, Any]) -> Any:
    """Call a case request on a person's credentials: (result, None) or (None, exit code)."""
    dock = service_from(args)
    who = _who(args)
    name = f"case {args.action}"
    if not who:
        return None, fail(name, "needs --officer ID (the PIN is asked for)", EXIT_USAGE)
    given = {**given, "officer": who, "pin": pin(args.pin, f"PIN for {who}: ")}
    try:
        return call(dock, args, request, given), None
    except Refused as exc:
        return None, fail(name, f"refused: {exc}", EXIT_REFUSED)
    except RequestError as exc:
        return None, fail("case", exc, EXIT_USAGE)


def _file_line(f: dict[str, Any]) -> str:
    state = "open" if f["closed_at"] is None else "closed"
    return (f"case {shown(f['case_number'])}: {state}; cause: {shown(f['cause'] or '-')}; "
            f"party: {shown(f['party'] or '-')}")  # fmt: skip


def cmd_open(args: argparse.Namespace) -> int:
    given = {"case": args.case, "cause": args.cause, "party": args.party}
    found, code = _case_request(args, "case.open", given)
    if code is not None:
        return int(code)
    output(args, found, [_file_line(found)])
    return 0


def cmd_close(args: argparse.Namespace) -> int:
    found, code = _case_request(args, "case.close", {"case": args.case})
    if code is not None:
        return int(code)
    output(args, found, [_file_line(found) + " (its footage follows retention again)"])
    return 0


def cmd_episode(args: argparse.Namespace) -> int:
    done, code = _case_request(args, "case.episode", {"case": args.case})
    if code is not None:
        return int(code)
    line = (f"recorder {shown(done['serial'])}: its footage will be filed under case "
            f"{shown(done['case'])} as it is offloaded")  # fmt: skip
    output(args, done, [line])
    return 0


def cmd_party(args: argparse.Namespace) -> int:
    dock = service_from(args)
    try:
        found = cases.party(dock, args.party)
    except RequestError as exc:
        return fail("case party", exc, EXIT_USAGE)
    lines = [f"party {shown(args.party)}: {len(found['cases'])} case(s), "
             f"{len(found['recordings'])} recording(s), "
             f"{len(found['explanations'])} explanation item(s)"]  # fmt: skip
    lines += ["  " + _file_line(f) for f in found["cases"]]
    lines += [f"  {shown(r['case_number'])}  {shown(r['serial'])}/{shown(r['recording_id'])}  "
              f"{shown(r['officer_id'])}  {shown(r['path'], 300)}"
              for r in found["recordings"]]  # fmt: skip
    lines += [f"  explanation #{i['id']}  {shown(i['serial'])}  {shown(i['officer_id'])}  "
              f"{shown(i['kind'])}: {shown(i['reason'], 200)}"
              for i in found["explanations"]]  # fmt: skip
    output(args, found, lines)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    return _show(service_from(args), args)


def _show(dock: Any, args: argparse.Namespace) -> int:
    rows = cases.recordings(dock, args.case)
    lines = [f"case {shown(args.case)}: {len(rows)} recording(s)"]
    found = dock.store.case_file(args.case.strip())
    if found is not None:
        lines.append("  " + _file_line(found))
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
    op = add_parser(cas, "open", help="open or reopen a case's file: its footage is kept")
    op.add_argument("case")
    op.add_argument("--cause", help="the cause of the case (案由), named in archived files")
    op.add_argument("--party", help="the party subject to enforcement (执法对象)")
    op.add_argument("--officer", help="an officer or supervisor")
    op.add_argument("--pin", help="their PIN (asked when omitted)")
    add_json(op)
    op.set_defaults(func=cmd_open, request="case.open")
    cl = add_parser(cas, "close", help="close a case: its footage follows retention again")
    cl.add_argument("case")
    cl.add_argument("--officer", help="a supervisor")
    cl.add_argument("--pin", help="their PIN (asked when omitted)")
    add_json(cl)
    cl.set_defaults(func=cmd_close, request="case.close")
    ep = add_parser(cas, "episode", help="file the recorder you carry now under a case")
    ep.add_argument("case")
    ep.add_argument("--officer", help="the officer carrying the recorder")
    ep.add_argument("--pin", help="their PIN (asked when omitted)")
    add_json(ep)
    ep.set_defaults(func=cmd_episode, request="case.episode")
    pa = add_parser(cas, "party", help="everything kept of one party, across its cases")
    pa.add_argument("party")
    add_json(pa)
    pa.set_defaults(func=cmd_party)

    cc = add_parser(sub, "confirm-copy", help="a second copy exists: the recorder may now erase it")
    cc.add_argument("serial")
    cc.add_argument("recording")
    cc.add_argument("--where", required=True, help="where the second copy is kept")
    add_json(cc)
    cc.set_defaults(func=cmd_confirm_copy, request="archive.confirm_copy")
