"""``dock``: the dock's command line. Each area's module registers its subcommands
(``register(subparsers)``), thin over ``dock.services``; they are listed once here."""

from __future__ import annotations

import argparse
import os
import sys

from dock.cli import (
    access,
    archive,
    audit,
    cases,
    custody,
    devices,
    gaps,
    officers,
    reporting,
    retention,
    run,
)
from dock.cli.common import GLOBAL, fill_global_defaults
from dock.support.logs import setup_logging

#: Every module with subcommands, in the order ``dock --help`` lists them.
MODULES = (run, custody, officers, devices, cases, audit, archive, gaps, retention, access,
           reporting)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; the global options go before or after the subcommand."""
    p = argparse.ArgumentParser(prog="dock", description="Body-worn camera dock", parents=[GLOBAL])
    sub = p.add_subparsers(dest="command", required=True)
    for module in MODULES:
        module.register(sub)
    return p


#: Exit status when standard output's reader went away (``dock ... | head``): what a
#: shell reports for a tool that SIGPIPE ended, 128 + 13, said without a word.
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


def _quiet_exit() -> int:
    """Standard output is gone: drop what is left in its buffer, say nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the final flush at exit finds somewhere to go
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def main(argv: list[str] | None = None) -> int:
    """``dock``; exits quietly (EXIT_BROKEN_PIPE) when its reader goes away, as standard
    tools do. A BrokenPipeError of anything else (a recorder's link) is not hidden."""
    try:
        try:
            args = fill_global_defaults(build_parser().parse_args(argv))
            setup_logging(args.log_level)
            code = args.func(args)
        finally:
            sys.stdout.flush()  # here, not at exit, where the error could not be handled
    except BrokenPipeError:
        if not _stdout_gone():
            raise
        return _quiet_exit()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
