"""Pytest fixtures for the web site (issue 12), registered for every test module by
``pytest_plugins`` in tests/conftest.py.

``web_dock``: a dock with emulated recorders, its daemon's control socket served in this
process (the same handlers as ``dock run``), four people (officer 1001, supervisor 9001,
maintenance 7001, admin 8001; PINs in :data:`PINS`) and ``dock-web``'s app served on a
free 127.0.0.1 port by the real WSGI server (cheroot). ``page``: a Playwright page in
Debian's chromium (``/usr/bin/chromium``; never a downloaded browser), 1280x800 unless
``page.set_viewport_size`` says otherwise. ``login(page, web, who)`` logs in through the
form; ``screenshot(page, name)`` saves a PNG under ``DOCK_WEB_SHOTS`` (default a tmp dir)
and returns its path, to look at.
"""

from __future__ import annotations

import dataclasses
import io
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
KIOSK = {"width": 800, "height": 480}
DESKTOP = {"width": 1280, "height": 800}

#: Who is in the harness's dock: role -> (officer number, PIN, name).
PEOPLE: dict[str, tuple[str, str, str]] = {
    "officer": ("1001", "246810", "Wang Wei"),
    "officer2": ("1002", "246810", "Li Na"),
    "supervisor": ("9001", "999000", "Zhao Min"),
    "maintenance": ("7001", "731946", "Sun Li"),
    "admin": ("8001", "852963", "Qian Hua"),
}
PINS = {number: pin for number, pin, _ in PEOPLE.values()}


@dataclass
class WebDock:
    """The running dock and site of one test."""

    svc: Any  # DockService
    cfg: Any  # DockConfig
    recorders: list[Any]
    control: Any  # ControlServer
    sessions: Any  # WebSessions
    app: Any  # Flask
    url: str  # http://127.0.0.1:PORT
    server: Any = None
    stops: list[Callable[[], None]] = field(default_factory=list)

    @property
    def state_dir(self) -> str:
        return str(self.cfg.dock.state_dir)

    def stop_daemon(self) -> None:
        """Stop the daemon's control socket (a dock whose service is down)."""
        self.control.stop(timeout=10)


def serve_wsgi(app: Any, host: str = "127.0.0.1") -> tuple[Any, str]:
    """``app`` served by cheroot on a free port in a thread: (server, base URL)."""
    from cheroot import wsgi

    server = wsgi.Server((host, 0), app, numthreads=4, shutdown_timeout=1)
    server.prepare()
    port = server.bind_addr[1]
    threading.Thread(target=server.serve, name="web-test-server", daemon=True).start()
    return server, f"http://{host}:{port}"


@pytest.fixture
def make_web_dock(tmp_path, start_recorder) -> Iterator[Callable[..., WebDock]]:
    """``make_web_dock(*recorder_specs, serve=True)``: see the module docstring."""
    from dock.config import emulated_config
    from dock.daemon.composition import build_service
    from dock.daemon.control_handlers import service_handlers
    from dock.daemon.control_server import ControlServer
    from dock.daemon.web_sessions import WebSessions
    from dock.services.daemon_link import control_socket_path
    from dock.services.status import status_report
    from hardware.screens import ConsoleScreen
    from web_status import create_app

    made: list[WebDock] = []

    def make(*specs: dict[str, Any], serve: bool = True) -> WebDock:
        specs = specs or ({"serial": "EMU0001"}, {"serial": "EMU0002", "battery_percent": 12})
        recorders = [
            start_recorder(listen="tcp://127.0.0.1:0", **{"recordings": 0, **spec})
            for spec in specs
        ]
        state = tempfile.mkdtemp(prefix="web-", dir=tmp_path)
        cfg = emulated_config(len(recorders), state)
        slots = tuple(
            dataclasses.replace(slot, port=r.url)
            for slot, r in zip(cfg.slots, recorders, strict=True)
        )
        cfg = dataclasses.replace(cfg, slots=slots)
        svc = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
        for slot in svc.views:
            svc.enrol(slot, "admin")
        for role, (number, pin, name) in PEOPLE.items():
            stored = "officer" if role == "officer2" else role
            svc.store.add_officer(number, name, "Traffic 3", pin, role=stored)
        svc.sweep()
        sessions = WebSessions(idle_s=cfg.web.session_idle_s)
        handlers = service_handlers(svc, threading.Lock(), status_report, sessions)
        control = ControlServer(control_socket_path(state), handlers).start()
        app = create_app(cfg, testing=True)
        server, url = serve_wsgi(app) if serve else (None, "")
        web = WebDock(svc, cfg, recorders, control, sessions, app, url, server)
        made.append(web)
        return web

    yield make
    for web in made:
        if web.server is not None:
            web.server.stop()
        web.control.stop(timeout=10)


@pytest.fixture
def web_dock(make_web_dock) -> WebDock:
    """A dock of two emulated recorders (one healthy, one low on battery) and its site."""
    return make_web_dock()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, through Playwright (skipped, saying why, without it)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no {CHROMIUM}: scripts/bootstrap.sh installs Debian's chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page at the desktop size."""
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    context.set_default_timeout(15_000)
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture(scope="session")
def shots_dir() -> str:
    """Where screenshots go: $DOCK_WEB_SHOTS, else a fresh temporary folder."""
    where = os.environ.get("DOCK_WEB_SHOTS") or tempfile.mkdtemp(prefix="dock-web-shots-")
    os.makedirs(where, exist_ok=True)
    return where


@pytest.fixture
def screenshot(shots_dir) -> Callable[[Any, str], str]:
    """``screenshot(page, name)``: the whole page as ``<shots_dir>/<name>.png``."""

    def shoot(pg: Any, name: str) -> str:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        path = os.path.join(shots_dir, f"{safe}.png")
        pg.screenshot(path=path, full_page=True)
        return path

    return shoot


def login(pg: Any, web: WebDock, who: str = "officer", pin: str | None = None) -> None:
    """Log ``who`` (a key of PEOPLE, or an officer number) in through the login form."""
    number, right_pin, _ = PEOPLE.get(who, (who, PINS.get(who, ""), ""))
    pg.goto(web.url + "/login")
    pg.fill("#officer", number)
    pg.fill("#pin", right_pin if pin is None else pin)
    pg.click("button[type=submit]")
    pg.wait_for_load_state()


def set_language(pg: Any, web: WebDock, lang: str) -> None:
    pg.goto(f"{web.url}/lang/{lang}")
