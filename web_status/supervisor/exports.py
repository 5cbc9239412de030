"""Exports started from the site: the daemon writes the package (``access.export``), the
site follows its progress and hands the result out by export id only.

An export can take minutes, longer than a page may wait, so it runs in a thread of this
process that makes the one daemon request; the page polls :func:`progress`. Where the
package goes is chosen here, never by the browser: ``<exports root>/<export id>/``, the
id made here (``<request>-<8 hex>``). A finished export is found again from the audit
log's ``access_export`` entry (what the daemon recorded writing), so downloads survive
a restart of the site; a download is checked to lie inside the exports root.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from typing import Any

from dock.storage.audit.reader import AuditFilter, AuditReader

EXPORT_ID = re.compile(r"^[0-9]{1,9}-[0-9a-f]{8}$")


@dataclass
class Job:
    export_id: str
    request_id: int
    by: str
    expected_bytes: int
    state: str = "running"  # running, done, failed
    problem: str = ""
    result: dict[str, Any] = field(default_factory=dict)


class Exports:
    """The site's export jobs (one per app), and the finished exports on disk."""

    def __init__(self, root: str, audit_db: str) -> None:
        self.root = os.path.realpath(root)
        self.audit_db = audit_db
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def folder(self, export_id: str) -> str:
        return os.path.join(self.root, export_id)

    def start(
        self,
        request_id: int,
        by: str,
        expected: int,
        run: Any,
        extractor: str,
        place: str,
        iso: bool,
    ) -> Job:
        """Start ``run(args) -> result`` (the daemon request) in a thread; the job at once."""
        export_id = f"{request_id}-{secrets.token_hex(4)}"
        folder = self.folder(export_id)
        args: dict[str, Any] = {"request_id": request_id, "to": folder,
                                "extractor": extractor, "place": place}  # fmt: skip
        if iso:
            args["iso"] = os.path.join(folder, f"export-{request_id}.iso")
        job = Job(export_id, request_id, by, expected * (2 if iso else 1))
        with self._lock:
            self.jobs[export_id] = job

        def work() -> None:
            try:
                job.result = dict(run(args) or {})
                job.state = "done"
            except Exception as exc:  # worded by run(); shown to the person who started it
                job.problem = str(getattr(exc, "message", exc))[:300]
                job.state = "failed"

        threading.Thread(target=work, name=f"export-{export_id}", daemon=True).start()
        return job

    def progress(self, export_id: str) -> dict[str, Any] | None:
        """State and bytes written so far (what the folder holds), or None: unknown id."""
        if not EXPORT_ID.match(export_id):
            return None
        with self._lock:
            job = self.jobs.get(export_id)
        if job is None:
            found = self.finished(export_id)
            if found is None:
                return None
            return {"export_id": export_id, "state": "done", "percent": 100, "problem": "",
                    "request_id": found.get("request_id"),
                    "iso": bool(found.get("iso")), "bag": True}  # fmt: skip
        written = _size(self.folder(export_id))
        percent = (
            100 if job.state == "done" else min(99, int(100 * written / max(1, job.expected_bytes)))
        )
        return {"export_id": export_id, "state": job.state, "percent": percent,
                "problem": job.problem, "request_id": job.request_id,
                "iso": bool(job.result.get("iso_path")), "bag": job.state == "done"}  # fmt: skip

    def finished(self, export_id: str) -> dict[str, Any] | None:
        """The export as the daemon recorded it (``access_export``), inside this folder."""
        if not EXPORT_ID.match(export_id):
            return None
        folder = self.folder(export_id)
        reader = AuditReader(self.audit_db)
        page = reader.page(AuditFilter(kind="access_export"), limit=200)
        for entry in page.entries:
            bag = entry.data.get("bag")
            if isinstance(bag, str) and _inside(bag, folder):
                iso = entry.data.get("iso")
                request_id = entry.subject.partition(":")[2]
                return {
                    "bag": bag,
                    "iso": iso if isinstance(iso, str) and _inside(iso, folder) else None,
                    "request_id": int(request_id) if request_id.isdigit() else None,
                }
        return None

    def listing(self) -> list[dict[str, Any]]:
        """Jobs of this process, newest first, with their progress."""
        with self._lock:
            ids = list(self.jobs)
        return [p for p in (self.progress(i) for i in reversed(ids)) if p is not None]

    def iso_file(self, export_id: str) -> str | None:
        found = self.finished(export_id)
        iso = None if found is None else found["iso"]
        return iso if iso and os.path.isfile(iso) else None

    def bag_zip(self, export_id: str) -> tuple[str, str] | None:
        """A zip of the package folder in a temporary file (the caller removes it), and
        the name to download it as; None: no finished export of that id."""
        found = self.finished(export_id)
        if found is None or not os.path.isdir(found["bag"]):
            return None
        bag = found["bag"]
        name = os.path.basename(bag)
        fd, path = tempfile.mkstemp(prefix=".download-", suffix=".zip")
        with os.fdopen(fd, "wb") as out, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
            for here, dirs, files in os.walk(bag):
                dirs.sort()
                for f in sorted(files):
                    full = os.path.join(here, f)
                    if os.path.islink(full):
                        continue  # a package holds files; never follow a link out of it
                    z.write(full, os.path.join(name, os.path.relpath(full, bag)))
        return path, name + ".zip"


def _inside(path: str, root: str) -> bool:
    path, root = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([path, root]) == root


def _size(folder: str) -> int:
    total = 0
    for here, _dirs, files in os.walk(folder):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(here, f)).st_size
    return total
