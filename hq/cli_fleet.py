"""``dock-hq fleet``, ``alerts`` and ``ack``: the duty officer's view of the fleet, read
from the database ``dock-hq run`` writes (SQLite WAL), as tables that fit 80 columns."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from hq import config
from hq.alerts import AlertKind
from hq.cli_common import EXIT_OK, EXIT_REFUSED, add_settings, open_store
from mqtt_contract import contract

TABLE_WIDTH = 80


def register_fleet(sub: Any, common: argparse.ArgumentParser) -> None:
    fleet = sub.add_parser("fleet", parents=[common], help="every dock now")
    add_settings(fleet, config.DATABASE)
    fleet.add_argument("--json", action="store_true")
    fleet.set_defaults(func=_fleet)


def register_alerts(sub: Any, common: argparse.ArgumentParser) -> None:
    alerts = sub.add_parser("alerts", parents=[common], help="open alerts")
    add_settings(alerts, config.DATABASE)
    alerts.add_argument("--all", action="store_true", help="closed ones too")
    alerts.add_argument("--json", action="store_true")
    alerts.set_defaults(func=_alerts)


def register_ack(sub: Any, common: argparse.ArgumentParser) -> None:
    ack = sub.add_parser("ack", parents=[common], help="acknowledge an alert")
    add_settings(ack, config.DATABASE)
    ack.add_argument("alert_id", type=int)
    ack.add_argument("--by", required=True, help="who acknowledges it")
    ack.set_defaults(func=_ack)


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
    store = open_store(settings)
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
                _backlog(d),
                str(sum(d["open_alerts"].values())),
            ]
        )
    headers = ["SITE", "DOCK", "STATE", "LAST SEEN", "SW", "SLOTS", "LOW", "OUTBOX", "REPL"]
    headers.append("ALERTS")
    _fit_ids(headers, rows, (0, 1))
    print(_table(headers, rows))
    print("SLOTS docked/total (n! faulty or failing checks)  LOW battery health below bound")
    print("REPL packages waiting for central storage (! past the deadline, nF failed)")
    return EXIT_OK


def _backlog(dock: dict[str, Any]) -> str:
    """Packages waiting for central storage over all targets: ``-`` when the dock does
    not report replication, ``!`` past its deadline, ``nF`` failed."""
    targets = dock.get("replication") or []
    if not targets:
        return "-"
    pending = sum(t["pending"] for t in targets)
    failed = sum(t["failed"] for t in targets)
    late = dock["open_alerts"].get(AlertKind.REPLICATION_BACKLOG.value)
    return f"{pending}" + ("!" if late else "") + (f" {failed}F" if failed else "")


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
    store = open_store(settings)
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
    store = open_store(settings)
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
