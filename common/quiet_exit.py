"""A command whose reader went away (``dock status | head``) exits as standard tools do:
quietly, with the status a shell reports for SIGPIPE. Shared by ``dock`` and ``dock-hq``."""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable

#: 128 + 13: what a shell reports for a tool that SIGPIPE ended, said without a word.
EXIT_BROKEN_PIPE = 141


def stdout_gone() -> bool:
    """Whether standard output is a pipe or socket whose reader has gone."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _fd, ev in poller.poll(0))
    except (OSError, ValueError):
        return False


def run_quietly_on_broken_pipe(command: Callable[[], int]) -> int:
    """``command()``'s exit status; EXIT_BROKEN_PIPE, nothing said, when standard output's
    reader went away. A BrokenPipeError of anything else (a recorder's link) is not hidden."""
    try:
        try:
            return command()
        finally:
            sys.stdout.flush()  # here, not at exit, where the error could not be handled
    except BrokenPipeError:
        if not stdout_gone():
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the final flush at exit goes nowhere
        os.close(devnull)
        return EXIT_BROKEN_PIPE
