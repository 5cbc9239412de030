"""``dock-hq``: the headquarters fleet monitor and the commands to read and steer it.

    dock-hq run       the daemon (subscribes, stores, raises alerts)
    dock-hq fleet     every dock now            dock-hq alerts   open alerts (--all: also closed)
    dock-hq ack ID    acknowledge an alert      dock-hq command  a signed command to one dock
    dock-hq keygen    a new signing key; prints the public key for the docks' configuration
    dock-hq checkpoint SITE DOCK   the newest audit checkpoint accepted from a dock, for
                      ``dock audit verify --against`` (--forget: the dock starts a new log)

The read commands open the database while ``run`` writes it (SQLite WAL). Exit status:
0 ok, 1 refused (a dock's negative reply, an unknown alert), 2 bad usage or settings,
3 no answer (broker or dock), 141 standard output went away (``dock-hq alerts | head``),
said without a word as standard tools do.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from common.jsonlog import setup_logging
from hq import config
from hq.alerts import AlertKind
from hq.commands import CommandError, SigningKeyError, generate_key, load_key, send_and_wait
from hq.commands import sign_command as _sign
from hq.store import Store
from mqtt_contract import contract

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NO_ANSWER = 0, 1, 2, 3
STATS_LOG_INTERVAL_S = 60.0
TABLE_WIDTH = 80
# ---------------------------------------------------------------------- parser


def _add_settings(parser: argparse.ArgumentParser, settings: Sequence[config.Setting]) -> None:
    for s in settings:
        default = "" if s.default is None else f" (default {s.default})"
        text = (s.help + default).replace("%", "%%")  # argparse formats help with %
        parser.add_argument(*s.options, dest=s.name, type=s.type, default=None, help=text)


def _common() -> argparse.ArgumentParser:
    """The options every command that reads settings takes (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        default=os.environ.get(config.CONFIG_ENV),
        help=f"TOML file whose keys mirror the options (default ${config.CONFIG_ENV})",
    )
    return common


def _register_run(sub: Any, common: argparse.ArgumentParser) -> None:
    run = sub.add_parser("run", parents=[common], help="the monitor daemon")
    _add_settings(run, (*config.BROKER, *config.DATABASE, *config.MONITOR))
    run.set_defaults(func=_run)


def _register_fleet(sub: Any, common: argparse.ArgumentParser) -> None:
    fleet = sub.add_parser("fleet", parents=[common], help="every dock now")
    _add_settings(fleet, config.DATABASE)
    fleet.add_argument("--json", action="store_true")
    fleet.set_defaults(func=_fleet)


def _register_alerts(sub: Any, common: argparse.ArgumentParser) -> None:
    alerts = sub.add_parser("alerts", parents=[common], help="open alerts")
    _add_settings(alerts, config.DATABASE)
    alerts.add_argument("--all", action="store_true", help="closed ones too")
    alerts.add_argument("--json", action="store_true")
    alerts.set_defaults(func=_alerts)


def _register_ack(sub: Any, common: argparse.ArgumentParser) -> None:
    ack = sub.add_parser("ack", parents=[common], help="acknowledge an alert")
    _add_settings(ack, config.DATABASE)
    ack.add_argument("alert_id", type=int)
    ack.add_argument("--by", required=True, help="who acknowledges it")
    ack.set_defaults(func=_ack)


def _register_command(sub: Any, common: argparse.ArgumentParser) -> None:
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
    _add_settings(cmd, (*config.BROKER, *config.DATABASE))
    cmd.set_defaults(func=_command)


def _register_checkpoint(sub: Any, common: argparse.ArgumentParser) -> None:
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
    _add_settings(cp, config.DATABASE)
    cp.set_defaults(func=_checkpoint)


def _register_keygen(sub: Any, _common: argparse.ArgumentParser) -> None:
    keygen = sub.add_parser("keygen", help="a new command signing key")
    keygen.add_argument("--out", required=True, help="private key file to create (0600)")
    keygen.set_defaults(func=_keygen)


def build_parser() -> argparse.ArgumentParser:
    """Every command, each registered by its own function (listed once in COMMANDS)."""
    parser = argparse.ArgumentParser(prog="dock-hq", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    common = _common()
    for register in COMMANDS:
        register(sub, common)
    return parser


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    file = config.load_file(args.config) if getattr(args, "config", None) else {}
    return config.merge(vars(args), file)


#: Exit status when standard output's reader went away (``dock-hq alerts | head``): what
#: a shell reports for a tool that SIGPIPE ended, 128 + 13, said without a word.
EXIT_BROKEN_PIPE = 141


def _stdout_gone() -> bool:
    """Whether standard output is a pipe or socket whose reader has gone."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _fd, ev in poller.poll(0))
    except (OSError, ValueError):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """``dock-hq``; exits quietly (EXIT_BROKEN_PIPE) when its reader goes away, as
    standard tools do (``hq`` may not import ``dock``: these lines are its own)."""
    try:
        try:
            code = _main(argv)
        finally:
            sys.stdout.flush()  # here, not at exit, where the error could not be handled
    except BrokenPipeError:
        if not _stdout_gone():
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the final flush at exit goes nowhere
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    return code


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
        setup_logging(settings["log_level"])
        code: int = args.func(args, settings)
        return code
    except (config.ConfigError, SigningKeyError, contract.ContractError) as exc:
        print(f"dock-hq: {exc}", file=sys.stderr)
        return EXIT_USAGE


# ---------------------------------------------------------------------- run


def _run(_args: argparse.Namespace, settings: dict[str, Any]) -> int:
    from hq.monitor import Monitor  # paho threads only for the daemon

    key = load_key(settings["signing_key"]) if settings["signing_key"] else None
    db_dir = os.path.dirname(os.path.abspath(settings["db"]))
    if not os.path.isdir(db_dir):
        raise config.ConfigError(f"db {settings['db']}: directory {db_dir} does not exist")
    monitor = Monitor(
        settings["db"],
        config.BrokerSettings.from_settings(settings),
        name=settings["name"],
        thresholds=config.thresholds(settings),
        signing_key=key,
        session_expiry_s=settings["session_expiry"],
    )
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    monitor.start()
    log = logging.getLogger("hq.cli")
    while not done.wait(STATS_LOG_INTERVAL_S):
        stats = monitor.stats()
        log.info("stats", extra={"stats": stats})
    monitor.stop()
    return EXIT_OK


# ---------------------------------------------------------------------- read commands


def _open_store(settings: dict[str, Any]) -> Store:
    path = settings["db"]
    if not os.path.exists(path):
        raise config.ConfigError(f"db {path}: no such file (has dock-hq run started?)")
    return Store(path)


def _local(t: float | None) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(t)) if t else "-"


def _cut(text: Any, width: int) -> str:
    text = "-" if text is None or text == "" else str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(headers: Sequence[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _fleet(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    store = _open_store(settings)
    try:
        docks = store.fleet()
    finally:
        store.close()
    if args.json:
        print(json.dumps(docks, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not docks:
        print("no docks heard of yet")
        return EXIT_OK
    rows = []
    for d in docks:
        total = len(d["slot_ids"]) or len(d["slots"])
        docked = sum(1 for s in d["slots"] if s["serial"])
        faults = sum(
            1
            for s in d["slots"]
            if s["state"] in (contract.SlotState.FAULT, contract.SlotState.FAILED_CHECK)
        )
        rows.append(
            [
                d["site"],
                d["dock"],
                _cut(d["state"], 7),
                _local(d["last_seen_at"]),
                _cut(d["software"], 8),
                f"{docked}/{total}" + (f" {faults}!" if faults else ""),
                str(d["open_alerts"].get(AlertKind.BATTERY_HEALTH.value, 0)),
                _cut(d["outbox_pending"], 7),
                str(sum(d["open_alerts"].values())),
            ]
        )
    headers = ["SITE", "DOCK", "STATE", "LAST SEEN", "SW", "SLOTS", "LOW", "OUTBOX", "ALERTS"]
    _fit_ids(headers, rows, (0, 1))
    print(_table(headers, rows))
    print("SLOTS docked/total (n! faulty or failing checks)  LOW battery health below bound")
    return EXIT_OK


def _fit_ids(headers: list[str], rows: list[list[str]], columns: tuple[int, ...]) -> None:
    """Shorten the id columns, only as far as needed, so that a row fits 80 columns."""

    def width(i: int) -> int:
        return max(len(headers[i]), *(len(r[i]) for r in rows))

    other = sum(width(i) for i in range(len(headers)) if i not in columns)
    budget = TABLE_WIDTH - other - 2 * (len(headers) - 1)
    natural = {i: width(i) for i in columns}
    if sum(natural.values()) <= budget:
        return
    small = {i: w for i, w in natural.items() if w <= budget // len(columns)}
    share = max(6, (budget - sum(small.values())) // max(1, len(columns) - len(small)))
    for row in rows:
        for i in columns:
            if i not in small:
                row[i] = _cut(row[i], share)


def _alerts(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    store = _open_store(settings)
    try:
        found = store.alerts(include_closed=args.all)
    finally:
        store.close()
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not found:
        print("no alerts" if args.all else "no open alerts")
        return EXIT_OK
    rows, details = [], []
    for a in found:
        status = "closed" if a["closed_at"] else ("acked" if a["acked_by"] else "open")
        rows.append(
            [
                str(a["id"]),
                _local(a["opened_at"]),
                a["site"],
                a["dock"],
                a["kind"],
                status + (f" x{a['count']}" if a["count"] > 1 else ""),
            ]
        )
        acked = f" (ack: {a['acked_by']})" if a["acked_by"] else ""
        subject = f"{a['subject']}: " if a["subject"] else ""
        details.append(_cut(f"    {subject}{a['detail']}{acked}", TABLE_WIDTH))
    headers = ["ID", "OPENED", "SITE", "DOCK", "KIND", "STATUS"]
    _fit_ids(headers, rows, (2, 3))
    table = _table(headers, rows).split("\n")
    print(table[0])
    for line, detail in zip(table[1:], details, strict=True):
        print(line)
        print(detail)
    return EXIT_OK


def _ack(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    store = _open_store(settings)
    try:
        result = store.ack(args.alert_id, args.by, time.time())
    finally:
        store.close()
    if result == "unknown":
        print(f"dock-hq: no alert {args.alert_id}", file=sys.stderr)
        return EXIT_REFUSED
    print(
        f"alert {args.alert_id}: {'acknowledged' if result == 'acked' else 'acknowledged already'}"
    )
    return EXIT_OK


def _checkpoint(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    contract.check_id("site", args.site)
    contract.check_id("dock", args.dock)
    if args.forget and not args.by:
        raise config.ConfigError("--forget needs --by NAME (who decides it)")
    store = _open_store(settings)
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


# ---------------------------------------------------------------------- command, keygen


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


def _keygen(args: argparse.Namespace, _settings: dict[str, Any]) -> int:
    public = generate_key(args.out)
    print(public)
    print(
        f"private key written to {args.out} (mode 0600); add the line above to each dock's "
        "[mqtt] hq_public_keys",
        file=sys.stderr,
    )
    return EXIT_OK


#: Every ``dock-hq`` command's registration, in the order ``--help`` lists them.
COMMANDS: tuple[Callable[[Any, argparse.ArgumentParser], None], ...] = (
    _register_run,
    _register_fleet,
    _register_alerts,
    _register_ack,
    _register_command,
    _register_checkpoint,
    _register_keygen,
)


if __name__ == "__main__":
    sys.exit(main())
