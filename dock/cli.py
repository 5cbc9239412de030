"""``dock``: the dock's command line."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

from .logs import setup_logging
from .probe import describe, probe
from .recorder_client import AuthenticationFailed, LinkError, RecorderRefused

EXIT_USAGE = 2
EXIT_LINK = 3
EXIT_AUTH = 4


def _parse_secret(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) != 32:
        print("dock: --secret must be 64 hex digits (32 bytes)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    return secret


def _probe_url(url: str, secret: bytes | None, timeout: float) -> dict:
    from .composition import open_transport

    return probe(open_transport(url), secret, timeout)


def cmd_probe(args: argparse.Namespace) -> int:
    secret = _parse_secret(args.secret)
    try:
        report = {"url": args.url, **_probe_url(args.url, secret, args.timeout)}
    except AuthenticationFailed as exc:
        print(f"dock probe: {args.url}: authentication failed: {exc}", file=sys.stderr)
        return EXIT_AUTH
    except (LinkError, RecorderRefused, ConnectionError, ValueError) as exc:
        print(f"dock probe: {args.url}: {exc}", file=sys.stderr)
        return EXIT_LINK
    print(json.dumps(report, indent=2) if args.json else describe(report))
    return 0


def _row(slot: int, url: str, note: str, r: dict | None, error: str | None) -> str:
    if r is None:
        return f"{slot:>4}  {url:<14} {'-':<9} {'unreachable: ' + str(error):<50}"
    health = r["battery_health_percent"]
    return (
        f"{slot:>4}  {url:<14} {r['serial']:<9} {r['firmware']:<8} "
        f"{r['battery_percent']:>3} % {'' if health is None else f'({health} %)':<7} "
        f"{r['storage_free_bytes'] / (1 << 30):>6.1f} GiB "
        f"{round(r['clock_offset_s'], 1) + 0.0:>+8.1f} s {r['recording_count']:>4}   {note}"
    )


def cmd_run(args: argparse.Namespace) -> int:
    """For now: start emulated recorders, then probe every slot each interval."""
    from .composition import start_emulated_recorders

    if args.emulate < 1:
        print(
            "dock run: only emulated recorders are wired so far; use --emulate N", file=sys.stderr
        )
        return EXIT_USAGE
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="dock-emulated-")
    fleet = start_emulated_recorders(args.emulate, data_dir)
    header = (
        f"{'slot':>4}  {'port':<14} {'serial':<9} {'firmware':<8} battery (health) "
        f"{'free':>10} {'clock':>10} {'files':>5}   emulated as"
    )
    try:
        for sweep in range(args.sweeps if args.once is False else 1):
            if sweep:
                time.sleep(args.interval)
            print(f"\n{time.strftime('%Y-%m-%d %H:%M:%S %Z')}  {len(fleet.urls)} slot(s)")
            print(header)
            for i, (url, note) in enumerate(zip(fleet.urls, fleet.descriptions, strict=True)):
                try:
                    report, error = _probe_url(url, None, args.timeout), None
                except (LinkError, RecorderRefused, ConnectionError) as exc:
                    report, error = None, str(exc)
                print(_row(i + 1, url, note, report, error), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        fleet.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dock", description="Body-worn camera dock")
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING, ERROR")
    sub = p.add_subparsers(dest="command", required=True)

    pr = sub.add_parser("probe", help="handshake with one recorder and show its status")
    pr.add_argument("url", help="/dev/ttyACM0, /dev/pts/N, tcp://HOST:PORT, usb:1-1.2, ...")
    pr.add_argument("--json", action="store_true", help="machine-readable output")
    pr.add_argument("--secret", help="enrolment secret (64 hex digits) to authenticate with")
    pr.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for answers")
    pr.set_defaults(func=cmd_probe)

    run = sub.add_parser("run", help="run the dock (for now: with emulated recorders)")
    run.add_argument("--emulate", type=int, default=0, metavar="N", help="N emulated recorders")
    run.add_argument("--data-dir", help="where emulated recorders keep their state")
    run.add_argument("--once", action="store_true", help="one sweep, then exit")
    run.add_argument("--interval", type=float, default=5.0, help="seconds between sweeps")
    run.add_argument("--sweeps", type=int, default=1_000_000, help=argparse.SUPPRESS)
    run.add_argument("--timeout", type=float, default=5.0)
    run.set_defaults(func=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
