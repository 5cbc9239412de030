"""The audit viewer: filtered pages of the log (read-only, by seq), the chain's
verification (asked of the daemon), and the signed export (the services' ``audit.export``
request, run by the daemon as the logged-in person; downloaded by an id the site made,
never a path a browser sent)."""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import zoneinfo
from typing import Any

from flask import abort, current_app, render_template, request, send_from_directory, url_for
from werkzeug.wrappers import Response

from dock.domain.audit_kinds import AuditKind
from dock.domain.roles import ADMIN, SUPERVISOR
from dock.storage.audit.reader import AuditFilter, AuditPage, AuditQueryTooSlow, AuditReader
from web_status.audit import bp, verdict_words
from web_status.auth import dock, person, require_role
from web_status.context import DaemonError, DaemonUnavailable
from web_status.i18n import t

ROLES = (SUPERVISOR, ADMIN)
PAGE = 50
#: Longest filter value read from the query string.
FIELD_MAX = 200
#: An export's id: made here, the only thing a browser sends back to download it.
EXPORT_ID = re.compile(r"[0-9a-f]{32}")
#: Where the daemon writes the site's exports, in the state directory.
EXPORT_DIR = os.path.join("exports", "audit")


@bp.app_template_filter("audit_json")
def audit_json(data: Any) -> str:
    """An entry's data as a person reads it (keys sorted, text as written); Jinja escapes
    it, so recorder text stays text."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)


class BadFilter(ValueError):
    """A filter value that cannot be used (said to the person in their language)."""


def local_to_utc(text: str, tz: str) -> str | None:
    """``2026-05-01 08:00`` (or ``2026-05-01T08:00``, or a date) in the dock's zone as the
    stored UTC text; None for empty; BadFilter for anything else."""
    text = text.strip()
    if not text:
        return None
    try:
        d = datetime.datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise BadFilter(t("audit.bad_time", value=text[:40])) from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=zoneinfo.ZoneInfo(tz))
    u = d.astimezone(datetime.UTC)
    return f"{u:%Y-%m-%dT%H:%M:%S}.{u.microsecond // 1000:03d}Z"


def read_filter(args: Any) -> tuple[AuditFilter, dict[str, str]]:
    """The filter from the query string (each value bounded), and the values as given."""
    given = {k: str(args.get(k, ""))[:FIELD_MAX].strip() for k in
             ("kind", "actor", "subject", "from", "to")}  # fmt: skip
    if given["kind"] and given["kind"] not in {k.value for k in AuditKind}:
        given["kind"] = ""
    tz = current_app.config.get("DOCK_TIMEZONE", "Asia/Shanghai")
    where = AuditFilter(
        kind=given["kind"] or None,
        actor=given["actor"] or None,
        subject=given["subject"] or None,
        time_from=local_to_utc(given["from"], tz),
        time_to=local_to_utc(given["to"], tz),
    )
    return where, given


def read_before(args: Any) -> int | None:
    raw = str(args.get("before", ""))
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


def reader() -> AuditReader:
    return AuditReader(dock().audit_db_path)


def page_of(where: AuditFilter, before: int | None, limit: int = PAGE) -> AuditPage:
    return reader().page(where, before=before, limit=limit)


def _render(verdict: dict[str, Any] | None = None, export: dict[str, Any] | None = None,
            problem: str | None = None, status: int = 200) -> tuple[str, int]:  # fmt: skip
    error = problem
    given: dict[str, str] = {}
    page: AuditPage | None = None
    try:
        where, given = read_filter(request.args)
        page = page_of(where, read_before(request.args))
    except BadFilter as exc:
        error, status = str(exc), 400
    except AuditQueryTooSlow:
        error = t("audit.slow")
    query = {k: v for k, v in given.items() if v}
    return render_template(
        "audit/index.html",
        page=page,
        given=given,
        query=query,
        kinds=[k.value for k in AuditKind],
        per_page=PAGE,
        error=error,
        verdict=verdict_words.shown(verdict),  # in the page's language
        export=export,
        bad_seq=read_before({"before": request.args.get("bad", "")}),
    ), status


@bp.get("/")
@require_role(*ROLES)
def index() -> tuple[str, int]:
    return _render()


def verify_report() -> dict[str, Any]:
    """The daemon's verification of the chain (DaemonUnavailable/DaemonError)."""
    return dock().link.request("audit_verify", {})


@bp.post("/verify")
@require_role(*ROLES)
def verify() -> tuple[str, int]:
    try:
        verdict = verify_report()
    except (DaemonUnavailable, DaemonError):
        return _render(problem=t("audit.daemon_down"), status=503)
    return _render(verdict=verdict)


def export_dir() -> str:
    return os.path.join(dock().cfg.dock.state_dir, EXPORT_DIR)


def run_export() -> dict[str, Any]:
    """Ask the daemon to write a signed export as the logged-in person; its summary
    with the id to download it by."""
    folder = export_dir()
    os.makedirs(folder, mode=0o750, exist_ok=True)
    export_id = secrets.token_hex(16)
    path = os.path.join(folder, f"{export_id}.jsonl")
    result = dock().act(person().token, "audit.export", {"path": path})
    return {
        "id": export_id,
        "entries": result.get("entries"),
        "checkpoints": result.get("checkpoints"),
        "head_hash": result.get("head_hash"),
        "download": url_for("audit.download", export_id=export_id),
    }


@bp.post("/export")
@require_role(*ROLES)
def export() -> tuple[str, int]:
    try:
        done = run_export()
    except DaemonUnavailable:
        return _render(problem=t("audit.daemon_down"), status=503)
    except DaemonError as exc:
        return _render(problem=t("audit.export_failed", why=exc.message), status=400)
    except OSError as exc:
        return _render(problem=t("audit.export_failed", why=exc.strerror or "I/O"), status=500)
    return _render(export=done)


@bp.get("/exports/<export_id>")
@require_role(*ROLES)
def download(export_id: str) -> Response:
    """The export file by its id (32 hex digits, made by this site): never a path."""
    if not EXPORT_ID.fullmatch(export_id):
        abort(404)
    name = f"{export_id}.jsonl"
    if not os.path.isfile(os.path.join(export_dir(), name)):
        abort(404)
    return send_from_directory(
        export_dir(),
        name,
        as_attachment=True,
        download_name=f"audit-{dock().cfg.dock.id}-{export_id[:8]}.jsonl",
        mimetype="application/x-ndjson",
    )
