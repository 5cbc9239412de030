"""The statistics page and its CSV exports: numbers from dock.services.stats, the same
the API answers, in tables and server-drawn SVG charts."""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Response, abort, render_template, request
from markupsafe import Markup

from dock.services.errors import RequestError
from dock.services.stats import TABLES, StatsUnavailable, statistics
from web_status.auth import dock, require_role
from web_status.i18n import CATALOGUE, t
from web_status.stats import ROLES, bp
from web_status.stats.charts import bar_chart, csv_text


def compute(tables: tuple[str, ...] = TABLES) -> dict[str, Any]:
    """The tables asked for, over the period and grouping in the query string.
    RequestError (a bad period or grouping), StatsUnavailable (a database unreadable)."""
    view = dock()
    cfg = view.cfg
    args = request.args
    return statistics(
        os.path.join(cfg.dock.state_dir, "dock.db"),
        view.audit_db_path,
        cfg.policy,
        cfg.dock.timezone,
        time.time(),
        first=args.get("from") or None,
        last=args.get("to") or None,
        by=args.get("by") or None,
        tables=tables,
    )


def reason_label(code: str) -> str:
    """A refusal's reason in the page's language; a code the site has no words for
    is shown as stored (escaped by the template)."""
    key = f"stats.r.{code}"
    return t(key) if key in CATALOGUE else code


def key_label(row: dict[str, Any], by: str) -> str:
    """Who a row is about, for a chart: 'name (number)', or the unit."""
    if by == "unit":
        return row["unit"] if row.get("unit") is not None else t("stats.no_unit")
    if row.get("officer") is None:
        return t("stats.nobody")
    return f"{row['name']} ({row['officer']})"


def _desc(bars: list[tuple[str, float]]) -> list[tuple[str, float]]:
    return sorted((b for b in bars if b[1]), key=lambda b: (-b[1], b[0]))


def charts(data: dict[str, Any]) -> dict[str, Markup]:
    """One chart per table, from its rows."""
    by, tables = data["by"], data["tables"]
    more = t("stats.more", n="{n}")
    out: dict[str, Markup] = {}
    if "checkouts" in tables:
        rows = tables["checkouts"]["rows"]
        bars = _desc([(key_label(r, by), r["checkouts"]) for r in rows])
        out["checkouts"] = bar_chart(t("stats.t.checkouts.chart"), bars, more=more)
    if "refusals" in tables:
        per_reason: dict[str, int] = {}
        for r in tables["refusals"]["rows"]:
            label = reason_label(r["reason"])
            per_reason[label] = per_reason.get(label, 0) + r["count"]
        bars = _desc(list(per_reason.items()))
        out["refusals"] = bar_chart(t("stats.t.refusals"), bars, more=more)
    if "late_offloads" in tables:
        rows = tables["late_offloads"]["rows"]
        bars = _desc([(key_label(r, by), r["late"] + r["overdue"]) for r in rows])
        out["late_offloads"] = bar_chart(t("stats.t.late_offloads.chart"), bars, more=more)
    if "gaps" in tables:
        bars = _desc([(key_label(r, by), r["open"]) for r in tables["gaps"]["rows"]])
        out["gaps"] = bar_chart(t("stats.t.gaps.chart"), bars, more=more)
    if "recorders" in tables:
        rows = tables["recorders"]["rows"]
        bars = [
            (
                t("stats.scope.dock") if r["scope"] == "dock" else key_label(r, "unit"),
                r["per_officer"] or 0.0,
            )
            for r in rows
        ]
        minimum = rows[0]["minimum"] if rows else 0.0
        mark = (minimum, t("stats.minimum_line", minimum=f"{minimum:g}"))
        out["recorders"] = bar_chart(t("stats.t.recorders.chart"), bars, more=more, marker=mark)
    return out


def deadline_words() -> str:
    policy = dock().cfg.policy
    if policy.offload_deadline_working_days is not None:
        return t("stats.deadline.days", n=policy.offload_deadline_working_days)
    return t("stats.deadline.hours", n=f"{policy.offload_deadline_hours:g}")


@bp.get("/stats")
@require_role(*ROLES)
def index() -> tuple[str, int]:
    """Every table for the period asked for (default: the last 30 days, per officer)."""
    error, data, status = None, None, 200
    try:
        data = compute()
    except RequestError as exc:
        error, status = t("stats.bad_request", why=str(exc)), 400
    except StatsUnavailable as exc:
        error, status = t("stats.unavailable", why=str(exc)), 503
    page = render_template(
        "stats/index.html",
        data=data,
        error=error,
        charts=charts(data) if data else {},
        tables=TABLES,
        reason_label=reason_label,
        deadline=deadline_words(),
        asked={k: request.args.get(k, "")[:20] for k in ("from", "to", "by")},
        zone=dock().cfg.dock.timezone,
    )
    return page, status


@bp.get("/stats/<table>.csv")
@require_role(*ROLES)
def export_csv(table: str) -> Response:
    """One table as CSV (UTF-8 with a byte-order mark, so a spreadsheet reads Chinese)."""
    if table not in TABLES:
        abort(404)
    try:
        data = compute((table,))
    except RequestError:
        abort(400)
    except StatsUnavailable:
        abort(503)
    found = data["tables"][table]
    period = data["period"]
    name = f"stats-{table}-{data['by']}-{period['from']}-{period['to']}.csv"
    body = "\ufeff" + csv_text(found["columns"], found["rows"])
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
