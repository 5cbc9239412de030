"""``dock replication``: sealed packages on their way to central storage, per target
(replicated, pending, sending x %, failed and why), and ``retry``."""

from __future__ import annotations

import argparse
from typing import Any

from dock.cli.common import EXIT_USAGE, add_json, add_parser, call, fail, output, service_from
from dock.services import replication
from dock.services.errors import RequestError
from dock.support.text import shown


def _line(r: dict[str, Any]) -> str:
    state = r["state"]
    if state == "sending":
        state = f"sending {r['percent']} %"
    elif state == "failed":
        state = f"failed ({shown(r['reason'] or '', 200)}; again at {r['next_try_utc']})"
    elif state == "replicated":
        state = f"replicated {r['verified_utc']}"
    urgent = " urgent" if r["urgent"] else ""
    return f"  {shown(r['package'], 200)}  -> {shown(r['target'])}: {state}{urgent}"


def cmd_list(args: argparse.Namespace) -> int:
    rows = replication.rows(service_from(args))
    open_ = sum(r["state"] not in ("replicated", "superseded") for r in rows)
    lines = [f"{len(rows)} package(s) x target(s), {open_} not yet replicated"]
    lines += [_line(r) for r in rows]
    output(args, rows, lines)
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    given: dict[str, Any] = {"all_failed": bool(args.all_failed)}
    if args.package:
        given["package"] = args.package
    try:
        result = call(service_from(args), args, "replication.retry", given)
    except RequestError as exc:
        return fail("replication retry", exc, EXIT_USAGE)
    output(args, result, [f"{result['retried']} failed package(s) due again now"])
    return 0


def register(sub: Any) -> None:
    rp = add_parser(sub, "replication", help="sealed packages sent to central storage, per target")
    add_json(rp)
    rp.set_defaults(func=cmd_list)
    acts = rp.add_subparsers(dest="action")
    ls = add_parser(acts, "list", help="each package's state per target (the default)")
    add_json(ls)
    ls.set_defaults(func=cmd_list)
    rt = add_parser(acts, "retry", help="failed packages tried again now")
    rt.add_argument("package", nargs="?", help="a package's path or folder name")
    rt.add_argument("--all-failed", action="store_true", help="every failed package")
    add_json(rt)
    rt.set_defaults(func=cmd_retry, request="replication.retry")
