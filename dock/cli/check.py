"""``dock check``: is this installation ready to run? One line per check, changing nothing.

What OPERATIONS step 3 needs: the configuration (every problem, one line each), the
folders and files the service writes or reads (there, owned by and writable for the
user the dock runs as, not world-writable, the signing key 0600, secrets readable by
nobody else), the databases' schema versions (read, never migrated), the clock's
synchronisation, free room for evidence and state, the GPIO chip, and the broker.

It opens no recorder, builds no dock and creates nothing: no database, no key, no
folder (tests/test_dock_check.py compares the state folder before and after, and runs
it on a read-only one). Run as root on an installed dock it checks as the ``dock``
user, like every ``dock`` command (common/privileges.py). Exit status 0 when no line
says FAIL, 1 otherwise; ``--json`` for machines.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from dock.cli.check_items import (
    FAIL,
    WARN,
    Line,
    broker,
    clock,
    config_file,
    disk,
    folder,
    foreign_files,
    gpio,
    gpio_pins,
    schema,
    secret_files,
    signing_key,
)
from dock.cli.common import EXIT_OK, EXIT_REFUSED, add_json, add_parser
from dock.config import ConfigError, load_config
from dock.support.text import json_text, shown


def check_config(path: str | None) -> tuple[Any, list[Line]]:
    """The configuration (None when it cannot be used) and its lines."""
    quiet = logging.getLogger("dock.config")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its warnings are lines here, not log records too
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        return None, [Line("config", FAIL, problem) for problem in exc.problems]
    finally:
        quiet.setLevel(level)
    lines = [Line("config", "ok", f"{cfg.path} ({len(cfg.slots)} slot(s))")]
    lines += [Line("config", WARN, warning) for warning in cfg.warnings]
    bad_file = config_file(cfg.path)
    return cfg, lines + ([bad_file] if bad_file else [])


def check_files(cfg: Any) -> list[Line]:
    state = cfg.dock.state_dir
    lines = [
        folder("state_dir", state, "0710"),
        foreign_files(state),
        signing_key(state),
        folder("evidence_dir", cfg.dock.evidence_dir, "0750"),
    ]
    if cfg.dock.audit_checkpoint_copy:
        copy_dir = os.path.dirname(cfg.dock.audit_checkpoint_copy)
        lines.append(folder("audit_checkpoint_copy", copy_dir, "0700"))
    named = [
        ("mqtt.ca_file", cfg.mqtt.ca_file, False),
        ("mqtt.cert_file", cfg.mqtt.cert_file, False),
        ("mqtt.key_file", cfg.mqtt.key_file, True),
        ("mqtt.password_file", cfg.mqtt.password_file, True),
        ("web.tls_cert", cfg.web.tls_cert, False),
        ("web.tls_key", cfg.web.tls_key, True),
    ]
    return lines + secret_files(named)


def check_databases(state_dir: str) -> list[Line]:
    from dock.reporting.outbox import schema_state as outbox_state
    from dock.storage.audit.schema import schema_state as audit_state
    from dock.storage.schema import schema_state as dock_state

    return [
        schema(name, os.path.join(state_dir, name), state)
        for name, state in (("dock.db", dock_state), ("audit.db", audit_state),
                            ("outbox.db", outbox_state))
    ]  # fmt: skip


def check_room(cfg: Any) -> list[Line]:
    from dock.daemon.composition import STATE_MIN_FREE_BYTES
    from dock.evidence.offload import ROOM_MARGIN

    policy = cfg.policy
    shift = int(len(cfg.slots) * policy.recording_hours_per_shift * policy.bytes_per_recording_hour)
    return [
        disk("evidence disk", cfg.dock.evidence_dir, ROOM_MARGIN, shift,
             "one shift's footage from every slot"),
        disk("state disk", cfg.dock.state_dir, STATE_MIN_FREE_BYTES, 64 * STATE_MIN_FREE_BYTES,
             "room for the databases to grow"),
    ]  # fmt: skip


def run_checks(config_path: str | None) -> list[Line]:
    """Every check's lines, in the order printed; only the configuration's when it
    cannot be used (the rest depend on it)."""
    cfg, lines = check_config(config_path)
    if cfg is None:
        return lines
    lines += check_files(cfg)
    lines += check_databases(cfg.dock.state_dir)
    lines.append(clock(cfg.clock.source, cfg.clock.max_offset_s))
    lines += check_room(cfg)
    lines.append(gpio(gpio_pins(cfg)))
    lines.append(broker(cfg.mqtt))
    return lines


def cmd_check(args: argparse.Namespace) -> int:
    lines = run_checks(args.config)
    failed = any(line.level == FAIL for line in lines)
    if args.json:
        print(json_text({"ok": not failed, "checks": [line.as_dict() for line in lines]}))
    else:
        for line in lines:
            print(f"{line.level:<4} {line.name}: {shown(line.reason, 400)}")
    return EXIT_REFUSED if failed else EXIT_OK


def register(sub: Any) -> None:
    p = add_parser(
        sub,
        "check",
        help="check this installation (configuration, permissions, databases, clock, disk, "
        "GPIO, broker) without changing anything",
    )
    add_json(p)
    p.set_defaults(func=cmd_check)
