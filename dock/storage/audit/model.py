"""The audit log's names: formats, reasons a verification fails, and the records
the log, the export and the checkpoint files share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ENTRY_DOMAIN = "bwc-dock-audit/v1"
CHECKPOINT_DOMAIN = "bwc-dock-audit-checkpoint/v1"
EXPORT_DOMAIN = "bwc-dock-audit-export/v1"
EXPORT_FORMAT = "bwc-dock-audit-export/1"
CHECKPOINT_FILE_FORMAT = "bwc-dock-audit-checkpoint/1"
#: What ``meta`` holds besides the dock id; anything else there fails ``verify``.
META_FORMAT = "1"
GENESIS = "0" * 64
#: The columns of an entry, in the order the hash covers them.
ENTRY_COLUMNS = "seq, time, kind, actor, subject, data, prev_hash, hash"

# Reasons a verification fails (VerifyReport.reason).
CHANGED = "changed"
REMOVED = "removed"
REORDERED = "reordered"
BAD_CHECKPOINT_SIGNATURE = "bad checkpoint signature"
CHECKPOINT_MISMATCH = "checkpoint does not match chain"
WRONG_KEY = "signed by another key"
MALFORMED = "malformed export"
BAD_EXPORT_SIGNATURE = "bad export signature"
META_CHANGED = "meta changed"
BAD_OUTSIDE_CHECKPOINT = "bad outside checkpoint"

#: What ``verify`` says when nothing outside the log vouches for its newest entries.
NO_OUTSIDE_CHECKPOINT = (
    "no external checkpoint to compare with: a cut of the newest entries would not show"
)

HEX64 = re.compile(r"[0-9a-f]{64}")
HEX128 = re.compile(r"[0-9a-f]{128}")


class AuditError(Exception):
    """The audit log cannot be used (damaged database, another dock's log)."""


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: str
    kind: str
    actor: str
    subject: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    time: str
    public_key: str
    signature: str


@dataclass(frozen=True)
class OutsideCheckpoint:
    """A checkpoint kept outside the database: its copy beside the log, or headquarters'.

    ``source`` names where it came from, for the report (a file's path).
    """

    dock_id: str
    checkpoint: Checkpoint
    source: str


@dataclass(frozen=True)
class ExportSummary:
    path: str
    entries: int
    checkpoints: int
    head_hash: str


@dataclass
class VerifyReport:
    """The outcome of a verification; ``describe()`` is the line a person reads."""

    ok: bool
    entries_checked: int = 0
    checkpoints_checked: int = 0
    #: The first entry that can no longer be trusted, or None.
    first_bad: int | None = None
    reason: str | None = None
    detail: str = ""
    #: When a checkpoint failed: its seq (it vouched for entries first_bad..this).
    bad_checkpoint: int | None = None
    head_seq: int = 0
    head_hash: str = GENESIS
    #: The newest valid checkpoint; entries after it are not signed yet.
    last_checkpoint: int = 0
    public_key_fingerprint: str = ""
    notes: list[str] = field(default_factory=list)
    #: Checkpoints kept outside the log that the chain was compared with, as
    #: "entry N (source)"; empty: nothing outside vouched for the newest entries.
    outside: list[str] = field(default_factory=list)
    #: False for an export, whose own signature covers where it ends.
    needs_outside: bool = True

    @property
    def unsigned_tail(self) -> int:
        return max(0, self.head_seq - self.last_checkpoint) if self.ok else 0

    def describe(self) -> str:
        if self.ok:
            tail = f", {self.unsigned_tail} newer not yet signed" if self.unsigned_tail else ""
            line = (
                f"audit log OK: {self.entries_checked} entries, {self.checkpoints_checked} "
                f"checkpoints, signed up to entry {self.last_checkpoint}{tail}; head "
                f"{self.head_hash[:16]}; key {self.public_key_fingerprint}"
            )
            if self.outside:
                return line + "\nmatches the checkpoints kept outside: " + "; ".join(self.outside)
            return line + ("\n" + NO_OUTSIDE_CHECKPOINT if self.needs_outside else "")
        where = "" if self.first_bad is None else f" at entry {self.first_bad}"
        return f"audit log BAD{where}: {self.reason}: {self.detail}"
