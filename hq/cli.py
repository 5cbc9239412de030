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

This module parses and dispatches; each area's commands register themselves from
``cli_fleet`` (fleet, alerts, ack) and ``cli_commands`` (command, checkpoint, keygen).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from common.logsetup import LogFormatError, error_line, setup_logging
from common.privileges import HQ_USER, drop_or_exit, service_user
from common.quiet_exit import run_quietly_on_broken_pipe
from common.sqlite_schema import SchemaError
from hq import config
from hq.cli_commands import register_checkpoint, register_command, register_keygen
from hq.cli_common import EXIT_NO_ANSWER, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, add_settings
from hq.cli_fleet import register_ack, register_alerts, register_fleet
from hq.commands import SigningKeyError, load_key
from mqtt_contract import contract

__all__ = ["EXIT_NO_ANSWER", "EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "build_parser", "main"]

STATS_LOG_INTERVAL_S = 60.0
# ---------------------------------------------------------------------- parser


def _common() -> argparse.ArgumentParser:
    """The options every command that reads settings takes (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        default=os.environ.get(config.CONFIG_ENV),
        help=f"TOML file whose keys mirror the options (default ${config.CONFIG_ENV})",
    )
    return common


def register_run(sub: Any, common: argparse.ArgumentParser) -> None:
    run = sub.add_parser("run", parents=[common], help="the monitor daemon")
    add_settings(run, (*config.BROKER, *config.DATABASE, *config.MONITOR))
    run.set_defaults(func=_run)


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


def main(argv: Sequence[str] | None = None) -> int:
    """``dock-hq``; exits quietly (EXIT_BROKEN_PIPE) when its reader goes away."""
    return run_quietly_on_broken_pipe(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    # Root becomes dock-hq before anything opens a file (common/privileges.py).
    drop_or_exit("dock-hq", service_user(*HQ_USER), EXIT_USAGE)
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
        setup_logging(settings["log_level"], settings["log_format"])
        code: int = args.func(args, settings)
        return code
    except (config.ConfigError, SigningKeyError, contract.ContractError, LogFormatError) as exc:
        print(error_line(f"dock-hq: {exc}", "dock-hq"), file=sys.stderr)
        return EXIT_USAGE
    except SchemaError as exc:  # the fleet database is of a newer release, or not ours
        print(error_line(f"dock-hq: {exc}", "dock-hq"), file=sys.stderr)
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


#: Every ``dock-hq`` command's registration, in the order ``--help`` lists them.
COMMANDS: tuple[Callable[[Any, argparse.ArgumentParser], None], ...] = (
    register_run,
    register_fleet,
    register_alerts,
    register_ack,
    register_command,
    register_checkpoint,
    register_keygen,
)


if __name__ == "__main__":
    sys.exit(main())
