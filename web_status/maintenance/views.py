"""The maintenance pages: the device list with firmware and slot counters, one device's
history, and the actions (flag/repair, self-test, indicator test), each a request to the
daemon as the logged-in person (``DockView.act``), so each is audited with them."""

from __future__ import annotations

import time
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from dock.domain.audit_kinds import AuditKind
from dock.domain.roles import ADMIN, MAINTENANCE
from dock.services.device_care import due_at, local_date
from dock.storage.audit.reader import AuditFilter, AuditQueryTooSlow, AuditReader
from dock.storage.maintenance_tables import SLOT_ERROR_KINDS, MaintenanceReads, SlotErrorTable
from web_status.auth import dock, person, require_role
from web_status.context import DaemonError, DaemonUnavailable
from web_status.i18n import CATALOGUE, fmt_time, t
from web_status.maintenance import bp
from web_status.maintenance.plots import Series, series, svg

ROLES = (MAINTENANCE, ADMIN)
#: Longest note taken with a flag.
NOTE_MAX = 500
#: Audit kinds shown as a device's faults and refusals (a ``checks`` entry only when
#: something failed).
FAULT_KINDS = frozenset(
    {
        AuditKind.CHECKS, AuditKind.CLOCK_NOT_SET, AuditKind.OFFLOAD_FAILED,
        AuditKind.OFFLOAD_REFUSED, AuditKind.MASS_STORAGE_REFUSED, AuditKind.SCANNER_HIT,
        AuditKind.ARCHIVE_DAMAGED, AuditKind.ERASE_REFUSED, AuditKind.SEAL_FAILED,
        AuditKind.DEVICE_FLAG, AuditKind.SLOT_TEST, AuditKind.EVENT_LOG_PARTLY_READ,
        AuditKind.DEADLINE_OVERDUE,
    }
)  # fmt: skip


def reads() -> MaintenanceReads:
    return MaintenanceReads(dock().store)


def firmware_rows() -> list[dict[str, Any]]:
    """Model, firmware, how many, and whether the policy allows it."""
    allowed = tuple(dock().cfg.policy.allowed_firmware)
    rows = []
    for r in reads().firmware_inventory():
        verdict = "any" if not allowed else ("yes" if r["firmware"] in allowed else "no")
        rows.append({**r, "allowed": verdict})
    return rows


def state_name(code: Any) -> str:
    """A slot state code from the daemon in the page's language (the start page's words:
    ``home.state.*``); an unknown code as it is, none as "-"."""
    if not code:
        return "-"
    key = f"home.state.{code}"
    return t(key) if key in CATALOGUE else str(code)


def slot_rows() -> tuple[list[dict[str, Any]], bool]:
    """Each configured slot with its state (from the daemon, when it answers) and its
    error counters; and whether the daemon answered."""
    try:
        report = dock().status()
        states = {s.get("slot"): s for s in report.get("slots", [])}
        up = True
    except (DaemonUnavailable, DaemonError):
        states, up = {}, False
    errors = SlotErrorTable(dock().store).by_slot()
    rows = []
    for slot in dock().cfg.slots:
        s = states.get(slot.id, {})
        e = errors.get(slot.id)
        rows.append(
            {
                "slot": slot.id,
                "state": s.get("state"),
                "state_name": state_name(s.get("state")),
                "device": s.get("device"),
                "counts": {k: (e.counts.get(k, 0) if e else 0) for k in SLOT_ERROR_KINDS},
                "total": e.total if e else 0,
                "last_at": e.last_at if e else None,
                "last_message": e.last_message if e else "",
            }
        )
    return rows, up


def due_of(d: Any) -> tuple[str | None, bool]:
    """A recorder's maintenance due date (local, ISO) and whether it has come (000 §14.1)."""
    due = due_at(d, dock().cfg.policy)
    if due is None:
        return None, False
    tz = current_app.config.get("DOCK_TIMEZONE", "Asia/Shanghai")
    return local_date(due, tz), time.time() >= due


def device_rows() -> list[dict[str, Any]]:
    last = reads().last_status()
    out = []
    for d in dock().store.devices():
        s = last.get(d.serial, {})
        due, overdue = due_of(d)
        out.append(
            {
                "serial": d.serial, "model": d.model, "firmware": d.firmware,
                "lost": d.lost, "maintenance": d.maintenance, "note": d.note,
                "due": due, "overdue": overdue,
                "battery_percent": s.get("battery_percent"),
                "health": s.get("battery_health_percent"),
                "cycles": s.get("battery_cycles"),
                "temp": s.get("battery_temp_c"),
                "at": s.get("at"),
            }
        )  # fmt: skip
    return out


@bp.get("/")
@require_role(*ROLES)
def index() -> str:
    slots, daemon_up = slot_rows()
    return render_template(
        "maintenance/index.html",
        devices=device_rows(),
        firmware=firmware_rows(),
        slots=slots,
        daemon_up=daemon_up,
        error_kinds=SLOT_ERROR_KINDS,
    )


def history_series(serial: str) -> tuple[list[Series], list[dict[str, Any]]]:
    """The four plots of one device, and the rows they come from."""
    rows = reads().status_series(serial)
    return [
        Series("health", t("maintenance.health"), "%", series(rows, "battery_health_percent"),
               0, 100),
        Series("cycles", t("maintenance.cycles"), "", series(rows, "battery_cycles"), 0, None),
        Series("temperature", t("maintenance.temperature"), "°C",
               series(rows, "battery_temp_c")),
        Series("drift", t("maintenance.drift"), "s", series(rows, "drift_before_s")),
        Series("battery", t("maintenance.battery"), "%", series(rows, "battery_percent"), 0, 100),
    ], rows  # fmt: skip


def faults(serial: str) -> tuple[list[Any], str | None]:
    """The device's fault and refusal entries (newest first), from its newest 500."""
    reader = AuditReader(dock().audit_db_path)
    try:
        page = reader.page(AuditFilter(subject=serial), limit=200)
    except AuditQueryTooSlow as exc:
        return [], str(exc)
    found = []
    for e in page.entries:
        if e.kind not in FAULT_KINDS:
            continue
        if e.kind == AuditKind.CHECKS and e.data.get("passed", True):
            continue
        found.append(e)
    return found, None


@bp.get("/device/<serial>")
@require_role(*ROLES)
def device(serial: str) -> str:
    found = dock().store.device(serial)
    if found is None:
        abort(404)
    plots, rows = history_series(serial)
    when = fmt_time
    entries, slow = faults(serial)
    due, overdue = due_of(found)
    return render_template(
        "maintenance/device.html",
        d=found,
        due=due,
        overdue=overdue,
        plots=[
            (f"{p.title} ({p.unit})" if p.unit else p.title, svg(p, when, t("maintenance.no_data")))
            for p in plots
        ],
        readings=len(rows),
        first=rows[0]["at"] if rows else None,
        last=rows[-1]["at"] if rows else None,
        event_reads=reads().event_log_reads(serial),
        gaps=reads().gaps(serial),
        faults=entries,
        faults_slow=slow,
    )


def _act(request_name: str, args: dict[str, Any]) -> Any:
    """Ask the daemon as the logged-in person; None (and a flashed refusal) when it
    refuses or does not answer."""
    try:
        return dock().act(person().token, request_name, args)
    except DaemonUnavailable:
        flash(t("maintenance.daemon_down"), "error")
    except DaemonError as exc:
        flash(t("maintenance.refused", why=exc.message), "error")
    return None


@bp.post("/device/<serial>/flag")
@require_role(*ROLES)
def flag(serial: str) -> Response:
    if dock().store.device(serial) is None:
        abort(404)
    action = request.form.get("action")
    note = request.form.get("note", "").strip()
    if action not in ("maintenance", "repaired"):
        abort(400)
    if len(note) > NOTE_MAX:
        flash(t("maintenance.note_too_long"), "error")
    else:
        args: dict[str, Any] = {"serial": serial, "maintenance": action == "maintenance"}
        if note:
            args["note"] = note
        if _act("device.flag", args) is not None:
            done = "now_maintenance" if action == "maintenance" else "now_repaired"
            what = t(f"maintenance.{done}")
            flash(t("maintenance.flagged", serial=serial, what=what), "ok")
    return redirect(url_for("maintenance.device", serial=serial))


@bp.post("/device/<serial>/due")
@require_role(*ROLES)
def maintenance_due(serial: str) -> Response:
    """Set or clear when the recorder's maintenance falls due (000 §14.1; 002 art.22)."""
    if dock().store.device(serial) is None:
        abort(404)
    due = request.form.get("due", "").strip()[:32] or "none"
    done = _act("device.maintenance_due", {"serial": serial, "due": due})
    if done is not None:
        said = t("maintenance.due_cleared") if done["due"] is None else done["due"]
        flash(t("maintenance.due_set", serial=serial, due=said), "ok")
    return redirect(url_for("maintenance.device", serial=serial))


def _known_slot(slot: str) -> None:
    if slot not in {s.id for s in dock().cfg.slots}:
        abort(404)


def self_test_message(r: dict[str, Any]) -> str:
    if not r.get("serial"):
        return t("maintenance.self_test_empty", slot=r.get("slot"), error=r.get("error") or "-")
    passed = r.get("self_test_passed")
    selftest = t(
        "maintenance.not_run" if passed is None
        else ("maintenance.passed" if passed else "maintenance.failed")
    )  # fmt: skip
    failed = [f.get("code", "") for f in r.get("failed") or []]
    checks = (
        t("maintenance.checks_failed", codes=", ".join(failed))
        if failed else t("maintenance.checks_ok")
    )  # fmt: skip
    return t(
        "maintenance.self_test_done", slot=r.get("slot"), serial=r["serial"],
        selftest=selftest, checks=checks,
    )  # fmt: skip


@bp.post("/slot/<slot>/self-test")
@require_role(*ROLES)
def self_test(slot: str) -> Response:
    _known_slot(slot)
    result = _act("slot.self_test", {"slot": slot})
    if isinstance(result, dict):
        ok = result.get("ready") and result.get("self_test_passed") is not False
        flash(self_test_message(result), "ok" if ok else "error")
    return redirect(url_for("maintenance.index") + "#slots")


def indicator_message(r: dict[str, Any]) -> str:
    if not r.get("led"):
        return t("maintenance.indicator_no_led", slot=r.get("slot"))
    return t("maintenance.indicator_started", slot=r.get("slot"), n=len(r.get("patterns") or []))


@bp.post("/slot/<slot>/indicator-test")
@require_role(*ROLES)
def indicator_test(slot: str) -> Response:
    _known_slot(slot)
    result = _act("slot.indicator_test", {"slot": slot})
    if isinstance(result, dict):
        flash(indicator_message(result), "ok")
    return redirect(url_for("maintenance.index") + "#slots")
