"""``dock archive verify|list``: the fixity check of the archive and what it holds.

``verify`` is what a cron job or systemd timer runs for the periodic sampling check
(004 att.2 §4): exit 0 when everything is intact, 1 when anything is not.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dock.cli import handover
from dock.cli.common import (
    EXIT_REFUSED,
    EXIT_USAGE,
    add_json,
    add_parser,
    call,
    fail,
    progress_bar,
    service_from,
)
from dock.services import archive
from dock.services.errors import RequestError
from dock.support.text import json_text, shown


class _Bar:
    """A progress line per file on stderr; ends a line a failed read left unfinished."""

    def __init__(self) -> None:
        self._open: str | None = None

    def __call__(self, label: str, done: int, total: int) -> None:
        if self._open is not None and self._open != label:
            print(file=sys.stderr)
        self._open = None if done >= total else label
        progress_bar(label, done, total)

    def close(self) -> None:
        if self._open is not None:
            print(file=sys.stderr)
            self._open = None


def _fraction(text: str) -> float:
    """argparse type for --sample: a fraction in (0, 1], or a percentage like 10%."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("the sample must be in (0, 1], e.g. 0.1 or 10%")
    return value


def cmd_archive_verify(args: argparse.Namespace) -> int:
    fraction = 1.0 if getattr(args, "sample", None) is None else args.sample
    if not 0 < fraction <= 1:
        return fail("archive verify", "--sample must be in (0, 1]", EXIT_USAGE)
    dock = service_from(args)
    bar = _Bar()
    try:
        report = call(dock, args, "archive.verify", {"sample": fraction, "progress": bar})
    except RequestError as exc:
        return fail("archive verify", exc, EXIT_USAGE)
    finally:
        bar.close()
    if args.json:
        print(json_text(report.as_dict(), indent=2))
    else:
        sampled = f" (a {fraction:.0%} sample of {report.archived})" if fraction < 1 else ""
        print(
            f"files: {report.checked} checked{sampled}, {report.intact} intact; "
            f"bags: {report.bags_checked} checked, {report.bags_bad} bad"
        )
        for p in report.bad:
            what = f"{shown(p['serial'])} {shown(p['recording'])}" if p["kind"] == "file" else "bag"
            print(f"  PROBLEM {what}: {shown(p['path'], 300)}: {shown(p['problem'], 500)}")
        print("all intact" if report.clean else "PROBLEMS FOUND: nothing was changed; see above")
    return 0 if report.clean else EXIT_REFUSED


def archive_rows(dock: Any, officer: str | None = None) -> list[dict[str, Any]]:
    """The archive table as shown to a person (``dock.services.archive.rows``)."""
    return archive.rows(dock, officer)


def cmd_archive_list(args: argparse.Namespace) -> int:
    svc = service_from(args)
    rows = archive_rows(svc, getattr(args, "officer", None))
    if args.json:
        print(json_text(rows, indent=2))
        return 0
    if not rows:
        of = f" of officer {shown(args.officer)}" if args.officer else ""
        print("no archived recordings" + of)
        return 0
    print(
        f"{'SERIAL':<10} {'RECORDING':<12} {'OFFICER':<8} {'START (UTC)':<24} "
        f"{'START (LOCAL)':<34} {'SIZE':>12} {'SHA-256':<12} ERASED"
    )
    for r in rows:
        print(
            f"{shown(r['serial']):<10} {shown(r['recording_id']):<12} "
            f"{shown(r['officer_id']):<8} {r['start_utc']:<24} {r['start_local']:<34} "
            f"{r['size']:>12} {r['sha256'][:12]:<12} {'yes' if r['erased_on_device'] else 'no'}"
        )
    return 0


def register(sub: Any) -> None:
    ar = add_parser(sub, "archive", help="verify the archived footage (fixity) or list it")
    ars = ar.add_subparsers(dest="action", required=True)
    ve = add_parser(ars, "verify", help="re-read archived files and bags, compare with hashes")
    ve.add_argument(
        "--sample",
        type=_fraction,
        metavar="FRACTION",
        help="check a random fraction of the files (e.g. 0.1 or 10%%); bags always in full",
    )
    add_json(ve)
    ve.set_defaults(func=cmd_archive_verify, request="archive.verify")
    ls = add_parser(ars, "list", help="archived recordings")
    ls.add_argument("--officer", metavar="ID", help="only this officer's recordings")
    add_json(ls)
    ls.set_defaults(func=cmd_archive_list)
    handover.register_under(ars)  # 004 att.2 §7: the yearly hand-over to the archivist
