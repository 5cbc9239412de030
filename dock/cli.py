"""``dock``: the dock's command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from firmware_protocol.messages import Capability

from .logs import setup_logging
from .recorder_client import AuthenticationFailed, LinkError, RecorderClient, RecorderRefused


def _probe(args: argparse.Namespace) -> int:
    from .composition import open_transport

    secret = None
    if args.secret:
        try:
            secret = bytes.fromhex(args.secret)
        except ValueError:
            secret = b""
        if len(secret) != 32:
            print("dock probe: --secret must be 64 hex digits", file=sys.stderr)
            return 2
    try:
        transport = open_transport(args.url)
    except (ConnectionError, ValueError) as exc:
        print(f"dock probe: {exc}", file=sys.stderr)
        return 3
    try:
        with RecorderClient(transport, timeout=args.timeout) as client:
            ident = client.open(timeout=args.timeout)
            if secret is not None:
                client.authenticate(secret)
            status = client.status()
            recordings = client.list_recordings()
    except AuthenticationFailed as exc:
        print(f"dock probe: authentication failed: {exc}", file=sys.stderr)
        return 4
    except (LinkError, RecorderRefused) as exc:
        print(f"dock probe: {args.url}: {exc}", file=sys.stderr)
        return 3
    report: dict[str, Any] = {
        "url": args.url,
        "serial": ident.serial,
        "model": ident.model,
        "vendor": ident.vendor,
        "firmware": ident.firmware,
        "protocol_version": ident.protocol_version,
        "capabilities": [c.name.lower() for c in Capability if c in ident.capabilities],
        "enrolled": ident.enrolled,
        "authenticated": client.authenticated,
        "battery_percent": status.battery_percent,
        "charging": status.charging,
        "battery_health_percent": status.battery_health_percent,
        "battery_cycles": status.battery_cycles,
        "battery_temp_c": status.battery_temp_c,
        "storage_total_bytes": status.storage_total_bytes,
        "storage_free_bytes": status.storage_free_bytes,
        "recording": status.recording,
        "clock_offset_s": status.clock_offset_s,
        "fault_flags": status.fault_flags,
        "officer_id": status.officer_id,
        "recording_count": len(recordings),
        "recordings": [
            {
                "id": r.id,
                "start_ms": r.start_ms,
                "end_ms": r.end_ms,
                "size": r.size,
                "sha256": r.sha256.hex(),
                "signed": r.signature is not None,
                "flags": r.flags,
            }
            for r in recordings
        ],
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_probe(report)
    return 0


def _print_probe(r: dict[str, Any]) -> None:
    gib = 1 << 30
    health = r["battery_health_percent"]
    lines = [
        f"recorder   {r['serial']}  ({r['vendor']} {r['model']}, firmware {r['firmware']})",
        f"protocol   v{r['protocol_version']}  capabilities: {', '.join(r['capabilities'])}",
        f"enrolled   {'yes' if r['enrolled'] else 'no'}"
        f"{'  (authenticated)' if r['authenticated'] else ''}",
        f"battery    {r['battery_percent']} %{'  charging' if r['charging'] else ''}"
        + (f"  health {health} %, {r['battery_cycles']} cycles" if health is not None else ""),
        f"storage    {r['storage_free_bytes'] / gib:.1f} GiB free of "
        f"{r['storage_total_bytes'] / gib:.1f} GiB",
        f"clock      {r['clock_offset_s']:+.3f} s against this dock",
        f"footage    {r['recording_count']} recording(s), "
        f"{sum(x['size'] for x in r['recordings']) / (1 << 20):.1f} MiB",
    ]
    print("\n".join(lines))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dock", description="Body-worn camera dock")
    p.add_argument("--log-level", default="WARNING")
    sub = p.add_subparsers(dest="command", required=True)
    probe = sub.add_parser("probe", help="handshake with one recorder and show its status")
    probe.add_argument("url", help="/dev/ttyACM0, /dev/pts/N, tcp://HOST:PORT, usb:1-1.2, ...")
    probe.add_argument("--json", action="store_true")
    probe.add_argument("--secret", help="enrolment secret (64 hex) to authenticate with")
    probe.add_argument("--timeout", type=float, default=5.0)
    probe.set_defaults(func=_probe)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
