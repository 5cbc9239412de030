"""``dock outbox``: how far behind reporting to headquarters is."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from dock.cli.common import EXIT_STATE, add_json, add_parser, fail, load_or_exit


def cmd_outbox(args: argparse.Namespace) -> int:
    cfg = load_or_exit(args)
    path = os.path.join(cfg.dock.state_dir, "outbox.db")
    report: dict[str, Any] = {
        "reporting": cfg.mqtt.enabled,
        "broker": f"{cfg.mqtt.host}:{cfg.mqtt.broker_port}" if cfg.mqtt.enabled else None,
    }
    if os.path.exists(path):
        from common.sqlite_schema import SchemaError
        from dock.reporting.outbox import Outbox

        try:
            outbox = Outbox(path)
        except SchemaError as exc:  # of a newer release: not opened, nothing changed
            return fail("outbox", exc, EXIT_STATE)
        try:
            report |= outbox.summary()
        finally:
            outbox.close()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if not report["reporting"]:
        print("reporting to headquarters is off (no [mqtt] host in the configuration)")
    else:
        print(f"reporting to {report['broker']}")
    if "pending" not in report:
        print("no outbox yet: `dock run` creates it when reporting starts")
        return 0
    print(f"events waiting for the broker: {report['pending']}", end="")
    print(f" (oldest queued {report['oldest_pending']})" if report["pending"] else "")
    print(f"last acknowledged by the broker: {report['last_sent'] or 'never'}")
    print(f"sent events kept for resend requests: {report['sent_kept']}")
    return 0


def register(sub: Any) -> None:
    p = add_parser(sub, "outbox", help="events waiting to be reported to headquarters")
    add_json(p)
    p.set_defaults(func=cmd_outbox)
