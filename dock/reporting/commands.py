"""Commands from headquarters: who may send them, and what they do.

A command is obeyed only when it is signed by a key the dock's configuration lists, is
fresh, and was not seen before; the broker's ACL is a second fence, not the only one.
Every command that reaches the dock, obeyed or refused, is audited (and so reported).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mqtt_contract.contract import (
    COMMAND_MAX_AGE_S,
    Command,
    ContractError,
    parse_utc,
    signing_bytes,
)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str = ""
    result: dict[str, Any] | None = None


def signed_by_any(command: dict[str, Any], keys: list[bytes]) -> bool:
    try:
        signature = base64.b64decode(command["sig"], validate=True)
        message = signing_bytes(command)
    except (binascii.Error, ValueError):  # UnicodeEncodeError (a lone surrogate) is one
        return False
    for key in keys:
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


def refusal(command: dict[str, Any], keys: list[bytes], now: float) -> str | None:
    """Why this command may not be obeyed (before the replay check), or None."""
    if not keys or not signed_by_any(command, keys):
        return "unauthorised"
    try:
        issued = parse_utc(command["issued"])
    except ContractError:
        return "bad arguments"
    if abs(now - issued) > COMMAND_MAX_AGE_S:
        return "stale"
    return None


def arguments(command: dict[str, Any]) -> dict[str, Any] | None:
    """The command's arguments with the types the contract gives, or None."""
    args = command.get("args", {})
    kind = Command(command["command"])
    note = args.get("note", "")
    if not isinstance(note, str):
        return None
    if kind is Command.STATUS:
        return {}
    if kind in (Command.FLAG, Command.LOST):
        serial = args.get("serial")
        if not isinstance(serial, str) or not serial:
            return None
        if kind is Command.LOST:
            return {"serial": serial, "note": note}
        maintenance = args.get("maintenance")
        if not isinstance(maintenance, bool):
            return None
        return {"serial": serial, "maintenance": maintenance, "note": note}
    boot, lo, hi = args.get("boot"), args.get("from_seq"), args.get("to_seq")
    if not isinstance(boot, str) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (lo, hi)
    ):
        return None
    if hi < lo or hi - lo > 1_000_000:
        return None
    return {"boot": boot, "from_seq": lo, "to_seq": hi}


#: The commands that change the dock, and the request (``dock.services.requests``) each
#: goes through: the same rule, audit entry and transaction as ``dock device flag``.
#: The others (status, resend) only touch reporting itself.
REQUESTS: dict[Command, str] = {Command.FLAG: "device.flag", Command.LOST: "device.flag"}


def request_arguments(kind: Command, args: dict[str, Any]) -> dict[str, Any]:
    """A changing command's checked ``arguments`` as its request's arguments."""
    if kind is Command.LOST:
        return {"serial": args["serial"], "lost": True, "note": args["note"]}
    if kind is Command.FLAG:
        return {"serial": args["serial"], "maintenance": args["maintenance"], "note": args["note"]}
    raise ValueError(f"command {kind.value} is not a request")
