"""``dock officer add|list|disable|enable|unlock``: thin over ``dock.services.officers``."""

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
from dock.domain.roles import ROLES
from dock.services import officers
from dock.services.errors import Refused, RequestError
from dock.support.text import shown


def cmd_add(args: argparse.Namespace) -> int:
    dock = service_from(args)
    given = {
        "officer_id": args.id,
        "name": args.name,
        "unit": args.unit,
        "badge": args.badge,
        "supervisor": args.supervisor,
        "role": args.role,
        "pin": pin(args.pin, f"PIN for {args.id}: "),
    }
    try:
        result = call(dock, args, "officer.add", given)
    except RequestError as exc:
        return fail("officer", exc, EXIT_USAGE)
    output(args, result, [f"officer {shown(args.id)} added"])
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    dock = service_from(args)
    try:
        result = call(dock, args, f"officer.{args.action}", {"officer_id": args.id})
    except RequestError as exc:
        return fail("officer", exc, EXIT_USAGE)
    output(args, result, [f"officer {shown(args.id)} {args.action}d"])
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    dock = service_from(args)
    prompt = f"PIN for supervisor {args.supervisor}: "
    given = {
        "officer_id": args.id,
        "supervisor": args.supervisor,
        "supervisor_pin": pin(args.supervisor_pin, prompt),
    }
    try:
        result = call(dock, args, "officer.unlock", given)
    except RequestError as exc:
        return fail("officer", exc, EXIT_USAGE)
    except Refused as exc:
        return fail("officer unlock", exc, EXIT_REFUSED)
    who, sup = shown(result.officer_id), shown(result.supervisor)
    if result.was_locked:
        line = f"officer {who}: PIN unlocked by supervisor {sup}"
    else:
        line = f"officer {who}: the PIN was not locked (wrong tries forgotten)"
    output(args, result, [line])
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = officers.listing(service_from(args))
    lines = []
    for o in rows:
        flag = " (disabled)" if o.disabled else ""
        flag += " (PIN locked)" if o.pin_locked else ""
        lines.append(
            f"{shown(o.officer_id):<10} {shown(o.name):<16} {shown(o.unit):<16} {o.role}{flag}"
        )
    output(args, rows, lines)
    return 0


def register(sub: Any) -> None:
    of = add_parser(sub, "officer", help="add, list, disable or enable officers")
    ofs = of.add_subparsers(dest="action", required=True)
    add = add_parser(ofs, "add", help="register an officer (or --supervisor) with a PIN")
    add.add_argument("id")
    add.add_argument("--name", required=True)
    add.add_argument("--unit", required=True)
    add.add_argument("--badge")
    add.add_argument("--pin", help="prompted for when omitted")
    add.add_argument("--supervisor", action="store_true", help="the same as --role supervisor")
    add.add_argument(
        "--role",
        choices=ROLES,
        help="officer (default), supervisor, maintenance, admin, keeper or oversight",
    )
    add_json(add)
    add.set_defaults(func=cmd_add, request="officer.add")
    lst = add_parser(ofs, "list", help="officers, their role and whether their PIN is locked")
    add_json(lst)
    lst.set_defaults(func=cmd_list)
    for name in ("disable", "enable"):
        p = add_parser(ofs, name, help=f"{name} an officer")
        p.add_argument("id")
        add_json(p)
        p.set_defaults(func=cmd_disable, request=f"officer.{name}")
    ul = add_parser(ofs, "unlock", help="unlock a PIN locked after wrong tries (a supervisor)")
    ul.add_argument("id", help="the officer whose PIN is locked")
    ul.add_argument("--supervisor", required=True, help="supervisor number")
    ul.add_argument("--supervisor-pin", help="prompted for when omitted")
    add_json(ul)
    ul.set_defaults(func=cmd_unlock, request="officer.unlock")
