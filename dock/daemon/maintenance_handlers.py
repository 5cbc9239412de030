"""Read-only control requests for the maintenance pages and the audit viewer:
``audit_verify`` (docs/CONTROL.md).

The chain is verified in the daemon because it alone knows the dock's public key for
sure (from its signing key) and where the checkpoint kept outside the database is; the
web process only reads ``audit.db``. Not under the sweep lock: a verification of a large
log takes seconds, and it reads its own snapshot, so appends go on meanwhile.
"""

from __future__ import annotations

from typing import Any

from dock.daemon.control_server import Handler, RequestFailed, SendProgress
from dock.daemon.service import DockService


def maintenance_handlers(svc: DockService) -> dict[str, Handler]:
    """``audit_verify`` on ``svc``'s audit log."""

    def audit_verify(raw: dict[str, Any], _progress: SendProgress) -> dict[str, Any]:
        if raw:
            raise RequestFailed("bad_request", f"unknown argument(s): {', '.join(sorted(raw))}")
        report = svc.audit.verify()
        return {
            "ok": report.ok,
            "entries_checked": report.entries_checked,
            "checkpoints_checked": report.checkpoints_checked,
            "first_bad": report.first_bad,
            "reason": report.reason,
            "detail": report.detail,
            "bad_checkpoint": report.bad_checkpoint,
            "head_seq": report.head_seq,
            "last_checkpoint": report.last_checkpoint,
            "unsigned_tail": report.unsigned_tail,
            "fingerprint": report.public_key_fingerprint,
            "outside": list(report.outside),
            "notes": list(report.notes),
            "summary": report.describe(),
        }

    return {"audit_verify": audit_verify}
