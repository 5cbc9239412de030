"""What every ``dock-hq`` command module shares: exit statuses, settings options, the store."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from hq import config
from hq.store import Store

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NO_ANSWER = 0, 1, 2, 3


def add_settings(parser: argparse.ArgumentParser, settings: Sequence[config.Setting]) -> None:
    """One option per setting, its default shown in the help."""
    for s in settings:
        default = "" if s.default is None else f" (default {s.default})"
        text = (s.help + default).replace("%", "%%")  # argparse formats help with %
        parser.add_argument(*s.options, dest=s.name, type=s.type, default=None, help=text)


def open_store(settings: dict[str, Any]) -> Store:
    """The fleet database ``run`` writes; ConfigError when it is not there yet."""
    path = settings["db"]
    if not os.path.exists(path):
        raise config.ConfigError(f"db {path}: no such file (has dock-hq run started?)")
    return Store(path)
