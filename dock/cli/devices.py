"""``dock device enrol|list|flag`` and ``dock offload``: thin over
``dock.services.devices``."""

from __future__ import annotations

import argparse
from typing import Any

from dock.cli.common import (
    EXIT_LINK,
    EXIT_REFUSED,
    EXIT_USAGE,
    add_json,
    add_parser,
    ask_daemon,
    build_or_exit,
    call,
    daemon_failed,
    default_actor,
    fail,
    load_or_exit,
    output,
    progress_bar,
    service_from,
)
from dock.devices.recorder_client import (
    AuthenticationFailed,
    LinkError,
    NotPermitted,
    RecorderRefused,
)
from dock.services import devices
from dock.services.daemon_link import DaemonError
from dock.services.errors import RequestError
from dock.storage.store import StoreError
from dock.support.text import shown


def cmd_enrol(args: argparse.Namespace) -> int:
    """Through the running daemon when there is one (it owns the recorders), else here."""
    cfg = load_or_exit(args)
    try:
        actor = getattr(args, "actor", None) or default_actor()
        remote = ask_daemon(cfg, "enrol", {"slot": args.slot, "actor": actor})
    except DaemonError as exc:
        why = {"not_permitted": "enrol refused: ", "link_failed": "enrol failed: "}
        return daemon_failed("device", DaemonError(exc.code, why.get(exc.code, "") + exc.message))
    try:
        if remote is not None:
            result = devices.Enrolled(str(remote["serial"]), str(remote["slot"]))
        else:
            result = call(build_or_exit(cfg), args, "device.enrol", {"slot": args.slot})
    except (RequestError, StoreError, KeyError) as exc:  # already enrolled, no such slot
        return fail("device", exc, EXIT_USAGE)
    except NotPermitted as exc:  # e.g. enrolling a version 1 recorder: nothing was sent
        return fail("device", f"enrol refused: {exc.message}", EXIT_REFUSED)
    except (LinkError, RecorderRefused, AuthenticationFailed) as exc:
        # Nothing was committed on either side: running the command again is safe.
        return fail("device", f"enrol failed: {exc}", EXIT_LINK)
    output(args, result, [f"recorder {shown(result.serial)} in slot {shown(args.slot)} enrolled"])
    return 0


def _password_from(path: str) -> str:
    """The first line of a password file (never echoed); ValueError/OSError, one line."""
    from dock.daemon.vendor_cameras import MAX_PASSWORD, check_password

    with open(path, "rb") as f:
        raw = f.read(4 * MAX_PASSWORD)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: the password is not ASCII") from None
    return check_password(text.splitlines()[0] if text.strip() else "")


def cmd_enrol_vendor(args: argparse.Namespace) -> int:
    """``dock device enrol-vendor --slot S --password-file F`` (docs/VENDOR-CAMERAS.md):
    the camera in the slot must accept the password, which becomes its secret. Works
    here under the slot's lock, beside a running daemon (its sweeps take the same lock)."""
    from dock.daemon.vendor_cameras import VendorRefusal

    cfg = load_or_exit(args)
    try:
        password = _password_from(args.password_file)
    except (OSError, ValueError) as exc:
        return fail("device enrol-vendor", exc, EXIT_USAGE)
    given = {"slot": args.slot, "password": password, "model": args.model}
    try:
        result = call(build_or_exit(cfg), args, "device.enrol_vendor", given)
    except (RequestError, StoreError) as exc:  # no such slot, already enrolled
        return fail("device enrol-vendor", exc, EXIT_USAGE)
    except VendorRefusal as exc:
        code = EXIT_LINK if exc.counter in ("link", "timeout") else EXIT_REFUSED
        return fail("device enrol-vendor", f"enrol refused: {exc}", code)
    except (OSError, ValueError) as exc:
        return fail("device enrol-vendor", f"enrol failed: {exc}", EXIT_LINK)
    lines = [f"camera {shown(result.serial)} in slot {shown(args.slot)} enrolled"]
    output(args, result, lines)
    return 0


def cmd_flag(args: argparse.Namespace) -> int:
    dock = service_from(args)
    lost = True if args.lost else False if args.found else None
    maintenance = True if args.maintenance else False if args.repaired else None
    if lost is None and maintenance is None:
        return fail("device flag", "give --lost/--found/--maintenance/--repaired", EXIT_USAGE)
    given = {"serial": args.serial, "lost": lost, "maintenance": maintenance, "note": args.note}
    try:
        result = call(dock, args, "device.flag", given)
    except RequestError as exc:
        return fail("device", exc, EXIT_USAGE)
    output(args, result, [f"recorder {shown(result.serial)}: {result.describe()}"])
    return 0


def cmd_maintenance_due(args: argparse.Namespace) -> int:
    """``dock device maintenance-due SERIAL DATE|none`` (000 §14.1)."""
    given = {"serial": args.serial, "due": args.date}
    try:
        result = call(service_from(args), args, "device.maintenance_due", given)
    except RequestError as exc:
        return fail("device maintenance-due", exc, EXIT_USAGE)
    said = "cleared" if result.due is None else f"due {result.due}"
    output(args, result, [f"recorder {shown(result.serial)}: maintenance {said}"])
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = devices.listing(service_from(args))
    lines = []
    for d in rows:
        flags = ",".join(f for f in ("lost", "maintenance") if getattr(d, f)) or "-"
        due = "" if d.maintenance_due is None else f"  maintenance due {d.maintenance_due}"
        due += " OVERDUE" if d.maintenance_overdue else ""
        lines.append(
            f"{shown(d.serial):<10} {shown(d.model):<12} {shown(d.firmware):<8} {flags}{due}"
        )
    output(args, rows, lines)
    return 0


def _offload(cfg: Any, args: argparse.Namespace) -> Any:
    """Through the running daemon when there is one (its progress drawn here), else here;
    None when the link failed."""

    def drawn(p: dict[str, Any]) -> None:
        if isinstance(p.get("recording"), str) and all(
            isinstance(p.get(k), int) for k in ("done", "total")
        ):
            progress_bar(p["recording"], p["done"], p["total"])

    try:
        remote = ask_daemon(cfg, "offload", {"slot": args.slot}, drawn)
    except DaemonError as exc:
        if exc.code == "link_failed":
            return None
        raise
    if remote is None:
        dock = build_or_exit(cfg)
        return call(dock, args, "device.offload", {"slot": args.slot, "progress": progress_bar})
    try:
        return devices.OffloadSummary(**remote)
    except TypeError as exc:
        raise DaemonError("bad_reply", f"the dock daemon's offload summary: {exc}") from None


def cmd_offload(args: argparse.Namespace) -> int:
    cfg = load_or_exit(args)
    try:
        s = _offload(cfg, args)
    except RequestError as exc:
        return fail("offload", exc, EXIT_USAGE)
    except DaemonError as exc:
        return daemon_failed("offload", exc)
    if s is None:
        print(
            f"dock offload: slot {shown(args.slot)}: the link failed; footage stays on the device"
        )
        return EXIT_LINK
    lines = [
        f"{shown(s.serial)}: {len(s.archived)} archived, {len(s.erased)} erased"
        + (
            f", {len(s.kept_on_device)} kept on the device: {shown(s.kept_reason, 300)}"
            if s.kept_on_device
            else ""
        )
        + (f", {len(s.failed)} FAILED (kept on the device)" if s.failed else "")
        + (", NOT ENOUGH ROOM (kept on the device)" if s.not_enough_room else "")
    ]
    lines += [f"  FAILED {shown(r)}: {shown(why, 300)}" for r, why in s.failed.items()]
    lines += [f"  DAMAGED ARCHIVE COPY {shown(r)}: {shown(why, 300)} (not erased)"
              for r, why in s.damaged.items()]  # fmt: skip
    if s.sealed_in:
        lines.append(f"  sealed in {shown(s.sealed_in, 300)}")
    lines += [f"  NOT SEALED YET (archived and verified; sealed at the next offload): "
              f"{shown(why, 300)}" for why in s.seal_failed]  # fmt: skip
    output(args, s, lines)
    return 0 if s.ok else EXIT_REFUSED


def register(sub: Any) -> None:
    dv = add_parser(sub, "device", help="enrol, list or flag recorders")
    dvs = dv.add_subparsers(dest="action", required=True)
    en = add_parser(dvs, "enrol", help="agree a secret with the recorder in a slot")
    en.add_argument("--slot", required=True)
    add_json(en)
    en.set_defaults(func=cmd_enrol, request="device.enrol")
    ev = add_parser(
        dvs, "enrol-vendor", help="enrol a camera of the vendor command set with its password"
    )
    ev.add_argument("--slot", required=True)
    ev.add_argument("--password-file", required=True, help="its first line is the password")
    ev.add_argument("--model", default="generic", help="a name for the camera's model")
    add_json(ev)
    ev.set_defaults(func=cmd_enrol_vendor, request="device.enrol_vendor")
    dl = add_parser(dvs, "list", help="enrolled recorders and their flags")
    add_json(dl)
    dl.set_defaults(func=cmd_list)
    fl = add_parser(dvs, "flag", help="lost or found, in maintenance or repaired")
    fl.add_argument("serial")
    for flag in ("--lost", "--found", "--maintenance", "--repaired"):
        fl.add_argument(flag, action="store_true")
    fl.add_argument("--note")
    add_json(fl)
    fl.set_defaults(func=cmd_flag, request="device.flag")
    md = add_parser(dvs, "maintenance-due", help="when a recorder's maintenance falls due")
    md.add_argument("serial")
    md.add_argument("date", help="ISO date (from the start of that local day), or none")
    add_json(md)
    md.set_defaults(func=cmd_maintenance_due, request="device.maintenance_due")

    off = add_parser(sub, "offload", help="offload, verify and erase a docked recorder now")
    off.add_argument("--slot", required=True)
    add_json(off)
    off.set_defaults(func=cmd_offload, request="device.offload")
