"""The dock's start page names a recorder not back by the end of its shift (REQUIREMENTS
§8: 000 §14.1; 002 art.22; 003 art.21), in English and Chinese, in Chromium. The
check-out is written 11 h back in the dock's database: nothing waits."""

from __future__ import annotations

import time

pytest_plugins = ["tests.web_harness"]


def test_the_start_page_names_a_recorder_not_returned(web_dock, page, screenshot) -> None:
    """000 §14.1; 002 art.22; 003 art.21: a recorder out past its shift (10 h + 30 min)
    is listed on the start page with its officer until it is docked again."""
    from .web_harness import login

    svc = web_dock.svc
    then = time.time() - 11 * 3600
    real = svc.store._clock
    svc.store._clock = lambda: then
    decision = svc.checkout("1001", "246810")
    assert decision.granted
    svc.taken(decision.slot)
    svc.store._clock = real
    login(page, web_dock, "supervisor")
    page.goto(f"{web_dock.url}/lang/en")
    line = page.inner_text("#not-returned")
    assert f"NOT RETURNED: recorder {decision.device} of officer 1001" in line
    page.goto(f"{web_dock.url}/lang/zh")
    screenshot(page, "home-not-returned-zh")
    assert f"未归还：执法人员 1001 的记录仪 {decision.device}" in page.inner_text("#not-returned")
    svc.inspect(decision.slot)  # docked again
    page.goto(f"{web_dock.url}/lang/en")
    assert page.locator("#not-returned").count() == 0
