"""``replication_queue``: each sealed package's way to each replication target.

Rows are written before anything is sent (the intent) and moved through ``pending`` ->
``sending`` (file, offset) -> ``verifying`` -> ``replicated`` (verified_at), or
``failed`` (reason, attempts, next_try) and back to ``pending`` when retried;
``superseded`` when a purge replaced the package before it left. SQLite in WAL mode with
``synchronous=FULL`` (the store's connection): a power cut loses no row.

Readers for the status pages, MQTT health and the CLI: :func:`replication_rows` (per
package and target), :func:`replication_backlog` (the whole backlog, overdue against a
deadline) and :func:`replication_targets` (per target, health's shape): read-only, any
process may call them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dock.storage.evidence_tables import Table, dicts, one
from dock.storage.store import Store

#: States that still owe a verified copy.
OPEN_STATES = ("pending", "sending", "verifying", "failed")

#: A custody episode ``c`` an archived recording ``a`` belongs to (as
#: dock.evidence.holds.episodes_of says): it started during the episode, or was
#: archived after its return and before the recorder's next check-out.
_IN_EPISODE = """c.serial = a.serial AND c.withdrawn IS NULL AND (
  (a.start_ms / 1000.0 >= c.out_at AND (c.in_at IS NULL OR a.start_ms / 1000.0 <= c.in_at))
  OR (c.in_at IS NOT NULL AND a.archived_at >= c.in_at AND NOT EXISTS (
      SELECT 1 FROM custody n WHERE n.serial = c.serial AND n.withdrawn IS NULL
      AND n.out_at > c.out_at AND n.out_at <= a.archived_at)))"""

#: Whether a package is urgent: a member attached to a case, or under an active hold of
#: any scope: on the recording, its case, its officer (in the hold's period), its
#: custody episode, or a scope this version does not know (any doubt: urgent).
_URGENT = f"""(
  EXISTS (SELECT 1 FROM archive a JOIN case_links c
          ON c.serial = a.serial AND c.recording_id = a.recording_id
          WHERE a.bag_id = q.seal_id)
  OR EXISTS (SELECT 1 FROM archive a JOIN holds h
             ON h.serial = a.serial AND h.recording_id = a.recording_id
             WHERE a.bag_id = q.seal_id AND h.released_at IS NULL)
  OR EXISTS (SELECT 1 FROM archive a JOIN holds h
             ON h.scope = 'officer' AND h.released_at IS NULL
             AND (a.start_ms <= 0 OR h.from_at IS NULL OR a.start_ms / 1000.0 >= h.from_at)
             AND (a.start_ms <= 0 OR h.to_at IS NULL OR a.start_ms / 1000.0 < h.to_at)
             WHERE a.bag_id = q.seal_id AND (a.officer_id = h.officer_id OR EXISTS (
               SELECT 1 FROM custody c WHERE c.officer_id = h.officer_id AND {_IN_EPISODE})))
  OR EXISTS (SELECT 1 FROM archive a JOIN holds h
             ON h.scope = 'episode' AND h.released_at IS NULL
             JOIN custody c ON c.id = h.custody_id
             WHERE a.bag_id = q.seal_id AND {_IN_EPISODE})
  OR EXISTS (SELECT 1 FROM holds h WHERE h.released_at IS NULL
             AND h.scope NOT IN ('recording', 'case', 'officer', 'episode'))
)"""


class ReplicationTable(Table):
    """Owner of ``replication_queue`` (dock.storage.schema)."""

    def enqueue_missing(self, targets: list[str], now: float) -> int:
        """Every audited seal without a row for each of ``targets`` gets one
        (``pending``); the number added. Idempotent: run at every start and seal."""
        missing = [
            t for t in targets
            if self._db().execute(
                "SELECT 1 FROM seals s WHERE s.state = 'audited' AND NOT EXISTS (SELECT 1 "
                "FROM replication_queue q WHERE q.seal_id = s.id AND q.target = ?) LIMIT 1",
                (t,),
            ).fetchone()
        ]  # fmt: skip
        if not missing:  # the usual case: read only, no write lock taken
            return 0
        added = 0
        with self.transaction():
            for target in missing:
                added += (
                    self._db()
                    .execute(
                        "INSERT OR IGNORE INTO replication_queue "
                        "(seal_id, target, bag, state, sealed_at, enqueued_at, updated_at) "
                        "SELECT id, ?, bag, 'pending', created_at, ?, ? FROM seals "
                        "WHERE state = 'audited'",
                        (target, now, now),
                    )
                    .rowcount
                )
        return added

    def due(self, target: str, now: float, limit: int = 50) -> list[dict[str, Any]]:
        """Open rows of ``target`` whose time has come: urgent first, then oldest."""
        sql = (
            f"SELECT q.*, {_URGENT} AS urgent FROM replication_queue q "
            "WHERE q.target = ? AND q.state IN ('pending', 'sending', 'verifying', 'failed') "
            "AND q.next_try <= ? ORDER BY urgent DESC, q.sealed_at, q.seal_id LIMIT ?"
        )
        return dicts(self._db().execute(sql, (target, now, limit)))

    def get(self, seal_id: int, target: str) -> dict[str, Any] | None:
        return one(
            self._db().execute(
                "SELECT * FROM replication_queue WHERE seal_id = ? AND target = ?",
                (seal_id, target),
            )
        )

    def set_state(self, seal_id: int, target: str, state: str, now: float, **cols: Any) -> None:
        """Move one row to ``state``, setting the given columns too (names from this
        module's callers, never from outside)."""
        allowed = {"file", "file_offset", "bytes_done", "bytes_total", "attempts", "reason",
                   "next_try", "verified_at"}  # fmt: skip
        assert set(cols) <= allowed, cols
        sets = "".join(f", {k} = ?" for k in cols)
        self._db().execute(
            f"UPDATE replication_queue SET state = ?, updated_at = ?{sets} "
            "WHERE seal_id = ? AND target = ?",
            (state, now, *cols.values(), seal_id, target),
        )

    def progress(self, seal_id: int, target: str, file: str, offset: int, done: int) -> None:
        """Where a sending row is (shown as x %); its own short transaction."""
        with self.transaction():
            self._db().execute(
                "UPDATE replication_queue SET file = ?, file_offset = ?, bytes_done = ? "
                "WHERE seal_id = ? AND target = ? AND state = 'sending'",
                (file, offset, done, seal_id, target),
            )

    def retry(
        self,
        seal_id: int | None,
        now: float,
        audit: Callable[[list[dict[str, Any]]], object] | None = None,
    ) -> int:
        """Failed rows (of one package, or all) back to ``pending`` now, attempts reset.
        ``audit(rows)``: called with the rows made due (bag, target), inside the same
        transaction, when there are any (a failed entry undoes the retry)."""
        where = "WHERE state = 'failed'"
        args: tuple[Any, ...] = ()
        if seal_id is not None:
            where, args = where + " AND seal_id = ?", (seal_id,)
        with self.transaction():
            rows = dicts(self._db().execute(
                f"SELECT seal_id, bag, target, reason FROM replication_queue {where} "
                "ORDER BY seal_id, target", args,
            ))  # fmt: skip
            count = int(self._db().execute(
                "UPDATE replication_queue SET state = 'pending', attempts = 0, next_try = 0, "
                f"updated_at = ? {where}", (now, *args),
            ).rowcount)  # fmt: skip
            if rows and audit is not None:
                audit(rows)
        return count

    def members(self, seal_id: int) -> list[dict[str, Any]]:
        return dicts(
            self._db().execute(
                "SELECT serial, recording_id, second_copy_at, second_copy_where FROM archive "
                "WHERE bag_id = ? ORDER BY start_ms, rowid",
                (seal_id,),
            )
        )

    def replicated_everywhere(
        self, serial: str, recording_id: str, targets: list[str] | None = None
    ) -> bool:
        """Whether the recording's package has a verified replica at every one of
        ``targets`` (None: at some target) -- the rule local retention asks before
        freeing a local copy: never before."""
        row = (
            self._db()
            .execute(
                "SELECT bag_id FROM archive WHERE serial = ? AND recording_id = ?",
                (serial, recording_id),
            )
            .fetchone()
        )
        if row is None or row[0] is None:
            return False
        if targets is None:
            targets = [r["target"] for r in self._verified(int(row[0]))][:1]
            return bool(targets)
        return self.verified_replicas(int(row[0]), targets) is not None

    def verified_replicas(self, seal_id: int, targets: list[str]) -> list[dict[str, Any]] | None:
        """Each of ``targets``' verified replica of the package (target, remote,
        verified_at), or None unless every one of them has one."""
        found = {r["target"]: r for r in self._verified(seal_id)}
        if not targets or any(t not in found for t in targets):
            return None
        return [found[t] for t in targets]

    def _verified(self, seal_id: int) -> list[dict[str, Any]]:
        return dicts(
            self._db().execute(
                "SELECT q.target, q.bag, q.verified_at FROM replication_queue q "
                "WHERE q.seal_id = ? AND q.state = 'replicated' AND q.verified_at IS NOT NULL "
                "ORDER BY q.target",
                (seal_id,),
            )
        )


def replication_rows(store: Store, target: str | None = None) -> list[dict[str, Any]]:
    """Every queue row (one per package and target), urgent and oldest first, with
    ``urgent`` (0/1) and ``percent`` (bytes sent of the package, 0..100)."""
    sql = f"SELECT q.*, {_URGENT} AS urgent FROM replication_queue q"
    args: tuple[Any, ...] = ()
    if target is not None:
        sql, args = sql + " WHERE q.target = ?", (target,)
    rows = dicts(store._db().execute(sql + " ORDER BY urgent DESC, q.sealed_at, q.seal_id", args))
    for r in rows:
        total = r["bytes_total"] or 0
        r["percent"] = 100 if r["state"] == "replicated" else (
            int(100 * min(r["bytes_done"], total) / total) if total else 0
        )  # fmt: skip
    return rows


def replication_backlog(store: Store, now: float, deadline_s: float) -> dict[str, Any]:
    """The backlog in one dict (health to headquarters, the status page): counts per
    state, the oldest open package's seal time and age, and how many are past
    ``deadline_s`` after their seal (overdue)."""
    db = store._db()
    counts = {s: 0 for s in (*OPEN_STATES, "replicated")}
    for state, n in db.execute("SELECT state, count(*) FROM replication_queue GROUP BY state"):
        if state in counts:
            counts[state] = int(n)
    open_in = "('pending', 'sending', 'verifying', 'failed')"
    oldest = db.execute(
        f"SELECT min(sealed_at) FROM replication_queue WHERE state IN {open_in}"
    ).fetchone()[0]
    overdue = db.execute(
        f"SELECT count(*) FROM replication_queue WHERE state IN {open_in} AND sealed_at < ?",
        (now - deadline_s,),
    ).fetchone()[0]
    return {
        "counts": counts,
        "open": sum(counts[s] for s in OPEN_STATES),
        "oldest_sealed_at": oldest,
        "oldest_age_s": None if oldest is None else max(0.0, now - oldest),
        "overdue": int(overdue),
        "deadline_s": deadline_s,
    }


def replication_targets(store: Store, now: float) -> dict[str, dict[str, Any]]:
    """Per target name (those with a queue row), what health's ``replication`` object
    carries (mqtt_contract/MQTT.md): ``pending`` (every open package: pending, sending,
    verifying, failed), ``sending`` (sending or verifying now), ``failed``,
    ``replicated_24h``, ``oldest_pending_at`` and ``last_success_at`` (epoch seconds or
    None) and ``last_error`` (the newest failed row's reason; None when the newest
    attempt at that target worked)."""
    db = store._db()
    out: dict[str, dict[str, Any]] = {}
    rows = db.execute(
        "SELECT target, "
        "sum(state IN ('pending', 'sending', 'verifying', 'failed')), "
        "sum(state IN ('sending', 'verifying')), sum(state = 'failed'), "
        "sum(state = 'replicated' AND verified_at >= ?), "
        "min(CASE WHEN state IN ('pending', 'sending', 'verifying', 'failed') "
        "THEN sealed_at END), max(verified_at) FROM replication_queue GROUP BY target",
        (now - 24 * 3600,),
    ).fetchall()
    for target, pending, sending, failed, recent, oldest, last_ok in rows:
        newest = db.execute(
            "SELECT state, reason FROM replication_queue WHERE target = ? "
            "AND state IN ('failed', 'replicated') ORDER BY updated_at DESC LIMIT 1",
            (target,),
        ).fetchone()
        out[str(target)] = {
            "pending": int(pending or 0),
            "sending": int(sending or 0),
            "failed": int(failed or 0),
            "replicated_24h": int(recent or 0),
            "oldest_pending_at": oldest,
            "last_success_at": last_ok,
            "last_error": newest[1] if newest is not None and newest[0] == "failed" else None,
        }
    return out
