"""The log itself: an append-only SQLite file, written under a lock, read in snapshots.

Over 400 lines on purpose: :class:`AuditLog` is the chain's one writer; appending,
signing checkpoints and reading back share its lock, connection and schema. The chain's
rules, the export and the checkpoint files outside are already the package's other modules.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from common.utc import utc_iso
from dock.domain.audit_kinds import AuditKind
from dock.storage.audit import schema as audit_schema
from dock.storage.audit.chain import (
    Row,
    SqlSource,
    as_text,
    canonical_json,
    checkpoint_message,
    entry_hash,
    verify_chain,
)
from dock.storage.audit.checkpoint_files import keep_outside, read_checkpoint_file
from dock.storage.audit.export import chain_lines, row_dict, write_export
from dock.storage.audit.model import (
    BAD_OUTSIDE_CHECKPOINT,
    ENTRY_COLUMNS,
    EXPORT_FORMAT,
    GENESIS,
    META_CHANGED,
    META_FORMAT,
    AuditEntry,
    AuditError,
    Checkpoint,
    ExportSummary,
    OutsideCheckpoint,
    VerifyReport,
)
from dock.storage.keys import fingerprint, public_key_bytes
from dock.storage.sqlite_tx import immediate

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_BUSY_TIMEOUT_MS = 10_000

_CHECKPOINT_COLUMNS = "seq, head_hash, time, public_key, signature"


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # Invalid UTF-8 written behind our back must read as "changed", not raise.
    conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous = FULL")  # an acknowledged entry survives power loss
    return conn


class AuditLog:
    """The append-only, hash-chained audit log of one dock, in a SQLite file.

    Thread-safe: appends from this process share one connection under a lock; other
    processes (the CLI) are serialised by ``BEGIN IMMEDIATE`` and ``busy_timeout``.
    Reads (``entries``, ``verify``, ``export``) use their own connection and one
    snapshot each, so they never see half a transaction nor block appends.
    """

    def __init__(
        self,
        db_path: str,
        signing_key: Ed25519PrivateKey,
        dock_id: str,
        checkpoint_every: int = 100,
        clock: Callable[[], float] = time.time,
        copy_path: str | None = None,
    ) -> None:
        """``copy_path``: where the newest checkpoint is also kept, outside the database
        (a checkpoint file, best in another directory or on another disk); None: nowhere."""
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        if not dock_id:
            raise ValueError("dock_id must not be empty")
        self.db_path = db_path
        self.dock_id = dock_id
        self.checkpoint_every = checkpoint_every
        self.copy_path = copy_path
        self._signed: Checkpoint | None = None
        self._key = signing_key
        self._public = public_key_bytes(signing_key)
        self._clock = clock
        self._lock = threading.Lock()
        self._conn = _connect(db_path)
        try:
            self._open()
        except BaseException:
            self._conn.close()
            raise

    def _open(self) -> None:
        try:
            check = [r[0] for r in self._conn.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            raise AuditError(f"audit database {self.db_path} is damaged: {exc}") from exc
        if check != ["ok"]:
            raise AuditError(f"audit database {self.db_path} is damaged: {'; '.join(check)}")
        mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise AuditError(f"audit database {self.db_path}: cannot use WAL (got {mode})")
        audit_schema.apply(self._conn, self.db_path)  # a backup first if it is behind
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is None:
                # A new log. In a log with entries, meta is never written again: rows
                # missing there are for verify() to report, not for us to paper over.
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('dock_id', ?), ('format', ?)",
                    (self.dock_id, META_FORMAT),
                )
            row = conn.execute("SELECT value FROM meta WHERE key = 'dock_id'").fetchone()
            stored = self.dock_id if row is None else row[0]
        if stored != self.dock_id:
            raise AuditError(
                f"audit database {self.db_path} belongs to dock {stored!r}, not "
                f"{self.dock_id!r}: check the configured dock id"
            )

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._signed = None
            with immediate(self._conn) as conn:
                yield conn
            # Committed: only now may the copy outside the database name this checkpoint.
            signed, self._signed = self._signed, None
            if signed is not None and self.copy_path:
                self._keep_outside(signed)

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        conn = _connect(self.db_path)
        try:
            conn.execute("PRAGMA query_only = 1")
            conn.execute("BEGIN")
            conn.execute("SELECT 1 FROM entries LIMIT 1").fetchall()  # start the snapshot now
            yield conn
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def public_key(self) -> bytes:
        return self._public

    # --- writing ---

    def append(self, kind: AuditKind, actor: str, subject: str, data: dict[str, Any]) -> int:
        """Append one entry and return its seq; signs a checkpoint when one is due.

        ``kind`` is an :class:`AuditKind` (its plain value is accepted too, nothing else:
        a kind outside the list raises TypeError, so none is written that headquarters'
        reporting has not decided on). ``actor`` is who did it (officer or supervisor id,
        or "dock"); ``subject`` what it was done to (a recorder serial, a setting).
        ``data`` must be JSON-representable. The entry is on disk (fsynced) when this
        returns.
        """
        kind = _audit_kind(kind)
        if not isinstance(actor, str) or not isinstance(subject, str):
            raise TypeError("actor and subject must be strings")
        if not isinstance(data, dict):
            raise TypeError("audit data must be a dict")
        try:
            data_json = canonical_json(data)
            for text in (actor, subject, data_json):
                text.encode("utf-8")  # lone surrogates cannot be hashed: refuse them now
        except (TypeError, ValueError) as exc:
            raise ValueError(f"audit data is not representable as JSON: {exc}") from exc
        value = kind.value  # a member is stored as its plain value
        with self._write() as conn:
            seq, prev = self._head(conn)
            seq += 1
            stamp = utc_iso(self._clock())
            digest = entry_hash(prev, self.dock_id, seq, stamp, value, actor, subject, data_json)
            conn.execute(
                f"INSERT INTO entries ({ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, stamp, value, actor, subject, data_json, prev, digest),
            )
            if seq - self._last_checkpoint(conn) >= self.checkpoint_every:
                self._sign(conn, seq, digest)
        return seq

    def checkpoint(self) -> int:
        """Sign the current head now (e.g. at shutdown); returns the seq it covers (0: empty)."""
        with self._write() as conn:
            seq, head = self._head(conn)
            if seq and self._last_checkpoint(conn) < seq:
                self._sign(conn, seq, head)
            return seq

    def _head(self, conn: sqlite3.Connection) -> tuple[int, str]:
        row = conn.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), row[1])

    @staticmethod
    def _last_checkpoint(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT coalesce(max(seq), 0) FROM checkpoints").fetchone()[0])

    def _sign(self, conn: sqlite3.Connection, seq: int, head: str) -> None:
        stamp = utc_iso(self._clock())
        signature = self._key.sign(checkpoint_message(self.dock_id, seq, head, stamp))
        conn.execute(
            f"INSERT INTO checkpoints ({_CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (seq, head, stamp, self._public.hex(), signature.hex()),
        )
        self._signed = Checkpoint(seq, head, stamp, self._public.hex(), signature.hex())

    def _keep_outside(self, cp: Checkpoint) -> None:
        """Replace the copy outside the database with ``cp`` if ``cp`` extends it."""
        keep_outside(str(self.copy_path), self.dock_id, cp, self._hash_at)

    def _hash_at(self, seq: int) -> str | None:
        row = self._conn.execute("SELECT hash FROM entries WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else row[0]

    # --- reading ---

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest entry: what to anchor elsewhere (e.g. headquarters)."""
        with self._snapshot() as conn:
            return self._head(conn)

    def entries(self, since: int = 0) -> Iterator[AuditEntry]:
        """Entries with seq > ``since``, oldest first, from one consistent snapshot."""
        with self._snapshot() as conn:
            cur = conn.execute(
                f"SELECT {ENTRY_COLUMNS} FROM entries WHERE seq > ? ORDER BY seq", (since,)
            )
            for r in cur:
                row = Row(*r)
                yield AuditEntry(
                    row.seq, row.time, row.kind, row.actor, row.subject,
                    json.loads(row.data), row.prev_hash, row.hash,
                )  # fmt: skip

    def find(self, kind: AuditKind, subject: str, **data: str | int) -> int | None:
        """The seq of the newest ``kind`` entry about ``subject`` whose data holds these
        values (None: there is none): how a step reconciled after a crash learns whether
        its entry was written before the crash."""
        where = "".join(f" AND json_extract(data, '$.{key}') = ?" for key in data)
        for key in data:
            if not key.isidentifier():
                raise ValueError(f"not a data key: {key!r}")
        with self._snapshot() as conn:
            row = conn.execute(
                f"SELECT seq FROM entries WHERE kind = ? AND subject = ?{where} "
                "ORDER BY seq DESC LIMIT 1",
                (_audit_kind(kind).value, subject, *data.values()),
            ).fetchone()
        return None if row is None else int(row[0])

    def checkpoints(self, since: int = 0) -> list[Checkpoint]:
        """Checkpoints covering entries after ``since``, oldest first."""
        with self._snapshot() as conn:
            return _read_checkpoints(conn, since)

    def checkpoint_before(self, seq: int) -> tuple[int, str]:
        """(seq, head) of the newest checkpoint before entry ``seq``; (0, GENESIS): none."""
        with self._snapshot() as conn:
            row = conn.execute(
                "SELECT seq, head_hash FROM checkpoints WHERE seq < ? ORDER BY seq DESC LIMIT 1",
                (seq,),
            ).fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), as_text(row[1]))

    def position(self, seq: int, checkpoint_seq: int) -> tuple[int, str, str | None, str | None]:
        """(head seq, head hash, hash of entry ``seq``, head of the checkpoint at
        ``checkpoint_seq``), from one snapshot; None where there is no such entry or
        checkpoint (GENESIS for 0). What the reporter checks its cursors against."""
        with self._snapshot() as conn:
            head_seq, head = self._head(conn)
            entry = conn.execute("SELECT hash FROM entries WHERE seq = ?", (seq,)).fetchone()
            cp = conn.execute(
                "SELECT head_hash FROM checkpoints WHERE seq = ?", (checkpoint_seq,)
            ).fetchone()
        at = GENESIS if seq == 0 else (None if entry is None else as_text(entry[0]))
        signed = GENESIS if checkpoint_seq == 0 else (None if cp is None else as_text(cp[0]))
        return head_seq, head, at, signed

    def verify(
        self,
        public_key_bytes: bytes | None = None,
        against: Sequence[OutsideCheckpoint] = (),
    ) -> VerifyReport:
        """Check every link, hash and checkpoint, ``meta``, and that the chain holds the
        head of the copy kept outside (``copy_path``) and of every checkpoint in
        ``against`` (e.g. headquarters'); by default against this dock's own key.

        Entries and checkpoints are read in one snapshot, so appends running meanwhile
        cannot make a sound log look truncated. A copy that exists but cannot be read
        fails the verification: it is evidence, not something to skip.
        """
        trusted = self._public if public_key_bytes is None else bytes(public_key_bytes)
        outside = list(against)
        if self.copy_path:
            try:
                outside.append(read_checkpoint_file(self.copy_path))
            except FileNotFoundError:
                pass
            except (OSError, ValueError) as exc:
                return VerifyReport(
                    ok=False,
                    reason=BAD_OUTSIDE_CHECKPOINT,
                    detail=f"the checkpoint kept in {self.copy_path} cannot be read: {exc}",
                    public_key_fingerprint=fingerprint(trusted),
                )
        with self._snapshot() as conn:
            report = verify_chain(
                self.dock_id, SqlSource(conn), _read_checkpoints(conn), trusted, outside
            )
            rows = conn.execute("SELECT key, value FROM meta").fetchall()
        meta = {as_text(k): as_text(v) for k, v in rows}
        want = {"dock_id": self.dock_id, "format": META_FORMAT}
        if report.ok and meta != want:
            report.ok, report.reason = False, META_CHANGED
            report.detail = "; ".join(
                f"{k} is {meta[k]!r}, not {want[k]!r}"
                if k in meta and k in want
                else (f"{k} is missing" if k in want else f"{k} = {meta[k]!r} should not be there")
                for k in sorted(set(meta) | set(want))
                if meta.get(k) != want.get(k)
            )
        return report

    def export(self, path: str) -> ExportSummary:
        """Write the log for a supervisor (format in the package docstring), atomically.

        Signs a checkpoint first and exports only entries it covers, so every exported
        entry is vouched for by a signature; entries appended meanwhile go in the next.
        """
        self.checkpoint()
        with self._snapshot() as conn:
            cps = _read_checkpoints(conn)
            head_seq = cps[-1].seq if cps else 0
            head_hash = cps[-1].head_hash if cps else GENESIS
            header = {
                "type": "header",
                "format": EXPORT_FORMAT,
                "dock_id": self.dock_id,
                "public_key": self._public.hex(),
                "fingerprint": fingerprint(self._public),
                "exported_at": utc_iso(self._clock()),
                "head_seq": head_seq,
                "head_hash": head_hash,
            }
            rows = conn.execute(
                f"SELECT {ENTRY_COLUMNS} FROM entries WHERE seq <= ? ORDER BY seq", (head_seq,)
            )
            lines: Iterator[dict[str, Any]] = chain_lines(
                header,
                ({"type": "entry", **row_dict(Row(*r))} for r in rows),
                ({"type": "checkpoint", **vars(cp)} for cp in cps),
            )
            write_export(path, lines, self._key)
        return ExportSummary(path, head_seq, len(cps), head_hash)


def _audit_kind(kind: object) -> AuditKind:
    """``kind`` as a member of :class:`AuditKind`; TypeError for anything else."""
    if isinstance(kind, AuditKind):
        return kind
    if isinstance(kind, str):
        with contextlib.suppress(ValueError):
            return AuditKind(kind)
    raise TypeError(f"not an audit kind (dock/domain/audit_kinds.py): {kind!r}")


def _read_checkpoints(conn: sqlite3.Connection, since: int = 0) -> list[Checkpoint]:
    cur = conn.execute(
        f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints WHERE seq > ? ORDER BY seq", (since,)
    )
    return [Checkpoint(r[0], *map(as_text, r[1:])) for r in cur]
