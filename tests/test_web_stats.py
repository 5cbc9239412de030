"""Statistics (issue 12; REQUIREMENTS §9, §2): per unit and officer over a period, from the
dock database and the audit log, on the page, as CSV and over /api/v1/stats/.

The numbers are checked against counts the test makes itself from the audit log of a
scripted day (check-outs, a refusal, a late offload, a gap), never against the code that
made them.
"""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dock.domain.audit_kinds import AuditKind
from dock.domain.policy import PRESETS
from dock.evidence.deadlines import deadline_report
from dock.services.errors import RequestError
from dock.services.stats import MAX_DAYS, period, statistics
from dock.storage import stats_tables
from dock.storage.audit import AuditLog
from dock.storage.stats_tables import StatsReader, StatsUnavailable
from dock.storage.store import Store

from .conftest import PIN

TZ = "Asia/Shanghai"


def _paths(svc: Any) -> tuple[str, str]:
    return svc.store.path, svc.audit.db_path


def _today(now: float) -> str:
    return datetime.fromtimestamp(now, ZoneInfo(TZ)).date().isoformat()


# --------------------------------------------------------------------------- a scripted day


def _scripted_day(make_dock: Any) -> Any:
    """Two officers of one unit and one of another; a check-out, a refusal (the same
    officer again), a battery cut in the footage (a gap), a return offloaded after its
    deadline (1.8 s here), a second officer's check-out, a check-out by a number not on
    record, and a hostile unit name."""
    from .test_gaps import _film_incidents

    svc, recs = make_dock(
        {"battery_percent": 95.0},
        {"battery_percent": 95.0},
        policy={"offload_deadline_hours": 0.0005},
    )
    svc.store.add_officer("2001", "Sun Li", '=HYPERLINK("x")', PIN)
    assert svc.checkout("1001", PIN).granted
    assert not svc.checkout("1001", PIN).granted  # officer_has_device
    assert not svc.checkout("7777", PIN).granted  # not on record
    slot = next(s for s in svc.views if svc.store.awaiting_takeaway(s) is not None)
    svc.taken(slot)
    serial = svc.views[slot].serial
    model = next(r.model for r in recs if r.model.serial == serial)
    _film_incidents(model, 3, battery_cut_at=1)
    offloader, svc.offloader = svc.offloader, None
    svc.inspect(slot)  # returned: the gap is opened; the offload waits
    time.sleep(2.0)  # past the 1.8 s deadline
    svc.offloader = offloader
    assert svc.offload(slot).ok  # done, late
    svc.sweep()
    assert svc.checkout("2001", PIN).granted
    return svc


def _from_audit(svc: Any) -> dict[str, Any]:
    """The day's numbers, counted from the audit log alone."""
    entries = list(svc.audit.entries())
    by_kind: dict[str, list[Any]] = {}
    for e in entries:
        by_kind.setdefault(e.kind, []).append(e)
    checkouts: dict[str, int] = {}
    for e in by_kind.get("checkout", []):
        checkouts[e.actor] = checkouts.get(e.actor, 0) + 1
    refused: dict[str, int] = {}
    reasons: dict[tuple[str, str], int] = {}
    for e in by_kind.get("checkout_refused", []):
        refused[e.actor] = refused.get(e.actor, 0) + 1
        for code in e.data["reasons"]:
            reasons[(e.actor, code)] = reasons.get((e.actor, code), 0) + 1
    gaps: dict[str, int] = {}
    for e in by_kind.get("gap_opened", []):
        who = e.data.get("officer") or e.data.get("officer_id")
        gaps[str(who)] = gaps.get(str(who), 0) + 1
    # Late: the check-in's time against the last archived file of that serial after it.
    late: dict[str, int] = {}
    deadline = 0.0005 * 3600
    for c in by_kind.get("checkin", []):
        t_in = _t(c.time)
        files = [_t(f.time) for f in by_kind.get("offload_file", []) if f.subject == c.subject]
        after = [t for t in files if t >= t_in]
        if after and max(after) - t_in > deadline:
            officer = c.data.get("officer") or c.actor
            late[officer] = late.get(officer, 0) + 1
    return {
        "checkouts": checkouts,
        "refused": refused,
        "reasons": reasons,
        "gaps": gaps,
        "late": late,
    }


def _t(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def day(make_dock: Any) -> Any:
    return _scripted_day(make_dock)


def test_the_tables_agree_with_the_audit_log_of_the_day(day: Any) -> None:
    """002 art.9; 004 att.3 art.16: the statistics (check-outs per officer and unit, refusals
    and their reasons, late offloads, gaps, the ratio) agree with the audit log of the day."""
    svc = day
    want = _from_audit(svc)
    now = time.time()
    dock_db, audit_db = _paths(svc)
    got = statistics(dock_db, audit_db, svc.policy, TZ, now, first=_today(now))["tables"]

    by_officer = {r["officer"]: r for r in got["checkouts"]["rows"]}
    assert {k: r["checkouts"] for k, r in by_officer.items() if r["checkouts"]} == (
        want["checkouts"]
    )
    assert want["checkouts"] == {"1001": 1, "2001": 1}
    # The stranger's number is not on record: counted, under nobody.
    assert {k: r["refused"] for k, r in by_officer.items() if r["refused"]} == {
        ("7777" if k is None else k): n for k, n in want["refused"].items() if k != "7777"
    } | {None: want["refused"]["7777"]}
    reasons = {(r["officer"], r["reason"]): r["count"] for r in got["refusals"]["rows"]}
    assert reasons == {
        (None if who == "7777" else who, code): n for (who, code), n in want["reasons"].items()
    }
    assert ("1001", "officer_has_device") in reasons

    late = {r["officer"]: r for r in got["late_offloads"]["rows"]}
    assert {k: r["late"] for k, r in late.items() if r["late"]} == want["late"] == {"1001": 1}
    assert late["1001"]["returns"] == 1 and late["1001"]["overdue"] == 0

    gaps = {r["officer"]: r for r in got["gaps"]["rows"]}
    assert {k: r["opened"] for k, r in gaps.items()} == want["gaps"] == {"1001": 1}
    assert gaps["1001"]["open"] == 1 and gaps["1001"]["closed"] == 0

    # Per unit: the same numbers summed over each unit's officers.
    units = statistics(dock_db, audit_db, svc.policy, TZ, now, by="unit")["tables"]
    per_unit = {r["unit"]: r["checkouts"] for r in units["checkouts"]["rows"]}
    assert per_unit == {"Traffic 3": 1, '=HYPERLINK("x")': 1, None: 0}
    ratio = units["recorders"]["rows"]
    assert ratio[0] == {
        "scope": "dock", "unit": None, "officers": 4, "recorders": 2, "per_officer": 0.5,
        "minimum": 0.5, "meets": True,
    }  # fmt: skip


def test_late_offloads_follow_the_docks_own_deadline_report(day: Any) -> None:
    """002 art.9; 004 att.3 art.16: the statistics' rule for late offloads and
    dock.evidence.deadlines.deadline_report's cannot drift."""
    svc = day
    dock_db, audit_db = _paths(svc)
    for now in (time.time(), time.time() + 3600):
        report = deadline_report(svc.store, svc.policy, TZ, now)
        mapped = {"done": "on_time", "done_late": "late", "overdue": "overdue"}
        want: dict[str, int] = {}
        for r in report:
            if r["away"]:  # a recorder still away is no return (late_offloads counts returns)
                continue
            state = mapped.get(r["state"], "pending")
            want[state] = want.get(state, 0) + 1
        table = statistics(dock_db, audit_db, svc.policy, TZ, now, by="unit")["tables"]
        got: dict[str, int] = {}
        for row in table["late_offloads"]["rows"]:
            for state in ("on_time", "late", "overdue", "pending"):
                if row[state]:
                    got[state] = got.get(state, 0) + row[state]
        assert got == want


# --------------------------------------------------------------------------- the reads


def test_periods_are_checked() -> None:
    now = datetime(2026, 3, 10, 12, tzinfo=ZoneInfo(TZ)).timestamp()
    p = period(None, None, TZ, now)
    assert p.as_dict() == {"from": "2026-02-09", "to": "2026-03-10", "zone": TZ}
    assert p.end - p.start == 30 * 86400
    one = period("2026-03-10", "2026-03-10", TZ, now)
    assert one.start == datetime(2026, 3, 10, tzinfo=ZoneInfo(TZ)).timestamp()
    for first, last in (
        ("2026-03-11", "2026-03-10"),
        ("2026-13-01", None),
        ("20260301", None),
        ("2026-03-01\n", None),
        ("2024-01-01", "2026-03-10"),
    ):
        with pytest.raises(RequestError):
            period(first, last, TZ, now)
    longest = period("2025-02-05", "2026-03-11", TZ, now)  # MAX_DAYS, both ends counted
    assert round((longest.end - longest.start) / 86400) == MAX_DAYS == 400
    with pytest.raises(RequestError):
        period("2025-02-04", "2026-03-11", TZ, now)  # a day more


def _store_and_log(tmp_path: Any) -> tuple[Store, AuditLog]:
    store = Store(str(tmp_path / "dock.db"))
    audit = AuditLog(str(tmp_path / "audit.db"), Ed25519PrivateKey.generate(), "DOCK-T")
    return store, audit


def test_reads_never_write_and_are_cut_at_the_row_cap(tmp_path: Any, monkeypatch: Any) -> None:
    store, audit = _store_and_log(tmp_path)
    for i in range(7):
        audit.append(AuditKind.CHECKOUT_REFUSED, f"9{i:03d}", "", {"reasons": ["officer_unknown"]})
    monkeypatch.setattr(stats_tables, "ROW_CAP", 5)
    with StatsReader(store.path, audit.db_path) as reader:
        rows, cut = reader.refusals(0, time.time() + 10)
        assert len(rows) == 5 and cut
        reader.officers()
        assert reader._dock is not None
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._dock.conn.execute("DELETE FROM officers")
    with pytest.raises(StatsUnavailable):
        StatsReader(str(tmp_path / "nothing.db"), audit.db_path).officers()
    assert not os.path.exists(tmp_path / "nothing.db")


def test_every_query_is_served_by_an_index(tmp_path: Any) -> None:
    """A year of a busy dock costs the rows of the period: no query scans a whole table
    of custody, archive, explanation items or audit entries."""
    store, audit = _store_and_log(tmp_path)
    big = ("custody", "archive", "explanation_items", "entries")
    for path, queries in (
        (store.path, ("checkouts", "returns", "gaps", "recorders_used")),
        (audit.db_path, ("refusals",)),
    ):
        conn = sqlite3.connect(path)
        for name in queries:
            sql, params = _captured(getattr(StatsReader, name))
            detail = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
            scans = [d for d in detail if d.startswith("SCAN") and d.split()[1] in big]
            assert scans == [], (name, detail)
        conn.close()


def _captured(method: Any) -> tuple[str, tuple[Any, ...]]:
    """The SQL and parameters a StatsReader method would run."""
    seen: list[tuple[str, tuple[Any, ...]]] = []

    class Fake:
        def _q(
            self, which: str, sql: str, params: tuple[Any, ...], cap: int | None = None
        ) -> tuple[list[Any], bool]:
            seen.append((sql, (*params, 10)))
            return [], False

    args = {"checkouts": (0, 1), "returns": (0, 1, 2), "gaps": (0, 1)}
    method(Fake(), *args.get(method.__name__, (0, 1)))
    return seen[0]


def test_a_preset_minimum_is_what_the_ratio_is_held_to(tmp_path: Any) -> None:
    """001 art.18: the ratio of recorders per officer is held to the preset's minimum, and a
    shortfall shows."""
    store, audit = _store_and_log(tmp_path)
    store.add_officer("1001", "Wang Wei", "Traffic 3", PIN)
    policy = PRESETS["pishan"]
    got = statistics(store.path, audit.db_path, policy, TZ, time.time(), by="unit")
    (dock,) = [r for r in got["tables"]["recorders"]["rows"] if r["scope"] == "dock"]
    assert dock["minimum"] == policy.min_recorders_per_officer and dock["meets"] is False


# --------------------------------------------------------------------------- the site


def _web_day(make_web_dock: Any) -> Any:
    """The scripted day on the harness's dock: 1001 checks out, is refused a second one,
    films with a battery cut (a gap), returns, is offloaded past the site's deadline
    (0.0005 h here); a number not on record is refused; supervisor 9001 checks out."""
    import dataclasses

    from .test_gaps import _film_incidents

    web = make_web_dock({"serial": "EMU0001", "battery_percent": 95.0})
    view = web.app.extensions["dock"]
    view.cfg = dataclasses.replace(
        view.cfg, policy=dataclasses.replace(view.cfg.policy, offload_deadline_hours=0.0005)
    )
    svc = web.svc
    assert svc.checkout("1001", "246810").granted
    assert not svc.checkout("1001", "246810").granted
    assert not svc.checkout("=1+1", "246810").granted  # a hostile number, not on record
    svc.taken("1")
    _film_incidents(web.recorders[0].model, 3, battery_cut_at=1)
    offloader, svc.offloader = svc.offloader, None
    svc.inspect("1")
    time.sleep(2.0)
    svc.offloader = offloader
    assert svc.offload("1").ok
    svc.sweep()
    assert svc.checkout("9001", "999000").granted
    return web


@pytest.fixture
def web_day(make_web_dock: Any) -> Any:
    return _web_day(make_web_dock)


def _cells(page: Any, table: str) -> list[dict[str, str]]:
    """The rows of one table on the page, by column header."""
    section = page.locator(f"#stats-{table}")
    heads = section.locator("thead th").all_inner_texts()
    rows = []
    for tr in section.locator("tbody tr").all():
        rows.append(dict(zip(heads, tr.locator("td").all_inner_texts(), strict=True)))
    return rows


def test_the_page_shows_the_days_numbers_in_both_languages(
    web_day: Any, page: Any, screenshot: Any
) -> None:
    """002 art.9; 004 att.3 art.16: the statistics page shows the day's numbers, in Chinese and
    English."""
    from .web_harness import login, set_language

    web = web_day
    want = _from_audit(web.svc)
    login(page, web, "supervisor")
    set_language(page, web, "en")
    page.goto(f"{web.url}/stats?from={_today(time.time())}")
    assert page.locator("h1").inner_text() == "Statistics"

    checkouts = {r["Officer"]: r for r in _cells(page, "checkouts")}
    assert {k: int(r["Check-outs"]) for k, r in checkouts.items() if r["Check-outs"] != "0"} == (
        want["checkouts"]
    )
    nobody = checkouts["(number not on record)"]
    assert int(nobody["Refused"]) == want["refused"]["=1+1"] == 1
    assert int(checkouts["1001"]["Refused"]) == want["refused"]["1001"] == 1
    reasons = {(r["Officer"], r["Reason"]): int(r["Times"]) for r in _cells(page, "refusals")}
    assert (
        reasons[("1001", "already holds a recorder")]
        == want["reasons"][("1001", "officer_has_device")]
    )
    assert sum(reasons.values()) == sum(want["reasons"].values())
    late = {r["Officer"]: r for r in _cells(page, "late_offloads")}
    assert int(late["1001"]["Late"]) == want["late"]["1001"] == 1
    gaps = {r["Officer"]: r for r in _cells(page, "gaps")}
    assert int(gaps["1001"]["Opened"]) == int(gaps["1001"]["Open"]) == want["gaps"]["1001"]
    # Charts are drawn on the server, their labels text, never markup.
    chart = page.locator("#stats-refusals svg")
    assert "already holds a recorder" in (chart.text_content() or "")
    assert page.locator("#stats-refusals svg script").count() == 0
    screenshot(page, "stats-en")

    set_language(page, web, "zh")
    page.goto(f"{web.url}/stats?from={_today(time.time())}&by=unit")
    assert page.locator("h1").inner_text() == "统计分析"
    units = {r["单位"]: r for r in _cells(page, "checkouts")}
    assert int(units["Traffic 3"]["领用"]) == sum(want["checkouts"].values())
    screenshot(page, "stats-zh")


def _get(web: Any, path: str, token: str | None = None) -> Any:
    """GET as the person of ``token``: a bearer token for the API, a logged-in browser's
    session for the pages (a page never takes a bearer token)."""
    client = web.app.test_client()
    if token is None:
        return client.get(path)
    if path.startswith("/api/"):
        return client.get(path, headers={"Authorization": f"Bearer {token}"})
    with client.session_transaction() as session:
        session["token"] = token
    return client.get(path)


def _token(web: Any, who: str) -> str:
    from .web_harness import PEOPLE

    number, pin, _ = PEOPLE[who]
    return str(web.app.extensions["dock"].login(number, pin)["token"])


def test_csv_matches_the_api_and_is_injection_safe(web_day: Any) -> None:
    import io

    from sqlite_utils.utils import Format, rows_from_file

    web = web_day
    token = _token(web, "admin")
    day = _today(time.time())
    for table in ("checkouts", "refusals", "late_offloads", "gaps", "recorders"):
        for by in ("officer", "unit"):
            q = f"from={day}&to={day}&by={by}"
            api = _get(web, f"/api/v1/stats/{table}?{q}", token)
            assert api.status_code == 200, api.get_data(as_text=True)
            data = api.get_json()
            got = _get(web, f"/stats/{table}.csv?{q}", token)
            assert got.status_code == 200 and got.mimetype == "text/csv"
            assert f"stats-{table}-{by}-{day}-{day}.csv" in got.headers["Content-Disposition"]
            text = got.get_data().decode("utf-8-sig")
            rows, _ = rows_from_file(io.BytesIO(text.encode()), Format.CSV)
            rows = list(rows)
            assert len(rows) == len(data["rows"])
            for csv_row, json_row in zip(rows, data["rows"], strict=True):
                for column in data["columns"]:
                    value = json_row[column]
                    cell = csv_row[column]
                    if value is None:
                        assert cell == ""
                    elif isinstance(value, bool):
                        assert cell == str(value).lower()
                    elif isinstance(value, int | float):
                        assert float(cell) == value
                    elif str(value)[:1] in "=+-@":
                        assert cell == "'" + str(value)  # shown, never run
                    else:
                        assert cell == value
    # The hostile unit of the day is in the unit CSV, neutralised.
    web.svc.store.add_officer("2001", "Sun", '=HYPERLINK("http://x")', "246810")
    text = _get(web, f"/stats/recorders.csv?by=unit&from={day}", token).get_data().decode()
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text


def test_officers_and_maintenance_are_refused_every_stats_route(web_dock: Any) -> None:
    web = web_dock
    paths = ["/stats", "/stats/checkouts.csv"] + [
        f"/api/v1/stats/{t}"
        for t in ("checkouts", "refusals", "late_offloads", "gaps", "recorders")
    ]
    for who in ("officer", "maintenance"):
        token = _token(web, who)
        for path in paths:
            assert _get(web, path, token).status_code == 403, (who, path)
    for path in paths:
        answer = _get(web, path)
        assert answer.status_code in (302, 401), path  # not logged in: the login page
    token = _token(web, "supervisor")
    assert _get(web, "/stats", token).status_code == 200
    bad = _get(web, "/api/v1/stats/gaps?from=2026-02-30", token)
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_request"
    assert _get(web, "/stats?from=2020-01-01&to=2026-01-01", token).status_code == 400
    assert _get(web, "/stats/nothing.csv", token).status_code == 404


def test_the_api_holds_to_its_openapi_document(web_day: Any) -> None:
    """schemathesis against /api/v1/openapi.json, in process: every GET route fuzzed with
    generated parameters, as an admin; no 500, every answer matches its schema."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import positive_data_acceptance

    web = web_day
    token = _token(web, "admin")
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", web.app)

    @schema.auth()
    class Bearer:
        """The admin's token, as schemathesis' own auth (its auth checks know it)."""

        def get(self, case: Any, context: Any) -> str:
            return token

        def set(self, case: Any, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    failures: list[str] = []
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "GET":
            continue
        ran += 1

        strategy = operation.as_strategy()

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)  # fmt: skip
        @given(case=strategy)
        def check(case: Any) -> None:
            response = case.call()
            assert response.status_code < 500, (case.path, case.query, response.text[:300])
            # Not positive_data_acceptance: a schema cannot say "to not before from, at most
            # 400 days", so a valid-looking period can be refused with 400 and its reason.
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report all
            failures.append(f"{operation.method} {operation.path}: {exc}")
    assert ran >= 5
    assert failures == [], "\n".join(failures)


def test_chart_text_is_inert_and_csv_cells_never_run() -> None:
    """A unit's name or a number typed at the kiosk is text in the SVG, never markup;
    in the CSV, a cell a spreadsheet would run as a formula starts with a quote."""
    from web_status.stats.charts import MAX_BARS, bar_chart, csv_text, safe_cell

    hostile = '</text><script>alert(1)</script><a href="javascript:x">&'
    svg = str(bar_chart("t<itle>", [(hostile, 3), ("b", 1)], marker=(2, "<min>")))
    assert "<script>" not in svg and "<a " not in svg and "<itle>" not in svg
    assert "&lt;/text&gt;&lt;script&gt;" in svg and "&lt;min&gt;" in svg
    many = bar_chart("x", [(f"u{i}", i) for i in range(MAX_BARS + 5)], more="and {n} more")
    assert str(many).count('class="bar"') == MAX_BARS and "and 5 more" in str(many)
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert safe_cell(text) == "'" + text
    assert safe_cell(-1) == "-1" and safe_cell(None) == "" and safe_cell("a=b") == "a=b"
    assert csv_text(["a", "b"], [{"a": '=HYPERLINK("x")', "b": 2}]) == (
        'a,b\r\n"\'=HYPERLINK(""x"")",2\r\n'
    )


def test_the_returns_query_reads_each_episodes_rows_not_every_later_one(tmp_path: Any) -> None:
    """A year of returns costs about the same per episode as a week: each episode's last
    archive time is found at the top of its own range of the index (one upper bound), not
    by walking every later recording of the same recorder (which made a year take 9 s)."""
    store, _audit = _store_and_log(tmp_path)
    store.add_officer("1001", "Wang Wei", "Traffic 3", PIN)
    conn = sqlite3.connect(store.path)
    conn.execute("PRAGMA foreign_keys = OFF")

    def steps(episodes: int) -> int:
        conn.execute("DELETE FROM custody")
        conn.execute("DELETE FROM archive")
        t0 = 1_700_000_000.0
        for k in range(episodes):
            out, back = t0 + k * 1000, t0 + k * 1000 + 500
            conn.execute(
                "INSERT INTO custody (serial, officer_id, slot_id, out_at, taken_at, in_at) "
                "VALUES ('S1', '1001', '1', ?, ?, ?)",
                (out, out, back),
            )
            for j in range(3):
                conn.execute(
                    "INSERT INTO archive (serial, recording_id, sha256, size, path, start_ms, "
                    "end_ms, archived_at) VALUES ('S1', ?, x'00', 1, ?, 0, 1, ?)",
                    (f"R{k}-{j}", f"/p/{k}/{j}", back + 10 + j),
                )
        conn.commit()
        count = [0]

        def tick() -> int:
            count[0] += 1
            return 0

        conn.set_progress_handler(tick, 100)
        sql, _params = _captured(StatsReader.returns)
        rows = conn.execute(sql, (0.0, 2e9, 2e9, 10**6)).fetchall()
        conn.set_progress_handler(None, 100)
        assert len(rows) == episodes
        return count[0]

    small, large = steps(100), steps(1000)
    assert large < small * 20  # linear: 10x the episodes, about 10x the work
