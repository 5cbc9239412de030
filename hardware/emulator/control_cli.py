"""``recorder-emulator control``: what a wearer does with the recorders of a running
``dock run --emulate`` (take one out of its bay, film, put it back), through the fleet's
control socket (hardware/emulator/control.py)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from hardware.emulator.control import ControlError, ask
from hardware.emulator.links import control_path

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recorder-emulator control",
        description="Commands to the recorders of a running `dock run --emulate`.",
    )
    p.add_argument(
        "--socket",
        default=os.environ.get("EMULATOR_CONTROL"),
        help="the fleet's control socket, or the emulated dock's state directory "
        "(default: $EMULATOR_CONTROL)",
    )
    p.add_argument("--json", action="store_true", help="print the reply as JSON")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="every bay: which recorder, in or out, recordings")
    out = sub.add_parser("undock", help="take the recorder out of its bay (its link goes)")
    out.add_argument("slot")
    back = sub.add_parser("dock", help="put the recorder back in its bay (its link returns)")
    back.add_argument("slot")
    rec = sub.add_parser("record", help="the recorder, out of its bay, films SECONDS")
    rec.add_argument("slot")
    rec.add_argument("seconds", type=int)
    return p


def socket_path(given: str) -> str:
    """The control socket named by ``given``: the socket, or a state directory."""
    if os.path.isdir(given):
        inside = os.path.join(given, "recorders")
        return control_path(inside if os.path.isdir(inside) else given)
    return given


def describe(reply: dict[str, Any]) -> str:
    """A reply in plain words."""
    if "bays" in reply:
        return "\n".join(_bay_line(b) for b in reply["bays"])
    if "recording" in reply:
        return (
            f"slot {reply['slot']}: {reply['serial']} filmed {reply['recording']} "
            f"({reply['seconds']} s, {reply['bytes']} bytes, sha256 {reply['sha256']})"
        )
    return _bay_line(reply)


def _bay_line(b: dict[str, Any]) -> str:
    where = "in its bay" if b["docked"] else "out of its bay"
    officer = f", assigned to {b['officer']}" if b.get("officer") else ""
    return (
        f"slot {b['slot']}: {b['serial']} {where}{officer}, {b['recordings']} recording(s), "
        f"battery {b['battery_percent']} %"
    )


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if not a.socket:
        print("recorder-emulator control: give --socket (or set EMULATOR_CONTROL)",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    request: dict[str, Any] = {"command": a.command}
    if a.command != "status":
        request["slot"] = a.slot
    if a.command == "record":
        request["seconds"] = a.seconds
    try:
        reply = ask(socket_path(a.socket), request)
    except ControlError as exc:
        print(f"recorder-emulator control: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if not reply.get("ok"):
        print(f"recorder-emulator control: {reply.get('error')}", file=sys.stderr)
        return EXIT_REFUSED
    print(json.dumps(reply, ensure_ascii=False, indent=2) if a.json else describe(reply))
    return 0
