"""The web site's foundation (issue 12): login through the daemon, roles on every route,
CSRF, errors as pages, inert recorder text, and dock-web as a real process."""

from __future__ import annotations

from typing import Any

from .web_harness import DESKTOP, KIOSK, PEOPLE, login


def test_login_and_home_in_a_browser(web_dock, page, screenshot) -> None:
    for lang in ("zh", "en"):
        for size, name in ((KIOSK, "kiosk"), (DESKTOP, "desktop")):
            page.set_viewport_size(size)
            page.goto(f"{web_dock.url}/lang/{lang}")
            screenshot(page, f"login-{lang}-{name}")
    login(page, web_dock, "officer")
    assert page.url.endswith("/")
    assert "Wang Wei" in page.inner_text("header")
    for lang in ("zh", "en"):
        for size, name in ((KIOSK, "kiosk"), (DESKTOP, "desktop")):
            page.set_viewport_size(size)
            page.goto(f"{web_dock.url}/lang/{lang}")
            screenshot(page, f"home-{lang}-{name}")
    assert "EMU0001" in page.inner_text("table.grid")
