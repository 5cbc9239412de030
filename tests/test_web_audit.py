"""The audit viewer in Chromium (issue 12): filters by kind, person, device and time,
pages by seq, verifies the chain in the daemon (sound, then tampered after audit.db is
changed behind the dock's back), and exports a signed copy downloaded by its id."""

from __future__ import annotations

import datetime
import sqlite3
import zoneinfo

from dock.domain.audit_kinds import AuditKind
from dock.storage.audit import verify_export

from .web_harness import PEOPLE, login, set_language


def test_filters_and_paging(web_dock, page, screenshot) -> None:
    svc = web_dock.svc
    serial = web_dock.recorders[0].model.serial
    svc.audit.append(AuditKind.DEVICE_FLAG, "7001", serial, {"note": "<script>x</script>"})
    login(page, web_dock, "supervisor")
    set_language(page, web_dock, "en")
    page.goto(f"{web_dock.url}/audit/")
    entries = list(svc.audit.entries())  # the login's entry included
    seqs = page.eval_on_selector_all("tr.entry", "els => els.map(e => +e.dataset.seq)")
    assert seqs == sorted((e.seq for e in entries), reverse=True)[:50]
    # Recorder and person text is shown as text, never markup.
    assert page.locator("td.data", has_text="<script>x</script>").count() == 1

    page.select_option("#kind", "checks")
    page.fill("#subject", serial)
    page.click("button.apply")
    kinds = page.eval_on_selector_all("tr.entry", "els => els.map(e => e.dataset.kind)")
    want = [e for e in entries if e.kind == "checks" and e.subject == serial]
    assert kinds == ["checks"] * len(want) and want
    screenshot(page, "audit-filtered-en")

    page.goto(f"{web_dock.url}/audit/?actor=7001")
    assert page.eval_on_selector_all("tr.entry", "els => els.length") == 1

    # A period in the dock's local time: nothing before the log began.
    zone = zoneinfo.ZoneInfo(web_dock.cfg.dock.timezone)
    first = datetime.datetime.fromisoformat(entries[0].time.replace("Z", "+00:00"))
    before = (first - datetime.timedelta(hours=1)).astimezone(zone)
    page.goto(f"{web_dock.url}/audit/?to={before:%Y-%m-%d %H:%M}")
    assert page.locator("tr.entry").count() == 0
    page.goto(f"{web_dock.url}/audit/?from={before:%Y-%m-%d %H:%M}")
    assert page.locator("tr.entry").count() == min(50, len(entries))
    assert page.goto(f"{web_dock.url}/audit/?from=yesterday").status == 400

    # Paging: two entries a page through the API, following "older" to the end.
    seen, before_seq = [], None
    while True:
        query = "limit=2" + (f"&before={before_seq}" if before_seq else "")
        body = page.request.get(f"{web_dock.url}/api/v1/audit/entries?{query}").json()
        seen += [e["seq"] for e in body["entries"]]
        before_seq = body["older"]
        if before_seq is None:
            break
    assert seen == sorted((e.seq for e in entries), reverse=True)


def test_verify_shows_sound_then_tampered(web_dock, page, screenshot) -> None:
    """000 §10: the audit page shows the log sound, then tampered."""
    login(page, web_dock, "admin")
    page.goto(f"{web_dock.url}/audit/")
    page.click("button.verify")
    assert page.locator("#verdict").get_attribute("data-ok") == "true"
    assert "完好" in page.inner_text("#verdict")
    screenshot(page, "audit-sound-zh")

    # Someone with a shell changes an old entry behind the dock's back.
    db = sqlite3.connect(web_dock.svc.audit.db_path)
    db.execute("DROP TRIGGER entries_no_update")
    db.execute("UPDATE entries SET actor = 'nobody' WHERE seq = 3")
    db.commit()
    db.close()
    page.click("button.verify")
    verdict = page.locator("#verdict")
    assert verdict.get_attribute("data-ok") == "false"
    assert verdict.get_attribute("data-first-bad") == "3"
    assert "已被篡改" in verdict.inner_text() and "3" in verdict.inner_text()
    page.click("a.show-bad")
    assert page.locator("tr.entry").first.get_attribute("data-seq") == "3"
    assert page.locator("tr.bad-entry").get_attribute("data-seq") == "3"
    screenshot(page, "audit-tampered-zh")
    set_language(page, web_dock, "en")
    page.goto(f"{web_dock.url}/audit/")
    page.click("button.verify")
    assert "TAMPERED" in page.inner_text("#verdict")
    screenshot(page, "audit-tampered-en")


def test_export_is_signed_audited_and_downloaded_by_id(web_dock, page, tmp_path) -> None:
    """000 §10: an export of the audit log is signed, audited and downloaded by its id."""
    login(page, web_dock, "supervisor")
    set_language(page, web_dock, "en")
    page.goto(f"{web_dock.url}/audit/")
    page.click("button.export")
    assert "Exported" in page.inner_text("#exported")
    with page.expect_download() as got:
        page.click("a.download")
    saved = str(tmp_path / "export.jsonl")
    got.value.save_as(saved)
    report = verify_export(saved, web_dock.svc.audit.public_key)
    assert report.ok, report.describe()
    exports = [e for e in web_dock.svc.audit.entries() if e.kind == AuditKind.AUDIT_EXPORT]
    assert [e.actor for e in exports] == [PEOPLE["supervisor"][0]]
    # Only ids this site made are downloadable: never a path.
    for bad in ("..%2F..%2Fsigning.key", "../audit.db", "0" * 32):
        assert page.goto(f"{web_dock.url}/audit/exports/{bad}").status == 404
    # Maintenance staff and officers are refused the audit log, on the server.
    for who in ("maintenance", "officer"):
        page.context.clear_cookies()
        login(page, web_dock, who)
        assert page.goto(f"{web_dock.url}/audit/").status == 403
        assert page.request.post(f"{web_dock.url}/api/v1/audit/verify").status in (400, 403)
