"""``dock officer|device|checkout|status|...``: the administrative commands
(``dock audit`` is in ``cli_audit``).

What a recorder stated (serial, model, firmware, officer and recording ids, error
messages) is printed through ``dock.support.text.shown`` and JSON through ``json_text``: a
recorder cannot send the terminal an escape sequence.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from dock.config import ConfigError, load_config
from dock.devices.recorder_client import (
    AuthenticationFailed,
    LinkError,
    NotPermitted,
    RecorderRefused,
)
from dock.storage.store import StoreError
from dock.support.text import json_text, shown

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_LINK = 3
#: The state directory (database, audit log, key) cannot be used: full, or not writable.
EXIT_STATE = 5


def config_error_text(exc: ConfigError) -> str:
    """A configuration error as shown: one line for one problem, else a list."""
    if len(exc.problems) != 1:
        return str(exc)
    problem = exc.problems[0]
    if exc.path and not problem.startswith(exc.path):
        problem = f"{exc.path}: {problem}"
    return problem


def service_from(args: argparse.Namespace) -> Any:
    """Load the configuration (clear errors, no traceback) and build the service."""
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"dock: {config_error_text(exc)}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    return build_or_exit(cfg)


def build_or_exit(cfg: Any) -> Any:
    """build_service, or one line and EXIT_STATE when the state directory is unusable."""
    from dock.daemon.composition import StateDirError, build_service

    try:
        return build_service(cfg)
    except StateDirError as exc:
        print(f"dock: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_STATE) from None


def _pin(given: str | None, prompt: str) -> str:
    if given is not None:
        return given
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    return getpass.getpass(prompt)


def cmd_checkout(args: argparse.Namespace) -> int:
    from dock.daemon.service import Override

    svc = service_from(args)
    if args.badge is None and args.officer is None:
        print("dock checkout: give --officer ID (and a PIN) or --badge", file=sys.stderr)
        return EXIT_USAGE
    pin = None if args.badge else _pin(args.pin, "PIN: ")
    override = None
    if args.supervisor:
        if not args.reason:
            print("dock checkout: an override needs --reason", file=sys.stderr)
            return EXIT_USAGE
        override = Override(
            args.supervisor, _pin(args.supervisor_pin, "Supervisor PIN: "), args.reason
        )
    decision = svc.checkout(args.officer, pin, args.badge, override)
    if args.json:
        print(json_text(decision.as_dict(), indent=2))
    elif decision.granted:
        print(f"granted: take slot {decision.slot} (recorder {shown(decision.device)})")
        if decision.assigned_on_device is False:
            why = shown(decision.not_assigned_why, 300)
            print(f"  officer not written to the recorder: {why}")
    else:
        print("refused:")
        for r in decision.reasons:
            print(f"  [{r.code}] {shown(r.message, 300)}")
    return 0 if decision.granted else EXIT_REFUSED


def status_report(svc: Any, views: list[Any]) -> dict[str, Any]:
    rows = []
    for v in views:
        snap = v.snapshot
        rows.append(
            {
                "slot": v.slot_id,
                "port": v.port,
                "state": svc.slot_status[v.slot_id].state.value,
                "device": v.serial,
                "ready": v.ready,
                "battery_percent": snap.battery_percent if snap else None,
                "battery_health_percent": snap.battery_health_percent if snap else None,
                "storage_free_bytes": snap.storage_free_bytes if snap else None,
                "clock_offset_after_sync_s": snap.clock_offset_after_sync_s if snap else None,
                "failed": [{"code": r.code, "message": r.message} for r in v.failures],
                "awaiting_takeaway": svc.store.awaiting_takeaway(v.slot_id) is not None,
                "offload": svc.offload_progress.get(v.slot_id),
                "error": v.error,
            }
        )
    from dock.devices.clock import local_display, utc_iso

    trusted, why = svc.clock.synchronised()
    now = svc.clock.now()
    return {
        "dock": svc.dock_id,
        "time_utc": utc_iso(now),  # stored and exchanged in UTC
        "time_local": local_display(now, svc.timezone),  # shown with its zone
        "clock": {"trusted": trusted, "reason": why},
        "slots": rows,
        "fleet": svc.store.ratio(),
    }


def print_status(report: dict[str, Any]) -> None:
    clock = report["clock"]
    trusted = "trusted" if clock["trusted"] else "NOT trusted"
    reason = shown(clock["reason"], 200)
    print(f"dock {shown(report['dock'])}   {report['time_local']}   clock: {trusted} ({reason})")
    print(f"{'slot':>4}  {'device':<9} {'state':<13} {'batt':>5} {'free GiB':>9}  reasons")
    for r in report["slots"]:
        state = "take-away" if r["awaiting_takeaway"] else r["state"].replace("_", " ")
        batt = "" if r["battery_percent"] is None else f"{r['battery_percent']} %"
        free = "" if r["storage_free_bytes"] is None else f"{r['storage_free_bytes'] / 2**30:.1f}"
        why_not = "; ".join(f["message"] for f in r["failed"]) or (r["error"] or "")
        device, why_not = shown(r["device"]), shown(why_not, 300)
        print(f"{shown(r['slot']):>4}  {device:<9} {state:<13} {batt:>5} {free:>9}  {why_not}")
    ratio = report["fleet"]
    per = ratio["recorders_per_officer"]
    print(
        f"fleet: {ratio['recorders']} recorder(s) for {ratio['officers']} officer(s)"
        + ("" if per is None else f", {per:.2f} per officer (at least 0.50 required)"),
        flush=True,
    )


def cmd_status(args: argparse.Namespace) -> int:
    svc = service_from(args)
    report = status_report(svc, svc.sweep())
    if args.json:
        print(json_text(report, indent=2))
    else:
        print_status(report)
    return 0


def cmd_officer(args: argparse.Namespace) -> int:
    svc = service_from(args)
    try:
        if args.action == "add":
            pin = _pin(args.pin, f"PIN for {args.id}: ")
            role = "supervisor" if args.supervisor else "officer"
            svc.store.add_officer(
                args.id, args.name, args.unit, pin, args.badge, role, svc.min_pin_length
            )
            svc.audit.append("officer_add", args.actor, args.id, {"role": role, "unit": args.unit})
            print(f"officer {args.id} added")
        elif args.action == "unlock":
            return _unlock(svc, args)
        elif args.action in ("disable", "enable"):
            svc.store.set_officer_disabled(args.id, args.action == "disable")
            svc.audit.append(f"officer_{args.action}", args.actor, args.id, {})
            print(f"officer {args.id} {args.action}d")
        else:
            locked = svc.store.locked_pins()
            officers = [o.__dict__ | {"pin_locked": o.officer_id in locked}
                        for o in svc.store.officers()]  # fmt: skip
            if args.json:
                print(json_text(officers, indent=2))
            for o in [] if args.json else officers:
                flag = " (disabled)" if o["disabled"] else ""
                flag += " (PIN locked)" if o["pin_locked"] else ""
                print(
                    f"{shown(o['officer_id']):<10} {shown(o['name']):<16} "
                    f"{shown(o['unit']):<16} {o['role']}{flag}"
                )
    except StoreError as exc:
        print(f"dock officer: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _unlock(svc: Any, args: argparse.Namespace) -> int:
    """A supervisor, on their own PIN (itself under the lockout), unlocks an officer's
    PIN: audited as ``pin_unlocked`` with both names and who typed the command."""
    from dock.storage.pins import verify

    if svc.store.officer(args.id) is None:
        raise StoreError(f"no officer {args.id}")
    pin = _pin(args.supervisor_pin, f"PIN for supervisor {args.supervisor}: ")
    check = verify(svc.store, svc.audit, args.supervisor, pin, "unlock")
    sup = svc.store.officer(args.supervisor)
    if not check.ok or sup is None or sup.role != "supervisor" or sup.disabled:
        why = "supervisor PIN locked" if check.locked else "not verified"
        svc.audit.append("pin_unlock_refused", args.supervisor, args.id,
                         {"officer": args.id, "why": why, "by": args.actor})  # fmt: skip
        if check.locked:
            print("dock officer unlock: supervisor PIN locked: another supervisor unlocks it",
                  file=sys.stderr)  # fmt: skip
        else:
            print("dock officer unlock: supervisor not verified (wrong PIN, not a supervisor "
                  "or disabled)", file=sys.stderr)  # fmt: skip
        return EXIT_REFUSED
    was_locked = svc.store.unlock_pin(args.id)
    svc.audit.append(
        "pin_unlocked",
        sup.officer_id,
        args.id,
        {"officer": args.id, "supervisor": sup.officer_id, "by": args.actor,
         "was_locked": was_locked},
    )  # fmt: skip
    if was_locked:
        print(f"officer {shown(args.id)}: PIN unlocked by supervisor {shown(sup.officer_id)}")
    else:
        print(f"officer {shown(args.id)}: the PIN was not locked (wrong tries forgotten)")
    return 0


def cmd_device(args: argparse.Namespace) -> int:
    svc = service_from(args)
    try:
        if args.action == "enrol":
            serial = svc.enrol(args.slot, args.actor)
            print(f"recorder {shown(serial)} in slot {shown(args.slot)} enrolled")
        elif args.action == "flag":
            changes: dict[str, Any] = {}
            if args.lost or args.found:
                changes["lost"] = bool(args.lost)
            if args.maintenance or args.repaired:
                changes["maintenance"] = bool(args.maintenance)
            if not changes:
                print("dock device flag: give --lost/--found/--maintenance/--repaired")
                return EXIT_USAGE
            svc.store.flag_device(args.serial, note=args.note or "", **changes)
            svc.audit.append("device_flag", args.actor, args.serial, changes | {"note": args.note})
            print(f"recorder {shown(args.serial)}: {changes}")
        else:
            devices = [
                {k: v for k, v in d.__dict__.items() if k != "secret"} for d in svc.store.devices()
            ]
            if args.json:
                print(json_text(devices, indent=2))
            for d in [] if args.json else devices:
                flags = ",".join(f for f in ("lost", "maintenance") if d[f]) or "-"
                print(
                    f"{shown(d['serial']):<10} {shown(d['model']):<12} "
                    f"{shown(d['firmware']):<8} {flags}"
                )
    except (StoreError, KeyError) as exc:
        print(f"dock device: {shown(exc, 400)}", file=sys.stderr)
        return EXIT_USAGE
    except NotPermitted as exc:  # e.g. enrolling a version 1 recorder: nothing was sent
        print(f"dock device: {args.action} refused: {shown(exc.message, 400)}", file=sys.stderr)
        return EXIT_REFUSED
    except (LinkError, RecorderRefused, AuthenticationFailed) as exc:
        # Nothing was committed on either side: running the command again is safe.
        print(f"dock device: {args.action} failed: {shown(exc, 400)}", file=sys.stderr)
        return EXIT_LINK
    return 0


def _progress_bar(rec_id: str, done: int, total: int) -> None:
    """One line per recording on stderr, redrawn in place."""
    width = 30
    filled = width if total == 0 else int(width * done / total)
    pct = 100 if total == 0 else 100 * done // total
    end = "\n" if done >= total else ""
    print(
        f"\r  {shown(rec_id, 60):<12} [{'#' * filled}{'.' * (width - filled)}] {pct:3d} %  "
        f"{done / 2**20:8.1f} / {total / 2**20:.1f} MiB",
        end=end,
        file=sys.stderr,
        flush=True,
    )


def cmd_offload(args: argparse.Namespace) -> int:
    svc = service_from(args)
    if args.slot not in svc.views:
        print(f"dock offload: no slot {args.slot!r}", file=sys.stderr)
        return EXIT_USAGE
    report = svc.offload(args.slot, progress=_progress_bar)
    if report is None:
        print(f"dock offload: slot {args.slot}: the link failed; footage stays on the device")
        return EXIT_LINK
    summary = {
        "serial": report.serial,
        "archived": report.archived,
        "already_archived": report.already_archived,
        "erased": report.erased,
        "failed": report.failed,
        "not_enough_room": report.not_enough_room,
        # archived and verified but left on the recorder, by design: not a failure
        "kept_on_device": list(report.kept),
        "kept_reason": report.kept_reason,
        "sealed_in": report.bag,
        "seal": report.seal,
        # archived and verified, but not yet in a package: sealed at the next offload
        "seal_failed": report.seal_failed,
        # archived copies that no longer match: not erased from the recorder
        "damaged": report.damaged,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{shown(report.serial)}: {len(report.archived)} archived, "
            f"{len(report.erased)} erased"
            + (
                f", {len(report.kept)} kept on the device: {shown(report.kept_reason, 300)}"
                if report.kept
                else ""
            )
            + (f", {len(report.failed)} FAILED (kept on the device)" if report.failed else "")
            + (", NOT ENOUGH ROOM (kept on the device)" if report.not_enough_room else "")
        )
        for rec_id, why in report.failed.items():
            print(f"  FAILED {shown(rec_id)}: {shown(why, 300)}")
        for rec_id, why in report.damaged.items():
            print(f"  DAMAGED ARCHIVE COPY {shown(rec_id)}: {shown(why, 300)} (not erased)")
        if report.bag:
            print(f"  sealed in {shown(report.bag, 300)}")
        for why in report.seal_failed:
            print(f"  NOT SEALED YET (archived and verified; sealed at the next offload): "
                  f"{shown(why, 300)}")  # fmt: skip
    return 0 if report.ok else EXIT_REFUSED


def cmd_case(args: argparse.Namespace) -> int:
    svc = service_from(args)
    if args.action == "attach":
        code = _attach(svc, args)
        if code:
            return code
    rows = svc.store.case_recordings(args.case)
    if args.json:
        print(json_text([{k: (v.hex() if isinstance(v, bytes) else v) for k, v in r.items()}
                         for r in rows], indent=2))  # fmt: skip
    else:
        print(f"case {shown(args.case)}: {len(rows)} recording(s)")
        for r in rows:
            print(
                f"  {shown(r['serial'])}/{shown(r['recording_id'])}  "
                f"{shown(r['officer_id'])}  {shown(r['path'], 300)}"
            )
    return 0


def _attach(svc: Any, args: argparse.Namespace) -> int:
    """File recordings under a case on the keeper's own credentials: an officer or a
    supervisor, with their PIN (dock.storage.pins, with its lockout). Attaching only adds
    protection (a hold on the case keeps what is attached), so either role may; the
    audit names that person, and the login that typed the command beside them."""
    from dock.evidence.purge_records import purge_state
    from dock.storage.pins import authorise

    who = args.officer or (input("Officer number: ").strip() if sys.stdin.isatty() else "")
    if not who:
        print("dock case attach: needs the keeper's credentials: --officer ID (an officer or "
              "supervisor; the PIN is asked for)", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    pin = _pin(args.pin, f"PIN for {who}: ")
    ok = authorise(svc.store, svc.audit, who, pin, "case_attach", ("officer", "supervisor"))
    if not ok.ok:
        svc.audit.append("case_attach_refused", who, "",
                         {"case": args.case, "why": ok.why, "by": args.actor})  # fmt: skip
        print(f"dock case attach: refused: {shown(ok.why, 200)}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        for item in args.recordings:
            serial, _, rec = item.partition(":")
            gone = purge_state(svc.store, serial, rec)
            if gone is not None:
                raise StoreError(f"{serial}/{rec} {gone}")
            if svc.store.attach_case(args.case, serial, rec, who):
                data = {"case": args.case, "recording": rec, "by": args.actor}
                svc.audit.append("case_attach", who, serial, data)
    except StoreError as exc:
        print(f"dock case: {shown(exc, 400)}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def cmd_confirm_copy(args: argparse.Namespace) -> int:
    svc = service_from(args)
    try:
        svc.store.confirm_second_copy(args.serial, args.recording, args.where)
    except StoreError as exc:
        print(f"dock confirm-copy: {shown(exc, 400)}", file=sys.stderr)
        return EXIT_USAGE
    svc.audit.append(
        "second_copy", args.actor, args.serial, {"recording": args.recording, "where": args.where}
    )
    where = shown(args.where, 200)
    print(f"{shown(args.serial)}/{shown(args.recording)}: second copy confirmed ({where})")
    return 0


def add_commands(sub: Any) -> None:
    co = sub.add_parser("checkout", help="check a recorder out to an officer")
    co.add_argument("--officer", help="officer number")
    co.add_argument("--pin", help="officer PIN (prompted for when omitted)")
    co.add_argument("--badge", help="badge id as read by the badge reader")
    co.add_argument("--supervisor", help="supervisor number, to override failed checks")
    co.add_argument("--supervisor-pin")
    co.add_argument("--reason", help="why the override is needed (audited)")
    co.add_argument("--json", action="store_true")
    co.set_defaults(func=cmd_checkout)

    st = sub.add_parser("status", help="check every slot now and show the result")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)

    of = sub.add_parser("officer", help="add, list, disable or enable officers")
    ofs = of.add_subparsers(dest="action", required=True)
    add = ofs.add_parser("add")
    add.add_argument("id")
    add.add_argument("--name", required=True)
    add.add_argument("--unit", required=True)
    add.add_argument("--badge")
    add.add_argument("--pin", help="prompted for when omitted")
    add.add_argument("--supervisor", action="store_true")
    lst = ofs.add_parser("list")
    lst.add_argument("--json", action="store_true")
    for name in ("disable", "enable"):
        ofs.add_parser(name).add_argument("id")
    ul = ofs.add_parser("unlock", help="unlock a PIN locked after wrong tries (a supervisor)")
    ul.add_argument("id", help="the officer whose PIN is locked")
    ul.add_argument("--supervisor", required=True, help="supervisor number")
    ul.add_argument("--supervisor-pin", help="prompted for when omitted")
    of.set_defaults(func=cmd_officer)

    dv = sub.add_parser("device", help="enrol, list or flag recorders")
    dvs = dv.add_subparsers(dest="action", required=True)
    dvs.add_parser("enrol").add_argument("--slot", required=True)
    dl = dvs.add_parser("list")
    dl.add_argument("--json", action="store_true")
    fl = dvs.add_parser("flag")
    fl.add_argument("serial")
    for flag in ("--lost", "--found", "--maintenance", "--repaired"):
        fl.add_argument(flag, action="store_true")
    fl.add_argument("--note")
    dv.set_defaults(func=cmd_device)

    off = sub.add_parser("offload", help="offload, verify and erase a docked recorder now")
    off.add_argument("--slot", required=True)
    off.add_argument("--json", action="store_true")
    off.set_defaults(func=cmd_offload)

    ca = sub.add_parser("case", help="file archived recordings under a case or event number")
    cas = ca.add_subparsers(dest="action", required=True)
    attach = cas.add_parser("attach")
    attach.add_argument("case")
    attach.add_argument("recordings", nargs="+", metavar="SERIAL:RECORDING")
    attach.add_argument("--officer", help="the keeper filing it: an officer or supervisor")
    attach.add_argument("--pin", help="their PIN (asked when omitted)")
    attach.add_argument("--json", action="store_true")
    show = cas.add_parser("show")
    show.add_argument("case")
    show.add_argument("--json", action="store_true")
    ca.set_defaults(func=cmd_case)

    cc = sub.add_parser("confirm-copy", help="a second copy exists: the recorder may now erase it")
    cc.add_argument("serial")
    cc.add_argument("recording")
    cc.add_argument("--where", required=True, help="where the second copy is kept")
    cc.set_defaults(func=cmd_confirm_copy)
