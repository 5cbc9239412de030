"""``dock-hq command``, ``checkpoint`` and ``keygen``: what headquarters sends to one dock
(signed commands and the key that signs them) and the audit checkpoint it holds of one."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from typing import Any

from hq import config
from hq.cli_common import EXIT_NO_ANSWER, EXIT_OK, EXIT_REFUSED, add_settings, open_store
from hq.commands import CommandError, generate_key, load_key, send_and_wait
from hq.commands import sign_command as _sign
from hq.store import Store
from mqtt_contract import contract


def register_command(sub: Any, common: argparse.ArgumentParser) -> None:
    cmd = sub.add_parser("command", parents=[common], help="a signed command to one dock")
    cmd.add_argument("site")
    cmd.add_argument("dock")
    cmd.add_argument("command", choices=[c.value for c in contract.Command])
    cmd.add_argument("--key", "--signing-key", dest="signing_key", help="Ed25519 key (PEM)")
    cmd.add_argument("--by", default=None, help="who gives the command (default: login name)")
    cmd.add_argument("--serial", help="flag, lost: the device")
    cmd.add_argument("--maintenance", action=argparse.BooleanOptionalAction, default=None)
    cmd.add_argument("--note", default="", help="flag, lost: why")
    cmd.add_argument("--boot", help="resend: the boot id")
    cmd.add_argument("--from-seq", type=int, help="resend: first seq")
    cmd.add_argument("--to-seq", type=int, help="resend: last seq")
    cmd.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the reply")
    cmd.add_argument("--json", action="store_true")
    add_settings(cmd, (*config.BROKER, *config.DATABASE))
    cmd.set_defaults(func=_command)


def register_checkpoint(sub: Any, common: argparse.ArgumentParser) -> None:
    cp = sub.add_parser(
        "checkpoint",
        parents=[common],
        help="the newest audit checkpoint accepted from a dock, as a checkpoint file",
        description="Prints the checkpoint file for `dock audit verify --against FILE` on "
        "the dock. --forget: the dock starts a new audit log (reinstalled, new key); what "
        "was held is kept, marked forgotten, and no longer judged against.",
    )
    cp.add_argument("site")
    cp.add_argument("dock")
    cp.add_argument("--forget", action="store_true", help="start over with this dock's log")
    cp.add_argument("--by", help="with --forget: who decides it")
    add_settings(cp, config.DATABASE)
    cp.set_defaults(func=_checkpoint)


def register_keygen(sub: Any, _common: argparse.ArgumentParser) -> None:
    keygen = sub.add_parser("keygen", help="a new command signing key")
    keygen.add_argument("--out", required=True, help="private key file to create (0600)")
    keygen.set_defaults(func=_keygen)


def _command_args(args: argparse.Namespace) -> dict[str, Any]:
    name = contract.Command(args.command)
    if name is contract.Command.STATUS:
        return {}
    if name in (contract.Command.FLAG, contract.Command.LOST):
        if not args.serial:
            raise config.ConfigError(f"{name.value} needs --serial")
        if name is contract.Command.LOST:
            return {"serial": args.serial, "note": args.note}
        if args.maintenance is None:
            raise config.ConfigError("flag needs --maintenance or --no-maintenance")
        return {"serial": args.serial, "maintenance": args.maintenance, "note": args.note}
    if not args.boot or args.from_seq is None or args.to_seq is None:
        raise config.ConfigError("resend needs --boot, --from-seq and --to-seq")
    if not 1 <= args.from_seq <= args.to_seq:
        raise config.ConfigError("resend needs 1 <= --from-seq <= --to-seq")
    return {"boot": args.boot, "from_seq": args.from_seq, "to_seq": args.to_seq}


def _command(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    contract.check_id("site", args.site)
    contract.check_id("dock", args.dock)
    if not settings["signing_key"]:
        raise config.ConfigError("command needs --key (or signing_key in the config file)")
    key = load_key(settings["signing_key"])
    command = _sign(
        key,
        args.command,
        _command_args(args),
        args.by or getpass.getuser(),
        site=args.site,
        dock=args.dock,
        now=time.time(),
    )
    if os.path.exists(settings["db"]):  # the register of commands, beside the monitor's
        store = Store(settings["db"])
        try:
            with store.transaction():
                store.record_command(args.site, args.dock, command, time.time())
        finally:
            store.close()
    broker = config.BrokerSettings.from_settings(settings)
    try:
        reply = send_and_wait(
            broker, settings["name"], args.site, args.dock, command, timeout_s=args.timeout
        )
    except CommandError as exc:
        print(f"dock-hq: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER
    if args.json:
        print(json.dumps({"command": command, "reply": reply}, indent=2, ensure_ascii=False))
    elif reply is None:
        print(f"command {command['id']}: no reply within {args.timeout:g} s")
    elif reply["ok"]:
        print(f"command {command['id']}: done")
    else:
        print(f"command {command['id']}: refused ({reply.get('error', '?')})")
    if reply is None:
        return EXIT_NO_ANSWER
    return EXIT_OK if reply["ok"] else EXIT_REFUSED


def _checkpoint(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    contract.check_id("site", args.site)
    contract.check_id("dock", args.dock)
    if args.forget and not args.by:
        raise config.ConfigError("--forget needs --by NAME (who decides it)")
    store = open_store(settings)
    try:
        if args.forget:
            n = store.forget_checkpoints(args.site, args.dock, args.by, time.time())
            print(f"{n} checkpoint(s) of {args.site}/{args.dock} forgotten by {args.by}")
            return EXIT_OK
        found = store.last_checkpoint(args.site, args.dock)
    finally:
        store.close()
    if found is None:
        print(f"dock-hq: no signed audit checkpoint from {args.site}/{args.dock}", file=sys.stderr)
        return EXIT_REFUSED
    body = {
        "format": contract.CHECKPOINT_FILE_FORMAT,
        "site": args.site,
        "dock": args.dock,
        "seq": found["seq"],
        "head": found["head"],
        "time": found["time"],
        "public_key": found["public_key"],
        "signature": found["signature"],
        "fingerprint": contract.key_fingerprint(bytes.fromhex(found["public_key"])),
        "received": contract.utc(found["received_at"]),
    }
    print(json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")))
    return EXIT_OK


def _keygen(args: argparse.Namespace, _settings: dict[str, Any]) -> int:
    public = generate_key(args.out)
    print(public)
    print(
        f"private key written to {args.out} (mode 0600); add the line above to each dock's "
        "[mqtt] hq_public_keys",
        file=sys.stderr,
    )
    return EXIT_OK
