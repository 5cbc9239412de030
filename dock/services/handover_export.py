"""The yearly hand-over of a year's records to the unit's archivist (004 att.2 §7):
``dock.evidence.yearly`` writes, validates, records and audits the bag; this binds it to
the dock (its time zone, seals and clock)."""

from __future__ import annotations

from dock.evidence.yearly import Handover, HandoverError, handover
from dock.services.context import DockContext
from dock.services.errors import RequestError


def handover_year(dock: DockContext, actor: str, year: int, to: str) -> Handover:
    """``dock archive handover --year YEAR DIR``: DIR is made, never replaced."""
    try:
        return handover(dock.store, dock.audit, dock.offloader.seals, year, to, actor,
                        dock.timezone, dock.clock.now)  # fmt: skip
    except HandoverError as exc:
        raise RequestError(str(exc)) from None
