"""``dock archive handover --year YEAR DIR``: the year's records handed to the unit's
archivist (004 att.2 §7) as a BagIt bag at DIR (made, never replaced): the register of
the year's recordings, officers, cases, holds, purges and appraisals, and the sealed
packages with their hashes. Audited; a second hand-over of a year says it re-issues one.
``dock archive handovers`` lists those made."""

from __future__ import annotations

import argparse
import os
from typing import Any

from dock.cli.common import EXIT_USAGE, add_json, add_parser, call, fail, output, service_from
from dock.devices.clock import local_display
from dock.evidence.yearly import handovers
from dock.support.text import shown


def cmd_handover(args: argparse.Namespace) -> int:
    svc = service_from(args)
    given = {"year": args.year, "to": os.path.abspath(args.dir)}
    try:
        done = call(svc, args, "archive.handover", given)
    except ValueError as exc:  # RequestError among them
        return fail("archive handover", exc, EXIT_USAGE)
    again = "" if done.reissue_of is None else f" (a re-issue of hand-over {done.reissue_of})"
    output(args, done.as_dict(), [
        f"hand-over {done.id} of {done.year}{again}: {done.recordings} recording(s) in "
        f"{done.packages} sealed package(s), written to {shown(done.path, 300)}",
        f"tag manifest SHA-256 {done.tagmanifest_sha256}",
    ])  # fmt: skip
    return 0


def cmd_handovers(args: argparse.Namespace) -> int:
    svc = service_from(args)
    rows = handovers(svc.store)
    lines = [
        f"{r['id']:>4}  {r['year']}  {local_display(r['handed_at'], svc.timezone)}  by "
        f"{shown(r['handed_by'])}  {r['recordings']} recording(s)  {shown(r['path'], 300)}"
        + ("" if r["reissue_of"] is None else f"  re-issue of {r['reissue_of']}")
        for r in rows
    ]
    output(args, rows, lines or ["no hand-over made yet"])
    return 0


def register_under(ars: Any) -> None:
    """``handover`` and ``handovers`` under ``dock archive``."""
    ho = add_parser(ars, "handover", help="hand a year's records to the archivist (a bag)")
    ho.add_argument("--year", type=int, required=True)
    ho.add_argument("dir", help="the folder to write (must not exist)")
    add_json(ho)
    ho.set_defaults(func=cmd_handover, request="archive.handover")
    ls = add_parser(ars, "handovers", help="the hand-overs made, per year")
    add_json(ls)
    ls.set_defaults(func=cmd_handovers)
