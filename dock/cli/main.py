"""``dock``: the dock's command line. Each area's module registers its subcommands
(``register(subparsers)``), thin over ``dock.services``; they are listed once here."""

from __future__ import annotations

import argparse
import sys

from common.privileges import DOCK_USER, drop_or_exit, service_user
from common.quiet_exit import run_quietly_on_broken_pipe
from common.version import __version__
from dock.cli import (
    access,
    appraisals,
    archive,
    audit,
    cases,
    check,
    custody,
    devices,
    gaps,
    officers,
    replication,
    reporting,
    retention,
    run,
    web_tokens,
)
from dock.cli.common import EXIT_USAGE, GLOBAL, fill_global_defaults
from dock.support.logs import setup_logging

#: Every module with subcommands, in the order ``dock --help`` lists them.
MODULES = (run, check, custody, officers, devices, cases, audit, archive, gaps, retention,
           appraisals, access, replication, reporting, web_tokens)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; the global options go before or after the subcommand."""
    p = argparse.ArgumentParser(prog="dock", description="Body-worn camera dock", parents=[GLOBAL])
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for module in MODULES:
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """``dock``; exits quietly (EXIT_BROKEN_PIPE) when its reader goes away."""

    def command() -> int:
        # Root becomes the dock user before anything opens a file (common/privileges.py).
        drop_or_exit("dock", service_user(*DOCK_USER), EXIT_USAGE)
        args = fill_global_defaults(build_parser().parse_args(argv))
        try:
            setup_logging(args.log_level, args.log_format)
        except ValueError as exc:  # DOCK_LOG_FORMAT or --log-level not known
            print(f"dock: {exc}", file=sys.stderr)
            return EXIT_USAGE
        code: int = args.func(args)
        return code

    return run_quietly_on_broken_pipe(command)


if __name__ == "__main__":
    raise SystemExit(main())
