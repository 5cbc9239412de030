"""``dock web-token add|revoke|list``: API tokens for machines using the web site."""

from __future__ import annotations

import argparse
from typing import Any

from dock.cli.common import EXIT_USAGE, add_json, add_parser, call, fail, output, service_from
from dock.domain.roles import ROLES
from dock.services.errors import RequestError
from dock.support.text import shown


def cmd_add(args: argparse.Namespace) -> int:
    dock = service_from(args)
    try:
        made = call(dock, args, "web_token.add", {"name": args.name, "role": args.role})
    except RequestError as exc:
        return fail("web-token", exc, EXIT_USAGE)
    output(args, made, [
        f"token {shown(made.name)} ({made.role}): {made.token}",
        "shown once: give it to the machine now (Authorization: Bearer TOKEN)",
    ])  # fmt: skip
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    dock = service_from(args)
    try:
        result = call(dock, args, "web_token.revoke", {"name": args.name})
    except RequestError as exc:
        return fail("web-token", exc, EXIT_USAGE)
    output(args, result, [f"token {shown(args.name)} revoked"])
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    dock = service_from(args)
    rows = [
        {"name": n, "role": r, "created_at": c, "revoked": v is not None}
        for n, r, c, v in dock.store.web_tokens()
    ]
    lines = [f"{shown(r['name']):<24} {r['role']:<12} {'revoked' if r['revoked'] else ''}"
             for r in rows]  # fmt: skip
    output(args, rows, lines)
    return 0


def register(sub: Any) -> None:
    wt = add_parser(sub, "web-token", help="API tokens for machines using the web site")
    wts = wt.add_subparsers(dest="action", required=True)
    add = add_parser(wts, "add", help="make a token (printed once; only its hash is kept)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add_json(add)
    add.set_defaults(func=cmd_add, request="web_token.add")
    rv = add_parser(wts, "revoke", help="revoke a token")
    rv.add_argument("name")
    add_json(rv)
    rv.set_defaults(func=cmd_revoke, request="web_token.revoke")
    ls = add_parser(wts, "list", help="tokens, their role and whether revoked")
    add_json(ls)
    ls.set_defaults(func=cmd_list)
