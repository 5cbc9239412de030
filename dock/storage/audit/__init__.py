"""The dock's tamper-evident audit log: a hash chain in SQLite with signed checkpoints.

Modules: :mod:`.model` (formats, reasons, records), :mod:`.chain` (construction and
verification), :mod:`.log` (:class:`AuditLog`), :mod:`.export` (the signed export and
its verification), :mod:`.checkpoint_files` (checkpoints kept outside the database).
Everything public is re-exported here.

Every custody change, check result, override, clock set, enrolment, configuration
change and administrative action is appended here (000 §10: tamper-evident storage,
electronic signatures). Nothing is ever updated or deleted: triggers refuse it, and
``verify`` finds it if someone does it anyway behind the dock's back.

Construction (version 1), so that an auditor can re-implement it
------------------------------------------------------------------
All fields are text. ``F(s)`` is the UTF-8 encoding of ``s`` preceded by its length in
bytes as a 4-byte big-endian unsigned integer. Integers are written in decimal ASCII
without sign or leading zeros. Hashes and keys are lowercase hex.

Entry ``n`` (``seq`` = 1, 2, 3, ... without gaps) has::

    hash_n = SHA-256( F("bwc-dock-audit/v1") || F(prev_hash) || F(dock_id) || F(seq)
                      || F(time) || F(kind) || F(actor) || F(subject) || F(data) )

where ``prev_hash`` is ``hash_(n-1)``, or 64 zeros ("0" * 64) for entry 1; ``time`` is
UTC ISO-8601 with milliseconds and a ``Z`` (``2024-05-01T08:00:00.000Z``); ``data`` is
the exact stored JSON text (canonical when written: keys sorted, separators ``,`` and
``:``, no whitespace, UTF-8 not ``\\u``-escaped). The hash covers those exact bytes, so a
verifier never needs to re-canonicalise JSON.

A checkpoint at ``seq`` is an Ed25519 signature (RFC 8032, the dock's key) over::

    F("bwc-dock-audit-checkpoint/v1") || F(dock_id) || F(seq) || F(head_hash) || F(time)

with ``head_hash`` = ``hash_seq``. Because each hash covers its predecessor, a valid
checkpoint at ``seq`` vouches for entries 1..seq. One is made automatically whenever
``checkpoint_every`` entries are unsigned, by ``checkpoint()``, and before an export.

An export is JSON lines (UTF-8, each line canonical JSON as above, ``\\n`` after each):
a ``header`` line (format, dock_id, public_key, fingerprint, exported_at, head_seq,
head_hash), one ``entry`` line per entry (the stored columns; ``data`` as the JSON
*text*), one ``checkpoint`` line per checkpoint, and a final ``signature`` line holding
``sha256`` (hex SHA-256 of every byte before that line) and ``signature``, an Ed25519
signature over ``F("bwc-dock-audit-export/v1") || F(sha256)``. An export contains only
entries covered by its last checkpoint.

The ``meta`` table holds exactly ``dock_id`` (the configured dock id, which every entry
hash covers too) and ``format`` (``1``); ``verify`` refuses a log whose ``meta`` holds
anything else.

A checkpoint file (the copy kept outside the database, and what ``dock-hq checkpoint``
prints) is one canonical JSON object: ``format`` (``bwc-dock-audit-checkpoint/1``),
``dock`` (the dock id), ``seq``, ``head``, ``time``, ``public_key``, ``signature`` (of
the checkpoint, as above) and ``fingerprint``; readers ignore other fields.

What this does and does not prove: without the dock's key, nobody can change, remove,
reorder or insert an entry that a checkpoint covers without ``verify`` noticing. Inside
the database alone, the newest entries can be cut off together with their checkpoints,
and anyone who deletes checkpoints can rewrite and re-hash what they covered, or empty
the log: a checkpoint kept *outside* the database catches all of that. The log keeps
its newest checkpoint in a file of its own (``copy_path``, replaced only by a
checkpoint that extends it) and ``verify`` compares the chain with it and with any
checkpoint given to it (headquarters' copy): the chain must hold each one's head at
its ``seq``. Without any, ``verify`` says that a cut of the newest entries would not
show. Whoever holds the key (root on the dock) can forge everything; the key file is
0600 for that reason, and headquarters' copy is the one such a person cannot reach.
"""

from __future__ import annotations

from common.utc import utc_iso
from dock.domain.audit_kinds import AuditKind
from dock.storage.audit.chain import as_text, canonical_json, checkpoint_message, entry_hash
from dock.storage.audit.checkpoint_files import (
    checkpoint_file_text,
    parse_checkpoint,
    read_checkpoint_file,
)
from dock.storage.audit.export import export_key, verify_export
from dock.storage.audit.log import AuditLog
from dock.storage.audit.model import (
    BAD_CHECKPOINT_SIGNATURE,
    BAD_EXPORT_SIGNATURE,
    BAD_OUTSIDE_CHECKPOINT,
    CHANGED,
    CHECKPOINT_DOMAIN,
    CHECKPOINT_FILE_FORMAT,
    CHECKPOINT_MISMATCH,
    ENTRY_DOMAIN,
    EXPORT_DOMAIN,
    EXPORT_FORMAT,
    GENESIS,
    MALFORMED,
    META_CHANGED,
    META_FORMAT,
    NO_OUTSIDE_CHECKPOINT,
    REMOVED,
    REORDERED,
    WRONG_KEY,
    AuditEntry,
    AuditError,
    Checkpoint,
    ExportSummary,
    OutsideCheckpoint,
    VerifyReport,
)

__all__ = [
    "BAD_CHECKPOINT_SIGNATURE",
    "BAD_EXPORT_SIGNATURE",
    "BAD_OUTSIDE_CHECKPOINT",
    "CHANGED",
    "CHECKPOINT_DOMAIN",
    "CHECKPOINT_FILE_FORMAT",
    "CHECKPOINT_MISMATCH",
    "ENTRY_DOMAIN",
    "EXPORT_DOMAIN",
    "EXPORT_FORMAT",
    "GENESIS",
    "MALFORMED",
    "META_CHANGED",
    "META_FORMAT",
    "NO_OUTSIDE_CHECKPOINT",
    "REMOVED",
    "REORDERED",
    "WRONG_KEY",
    "AuditEntry",
    "AuditError",
    "AuditKind",
    "AuditLog",
    "Checkpoint",
    "ExportSummary",
    "OutsideCheckpoint",
    "VerifyReport",
    "as_text",
    "canonical_json",
    "checkpoint_file_text",
    "checkpoint_message",
    "entry_hash",
    "export_key",
    "parse_checkpoint",
    "read_checkpoint_file",
    "utc_iso",
    "verify_export",
]
