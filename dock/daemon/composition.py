"""The composition root: the one place where the dock meets real hardware (with
``ports.py``, which opens a recorder's port by its URL).

Everything else in ``dock`` depends on the interfaces in ``dock.domain.interfaces``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dock.daemon.ports import open_transport as open_transport  # callers import it here
from dock.domain.audit_kinds import AuditKind
from dock.domain.interfaces import VendorControl

if TYPE_CHECKING:
    from dock.config.load import DockConfig
    from dock.config.slots import SlotConfig
    from dock.daemon.parts import Feedback
    from dock.daemon.service import DockService
    from dock.devices.ums.attach import UmsSlot
    from dock.domain.interfaces import Buzzer, Screen, SlotIndicator
    from dock.reporting.reporter import Reporter
    from dock.storage.audit import AuditLog
    from dock.storage.store import Store
    from hardware.emulator.fleet import EmulatedFleet

log = logging.getLogger("dock.daemon.composition")


def open_vendor_control(
    slot_cfg: SlotConfig,
    *,
    timezone: str = "UTC",
    options: Mapping[str, Any] | None = None,
    backend: Any = None,
) -> VendorControl | None:
    """The vendor-command-set camera (docs/VENDOR-CAMERAS.md) on the slot's USB port;
    None when the slot is not a ``usb:`` port or what is there is not that model's
    VID:PID. ConnectionError (one line) when it is there but cannot be opened.
    ``options``: the model's differences (hardware.vendor_usb.VendorModel's fields:
    ``vendor_id``, ``product_id``, ``ep_out``, ``ep_in``, ``timeout_s``, ``time_query``
    and ``battery_query`` as command names, ...); ``timezone``: the camera's wall
    clock's (the dock's). ``backend``: pyusb's (tests pass the emulated bus)."""
    from hardware.vendor_usb import Query, VendorModel, open_vendor_camera

    if not slot_cfg.port.startswith("usb:"):
        return None
    given = dict(options or {})
    for key in ("time_query", "battery_query"):
        if isinstance(given.get(key), str):
            given[key] = Query(given[key])
    try:
        model = VendorModel(**given, timezone=timezone)
    except TypeError as exc:  # an option VendorModel does not have
        raise ValueError(f"vendor camera options: {exc}") from None
    return open_vendor_camera(slot_cfg.port.removeprefix("usb:"), model, backend=backend)


def vendor_options(cfg: DockConfig, slot_id: str) -> dict[str, Any] | None:
    """The vendor command set's differences for the camera model of ``slot_id`` (its
    ``[[model]]`` with ``driver = "vendor"``); None: the common set's defaults."""
    slot = next((s for s in cfg.slots if s.id == slot_id), None)
    model = next((m for m in cfg.models if slot is not None and m.name == slot.model), None)
    if model is None or model.driver != "vendor":
        return None
    return model.vendor_options()


def _open_vendor(cfg: DockConfig, slot_id: str) -> VendorControl | None:
    """The vendor camera in ``slot_id``, its model's options where it has a vendor model."""
    slot = next(s for s in cfg.slots if s.id == slot_id)
    options = vendor_options(cfg, slot_id)
    if options is None:
        return open_vendor_control(slot, timezone=cfg.dock.timezone)
    return open_vendor_control(slot, timezone=cfg.dock.timezone, options=options)


def ums_slots(cfg: DockConfig, store: Store | None = None) -> dict[str, UmsSlot]:
    """The bays whose recorder is a mass-storage camera (driver "ums" or "auto"), each
    mounted through hardware/block_volumes.py where the dock may mount, else read through
    the FAT library (dock/devices/ums/attach.py)."""
    from dock.devices.ums.attach import UmsSlot
    from dock.storage.ums_table import UmsVolumeTable
    from hardware import block_volumes

    memory = UmsVolumeTable(store) if store is not None else None
    models = {m.name: m for m in cfg.models}
    mounts = os.path.join(cfg.dock.state_dir, "volumes")
    allow_erase = cfg.policy.erase_on_mass_storage
    slots = [s for s in cfg.slots if s.driver in ("ums", "auto") and s.model in models]
    return {
        s.id: UmsSlot(
            s.id,
            s.disk_path,
            models[str(s.model)],
            mounts,
            driver=s.driver,
            timezone=cfg.dock.timezone,
            allow_erase=allow_erase,
            mounter=block_volumes,
            memory=memory,
        )
        for s in slots
    }


def start_emulated_recorders(count: int, data_dir: str) -> EmulatedFleet:
    """Start ``count`` reference recorders on named links in ``data_dir``, with their
    control socket (hardware/emulator/fleet.py): the command line reaches the emulator
    only through this composition root."""
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
    from common.sqlite_schema import SchemaError
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
    except SchemaError as exc:  # a newer release's database (or not ours): said as it is
        raise StateDirError(str(exc), full=False) from exc
    except (OSError, sqlite3.Error) as exc:
        raise _state_error(state, exc) from exc
    return store, audit


def build_service(
    cfg: DockConfig,
    pin_factory: object | None = None,
    screen: Screen | None = None,
) -> DockService:
    """Wire a DockService from a DockConfig: database, audit log and key, clock,
    transports, and the LEDs, buzzer and screen when a GPIO pin factory is given
    (``dock run`` drives them through :func:`drive_feedback` once it is the daemon)."""
    from dock.daemon.offload_process import ProcessCopier
    from dock.daemon.parts import DockParts, SlotWiring
    from dock.daemon.service import DockService
    from dock.devices.clock import SYNC_CACHE_S, SystemClock, TrustedClock
    from dock.domain.interfaces import ClockSource
    from dock.evidence.offload import Offloader

    state = cfg.dock.state_dir
    store, audit = open_state(cfg)
    clock: ClockSource = (
        TrustedClock()
        if cfg.clock.source == "trusted"
        else SystemClock(cfg.clock.max_offset_s, cache_s=SYNC_CACHE_S)  # asked per slot
    )
    feedback = build_feedback(cfg, pin_factory, screen)
    offloader = Offloader(
        store,
        audit,
        cfg.dock.evidence_dir,
        organization=f"{cfg.dock.unit} ({cfg.dock.site})",
        erase_after_verify=cfg.policy.erase_on_device == "after_verify",
        scanner=command_scanner(cfg.scanner.command) if cfg.scanner.command else None,
        continuity_tolerance_s=cfg.policy.continuity_tolerance_s,
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
            open_vendor=lambda sid: _open_vendor(cfg, sid),
            ums=ums_slots(cfg, store),
        ),
        feedback=feedback,
        offloader=offloader,
        timezone=cfg.dock.timezone,
        min_pin_length=cfg.officers.min_pin_length,
        grant_expiry_s=cfg.dock.grant_expiry_s,
        handover_window_s=cfg.dock.handover_window_s,
        replication=build_replication(cfg, store, audit),
    )
    if parts.replication is not None:  # a new package is queued in its seal's own path
        offloader.after_seal = parts.replication.reconcile
    # each offload's bulk copy over the protocol in a worker process of its own (issue 15)
    offloader.copier = ProcessCopier(parts.slots)
    return DockService(parts)


def prewarm_offload_workers(svc: DockService, count: int) -> None:
    """The daemon (``dock run``): ``count`` offload workers started now and kept between
    offloads, so that a docking does not wait for an interpreter to start."""
    from dock.daemon.offload_process import ProcessCopier

    copier = svc.offloader.copier if svc.offloader is not None else None
    if isinstance(copier, ProcessCopier):
        copier.prewarm(count)


def build_replication(cfg: DockConfig, store: Any, audit: Any) -> Any:
    """The replication engine over every ``[[replication.target]]`` (None: none). A
    transport that cannot be loaded is kept as a target whose every attempt fails with
    that one line: the queue shows it, and nothing else of the dock stops."""
    if not cfg.replication.enabled:
        return None
    from zoneinfo import ZoneInfo

    from dock.domain.replica import ReplicaError
    from dock.evidence.replication import ReplicationEngine, UnusableTarget
    from dock.replicas.build import target_from_config

    targets: list[Any] = []
    readers: dict[str, Any] = {}  # a second session each: read-backs beside the uploads
    for t in cfg.replication.targets:
        try:
            targets.append(target_from_config(t))
            readers[t.name] = target_from_config(t)
        except ReplicaError as exc:
            log.error("replication target %s: %s", t.name, exc)
            targets.append(UnusableTarget(t.name, str(exc)))
    return ReplicationEngine(
        store, audit, cfg.dock.evidence_dir, cfg.dock.id, targets, cfg.replication,
        tz=ZoneInfo(cfg.dock.timezone), readers=readers,
    )  # fmt: skip


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


def drive_feedback(svc: DockService, cfg: DockConfig) -> None:
    """``dock run``: drive the configured LEDs, buzzer and screen through gpiozero's own
    choice of pin factory (lgpio on a Pi 5; ``GPIOZERO_PIN_FACTORY`` when set), in place
    of the service's console feedback. Called once this process is the dock's one daemon,
    so a second ``dock run`` never touches the pins. Without GPIO: one warning, the
    console screen, no LEDs."""
    svc.parts.feedback.close()
    svc.parts.feedback = build_feedback(cfg, gpio_pin_factory(cfg), None)


def uses_gpio(cfg: DockConfig) -> bool:
    """Whether the configuration wires anything to GPIO: a slot LED, the buzzer, the LCD."""
    leds = any(s.led_green is not None or s.led_red is not None for s in cfg.slots)
    return leds or cfg.gpio.buzzer is not None or cfg.gpio.screen == "hd44780"


def gpio_pin_factory(cfg: DockConfig) -> object | None:
    """gpiozero's pin factory for a configuration that uses GPIO, chosen as gpiozero
    chooses it (``GPIOZERO_PIN_FACTORY``, else lgpio, RPi.GPIO, pigpio, native); None,
    with one warning, where GPIO is not available, or when nothing is wired to it."""
    if not uses_gpio(cfg):
        return None
    from hardware.gpio import GpioUnavailable, open_pin_factory

    try:
        return open_pin_factory()
    except GpioUnavailable as exc:
        _gpio_unavailable(cfg, str(exc))
        return None


def _gpio_unavailable(cfg: DockConfig, why: str) -> None:
    """The one warning line for GPIO configured but not usable here."""
    what = ["the slot LEDs"] if any(s.led_green is not None for s in cfg.slots) else []
    what += ["the buzzer"] if cfg.gpio.buzzer is not None else []
    what += ["the LCD"] if cfg.gpio.screen == "hd44780" else []
    log.warning(
        "GPIO is configured but not available (%s): %s stay off and the screen's text goes "
        'to the console; see docs/OPERATIONS.md, "Wiring check"',
        why,
        " and ".join(what) or "nothing",
    )


def build_feedback(cfg: DockConfig, pin_factory: object | None, screen: Screen | None) -> Feedback:
    """The LEDs, buzzer and screen of the configuration through ``pin_factory`` (none
    without one), and the display that says what the screen shows. A pin that cannot
    be claimed (in use, no permission) leaves the dock without GPIO, with one warning."""
    from dock.daemon.display import Display
    from dock.daemon.parts import Feedback
    from hardware.screens import ConsoleScreen

    indicators: dict[str, SlotIndicator] = {}
    buzzer: Buzzer | None = None
    closers: list[Callable[[], None]] = []
    lcd_screen: Screen | None = None
    if pin_factory is not None:
        try:
            indicators, buzzer, lcd_screen = _gpio_devices(cfg, pin_factory, screen, closers)
        except Exception as exc:  # a driver's own error types: said in one line
            for close in reversed(closers):
                with contextlib.suppress(Exception):
                    close()
            closers, indicators, buzzer, lcd_screen = [], {}, None, None
            _gpio_unavailable(cfg, f"{type(exc).__name__}: {exc}".replace("\n", " "))
            pin_factory = None
        else:
            from hardware.gpio import factory_name

            log.info(
                "GPIO through %s: LEDs on %d slot(s), buzzer %s, screen %s",
                factory_name(pin_factory),
                len(indicators),
                f"on GPIO {cfg.gpio.buzzer}" if buzzer is not None else "none",
                "HD44780" if lcd_screen is not None else "console",
            )
    shown = screen or lcd_screen or ConsoleScreen()
    feedback = Feedback(
        cfg.dock.locale, indicators, shown, buzzer, pin_factory=pin_factory, closers=closers
    )
    if cfg.dock.locale.startswith("zh") and not getattr(shown, "shows_chinese", True):
        feedback.screen_locale = "en"  # an HD44780 cannot draw Chinese (a config warning)
    feedback.display = Display(shown, lambda: feedback.screen_locale or feedback.locale)
    return feedback


def _gpio_devices(
    cfg: DockConfig, pin_factory: object, screen: Screen | None, closers: list[Callable[[], None]]
) -> tuple[dict[str, SlotIndicator], Buzzer | None, Screen | None]:
    """Every GPIO device of the configuration; each one's close in ``closers`` as built."""
    from hardware.indicators import GpioBuzzer, GpioSlotIndicator
    from hardware.screens import Hd44780Screen

    indicators: dict[str, SlotIndicator] = {}
    for slot in cfg.slots:
        if slot.led_green is not None and slot.led_red is not None:
            led = GpioSlotIndicator(slot.led_green, slot.led_red, pin_factory)
            closers.append(led.close)
            indicators[slot.id] = led
    buzzer = None
    if cfg.gpio.buzzer is not None:
        buzzer = GpioBuzzer(cfg.gpio.buzzer, pin_factory)
        closers.append(buzzer.close)
    lcd = cfg.gpio.hd44780
    lcd_screen = None
    if screen is None and cfg.gpio.screen == "hd44780" and lcd is not None:
        lcd_screen = Hd44780Screen(
            lcd.rs, lcd.e, lcd.d4, lcd.d5, lcd.d6, lcd.d7, pin_factory,
            cols=lcd.columns, rows=lcd.rows,
        )  # fmt: skip
        closers.append(lcd_screen.close)
    return indicators, buzzer, lcd_screen


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


def badge_source(
    reader: str, baudrate: int = 9600, device: str | None = None
) -> Callable[[], str | None] | None:
    """A function returning the next badge read (or None within ~0.2 s), or None when
    the dock has no badge reader (``reader`` and ``device`` as in the configuration's
    [badge]). A keyboard-wedge reader is read from its input device, grabbed; without a
    device (``dock run --badge-reader keyboard`` at a terminal) from standard input."""
    if reader == "none":
        return None
    if reader == "keyboard" and device is not None:
        from hardware.badge_reader import EvdevBadgeReader

        return EvdevBadgeReader(device).read
    if reader == "keyboard":
        return _stdin_badges()
    from hardware.badge_reader import SerialBadgeReader

    return SerialBadgeReader(reader, baudrate).read


def _stdin_badges() -> Callable[[], str | None]:
    import queue
    import threading

    from hardware.badge_reader import keyboard_badges

    q: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for badge in keyboard_badges():
            q.put(badge)
        log.warning(
            "standard input has ended: no more badges from the keyboard (under systemd it "
            "is /dev/null: give the reader's input device as [badge] device)"
        )

    threading.Thread(target=pump, name="badge-keyboard", daemon=True).start()

    def next_keyboard() -> str | None:
        try:
            return q.get(timeout=0.2)
        except queue.Empty:
            return None

    return next_keyboard


def replication_reading(
    cfg: DockConfig, svc: DockService
) -> Callable[[float], dict[str, Any]] | None:
    """What health says of replication at a time, or None when no target is configured."""
    if not cfg.replication.enabled:
        return None
    from dock.reporting.health import replication_health
    from dock.services.replication_status import replication_summary

    names = [t.name for t in cfg.replication.targets]
    hours = cfg.replication.deadline_hours
    return lambda now: replication_health(replication_summary(svc.store, now, names), hours)


def build_reporter(cfg: DockConfig, svc: DockService) -> Reporter | None:
    """The reporter to headquarters over MQTT, or None when ``[mqtt]`` has no host."""
    if not cfg.mqtt.enabled:
        return None
    import fcntl
    import logging

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

    from common.version import __version__ as software  # also right in the .deb (no dist-info)
    from dock.config.load import config_hash
    from dock.reporting.outbox import Outbox
    from dock.reporting.paho_link import PahoLink
    from dock.reporting.reporter import Reporter

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
        replication=replication_reading(cfg, svc),
    )
    reporter.lock = lock  # held for as long as the reporter lives
    return reporter
