"""The request table: every command that changes the dock, from the command line or from
headquarters, goes through it; a new command must be classified here."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from dock.cli.main import build_parser, main
from dock.reporting.commands import REQUESTS as MQTT_REQUESTS
from dock.services.errors import RequestError
from dock.services.requests import TABLE, call
from mqtt_contract.contract import Command

#: Subcommands that change nothing the dock keeps (or, ``run``, are the daemon itself).
READ_ONLY_CLI = {
    "probe",  # one recorder's status; changes nothing on either side
    "run",  # the daemon: its sweeps are the dock's own work, not a request
    "check",  # reads the installation; creates and changes nothing (test_dock_check)
    "status",  # a sweep now and its report, as one turn of `dock run`
    "handover list",
    "officer list",
    "device list",
    "case show",
    "case party",
    "audit verify",
    "archive list",
    "gaps list",
    "hold list",
    "appraisal list",
    "archive handovers",
    "deadlines",
    "access list",
    "access log",
    "access marks",
    "outbox",
    "web-token list",
    "replication list",
}
#: Commands from headquarters that change only reporting itself.
READ_ONLY_MQTT = {Command.STATUS, Command.RESEND}


def leaves(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, Any]]:
    """(subcommand path, its parser) for every subcommand that runs something."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, child in subs[0].choices.items():
        yield from leaves(child, f"{path} {name}".strip())


def test_every_changing_subcommand_is_a_request() -> None:
    seen = {}
    for path, parser in leaves(build_parser()):
        request = parser.get_default("request")
        assert parser.get_default("func") is not None, path
        if path in READ_ONLY_CLI:
            assert request is None, f"{path} is listed read-only but is request {request}"
        else:
            assert request in TABLE, f"`dock {path}` changes the dock: give it a request"
        seen[path] = request
    assert set(seen) >= READ_ONLY_CLI, READ_ONLY_CLI - set(seen)


def test_every_changing_mqtt_command_is_a_request() -> None:
    for command in Command:
        if command in READ_ONLY_MQTT:
            assert command not in MQTT_REQUESTS
        else:
            assert MQTT_REQUESTS.get(command) in TABLE, f"command {command.value}: no request"


def test_every_request_has_its_arguments_checked() -> None:
    for name, request in TABLE.items():
        assert request.name == name and request.summary
        names = [a.name for a in request.args]
        assert len(names) == len(set(names)), name


class Untouchable:
    """A dock no request may reach: the checking refuses first."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the service ran ({name})")


@pytest.mark.parametrize(
    ("name", "given", "why"),
    [
        ("device.flag", {"serial": "A", "lost": "yes"}, "lost must be true or false"),
        ("device.flag", {"lost": True}, "serial is required"),
        ("device.flag", {"serial": "A", "lost": True, "erase": True}, "unknown argument"),
        ("hold.release", {"hold_id": True, "supervisor": "9", "pin": "1", "reason": "r"},
         "hold_id must be a whole number"),
        ("case.attach", {"case": "C", "recordings": [], "officer": "1", "pin": "2"},
         "recordings must be a list"),
        ("no.such", {}, "no request"),
    ],
)  # fmt: skip
def test_arguments_are_checked_before_any_service_runs(name, given, why) -> None:
    with pytest.raises(RequestError, match=why):
        call(Untouchable(), name, given, actor="clerk")


def test_a_request_needs_someone_asking() -> None:
    with pytest.raises(RequestError, match="actor"):
        call(Untouchable(), "device.flag", {"serial": "A", "lost": True}, actor="")


# ----------------------------------------------------------------- the command line


def run(argv: list[str]) -> int:
    """``dock`` in-process: its exit status, returned or raised. The root logger gets its
    handlers back (``main`` logs to this test's stderr, closed after it)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_global_options_go_before_or_after_the_subcommand() -> None:
    parser = build_parser()
    for argv in (["--log-level", "INFO", "run"], ["run", "--log-level", "INFO"]):
        args = parser.parse_args(argv)
        assert args.log_level == "INFO" and args.command == "run"
    args = parser.parse_args(["officer", "list", "--config", "x.toml", "--actor", "li"])
    assert (args.config, args.actor) == ("x.toml", "li")
    args = parser.parse_args(["--config", "x.toml", "officer", "add", "7", "--name", "N",
                              "--unit", "U"])  # fmt: skip
    assert args.config == "x.toml" and not hasattr(args, "log_level")  # filled in by main


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_config_given_after_the_subcommand_is_used(tmp_path, capsys, where) -> None:
    bad = tmp_path / "dock.toml"
    bad.write_text("[dock]\nid = 3\n", encoding="utf-8")
    options = ["--config", str(bad)]
    argv = [*options, "outbox"] if where == "before" else ["outbox", *options]
    assert run(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[0] == f"dock: {bad}: 4 problems"
    assert "Traceback" not in "\n".join(err)


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys) -> Any:
    """``dock`` in-process on a dock with one enrolled recorder and a supervisor."""
    import io

    from dock.cli import common
    from dock.config import emulated_config
    from dock.daemon.composition import build_service
    from hardware.screens import ConsoleScreen

    svc = build_service(
        emulated_config(1, str(tmp_path / "state")), screen=ConsoleScreen(io.StringIO())
    )
    svc.store.enrol_device("EMU0001", "BWC-1", "1.0", b"\0" * 32)
    svc.store.add_officer("9001", "Zhao Min", "T3", "999000", role="supervisor")
    for module in ("officers", "devices", "cases", "audit"):
        monkeypatch.setattr(f"dock.cli.{module}.service_from", lambda args: svc)
    monkeypatch.setattr(common, "service_from", lambda args: svc)

    def dock(*argv: str) -> tuple[int, str, str]:
        code = run(["--actor", "clerk", *argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return dock


def no_repr(text: str) -> bool:
    return not any(s in text for s in ("{'", "Summary(", "Exported(", "Flagged(", "=True"))


def test_no_python_reprs_human_lines_or_json(cli, tmp_path) -> None:
    code, out, _ = cli("device", "flag", "EMU0001", "--lost", "--note", "car")
    assert code == 0 and out == "recorder EMU0001: lost\n"
    code, out, _ = cli("device", "flag", "EMU0001", "--found", "--repaired", "--json")
    assert code == 0 and json.loads(out)["changes"] == {"lost": False, "maintenance": False}
    path = str(tmp_path / "audit.jsonl")
    code, out, _ = cli("audit", "export", path)
    assert code == 0 and no_repr(out) and out.startswith(f"exported to {path}: ")
    code, out, _ = cli("audit", "export", path, "--json")
    assert code == 0 and json.loads(out)["path"] == path
    code, out, _ = cli("officer", "add", "5005", "--name", "Sun Li", "--unit", "T3",
                       "--pin", "258147", "--json")  # fmt: skip
    assert code == 0 and json.loads(out) == {"officer_id": "5005", "role": "officer"}
    code, out, _ = cli("officer", "list", "--json")
    assert {o["officer_id"] for o in json.loads(out)} == {"9001", "5005"}
    code, out, _ = cli("device", "list")
    assert code == 0 and no_repr(out) and out.split() == ["EMU0001", "BWC-1", "1.0", "-"]


def test_refusals_and_bad_requests_are_one_line(cli) -> None:
    code, _, err = cli("device", "flag", "EMU0001")
    assert code == 2 and err == "dock device flag: give --lost/--found/--maintenance/--repaired\n"
    code, _, err = cli("device", "flag", "NOPE", "--lost")
    assert code == 2 and err == "dock device: device NOPE is not enrolled\n"
    code, _, err = cli("officer", "disable", "7777")
    assert code == 2 and err == "dock officer: no officer 7777\n"
    code, _, err = cli("officer", "unlock", "9001", "--supervisor", "9001",
                       "--supervisor-pin", "000000")  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "not verified" in err
