"""``dock probe`` and ``dock run``: one recorder's status, and the daemon (with
``--emulate``, over emulated recorders)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from typing import Any

from common.sqlite_schema import SchemaError
from dock.cli import slot_events
from dock.cli.common import (
    EXIT_AUTH,
    EXIT_LINK,
    EXIT_STATE,
    EXIT_USAGE,
    add_json,
    add_parser,
    build_or_exit,
    load_or_exit,
)
from dock.cli.custody import print_status, status_lines
from dock.cli.live_table import LiveTable, open_live_table, printed_as_log
from dock.daemon.systemd_notify import ServiceNotifier
from dock.devices.probe import describe, probe
from dock.devices.recorder_client import AuthenticationFailed, LinkError, RecorderRefused
from dock.services.status import status_report
from dock.support.text import json_text, shown

log = logging.getLogger("dock.cli.run")


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
    from dock.daemon.composition import open_transport

    return probe(open_transport(url, explicit=True), secret, timeout)  # named by hand


def cmd_probe(args: argparse.Namespace) -> int:
    from dock.devices.ums.probe_volume import describe_volume, is_volume, probe_volume

    if is_volume(args.url):  # a mass-storage camera's disk, or a FAT image
        try:
            found = probe_volume(args.url)
        except OSError as exc:
            print(f"dock probe: {shown(args.url)}: {shown(exc, 400)}", file=sys.stderr)
            return EXIT_LINK
        print(json.dumps(found, indent=2) if args.json else describe_volume(found))
        return 0
    secret = _parse_secret(args.secret)
    try:
        report = {"url": args.url, **_probe_url(args.url, secret, args.timeout)}
    except AuthenticationFailed as exc:
        print(f"dock probe: {shown(args.url)}: authentication failed: {shown(exc, 400)}",
              file=sys.stderr)  # fmt: skip
        return EXIT_AUTH
    except (LinkError, RecorderRefused, ConnectionError, ValueError) as exc:
        print(f"dock probe: {shown(args.url)}: {shown(exc, 400)}", file=sys.stderr)
        return EXIT_LINK
    print(json.dumps(report, indent=2) if args.json else describe(report))
    return 0


DEMO_OFFICERS = [
    ("1001", "王伟 Wang Wei", "交警三大队", "246810", "BADGE-1001", "officer"),
    ("1002", "李娜 Li Na", "交警三大队", "135790", "BADGE-1002", "officer"),
    ("9001", "赵敏 Zhao Min", "交警三大队", "999000", None, "supervisor"),
]


def _write_emulated_config(path: str, cfg: Any) -> None:
    """Save the emulated dock's configuration so other `dock` commands can use it."""
    lines = [
        "# written by `dock run --emulate`: emulated recorders on named links (sockets that",
        "# exist only while it runs)",
        "[dock]",
        f'id = "{cfg.dock.id}"',
        f'site = "{cfg.dock.site}"',
        f'unit = "{cfg.dock.unit}"',
        f'state_dir = "{cfg.dock.state_dir}"',
        f'evidence_dir = "{cfg.dock.evidence_dir}"',
        "",
        "[clock]",
        'source = "trusted"',
    ]
    for slot in cfg.slots:
        lines += ["", "[[slot]]", f'id = "{slot.id}"', f'port = "{slot.port}"']
    if cfg.mqtt.enabled:
        lines += ["", "[mqtt]", f'host = "{cfg.mqtt.host}"', f"port = {cfg.mqtt.broker_port}"]
        lines += [f'site = "{cfg.mqtt.site}"']
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def _emulated_dock(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    import dataclasses
    import os

    from dock.config import emulated_config
    from dock.daemon.composition import start_emulated_recorders

    state = os.path.abspath(args.state_dir or tempfile.mkdtemp(prefix="dock-emulated-"))
    fleet = start_emulated_recorders(args.emulate, os.path.join(state, "recorders"))
    cfg = emulated_config(args.emulate, state)
    slots = tuple(
        dataclasses.replace(s, port=url) for s, url in zip(cfg.slots, fleet.urls, strict=True)
    )
    cfg = dataclasses.replace(cfg, slots=slots)
    if args.mqtt:
        from dock.config import MqttConfig

        host, _, port = args.mqtt.rpartition(":") if ":" in args.mqtt else (args.mqtt, "", "0")
        mqtt = MqttConfig(host=host, port=int(port), site="emulated")
        if args.health_interval:
            mqtt = dataclasses.replace(mqtt, health_interval_s=args.health_interval)
        cfg = dataclasses.replace(cfg, mqtt=mqtt)
    config_path = os.path.join(state, "dock.toml")
    _write_emulated_config(config_path, cfg)
    svc = build_or_exit(cfg)
    # Enrol every emulated recorder but the last of three or more, which stays an
    # unknown recorder: the dock shows it and never hands it out.
    keep_unknown = args.emulate >= 3
    for i, slot in enumerate(cfg.slots):
        if keep_unknown and i == len(cfg.slots) - 1:
            continue
        try:
            svc.enrol(slot.id, "demo")
        except Exception as exc:  # already enrolled from an earlier run
            log.info("slot %s not enrolled: %s", slot.id, exc)
    if not svc.store.officers():
        for oid, name, unit, pin, badge, role in DEMO_OFFICERS:
            svc.store.add_officer(oid, name, unit, pin, badge, role)
    descriptions = dict(zip((s.id for s in cfg.slots), fleet.descriptions, strict=True))
    print(f"emulated dock: {args.emulate} recorder(s); state in {state}")
    for slot in cfg.slots:
        print(f"  slot {slot.id}: {slot.port}  ({descriptions[slot.id]})")
    exe = os.path.join(os.path.dirname(sys.executable), "dock")
    emulator = os.path.join(os.path.dirname(sys.executable), "recorder-emulator")
    print("in another shell:")
    print(f"  export DOCK_CONFIG={config_path}")
    print(f"  {exe} checkout --officer 1001 --pin 246810   # officer 王伟")
    print(f"  {exe} status")
    print(f"  export EMULATOR_CONTROL={fleet.control.path}")
    print(f"  {emulator} control undock 1   # take it out; then: record 1 30, dock 1")
    return svc, fleet, cfg


def cmd_run(args: argparse.Namespace) -> int:
    """The daemon: sweep every slot each interval, show the result, until stopped;
    badges read meanwhile are decided at once from the last sweep."""
    import os
    import signal
    import threading

    from dock.daemon.composition import (
        badge_source,
        build_reporter,
        drive_feedback,
        prewarm_offload_workers,
    )
    from dock.daemon.control_handlers import service_handlers
    from dock.daemon.control_server import ControlUnavailable, claim_control
    from dock.daemon.model import Decision
    from dock.daemon.service import decision_line
    from dock.daemon.web_sessions import WebSessions
    from dock.evidence.handovers import Signed

    fleet = reporter = None
    reader, baudrate, device = "none", 9600, None
    try:  # one daemon per state directory, claimed before any recorder is touched
        if args.emulate:
            args.state_dir = os.path.abspath(
                args.state_dir or tempfile.mkdtemp(prefix="dock-emulated-")
            )
            control = claim_control(args.state_dir)
            if not log.isEnabledFor(logging.DEBUG):  # the emulator's sessions: noise here
                logging.getLogger("recorder").setLevel(logging.WARNING)
            with printed_as_log(sys.stdout, log):  # a terminal reads it; the journal logs it
                svc, fleet, cfg = _emulated_dock(args)
        else:
            cfg = load_or_exit(args)
            svc = build_or_exit(cfg)
            control = claim_control(cfg.dock.state_dir)
            reader, baudrate, device = cfg.badge.reader, cfg.badge.baudrate, cfg.badge.device
    except ControlUnavailable as exc:
        log.error("%s", exc)
        return EXIT_STATE
    drive_feedback(svc, cfg)  # LEDs, buzzer, screen: only the one daemon drives the pins
    try:
        reporter = build_reporter(cfg, svc)
        if reporter is not None:
            reporter.start()  # events wait in the outbox while the broker is away
    except SchemaError as exc:  # e.g. an outbox a newer release wrote: kept untouched
        log.error("reporting to headquarters could not start: %s; the dock runs without it", exc)
        reporter = None
    except Exception:  # the dock's own work never waits for reporting
        log.exception("reporting to headquarters could not start; the dock runs without it")
        reporter = None
    if args.badge_reader:  # the command line's reader replaces the file's
        reader, device = args.badge_reader, None
    next_badge = badge_source(reader, baudrate, device)
    svc.offload_concurrency = max(1, args.offload_concurrency)
    prewarm_offload_workers(svc, svc.offload_concurrency)  # none waits for a start
    stop = threading.Event()
    busy = threading.Lock()  # one of sweep / decision at a time
    live = None if args.once else open_live_table(sys.stdout)  # the table: terminals only
    if live is not None:
        live.attach_logs()  # log lines above the table, not through it
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    notify = ServiceNotifier.from_environment()  # systemd: ready, watchdog (NOTIFY_SOCKET)
    notify.check_interval(args.interval)

    def badges() -> None:
        while not stop.is_set():
            badge = next_badge()  # type: ignore[misc]
            if badge is None:
                continue
            with busy:
                decision = svc.badge_read(badge)  # decided on the last sweep (and logged)
            if isinstance(decision, Signed):
                log.info("badge signed the handover: %s", json_text(decision.as_dict()))
            if live is not None:  # under the table until the next badge
                line = decision_line(decision) if isinstance(decision, Decision) else "signed"
                live.note(f"badge: {shown(line, 300)}")

    if next_badge is not None:
        threading.Thread(target=badges, name="badges", daemon=True).start()
    if not args.once:  # seals, deadlines, fixity: own threads, never under `busy`
        svc.start_maintenance(args.interval)
    code = 0
    try:
        # Front ends ask the daemon for what touches recorders (docs/CONTROL.md).
        sessions = WebSessions(idle_s=cfg.web.session_idle_s)  # the web site's logins
        control.start(service_handlers(svc, busy, status_report, sessions))
        _loop(svc, busy, stop, 1 if args.once else args.sweeps, args.interval, args.once, live,
              notify)  # fmt: skip
    except ControlUnavailable as exc:
        log.error("%s", exc)
        code = EXIT_STATE
    except KeyboardInterrupt:
        pass
    finally:
        notify.stopping()
        stop.set()
        control.stop()  # no new requests; those being served finish (bounded)
        svc.stop_maintenance()
        svc.wait_offloads(timeout=60)  # let running offloads finish (they resume anyway)
        if reporter is not None:
            reporter.stop()  # "stopped" for headquarters, then a clean disconnect
        if fleet is not None:
            fleet.stop()
        _stop_feedback(svc)  # last: running offloads may still change a slot's LED
        if live is not None:
            live.close()
    return code


def _loop(
    svc: Any,
    busy: Any,
    stop: Any,
    sweeps: int,
    interval: float,
    once: bool = False,
    live: LiveTable | None = None,
    notify: ServiceNotifier | None = None,
) -> None:
    """Sweep every ``interval`` seconds, ``sweeps`` times or until ``stop``; in between,
    wake when the screen has something due (a decision to clear, progress to draw).
    What changed is logged (slot_events); the table is drawn on a terminal (``live``),
    or printed once with ``once``."""
    display = svc.parts.feedback.display
    last = None
    before: dict[str, Any] | None = None
    done = 0
    next_sweep = time.monotonic()
    while True:
        if time.monotonic() >= next_sweep:
            with busy:
                report = status_report(svc, svc.sweep())
            if once:  # the sweep's offloads (and seals) first, then every job once
                svc.wait_offloads(timeout=600)
                svc.housekeeping(time.time())
            done += 1
            if notify is not None:  # READY=1 after the first; WATCHDOG=1 after each
                notify.swept(report)
            slot_events.log_changes(before, report)
            if before is None:
                log.info("first sweep done: %d slot(s); the dock is running", len(report["slots"]))
            before = report
            if once:
                print_status(report)
            changed = {k: v for k, v in report.items() if not k.startswith("time_")}
            if live is not None and changed != last:  # redrawn when something changed
                live.show(status_lines(report))
                last = changed
            next_sweep = time.monotonic() + interval
        wait = next_sweep - time.monotonic()
        if display is not None:
            wait = min(wait, display.tick())
        if done >= sweeps:
            return
        if stop.wait(max(0.0, wait)):
            return


def _stop_feedback(svc: Any) -> None:
    """Say on the screen that the dock has stopped, then LEDs off and pins released."""
    feedback = svc.parts.feedback
    if feedback.display is not None:
        feedback.display.stopped()
    feedback.close()


def register(sub: Any) -> None:
    pr = add_parser(sub, "probe", help="handshake with one recorder and show its status")
    pr.add_argument(
        "url",
        help="/dev/ttyACM0, /dev/pts/N, tcp://HOST:PORT, usb:1-1.2, ..., or a mass-storage "
        "camera's disk (/dev/bwc/slot-1.disk) or FAT image, read without mounting",
    )
    add_json(pr)
    pr.add_argument("--secret", help="enrolment secret (64 hex digits) to authenticate with")
    pr.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for answers")
    pr.set_defaults(func=cmd_probe)

    run = add_parser(sub, "run", help="run the dock daemon")
    run.add_argument("--emulate", type=int, default=0, metavar="N", help="N emulated recorders")
    run.add_argument("--state-dir", help="with --emulate: where the dock and recorders keep state")
    run.add_argument("--once", action="store_true", help="one sweep, then exit")
    run.add_argument("--badge-reader", help="badge reader: a serial port URL or 'keyboard'")
    run.add_argument(
        "--offload-concurrency", type=int, default=2, help="recorders offloaded at once"
    )
    run.add_argument("--interval", type=float, default=2.0, help="seconds between sweeps")
    run.add_argument("--sweeps", type=int, default=10**9, help=argparse.SUPPRESS)
    run.add_argument(
        "--mqtt", metavar="HOST[:PORT]", help="with --emulate: report to this MQTT broker"
    )
    run.add_argument("--health-interval", type=float, default=0.0, help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_run, default_log_level="INFO")  # a daemon says what it does
