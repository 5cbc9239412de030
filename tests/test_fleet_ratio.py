"""Recorders per officer (REQUIREMENTS section 2; 001 art.18: at least one recorder per
two officers): ``dock status`` says the ratio, the policy's minimum and SHORTFALL below
it, in its lines and its JSON; people who carry no recorder are not counted."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from dock.daemon.control_handlers import service_handlers
from dock.daemon.control_server import ControlServer
from dock.domain.fleet import ratio_line, ratio_verdict
from dock.services.daemon_link import control_socket_path
from dock.services.status import status_report

from .conftest import PIN
from .test_control_cli import no_local_dock, run_cli, write_config


@pytest.fixture
def daemon_of() -> Iterator[Any]:
    """``daemon_of(svc)``: svc served on its control socket, as ``dock run`` does."""
    servers: list[ControlServer] = []

    def start(svc: Any) -> None:
        path = control_socket_path(os.path.dirname(svc.parts.slots.lock_dir))
        servers.append(
            ControlServer(path, service_handlers(svc, threading.Lock(), status_report)).start()
        )

    yield start
    for server in servers:
        server.stop(timeout=30)


@pytest.fixture(autouse=True)
def _root_logger_restored(monkeypatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)


def _status(capsys: Any, svc: Any, tmp_path: Any, monkeypatch: Any, daemon_of: Any) -> Any:
    cfg = write_config(svc, str(tmp_path / "dock.toml"))
    daemon_of(svc)
    no_local_dock(monkeypatch)
    code, out, err = run_cli(capsys, "--config", cfg, "status")
    assert code == 0, err
    code, js, err = run_cli(capsys, "--config", cfg, "status", "--json")
    assert code == 0, err
    (line,) = [ln for ln in out.splitlines() if ln.startswith("fleet:")]
    return line, json.loads(js)["fleet"]


def test_dock_status_says_the_ratio_and_a_shortfall(
    make_dock, daemon_of, tmp_path, monkeypatch, capsys
) -> None:
    """001 art.18: one recorder for three people who carry one (two officers and a
    supervisor) is below one per two: the status line says the numbers and SHORTFALL,
    and the JSON says so too."""
    svc, _ = make_dock({"serial": "R1"})
    line, fleet = _status(capsys, svc, tmp_path, monkeypatch, daemon_of)
    assert line == (
        "fleet: 1 recorder(s) for 3 officer(s), 0.33 per officer, minimum 0.50 "
        "(001 art.18): SHORTFALL"
    )
    assert fleet == {
        "officers": 3, "recorders": 1, "recorders_per_officer": 0.333,
        "minimum": 0.5, "shortfall": True,
    }  # fmt: skip


def test_dock_status_at_the_minimum_is_no_shortfall(
    make_dock, daemon_of, tmp_path, monkeypatch, capsys
) -> None:
    """001 art.18: two recorders for four officers is exactly one per two: met, no
    SHORTFALL. Maintenance, keepers and oversight carry no recorder and are not
    counted; a disabled officer is not either."""
    svc, _ = make_dock({"serial": "R1"}, {"serial": "R2"})
    svc.store.add_officer("1003", "Chen Jing", "Traffic 3", PIN)
    svc.store.add_officer("7001", "Sun Li", "Workshop", PIN, role="maintenance")
    svc.store.add_officer("7002", "Zhou Yu", "Records", PIN, role="keeper")
    svc.store.add_officer("1004", "Wu Gang", "Traffic 3", PIN)
    svc.store.set_officer_disabled("1004", True)
    line, fleet = _status(capsys, svc, tmp_path, monkeypatch, daemon_of)
    assert line == (
        "fleet: 2 recorder(s) for 4 officer(s), 0.50 per officer, minimum 0.50 (001 art.18): met"
    )
    assert fleet["shortfall"] is False and fleet["officers"] == 4


def test_the_minimum_is_the_policys(make_dock, daemon_of, tmp_path, monkeypatch, capsys) -> None:
    """001 art.18 sets the floor; a stricter policy (one recorder each) holds the same
    fleet to its own minimum: two for three people is then a shortfall."""
    svc, _ = make_dock(
        {"serial": "R1"}, {"serial": "R2"}, policy={"min_recorders_per_officer": 1.0}
    )
    line, fleet = _status(capsys, svc, tmp_path, monkeypatch, daemon_of)
    assert "0.67 per officer, minimum 1.00" in line and line.endswith("SHORTFALL")
    assert fleet["minimum"] == 1.0 and fleet["shortfall"] is True


@pytest.mark.parametrize(
    ("recorders", "officers", "shortfall"),
    [(0, 1, True), (1, 3, True), (2, 5, True), (1, 2, False), (3, 4, False), (0, 0, None)],
)
def test_shortfall_is_below_the_minimum_only(recorders: int, officers: int, shortfall: Any) -> None:
    """001 art.18: below one recorder per two officers is a shortfall; at or above is
    not; with no officers there is nothing to count against (no SHORTFALL shown)."""
    got = ratio_verdict(recorders, officers, 0.5)
    assert got["shortfall"] is shortfall
    assert ("SHORTFALL" in ratio_line(got)) is bool(shortfall)


def test_the_start_page_says_the_ratio_and_a_shortfall_in_both_languages(
    web_dock, page, screenshot
) -> None:
    """001 art.18: the dock's start page says recorders per officer against the minimum:
    two recorders for three people who carry one is met; two more officers make it a
    shortfall, said in English and in Chinese."""
    from .web_harness import login

    login(page, web_dock, "supervisor")
    page.goto(f"{web_dock.url}/lang/en")
    line = page.inner_text("#fleet-ratio")
    assert "Recorders: 2 for 3 officer(s) who carry one, 0.67 per officer" in line
    assert "the minimum is 0.50" in line and "met" in line and "SHORTFALL" not in line
    for number, name in (("1003", "Chen Jing"), ("1004", "Wu Gang")):
        web_dock.svc.store.add_officer(number, name, "Traffic 3", PIN)
    for lang in ("en", "zh"):
        page.goto(f"{web_dock.url}/lang/{lang}")
        screenshot(page, f"home-fleet-shortfall-{lang}")
    assert "配备不足" in page.inner_text("#fleet-ratio")
    assert "人均 0.40 台" in page.inner_text("#fleet-ratio")
    page.goto(f"{web_dock.url}/lang/en")
    assert page.inner_text("#fleet-ratio strong") == "SHORTFALL"
