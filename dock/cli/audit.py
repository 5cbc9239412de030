"""``dock audit verify|export``: check the audit log, here or as an exported file anywhere.

    dock audit verify [--against CHECKPOINT] [--fingerprint FP | --public-key HEX]
        the dock's own log (needs the configuration), also against the copy of its newest
        checkpoint kept outside the database and against CHECKPOINT (``dock-hq
        checkpoint SITE DOCK > CHECKPOINT`` at headquarters)
    dock audit verify FILE (--fingerprint FP | --public-key HEX) [--against CHECKPOINT]
        an export (``dock audit export``) on any machine, against the dock's key
    dock audit export PATH

Exit status: 0 sound, 1 tampered (the first bad entry named) or unreadable, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
from typing import Any

from dock.cli.common import add_json, add_parser, call, fail, output, service_from
from dock.services.errors import RequestError
from dock.storage.audit import (
    WRONG_KEY,
    AuditError,
    OutsideCheckpoint,
    VerifyReport,
    export_key,
    read_checkpoint_file,
    verify_export,
)
from dock.storage.keys import KeyFileError, fingerprint
from dock.support.text import shown

EXIT_OK, EXIT_BAD, EXIT_USAGE = 0, 1, 2

_FINGERPRINT = re.compile(r"[0-9a-f]{16}")
_PUBLIC_KEY = re.compile(r"[0-9a-f]{64}")


class _Usage(Exception):
    pass


def _pinned(args: argparse.Namespace) -> tuple[str | None, bytes | None]:
    """(fingerprint as the dock shows it, public key) from --fingerprint / --public-key."""
    fp = key = None
    if args.fingerprint:
        digits = args.fingerprint.replace(":", "").replace(" ", "").lower()
        if not _FINGERPRINT.fullmatch(digits):
            raise _Usage(
                "--fingerprint takes the 16 hex digits `dock audit verify` prints for the "
                "dock's key, e.g. 3f2a:9c01:77b4:e0d5"
            )
        fp = ":".join(digits[i : i + 4] for i in range(0, 16, 4))
    if args.public_key:
        text = args.public_key.strip().lower()
        if not _PUBLIC_KEY.fullmatch(text):
            raise _Usage("--public-key takes the dock's Ed25519 public key as 64 hex digits")
        key = bytes.fromhex(text)
    return fp, key


def _against(args: argparse.Namespace) -> list[OutsideCheckpoint]:
    if not args.against:
        return []
    try:
        return [read_checkpoint_file(args.against)]
    except FileNotFoundError:
        raise _Usage(f"--against {args.against}: no such file") from None
    except (OSError, ValueError) as exc:
        raise _Usage(f"--against: {exc}") from None


def _key_mismatch(named: bytes, fp: str | None, key: bytes | None) -> str | None:
    if key is not None and named != key:
        return f"names key {fingerprint(named)}, not the given key ({fingerprint(key)})"
    if fp is not None and fingerprint(named) != fp:
        return f"names key {fingerprint(named)}, not {fp}"
    return None


def _wrong_key(detail: str, named: bytes) -> VerifyReport:
    return VerifyReport(
        ok=False, reason=WRONG_KEY, detail=detail, public_key_fingerprint=fingerprint(named)
    )


def _verify_file(args: argparse.Namespace) -> VerifyReport:
    fp, key = _pinned(args)
    if fp is None and key is None:
        raise _Usage(
            "verifying an export needs the dock's key: --fingerprint FP (as `dock audit "
            "verify` prints it on the dock) or --public-key HEX; anyone can sign a file "
            "with a key of their own"
        )
    if not os.path.isfile(args.file):
        raise _Usage(f"{args.file}: no such file")
    against = _against(args)
    named = export_key(args.file)
    if named is not None:
        wrong = _key_mismatch(named, fp, key)
        if wrong:
            return _wrong_key(f"the export {wrong}", named)
    return verify_export(args.file, named if key is None else key, against)


def _verify_dock(args: argparse.Namespace) -> VerifyReport:
    from dock.config import ConfigError, load_config
    from dock.daemon.composition import open_audit_log

    fp, key = _pinned(args)
    against = _against(args)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        raise _Usage(str(exc)) from None
    state = cfg.dock.state_dir
    for name in ("audit.db", "signing.key"):
        if not os.path.exists(os.path.join(state, name)):
            raise _Usage(
                f"no {name} in {state}: the dock has not run with this configuration, or its "
                f"{'log' if name == 'audit.db' else 'key'} was removed"
            )
    log = open_audit_log(cfg)
    try:
        wrong = _key_mismatch(log.public_key, fp, key)
        if wrong:
            return _wrong_key(f"the dock's key file {wrong}", log.public_key)
        for o in against:
            if o.dock_id != log.dock_id:
                raise _Usage(f"--against: that checkpoint is for dock {o.dock_id!r}, not this one")
        return log.verify(against=against)
    finally:
        log.close()


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        report = _verify_file(args) if args.file else _verify_dock(args)
    except _Usage as exc:
        print(f"dock audit verify: {shown(exc, 2000)}", file=sys.stderr)
        return EXIT_USAGE
    except (AuditError, KeyFileError, OSError, sqlite3.Error) as exc:
        print(f"dock audit verify: {shown(exc, 1000)}", file=sys.stderr)
        return EXIT_BAD
    if args.json:
        print(json.dumps(_as_json(report), indent=2, ensure_ascii=False))
    else:
        for line in report.describe().split("\n"):
            print(shown(line, 2000))
    return EXIT_OK if report.ok else EXIT_BAD


def _as_json(report: VerifyReport) -> dict[str, Any]:
    out = {
        k: getattr(report, k)
        for k in (
            "ok", "reason", "first_bad", "detail", "entries_checked", "checkpoints_checked",
            "last_checkpoint", "head_seq", "head_hash", "public_key_fingerprint", "outside",
            "notes",
        )
    }  # fmt: skip
    if report.ok and report.needs_outside and not report.outside:
        from dock.storage.audit import NO_OUTSIDE_CHECKPOINT

        out["notes"] = [*report.notes, NO_OUTSIDE_CHECKPOINT]
    return out


def cmd_export(args: argparse.Namespace) -> int:
    dock = service_from(args)
    try:
        done = call(dock, args, "audit.export", {"path": args.path})
    except RequestError as exc:
        return fail("audit export", exc, EXIT_USAGE)
    except OSError as exc:
        return fail("audit export", f"{args.path}: {exc.strerror or exc}", EXIT_BAD)
    output(args, done, [
        f"exported to {shown(done.path, 300)}: {done.entries} entries, "
        f"{done.checkpoints} signed checkpoint(s), head {done.head_hash}"
    ])  # fmt: skip
    return EXIT_OK


def register(sub: Any) -> None:
    au = add_parser(sub, "audit", help="verify or export the audit log")
    aus = au.add_subparsers(dest="action", required=True)
    ve = add_parser(
        aus,
        "verify",
        help="check the dock's audit log, or an exported one (FILE) on any machine",
        description="Exit status: 0 sound, 1 tampered (first bad entry named), 2 bad usage.",
    )
    ve.add_argument("file", nargs="?", help="an export made by `dock audit export`")
    ve.add_argument("--fingerprint", help="the dock's key fingerprint (required with FILE)")
    ve.add_argument("--public-key", help="the dock's public key, 64 hex digits (instead)")
    ve.add_argument(
        "--against",
        metavar="CHECKPOINT",
        help="a checkpoint file from headquarters (`dock-hq checkpoint SITE DOCK`)",
    )
    add_json(ve)
    ve.set_defaults(func=cmd_verify)
    ex = add_parser(aus, "export", help="a signed, self-contained copy for a supervisor")
    ex.add_argument("path")
    add_json(ex)
    ex.set_defaults(func=cmd_export, request="audit.export")
