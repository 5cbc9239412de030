"""The audit log's export for a supervisor: a signed, self-contained copy, itself
audited (``audit_export``)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from dock.domain.audit_kinds import AuditKind
from dock.services.context import DockContext
from dock.services.errors import RequestError


@dataclass(frozen=True)
class Exported:
    path: str
    #: Entries exported (every one covered by a signed checkpoint), and checkpoints.
    entries: int
    checkpoints: int
    head_hash: str


def export(dock: DockContext, actor: str, path: str) -> Exported:
    """Write the export, then its entry; if the entry cannot be written, the export is
    removed again: no copy of the log leaves unaudited."""
    if not path.strip():
        raise RequestError("the export needs a file name")
    if os.path.isdir(path):
        raise RequestError(f"{path} is a directory: name the file to write")
    summary = dock.audit.export(path)
    try:
        dock.audit.append(AuditKind.AUDIT_EXPORT, actor, path, {})
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return Exported(summary.path, summary.entries, summary.checkpoints, summary.head_hash)
