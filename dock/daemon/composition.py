"""The composition root: the one place where the dock meets real hardware.

Everything else in ``dock`` depends on the interfaces in ``dock.domain.interfaces``.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from dock.domain.audit_kinds import AuditKind
from dock.domain.interfaces import Transport

if TYPE_CHECKING:
    from dock.config.load import DockConfig
    from dock.daemon.service import DockService
    from dock.domain.interfaces import Buzzer, Screen, SlotIndicator
    from dock.reporting.reporter import Reporter
    from dock.storage.audit import AuditLog
    from dock.storage.store import Store
    from hardware.emulator.fleet import EmulatedFleet


def open_transport(url: str) -> Transport:
    """Open a link to a recorder from a port URL.

    ``tcp://HOST:PORT`` is plain TCP; ``usb:BUS-PORT[.PORT...]`` is a recorder on
    that physical USB port; anything else goes to pyserial (a device path such
    as ``/dev/ttyACM0``, ``socket://``, ``loop://``, ``rfc2217://``).
    """
    from hardware.transports import SerialTransport, TcpTransport

    if url.startswith("tcp://"):
        return TcpTransport(url)
    if url.startswith("usb:"):
        from hardware.usb_transport import open_usb_port

        return open_usb_port(url.removeprefix("usb:"))
    return SerialTransport(url)


def start_emulated_recorders(count: int, data_dir: str) -> EmulatedFleet:
    """Start ``count`` reference recorders on ptys (hardware/emulator/fleet.py): the
    command line reaches the emulator only through this composition root."""
    from hardware.emulator.fleet import start_emulated_recorders as start

    return start(count, data_dir)


#: Less free room than this in the state directory counts as full: the database and
#: the audit log are written at every sweep, and SQLite cannot even open a database in
#: WAL mode without room for its shared-memory file.
STATE_MIN_FREE_BYTES = 1 << 20


class StateDirError(Exception):
    """The state directory cannot be used (``full``: no room left); one line to show."""

    def __init__(self, message: str, full: bool) -> None:
        super().__init__(message)
        self.full = full


def _state_free(state: str) -> tuple[int, int] | None:
    """(bytes, inodes) free in the state directory for an unprivileged user."""
    try:
        st = os.statvfs(state)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize, st.f_favail


def _state_full(state: str) -> StateDirError | None:
    free = _state_free(state)
    if free is None:
        return None
    room, inodes = free
    if room >= STATE_MIN_FREE_BYTES and inodes != 0:
        return None
    left = f"{room // 1024} KiB free" if inodes != 0 else "no inodes left"
    return StateDirError(
        f"state directory {state} is full: free space or move state_dir ([dock] in the "
        f"configuration) to a larger disk ({left}; the dock needs at least "
        f"{STATE_MIN_FREE_BYTES // 1024} KiB)",
        full=True,
    )


def _state_error(state: str, exc: BaseException) -> StateDirError:
    """An error met opening the state directory, said as the one thing to do about it.
    SQLite reports a full disk as "disk I/O error" as often as "database or disk is
    full": the free room decides."""
    errno_full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
    sqlite_full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    full = _state_full(state)
    if full is not None:
        return full
    if errno_full or sqlite_full:
        return StateDirError(
            f"state directory {state} is full: free space or move state_dir ([dock] in the "
            f"configuration) to a larger disk ({exc})",
            full=True,
        )
    why = getattr(exc, "strerror", None) or str(exc)
    return StateDirError(
        f"state directory {state}: cannot use it ({why}) — check that it exists, that this "
        "user may write it, and the disk it is on",
        full=False,
    )


def open_audit_log(cfg: DockConfig) -> AuditLog:
    """The dock's audit log with its signing key (created on first start) and the copy of
    its newest checkpoint kept outside the database (``[dock] audit_checkpoint_copy``)."""
    from dock.storage.audit import AuditLog
    from dock.storage.keys import load_or_create_signing_key

    state = cfg.dock.state_dir
    key = load_or_create_signing_key(os.path.join(state, "signing.key"))
    return AuditLog(
        os.path.join(state, "audit.db"), key, cfg.dock.id, copy_path=cfg.dock.audit_copy_path
    )


def open_state(cfg: DockConfig) -> tuple[Store, AuditLog]:
    """The dock's database and audit log in ``cfg.dock.state_dir`` (created if missing,
    with the signing key); StateDirError, one line, when the directory cannot be used."""
    from dock.config.load import config_hash
    from dock.storage.store import Store

    state = cfg.dock.state_dir
    try:
        os.makedirs(state, mode=0o700, exist_ok=True)
        full = _state_full(state)
        if full is not None:
            raise full
        store = Store(os.path.join(state, "dock.db"))
        audit = open_audit_log(cfg)
        _audit_config_change(audit, state, config_hash(cfg), cfg.path)
        os.makedirs(os.path.join(state, "locks"), exist_ok=True)
    except (OSError, sqlite3.Error) as exc:
        raise _state_error(state, exc) from exc
    return store, audit


def build_service(
    cfg: DockConfig, pin_factory: object | None = None, screen: Screen | None = None
) -> DockService:
    """Wire a DockService from a DockConfig: database, audit log and key, clock,
    transports, and the LEDs, buzzer and screen when a GPIO pin factory is given."""
    from dock.daemon.parts import DockParts, Feedback, SlotWiring
    from dock.daemon.service import DockService
    from dock.devices.clock import SystemClock, TrustedClock
    from dock.domain.interfaces import ClockSource
    from dock.evidence.offload import Offloader

    state = cfg.dock.state_dir
    store, audit = open_state(cfg)
    clock: ClockSource = (
        TrustedClock() if cfg.clock.source == "trusted" else SystemClock(cfg.clock.max_offset_s)
    )
    indicators: dict[str, SlotIndicator] = {}
    buzzer: Buzzer | None = None
    if pin_factory is not None:
        from hardware.indicators import GpioBuzzer, GpioSlotIndicator

        for slot in cfg.slots:
            if slot.led_green is not None and slot.led_red is not None:
                indicators[slot.id] = GpioSlotIndicator(slot.led_green, slot.led_red, pin_factory)
        if cfg.gpio.buzzer is not None:
            buzzer = GpioBuzzer(cfg.gpio.buzzer, pin_factory)
    if screen is None:
        screen = _screen(cfg, pin_factory)
    offloader = Offloader(
        store,
        audit,
        cfg.dock.evidence_dir,
        organization=f"{cfg.dock.unit} ({cfg.dock.site})",
        erase_after_verify=cfg.policy.erase_on_device == "after_verify",
        scanner=command_scanner(cfg.scanner.command) if cfg.scanner.command else None,
    )
    parts = DockParts(
        dock_id=cfg.dock.id,
        store=store,
        audit=audit,
        policy=cfg.policy,
        clock=clock,
        slots=SlotWiring(
            ports={s.id: s.port for s in cfg.slots},
            open_transport=open_transport,
            lock_dir=os.path.join(state, "locks"),
        ),
        feedback=Feedback(cfg.dock.locale, indicators, screen, buzzer),
        offloader=offloader,
        timezone=cfg.dock.timezone,
        min_pin_length=cfg.officers.min_pin_length,
        grant_expiry_s=cfg.dock.grant_expiry_s,
    )
    return DockService(parts)


def command_scanner(
    command: tuple[str, ...], timeout: float = 600.0
) -> Callable[[str], tuple[bool, str]]:
    """A scanner hook around a command such as ClamAV's clamscan/clamdscan:
    exit 0 clean, 1 found, anything else (or no answer) a failure: fail closed."""
    import subprocess

    def scan(path: str) -> tuple[bool, str]:
        try:
            done = subprocess.run([*command, path], capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"scanner failed: {exc}"
        text = (done.stdout + done.stderr).strip()[-300:]
        if done.returncode == 0:
            return True, text
        if done.returncode == 1:
            return False, f"scanner found: {text}"
        return False, f"scanner failed (exit {done.returncode}): {text}"

    return scan


def _screen(cfg: DockConfig, pin_factory: object | None) -> Screen:
    from hardware.screens import ConsoleScreen, Hd44780Screen

    lcd = getattr(cfg.gpio, "hd44780", None)
    if cfg.gpio.screen == "hd44780" and pin_factory is not None and lcd is not None:
        return Hd44780Screen(
            lcd.rs, lcd.e, lcd.d4, lcd.d5, lcd.d6, lcd.d7, pin_factory,
            cols=lcd.columns, rows=lcd.rows,
        )  # fmt: skip
    return ConsoleScreen()


def _audit_config_change(audit: AuditLog, state_dir: str, digest: str, path: str | None) -> None:
    """A configuration that differs from the one the dock last ran with is audited."""
    marker = os.path.join(state_dir, "config.sha256")
    try:
        with open(marker, encoding="ascii") as f:
            previous = f.read().strip()
    except FileNotFoundError:
        previous = None
    if previous == digest:
        return
    audit.append(AuditKind.CONFIG, "admin", path or "", {"previous": previous, "current": digest})
    tmp = marker + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(digest)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, marker)


def badge_source(reader: str, baudrate: int = 9600) -> Callable[[], str | None] | None:
    """A function returning the next badge read (or None within ~0.2 s), or None when
    the dock has no badge reader (``reader`` as in the configuration's [badge])."""
    if reader == "none":
        return None
    if reader == "keyboard":
        import queue
        import threading

        from hardware.badge_reader import keyboard_badges

        q: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            for badge in keyboard_badges():
                q.put(badge)

        threading.Thread(target=pump, name="badge-keyboard", daemon=True).start()

        def next_keyboard() -> str | None:
            try:
                return q.get(timeout=0.2)
            except queue.Empty:
                return None

        return next_keyboard
    from hardware.badge_reader import SerialBadgeReader

    return SerialBadgeReader(reader, baudrate).read


def build_reporter(cfg: DockConfig, svc: DockService) -> Reporter | None:
    """The reporter to headquarters over MQTT, or None when ``[mqtt]`` has no host."""
    if not cfg.mqtt.enabled:
        return None
    import fcntl
    import logging
    from importlib.metadata import PackageNotFoundError, version

    # One reporter per state directory: two would queue each event twice and take the
    # broker session from each other (same client id), raising false "lost" alarms.
    lock = open(os.path.join(cfg.dock.state_dir, "reporting.lock"), "a")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        logging.getLogger("dock.reporter").warning(
            "another dock process already reports for %s; this one does not",
            cfg.dock.state_dir,
        )
        return None

    from dock.config.load import config_hash
    from dock.reporting.outbox import Outbox
    from dock.reporting.paho_link import PahoLink
    from dock.reporting.reporter import Reporter

    try:
        software = version("bwc-dock")
    except PackageNotFoundError:
        software = "unknown"
    reporter = Reporter(
        link=PahoLink(cfg.mqtt, client_id=f"dock-{cfg.mqtt.site}-{cfg.dock.id}"),
        outbox=Outbox(os.path.join(cfg.dock.state_dir, "outbox.db")),
        service=svc,
        cfg=cfg.mqtt,
        dock_id=cfg.dock.id,
        software=software,
        config_hash=config_hash(cfg),
        state_dir=cfg.dock.state_dir,
        evidence_dir=cfg.dock.evidence_dir,
    )
    reporter.lock = lock  # held for as long as the reporter lives
    return reporter
