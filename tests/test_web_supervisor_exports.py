"""The supervisor's export and purge through the pages (issue 12), in Chromium, over a dock
whose emulated recorder's footage was really offloaded, archived and sealed.

An export of an approved request is started on the access page, its progress shown
without reloading the page (live.js polling the export's state), and its result
downloaded by export id only: the package folder as a zip (every recording's SHA-256 as
archived; bagit-python, an archivist's tool that is not ours, validates the unpacked bag)
and the ISO (read with pycdlib). A purge past retention is applied by two different
supervisors (four eyes); the same supervisor twice, or a wrong second PIN, is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import zipfile
from typing import Any

import bagit
import pycdlib

from dock.evidence.fixity import find_bags
from dock.evidence.holds import HoldRegister
from dock.evidence.retention import HoldKind
from dock.services import access, officers
from dock.services.requests import call

from .web_harness import PEOPLE, login, set_language

SUP, SUP_PIN = PEOPLE["supervisor"][0], PEOPLE["supervisor"][1]
OFFICER, ADMIN = PEOPLE["officer"][0], PEOPLE["admin"][0]
SUP2, SUP2_PIN = "9002", "808541"
FOOTAGE = {"serial": "EMU0001", "recordings": 2, "recording_mb": 0.05}


def kinds(svc: Any, kind: str) -> list[Any]:
    return [e for e in svc.audit.entries() if e.kind == kind]


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def archived(svc: Any) -> dict[str, str]:
    """recording id -> SHA-256 (hex) of every archived recording of EMU0001."""
    return {e["recording_id"]: bytes(e["sha256"]).hex() for e in svc.store.archive_entries()
            if e["serial"] == "EMU0001"}  # fmt: skip


def test_an_export_runs_shows_progress_and_downloads_by_id(
    make_web_dock, page, browser, screenshot, tmp_path, monkeypatch
) -> None:
    """001 art.19; 003 art.16; 002 art.26: an approved export runs as a package and a disc image,
    audited as the supervisor's, downloaded only by its id and refused to other roles."""
    web = make_web_dock(FOOTAGE, {"serial": "EMU0002"})
    svc, url = web.svc, web.url
    footage = archived(svc)
    assert len(footage) == 2  # the harness's sweep offloaded, verified and sealed them
    # the officer asks; the request names the supervisor to extract (who alone may run it)
    req = access.request(svc, OFFICER, "court: case 2026-41", "export",
                         [f"EMU0001:{rid}" for rid in footage], extractor=SUP)  # fmt: skip
    access.approve(svc, SUP, req.id, SUP, SUP_PIN)

    # The daemon's export waits until the test has seen it running: a moment chosen, not slept.
    from dock.services import access as access_service

    go_on, real_export = threading.Event(), access_service.export_request

    def held_export(*args: Any, **kw: Any) -> Any:
        assert go_on.wait(30)
        return real_export(*args, **kw)

    monkeypatch.setattr(access_service, "export_request", held_export)

    login(page, web, "supervisor")
    set_language(page, web, "en")
    page.goto(url + "/supervisor/access")
    row = page.locator(f'tr[data-request="{req.id}"]')
    row.locator("input[name=extractor]").fill("Zhao Min")
    row.locator("input[name=place]").fill("Traffic 3 evidence room")
    assert row.locator("input[name=iso]").is_checked()
    row.locator("button").click()
    assert "started" in page.inner_text("[data-test=done]")
    line = page.locator("li[data-export]")
    state = line.locator("[data-test=export-state]")
    assert state.inner_text() == "writing 0%"
    screenshot(page, "supervisor-export-running-en-1280")
    page.evaluate("window.notReloaded = true")
    go_on.set()
    page.wait_for_selector('li[data-export][data-state="done"]')
    assert state.inner_text() == "ready 100%"
    assert page.evaluate("window.notReloaded === true")  # updated in place, not reloaded
    export_id = line.get_attribute("data-export") or ""
    screenshot(page, "supervisor-export-done-en-1280")

    # the zip of the package: the archived footage, byte for byte, and a valid bag
    with page.expect_download() as got:
        line.locator("a", has_text="package").click()
    zipped = str(tmp_path / "export.zip")
    got.value.save_as(zipped)
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(zipped) as z:
        z.extractall(unpacked)
    (bag_dir,) = [str(p) for p in unpacked.iterdir()]
    bagit.Bag(bag_dir).validate()  # raises bagit.BagValidationError naming the problem
    payload = {sha256(os.path.join(here, f)) for here, _, files in os.walk(f"{bag_dir}/data")
               for f in files}  # fmt: skip
    assert set(footage.values()) <= payload

    # the ISO, readable by pycdlib, holding the same footage
    with page.expect_download() as got:
        line.locator("a", has_text="ISO").click()
    iso_file = str(tmp_path / "export.iso")
    got.value.save_as(iso_file)
    iso = pycdlib.PyCdlib()
    iso.open(iso_file)
    try:
        on_disc = set()
        for here, _dirs, files in iso.walk(joliet_path="/"):
            for f in files:
                digest = hashlib.sha256()
                where = f"{here}/{f}".replace("//", "/")
                iso.get_file_from_iso_fp(_Into(digest), joliet_path=where)
                on_disc.add(digest.hexdigest())
    finally:
        iso.close()
    assert set(footage.values()) <= on_disc

    # written under <state_dir>/exports/<id>, audited with the supervisor as actor
    (entry,) = kinds(svc, "access_export")
    assert entry.actor == SUP
    assert entry.data["bag"].startswith(os.path.join(web.state_dir, "exports", export_id) + "/")

    # found by export id only: an unknown or path-like id is 404
    for bad in ("1-00000000", "..", "..%2F..%2Faudit.db", f"{export_id}%2F..", "%2Fetc%2Fpasswd",
                export_id + "x", f"..%2F{export_id}"):  # fmt: skip
        for what in ("bag.zip", "iso"):
            answer = page.request.get(f"{url}/supervisor/exports/{bad}/{what}")
            assert answer.status == 404, (bad, what, answer.status)
        assert page.request.get(f"{url}/api/v1/supervisor/exports/{bad}").status == 404
    progress = page.request.get(f"{url}/api/v1/supervisor/exports/{export_id}").json()
    assert progress["state"] == "done" and progress["percent"] == 100

    for lang in ("en", "zh"):
        set_language(page, web, lang)
        page.goto(url + "/supervisor/access")
        screenshot(page, f"supervisor-access-exports-{lang}-1280")

    # an officer may not download it, nor see its progress
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        other = context.new_page()
        login(other, web, "officer")
        for path in (f"/supervisor/exports/{export_id}/bag.zip",
                     f"/supervisor/exports/{export_id}/iso",
                     f"/api/v1/supervisor/exports/{export_id}"):  # fmt: skip
            assert other.request.get(url + path).status == 403, path
    finally:
        context.close()


class _Into:
    """A file-like object that only hashes what pycdlib writes into it."""

    def __init__(self, digest: Any) -> None:
        self.digest = digest

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return len(data)


def test_a_purge_needs_two_different_supervisors(make_web_dock, page, screenshot) -> None:
    """004 att.2 §6: a purge on the supervisor's page needs two different supervisors."""
    web = make_web_dock(FOOTAGE, {"serial": "EMU0002"})
    svc, url = web.svc, web.url
    footage = archived(svc)
    assert len(footage) == 2
    # a short retention in the policy (tests/test_purge.py does the same): the footage,
    # recorded an hour ago, is past it
    svc.parts.policy = dataclasses.replace(svc.policy, retention_days=0)
    officers.add(svc, ADMIN, SUP2, "Qian Lei", "Traffic 3", SUP2_PIN, role="supervisor")
    # the second recording is held: the package loses one recording and is re-sealed
    HoldRegister(svc.store, svc.audit).place("EMU0001", "REC000002", HoldKind.COMPLAINT, "TS-1",
                                             SUP)  # fmt: skip
    evidence = svc.offloader.evidence_dir
    files = {e["recording_id"]: os.path.join(evidence, e["path"])
             for e in svc.store.archive_entries()}  # fmt: skip
    (old_bag,) = [os.path.join(evidence, b) for b in find_bags(evidence)]
    assert [e.actor for e in kinds(svc, "officer_add") if e.subject == SUP2] == [ADMIN]

    login(page, web, "supervisor")
    set_language(page, web, "en")
    page.goto(url + "/supervisor/purge")
    page.click("text=Preview (dry run)")
    assert "1 of 2 recordings would be purged" in page.inner_text("[data-test=purge-result]")

    def apply(second: str, second_pin: str, appraisal: str = "") -> None:
        page.fill("input[name=pin]", SUP_PIN)
        page.fill("input[name=second]", second)
        page.fill("input[name=second_pin]", second_pin)
        page.fill("input[name=appraisal]", appraisal)
        page.click("button.danger")

    apply(SUP, SUP_PIN)  # the same supervisor twice: refused, in one line
    problem = page.inner_text("[data-test=problem]")
    assert "two different" in problem and "\n" not in problem.strip()
    screenshot(page, "supervisor-purge-same-twice-en-1280")
    apply(SUP2, "000000")  # a wrong second PIN
    assert "Refused" in page.inner_text("[data-test=problem]")
    assert all(os.path.exists(f) for f in files.values()) and not kinds(svc, "purge")

    # 004 att.2 §6: the purge cites an appraisal another supervisor approved
    proposed = call(svc, "appraisal.propose", {"proposer": SUP, "pin": SUP_PIN, "reason":
                    "retention ended", "candidates": True}, actor=SUP)  # fmt: skip
    call(svc, "appraisal.approve", {"appraisal_id": proposed.id, "supervisor": SUP2,
         "pin": SUP2_PIN}, actor=SUP2)  # fmt: skip
    apply(SUP2, SUP2_PIN, str(proposed.id))
    assert "1 of 2 recordings purged" in page.inner_text("[data-test=purge-result]")
    screenshot(page, "supervisor-purge-applied-en-1280")
    assert not os.path.exists(files["REC000001"])  # gone from the archive
    assert os.path.exists(files["REC000002"])  # held: kept
    # the package re-sealed without it, valid
    (new_bag,) = [os.path.join(evidence, b) for b in find_bags(evidence)]
    assert new_bag != old_bag and not os.path.exists(old_bag)
    bagit.Bag(new_bag).validate()  # raises bagit.BagValidationError naming the problem
    kept = {sha256(os.path.join(here, f)) for here, _, names in os.walk(f"{new_bag}/data")
            for f in names}  # fmt: skip
    assert kept == {footage["REC000002"]}
    purged = kinds(svc, "purge")
    assert purged and all(e.actor == SUP and e.data["approved_by"] == [SUP, SUP2]
                          for e in purged)  # fmt: skip
    refusals = kinds(svc, "purge_refused")
    assert [e.data["supervisors"] for e in refusals] == [[SUP, SUP], [SUP, SUP2]]

    # a preview on a zh page: the held recording's action and reason code in Chinese
    set_language(page, web, "zh")
    page.goto(url + "/supervisor/purge")
    page.click('form[action$="/purge/preview"] button')
    result = page.locator("[data-test=purge-result]")
    assert result.locator("td[data-action=keep]").inner_text() == "保留"
    assert "保全 1" in result.inner_text()
    screenshot(page, "supervisor-purge-preview-zh-1280")
    for lang in ("en", "zh"):
        set_language(page, web, lang)
        page.goto(url + "/supervisor/purge")
        screenshot(page, f"supervisor-purge-{lang}-1280")
