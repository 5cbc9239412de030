"""Replication on the dock's site (issue 16), in Chromium: the replication page per
target (waiting, failed with reasons, last success, oldest waiting against the deadline)
and per package (filter: failed), the start page's line in a warning past the deadline,
``/api/v1/replication`` and who may see it; both languages. A real dock (emulated
recorders, real offload and seal) and the real engine against a folder target."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import requests

from dock.config.replication import ReplicationConfig, TargetConfig
from tests.replica_fake import FolderTarget
from tests.test_replication import engine

from .web_harness import login, set_language

pytestmark = pytest.mark.usefixtures("browser")

HOUR = 3600.0


def replicating_dock(make_web_dock, tmp_path, *, late: bool) -> Any:
    """Two docked recorders' packages: one copied and verified, one failed (target away)
    and, when ``late``, sealed 30 h ago (past the 24 h deadline)."""
    web = make_web_dock(
        {"serial": "EMU0001", "recordings": 2, "recording_mb": 0.2},
        {"serial": "EMU0002", "recordings": 1, "recording_mb": 0.2},
    )
    svc = web.svc
    target = FolderTarget(str(tmp_path / "central"), name="nas")
    eng = engine(svc, target, deadline_hours=24)
    target.down = True
    eng.run_once()
    db = svc.store._db()
    [(first,)] = db.execute("SELECT min(seal_id) FROM replication_queue").fetchall()
    target.down = False
    eng.retry(first)
    eng.run_once()
    states = dict(db.execute("SELECT seal_id, state FROM replication_queue").fetchall())
    assert sorted(states.values()) == ["failed", "replicated"], states
    if late:
        with db:
            db.execute("UPDATE replication_queue SET sealed_at = sealed_at - ? "
                       "WHERE state = 'failed'", (30 * HOUR,))  # fmt: skip
    rep = ReplicationConfig(targets=(TargetConfig(name="nas", kind="sftp", host="x"),))
    web.app.extensions["dock"].cfg = dataclasses.replace(web.cfg, replication=rep)
    return web


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_replication_page_and_the_start_page_line(
    make_web_dock, tmp_path, page, screenshot, lang
) -> None:
    web = replicating_dock(make_web_dock, tmp_path, late=True)
    login(page, web, "maintenance")
    set_language(page, web, lang)
    page.goto(web.url + "/")
    line = page.locator("#replication-line")
    assert "error" in (line.get_attribute("class") or "")
    text = line.inner_text()
    assert ("1 package waiting" in text) if lang == "en" else ("1 个证据包等待上传" in text)
    assert "30." in text  # the oldest waits 30 h
    screenshot(page, f"replication-home-{lang}")

    page.click("a.area[href='/replication/']")
    row = page.locator("tr[data-target=nas]")
    cells = row.locator("td").all_inner_texts()
    assert [c.split()[0] for c in cells[1:5]] == ["1", "0", "1", "1"]
    assert "connection refused" in cells[3]  # the failed one's reason
    assert cells[7] == "-"  # the last attempt worked: no "last error"
    assert "late" in (row.get_attribute("class") or "")
    assert page.locator("#backlog.error").count() == 1
    assert page.locator("tr[data-state]").count() == 2
    screenshot(page, f"replication-page-{lang}")

    page.select_option("#state", "failed")
    page.click("#packages button[type=submit]")
    page.wait_for_url("**state=failed")
    failed = page.locator("tr[data-state]")
    assert failed.count() == 1 and failed.get_attribute("data-state") == "failed"
    assert "connection refused" in failed.inner_text()
    screenshot(page, f"replication-failed-{lang}")


def test_within_the_deadline_the_line_is_no_warning(make_web_dock, tmp_path, page) -> None:
    web = replicating_dock(make_web_dock, tmp_path, late=False)
    login(page, web, "supervisor")
    page.goto(web.url + "/")
    line = page.locator("#replication-line")
    assert "error" not in (line.get_attribute("class") or "")
    assert "muted" in (line.get_attribute("class") or "")


def test_an_officer_sees_no_link_and_may_not_open_it(make_web_dock, tmp_path, page) -> None:
    web = replicating_dock(make_web_dock, tmp_path, late=False)
    login(page, web, "officer")
    page.goto(web.url + "/")
    assert page.locator("a.area[href='/replication/']").count() == 0
    assert page.goto(web.url + "/replication/").status == 403


def test_a_dock_without_targets_says_footage_stays_on_the_dock(make_web_dock, page) -> None:
    web = make_web_dock()
    login(page, web, "supervisor")
    page.goto(web.url + "/")
    assert page.locator("#replication-line").count() == 0
    page.goto(web.url + "/replication/")
    assert page.locator("#not-configured").count() == 1
    assert page.locator("#no-packages").count() == 1


def _api_session(web: Any, who: str = "maintenance") -> requests.Session:
    from .web_harness import PEOPLE

    s = requests.Session()
    number, pin, _ = PEOPLE[who]
    s.get(web.url + "/login", timeout=10)
    page = s.get(web.url + "/login", timeout=10).text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    s.post(web.url + "/login", data={"officer": number, "pin": pin, "csrf_token": token},
           timeout=10)  # fmt: skip
    return s


def test_the_api_answers_per_target_and_per_package(make_web_dock, tmp_path) -> None:
    web = replicating_dock(make_web_dock, tmp_path, late=True)
    s = _api_session(web)
    body = s.get(web.url + "/api/v1/replication", timeout=10).json()
    [nas] = body["targets"]
    assert (nas["name"], nas["pending"], nas["failed"], nas["replicated_24h"]) == ("nas", 1, 1, 1)
    assert body["backlog"]["late"] and body["backlog"]["waiting"] == 1
    assert {p["state"] for p in body["packages"]} == {"failed", "replicated"}
    failed = s.get(web.url + "/api/v1/replication?state=failed", timeout=10).json()
    assert [p["state"] for p in failed["packages"]] == ["failed"]
    bad = s.get(web.url + "/api/v1/replication?state=gone", timeout=10)
    assert bad.status_code == 400 and "error" in bad.json()
    officer = _api_session(web, "officer").get(web.url + "/api/v1/replication", timeout=10)
    assert officer.status_code == 403
    doc = requests.get(web.url + "/api/v1/openapi.json", timeout=10).json()
    assert "/api/v1/replication" in doc["paths"]
