"""What every ``dock`` command shares: exit codes, the global options, building the dock
from the configuration, asking for a PIN, calling a request, and output (human lines,
or JSON with ``--json``; never a Python repr).

What a recorder stated (serial, model, firmware, officer and recording ids, error
messages) is printed through ``dock.support.text.shown`` and JSON through ``json_text``: a
recorder cannot send the terminal an escape sequence.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from dock.config import ConfigError, load_config
from dock.services import requests
from dock.services.results import plain
from dock.support.logs import add_log_format_option, error_line
from dock.support.text import json_text, shown

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_LINK = 3
EXIT_AUTH = 4
#: The state directory (database, audit log, key) cannot be used: full, or not writable.
EXIT_STATE = 5


def default_actor() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


#: The global options' defaults, filled in after parsing: the options themselves default
#: to SUPPRESS so that one given after the subcommand is not overwritten by the default
#: of the same option before it (``dock run --log-level INFO``).
GLOBAL_DEFAULTS: dict[str, Any] = {
    "log_level": "WARNING",
    "log_format": None,
    "config": None,
    "actor": None,
}


def global_options() -> argparse.ArgumentParser:
    """A parent parser with the global options, for the top and every subcommand."""
    p = argparse.ArgumentParser(add_help=False)
    s = argparse.SUPPRESS
    p.add_argument(
        "--log-level", default=s, help="DEBUG, INFO, WARNING (default; `dock run`: INFO), ERROR"
    )
    add_log_format_option(p, s)
    p.add_argument(
        "--config", default=s, help="configuration file (default $DOCK_CONFIG, /etc/dock/dock.toml)"
    )
    p.add_argument("--actor", default=s, help="who is doing this (audited; default: the login)")
    return p


GLOBAL = global_options()


def fill_global_defaults(args: argparse.Namespace) -> argparse.Namespace:
    for name, value in GLOBAL_DEFAULTS.items():
        if name == "log_level":  # a daemon says what it does at INFO (`dock run`)
            value = getattr(args, "default_log_level", value)
        if not hasattr(args, name):
            setattr(args, name, default_actor() if name == "actor" else value)
    return args


def add_parser(sub: Any, name: str, **kw: Any) -> argparse.ArgumentParser:
    """A subcommand that also takes the global options after its name."""
    parents = [GLOBAL, *kw.pop("parents", [])]
    parser: argparse.ArgumentParser = sub.add_parser(name, parents=parents, **kw)
    return parser


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def config_error_text(exc: ConfigError) -> str:
    """A configuration error as shown: one line for one problem, else a list."""
    if len(exc.problems) != 1:
        return str(exc)
    problem = exc.problems[0]
    if exc.path and not problem.startswith(exc.path):
        problem = f"{exc.path}: {problem}"
    return problem


def load_or_exit(args: argparse.Namespace) -> Any:
    """The configuration, or its problems in one line each and EXIT_USAGE."""
    try:
        return load_config(getattr(args, "config", None))
    except ConfigError as exc:
        print(error_line(f"dock: {config_error_text(exc)}", "dock"), file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def service_from(args: argparse.Namespace) -> Any:
    """Load the configuration (clear errors, no traceback) and build the dock."""
    return build_or_exit(load_or_exit(args))


def build_or_exit(cfg: Any) -> Any:
    """build_service, or one line and EXIT_STATE when the state directory is unusable."""
    from dock.daemon.composition import StateDirError, build_service

    try:
        return build_service(cfg)
    except StateDirError as exc:
        print(error_line(f"dock: {exc}", "dock"), file=sys.stderr)
        raise SystemExit(EXIT_STATE) from None


def pin(given: str | None, prompt: str) -> str:
    """A PIN from its option, else read from a terminal without echo, else stdin's line."""
    if given is not None:
        return given
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    return getpass.getpass(prompt)


def ask(given: str | None, prompt: str) -> str | None:
    """A value from its option, or asked for at a terminal; None otherwise."""
    if given:
        return given
    if sys.stdin.isatty():
        return input(prompt).strip() or None
    return None


def call(dock: Any, args: argparse.Namespace, name: str, arguments: Mapping[str, Any]) -> Any:
    """Request ``name`` through the request table, as ``args.actor``. Where the command
    is registered, ``request=`` names the same request (the test of the table reads it)."""
    registered = getattr(args, "request", name)
    if registered != name:
        raise AssertionError(f"registered as request {registered!r}, calls {name!r}")
    actor = getattr(args, "actor", None) or default_actor()
    return requests.call(dock, name, arguments, actor=actor)


def ask_daemon(
    cfg: Any, name: str, arguments: Mapping[str, Any], on_progress: Any = None
) -> dict[str, Any] | None:
    """Request ``name`` of the daemon running for this dock, which owns the recorders
    (docs/CONTROL.md); None when no daemon listens: the command then works on its own.
    DaemonError when the daemon refused or failed: never then done here as well."""
    from dock.services.daemon_link import DaemonLink, DaemonUnavailable, control_socket_path

    link = DaemonLink(control_socket_path(cfg.dock.state_dir))
    try:
        return link.request(name, dict(arguments), on_progress)
    except DaemonUnavailable:
        return None


def daemon_failed(command: str, exc: Any) -> int:
    """A DaemonError as one line, with the exit status the same failure has locally."""
    code = {"bad_request": EXIT_USAGE, "invalid": EXIT_USAGE, "no_slot": EXIT_USAGE,
            "not_permitted": EXIT_REFUSED}.get(exc.code, EXIT_LINK)  # fmt: skip
    return fail(command, exc.message, code)


def fail(command: str, exc: BaseException | str, code: int) -> int:
    """One line on stderr, and the exit status to return."""
    print(error_line(f"dock {command}: {shown(exc, 400)}", "dock"), file=sys.stderr)
    return code


def output(args: argparse.Namespace, result: Any, lines: Iterable[str] = ()) -> None:
    """JSON of ``result`` with ``--json``, else the human ``lines``."""
    if getattr(args, "json", False):
        print(json_text(plain(result), indent=2))
        return
    for line in lines:
        print(line)


def progress_bar(rec_id: str, done: int, total: int) -> None:
    """One line per recording on stderr: redrawn in place on a terminal; elsewhere (a
    pipe, a file, the journal) only the finished line, never a carriage return."""
    width = 30
    filled = width if total == 0 else int(width * done / total)
    pct = 100 if total == 0 else 100 * done // total
    finished = done >= total
    if not finished and not sys.stderr.isatty():
        return
    line = (
        f"  {shown(rec_id, 60):<12} [{'#' * filled}{'.' * (width - filled)}] {pct:3d} %  "
        f"{done / 2**20:8.1f} / {total / 2**20:.1f} MiB"
    )
    if sys.stderr.isatty():
        line = "\r" + line
    print(line, end="\n" if finished else "", file=sys.stderr, flush=True)
