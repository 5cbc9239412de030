"""A logged-in person's request never names where the daemon writes: exports go into the
dock's exports folder, as new files, or are refused. The daemon writes as the dock, so a
path from a browser could otherwise replace dock.db or audit.db (SECURITY.md)."""

from __future__ import annotations

import hashlib
import os

import pytest

from web_status.context import DaemonError

from .web_harness import PEOPLE


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_an_export_path_outside_the_exports_folder_is_refused(web_dock) -> None:
    link = web_dock.app.extensions["dock"]
    token = link.login(PEOPLE["supervisor"][0], PEOPLE["supervisor"][1])["token"]
    state = web_dock.state_dir
    exports = os.path.join(state, "exports")
    os.makedirs(exports, exist_ok=True)
    audit_db = os.path.join(state, "audit.db")
    before = _digest(audit_db)
    os.symlink(state, os.path.join(exports, "state"))
    existing = os.path.join(exports, "kept.jsonl")
    with open(existing, "w") as f:
        f.write("someone's file\n")
    for path in (
        audit_db,  # the log itself
        os.path.join(state, "dock.db"),
        "/tmp/elsewhere.jsonl",
        os.path.join(exports, "..", "audit.db"),
        os.path.join(exports, "state", "audit.db"),  # through a link
        existing,  # never replaced
        "relative.jsonl",
    ):
        with pytest.raises(DaemonError) as refused:
            link.act(token, "audit.export", {"path": path})
        assert refused.value.code == "invalid", path
    assert _digest(audit_db) == before
    with open(existing) as f:
        assert f.read() == "someone's file\n"
    # inside the folder, a new name: written, audited with the person
    target = os.path.join(exports, "audit-1.jsonl")
    done = link.act(token, "audit.export", {"path": target})
    assert done["entries"] > 0 and os.path.isfile(target)
    entry = list(web_dock.svc.audit.entries())[-1]
    assert (entry.kind, entry.actor, entry.subject) == ("audit_export", "9001", target)


def test_the_command_line_still_writes_where_its_user_says(web_dock, tmp_path) -> None:
    """The dock's own user (no session) is not confined: `dock audit export PATH`."""
    from dock.services import requests

    target = str(tmp_path / "mine.jsonl")
    requests.call(web_dock.svc, "audit.export", {"path": target}, actor="root")
    assert os.path.isfile(target)
