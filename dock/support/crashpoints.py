"""Test-only fault injection: named points of the offload (and of a purge) where a test
has the dock die.

TEST-ONLY, like SQLite's test hooks (``sqlite3_test_control``, the crash VFS of its
test suite): with ``DOCK_CRASH_AT=<point>:<n>`` in its environment, the dock process
sends itself SIGKILL the ``n``-th time it reaches ``<point>``: exactly a ``kill -9``
at that instant, chosen by the offload's progress and not by a wall clock, so a test
kills inside every phase of an offload on any machine, however fast or loaded.

Never set ``DOCK_CRASH_AT`` on a dock in service: it kills the dock on purpose.

An offload worker process (dock/daemon/offload_worker.py) inherits the environment and
calls :func:`die_with`: a point reached there (the copy, verify and publish points)
kills the dock first, then the worker, so the kill is still the dock's at that instant.

Unset (always, in service), :func:`reach` is one test of a module global read once at
import; a hot loop tests :data:`ARMED` itself before calling it. A malformed value or
an unknown point name makes the import fail: a misspelt point must not silently never
fire, which would let a test pass by luck.

:data:`POINTS` names every point of an offload; ``tests/test_offload_kill.py`` kills at
each of them and counts the kills by phase (the name up to its first dot).
:data:`PURGE_POINTS` names those of a purge (``dock purge --apply`` and the daemon
completing one); ``tests/test_purge_kill.py`` kills at each of them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

ENV = "DOCK_CRASH_AT"

#: Every crash point, in the order an offload reaches them, with what is on disk then.
POINTS: dict[str, str] = {
    "copy.start": "temporary file created in the archive folder, nothing written yet",
    "copy.chunk": "one more chunk written to the temporary file (reached per chunk)",
    "verify.start": "temporary file complete and fsynced, not yet read back",
    "verify.existing": "a file already at the final name (a resume), not yet re-hashed",
    "publish.before_rename": "verified and read-only, not yet renamed to its final name",
    "publish.after_rename": "under its final name, folder fsynced, no database row yet",
    "publish.after_row": "archive row inserted, uncommitted; its offload_file entry not yet",
    "erase.intent.before": "archived and verified (or read back), erase_intent not yet written",
    "erase.before": "erase_intent in the audit log, ERASE not yet sent to the recorder",
    "erase.after": "the recorder erased it, the archive row not yet marked erased",
    "audit.erase.before": "row marked erased, uncommitted; its erase entry not yet written",
    "audit.confirm.before": "an erasure found after a restart, not yet marked or audited",
    "seal.intent.after": "a package's members claimed in the database, nothing on disk yet",
    "seal.start": "footage archived; the bag's temporary folder created, still empty",
    "seal.before_rename": "bag complete and fsynced in its temporary folder, not renamed",
    "seal.after_rename": "bag renamed into place, not yet recorded as made",
    "seal.made.after": "bag in place and recorded as made, its seal audit entry not yet",
    "audit.done.before": "offload finished, its offload_done audit entry not yet written",
}

#: Every crash point of a purge batch (dock/evidence/purging.py), in the order it
#: reaches them. A re-seal also passes make_bag's ``seal.*`` points.
PURGE_POINTS: dict[str, str] = {
    "purge.intent.after": "purge intent and record audited and in the database; disk untouched",
    "purge.reseal.made": "new package for the remaining recordings in place, not yet sealed",
    "purge.reseal.after": "new package sealed (audited, remaining recordings moved to it); "
    "old package and purged files still on disk",
    "purge.file.after": "one more purged file unlinked (reached per purged recording)",
    "purge.bag.aside": "old package renamed aside (out of bags/), not yet deleted",
    "purge.done.before": "files and old package gone; purge entry and purge rows not yet written",
}

#: The crash point of a working copy's removal at its expiry (dock/evidence/working_copies.py).
WORKING_COPY_POINTS: dict[str, str] = {
    "working_copy.unlinked": "one working copy unlinked (folder fsynced), its removal not "
    "yet recorded (reached per file)",
}

#: The crash points of replication to central storage (dock/evidence/replication.py).
REPLICATION_POINTS: dict[str, str] = {
    "replication.file.published": "one more file of a package renamed into place at the "
    "target, not yet read back (reached per file)",
    "replication.second_copy.after": "every file verified and each member's second copy "
    "recorded; the package's state and its package_replicated entry not yet written",
}

#: Every point :func:`reach` knows.
ALL_POINTS: dict[str, str] = POINTS | PURGE_POINTS | WORKING_COPY_POINTS | REPLICATION_POINTS


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    name, sep, count = value.rpartition(":")
    if not sep or name not in ALL_POINTS or not count.isdigit() or int(count) < 1:
        raise ValueError(
            f"{ENV}={value!r}: expected <point>:<n> with n >= 1 and point one of "
            + ", ".join(ALL_POINTS)
        )
    return name, int(count)


_TARGET = _parse(os.environ.get(ENV))
#: True only when this process was started with DOCK_CRASH_AT (tests).
ARMED = _TARGET is not None
_count = 0
_lock = threading.Lock()
#: In a worker process of the dock (an offload's copy): the dock's pid, killed first.
_dock_pid: int | None = None


def die_with(pid: int) -> None:
    """This process works for the dock ``pid``: a point reached here kills the dock first,
    then this process, exactly the kill -9 of the dock at that instant (the worker would
    die with it anyway: it never outlives the dock)."""
    global _dock_pid
    _dock_pid = pid


def reach(name: str) -> None:
    """The dock is at crash point ``name``: die here if the environment says so."""
    if not ARMED:
        return
    global _count
    assert _TARGET is not None
    if name != _TARGET[0]:
        return
    with _lock:
        _count += 1
        if _count == _TARGET[1]:
            if _dock_pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(_dock_pid, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
