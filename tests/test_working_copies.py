"""Working copies (a view's or a copy's files under ``<state_dir>/exports``) live no
longer than the approval that allowed them (dock/evidence/working_copies.py): the
daemon's maintenance removes each once its request has expired, intent first, and
records it (``working_copy_removed``); only what the working-copy register made is
removed, never through a symbolic link, never inside the archive.

004 att.2 §5: a person uses a copy, never the sealed original (so the original is
untouched); 002 art.26, 003 art.20, 001 art.17(3): copies of confidential footage do not
pile up on the dock once the approval has expired; 003 art.17 and 004 att.3 art.15: the
register says what became of each copy.

Each test names the article it enforces in its docstring."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys

import pytest

from dock.daemon.maintenance import WORKING_COPIES_EVERY_S, Maintenance
from dock.evidence.fixity import verify_archive
from dock.storage.working_copy_table import WorkingCopyTable
from dock.support.crashpoints import ENV

from .test_access_rules import (
    OVERSIGHT,
    _approved,
    _kinds,
    _recs,
    _view,
    docked_dock,
)

DAY = 86400.0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def docked(make_dock):
    """As tests/test_access_rules.py's (two recordings of officer 1001 archived, a second
    supervisor, a keeper and a supervisory body; the register on a clock of its own)."""
    return docked_dock(make_dock)


def _exports(svc) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(svc.store.path)), "exports")


def _sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _originals(svc, entries) -> dict[str, str]:
    return {e["path"]: _sha(os.path.join(svc.offloader.evidence_dir, e["path"])) for e in entries}


def _untouched(svc, entries, before: dict[str, str]) -> None:
    assert _originals(svc, entries) == before
    report = verify_archive(svc.store, svc.offloader.evidence_dir, svc.audit)
    assert report.ok and report.intact == len(entries)


def _sweep(svc, now: float) -> None:
    """The daemon's periodic job, at ``now`` (a new Maintenance: it runs at once)."""
    Maintenance(svc.parts).working_copies(now)


def test_a_views_copy_is_removed_when_its_approval_expires_and_the_removal_is_recorded(
    docked,
) -> None:
    """004 att.2 §5; 002 art.26; 003 art.17: a view's working copy exists while its request
    is approved and is gone once the approval has expired, the removal in the register
    and the audit log; the sealed original is untouched and still verifies."""
    svc, reg, entries, _ = docked
    before = _originals(svc, entries)
    req = _approved(reg, "1002", "view", _recs(entries))
    made = _view(svc, reg, req.id, os.path.join(_exports(svc), "access-1"), "1002")
    paths = [f["path"] for f in made.files]
    expires = reg.get(req.id).expires_at
    m = Maintenance(svc.parts)
    m.working_copies(expires - 1)  # approved still: kept
    assert all(os.path.isfile(p) for p in paths)
    assert _kinds(svc, "working_copy_removed") == []

    m.working_copies(expires - 1 + WORKING_COPIES_EVERY_S)  # expired
    assert not any(os.path.lexists(p) for p in paths)
    assert not os.path.lexists(made.folder)  # the copy's own folder, emptied, goes too
    removed = _kinds(svc, "working_copy_removed")
    assert sorted(e.subject for e in removed) == sorted(f["what"] for f in made.files)
    assert all(e.data["outcome"] == "removed" and e.data["request"] == req.id for e in removed)
    rows = WorkingCopyTable(svc.store).all()
    assert [r["outcome"] for r in rows] == ["removed", "removed"]
    assert all(r["removing_at"] is not None and r["removed_at"] is not None for r in rows)
    _sweep(svc, expires + DAY)  # recorded once
    assert len(_kinds(svc, "working_copy_removed")) == 2
    _untouched(svc, entries, before)


def test_a_copy_to_take_away_and_a_supervisory_bodys_view_expire_the_same_way(docked) -> None:
    """004 att.2 §5; 002 art.26; 001 art.20(3): a copy someone was approved to take stays
    in exports only until its request expires; a supervisory body's direct request
    expires after the default validity, and its copy with it."""
    svc, reg, entries, clock = docked
    before = _originals(svc, entries)
    copy_req = _approved(reg, "1002", "copy", _recs(entries))
    copied = _view(svc, reg, copy_req.id, os.path.join(_exports(svc), "c"), "1002",
                   action="copy")  # fmt: skip
    clock.t += 3600  # the direct request made an hour after the copy's approval
    direct = reg.request(OVERSIGHT, "complaint 2026-17 oversight", _recs(entries), "view")
    assert direct.state(clock()) == "approved" and direct.expires_at is not None
    looked = _view(svc, reg, direct.id, os.path.join(_exports(svc), "o"), OVERSIGHT)

    _sweep(svc, reg.get(copy_req.id).expires_at)  # the copy's request expired, not the other
    assert not any(os.path.lexists(f["path"]) for f in copied.files)
    assert all(os.path.isfile(f["path"]) for f in looked.files)
    _sweep(svc, direct.expires_at)
    assert not any(os.path.lexists(f["path"]) for f in looked.files)
    actions = sorted(e.data["action"] for e in _kinds(svc, "working_copy_removed"))
    assert actions == ["copy", "copy", "view", "view"]
    _untouched(svc, entries, before)


def test_files_the_register_did_not_make_are_left_alone(docked) -> None:
    """004 att.2 §5; 002 art.24: an export package, or any file in exports the
    working-copy register did not make, is left alone; so is a copy written outside the
    exports folder (a path given on the command line)."""
    svc, reg, entries, _ = docked
    exports = _exports(svc)
    req = _approved(reg, "1002", "view", _recs(entries))
    made = _view(svc, reg, req.id, os.path.join(exports, "access-2"), "1002")
    package = os.path.join(exports, "export-7", "data")
    os.makedirs(package)
    stranger = os.path.join(package, "clip.mp4")
    with open(stranger, "wb") as f:
        f.write(b"an export's copy")
    beside = os.path.join(made.folder, "notes.txt")  # in the copy's own folder, not made by it
    with open(beside, "w") as f:
        f.write("kept")
    elsewhere = _view(svc, reg, req.id, os.path.join(os.path.dirname(exports), "cli-copies"),
                      "1002")  # fmt: skip

    svc.housekeeping(reg.get(req.id).expires_at + 1)  # every maintenance job, this one too
    assert not any(os.path.lexists(f["path"]) for f in made.files)
    with open(stranger, "rb") as f:
        assert f.read() == b"an export's copy"
    with open(beside) as f:
        assert f.read() == "kept" and os.path.isdir(made.folder)
    assert all(os.path.isfile(f["path"]) for f in elsewhere.files)
    assert len(_kinds(svc, "working_copy_removed")) == len(made.files)


def test_a_symbolic_link_planted_in_exports_is_never_followed(docked) -> None:
    """004 att.2 §5; 001 art.17(3): a link planted in exports, at a copy's name or as the
    copy's folder, pointing into the archive, is not followed: the sealed originals are
    untouched and still verify; the copy is recorded as not found as made."""
    svc, reg, entries, _ = docked
    before = _originals(svc, entries)
    exports = _exports(svc)
    req = _approved(reg, "1002", "view", _recs(entries))
    one = _view(svc, reg, req.id, os.path.join(exports, "a"), "1002", recordings=_recs(entries)[:1])
    two = _view(svc, reg, req.id, os.path.join(exports, "b"), "1002", recordings=_recs(entries)[1:])
    originals = [os.path.join(svc.offloader.evidence_dir, e["path"]) for e in entries]
    # the first copy replaced by a link to its original
    (first,) = one.files
    os.chmod(os.path.dirname(first["path"]), 0o700)
    os.unlink(first["path"])
    os.symlink(originals[0], first["path"])
    # the second copy's folder replaced by a link to its original's folder
    (second,) = two.files
    assert os.path.basename(second["path"]) == os.path.basename(originals[1])
    os.rename(two.folder, two.folder + ".moved")
    os.symlink(os.path.dirname(originals[1]), two.folder)
    # and an unknown link to the archive
    planted = os.path.join(exports, "planted.mp4")
    os.symlink(originals[0], planted)

    _sweep(svc, reg.get(req.id).expires_at)
    assert os.path.islink(first["path"]) and os.path.islink(two.folder)
    assert os.path.islink(planted)
    _untouched(svc, entries, before)
    outcomes = sorted(e.data["outcome"] for e in _kinds(svc, "working_copy_removed"))
    assert all(o.startswith("left alone") for o in outcomes) and len(outcomes) == 2


_RUN = """
import sys
from dock.evidence.working_copies import remove_expired
from dock.storage.audit import AuditLog
from dock.storage.keys import load_or_create_signing_key
from dock.storage.store import Store
state, evidence, dock_id, now = sys.argv[1:5]
store = Store(state + "/dock.db")
audit = AuditLog(state + "/audit.db", load_or_create_signing_key(state + "/signing.key"), dock_id)
print(len(remove_expired(store, audit, state + "/exports", evidence, float(now))))
"""


def test_a_kill_between_unlink_and_record_is_reconciled_at_the_next_run(docked) -> None:
    """004 att.2 §5; 003 art.17: the removal's intent is committed first; a dock killed
    (DOCK_CRASH_AT) after unlinking a copy but before recording it finds the copy gone at
    its next run and records it then, once; the original is untouched."""
    svc, reg, entries, _ = docked
    before = _originals(svc, entries)
    req = _approved(reg, "1002", "view", _recs(entries))
    made = _view(svc, reg, req.id, os.path.join(_exports(svc), "k"), "1002")
    state = os.path.dirname(os.path.abspath(svc.store.path))
    argv = [sys.executable, "-c", _RUN, state, svc.offloader.evidence_dir, svc.dock_id,
            str(reg.get(req.id).expires_at)]  # fmt: skip
    env = {**os.environ, ENV: "working_copy.unlinked:1"}
    killed = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    first, second = (f["path"] for f in made.files)
    assert not os.path.lexists(first) and os.path.isfile(second)
    rows = WorkingCopyTable(svc.store).all()
    assert rows[0]["removing_at"] is not None and rows[0]["removed_at"] is None
    assert _kinds(svc, "working_copy_removed") == []

    env.pop(ENV)
    again = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["2"]
    assert not os.path.lexists(second)
    removed = _kinds(svc, "working_copy_removed")
    assert [(e.data["outcome"], e.data["interrupted"]) for e in removed] == [
        ("already gone", True), ("removed", False)]  # fmt: skip
    assert [r["outcome"] for r in WorkingCopyTable(svc.store).all()] == ["already gone", "removed"]
    _untouched(svc, entries, before)
