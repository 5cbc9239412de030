"""Purging footage past retention and not held. A dry run changes nothing; applying
needs two different supervisors with their PINs (four eyes) and a trusted clock, and
each refusal is audited (``purge_refused``). ``dock.evidence.purging.purge`` audits the
purge itself."""

from __future__ import annotations

from dock.domain.audit_kinds import AuditKind
from dock.evidence.appraisals import Appraisal, AppraisalError, AppraisalRegister
from dock.evidence.purging import PurgeReport
from dock.evidence.purging import purge as run_purge
from dock.services.cases import case_lookup
from dock.services.context import DockContext
from dock.services.errors import Refused, RequestError
from dock.services.holds import register
from dock.storage.pins import authorise


def _four_eyes(
    dock: DockContext,
    actor: str,
    first: str | None,
    first_pin: str | None,
    second: str | None,
    second_pin: str | None,
) -> tuple[str, str]:
    if not first or not second:
        raise RequestError("applying a purge needs two supervisors (four eyes)")

    def refuse(who: str, why: str) -> Refused:
        data = {"supervisors": [first, second], "why": why, "by": actor}
        dock.audit.append(AuditKind.PURGE_REFUSED, who, "", data)
        return Refused(why)

    if first == second:
        raise refuse(first, "the two supervisors must be two different people")
    trusted, why = dock.clock.synchronised()
    if not trusted:
        raise refuse(first, f"the clock is not trusted ({why})")
    for who, pin in ((first, first_pin), (second, second_pin)):
        ok = authorise(dock.store, dock.audit, who, pin or "", "purge")
        if not ok.ok:
            raise refuse(who, ok.why)
    return first, second


def _appraisal(
    dock: DockContext, actor: str, appraisal: int, approved: tuple[str, ...]
) -> Appraisal:
    """The appraisal cited, approved and unexpired; else refused (audited when applied)."""
    try:
        return AppraisalRegister(dock.store, dock.audit).for_purge(appraisal, dock.clock.now())
    except AppraisalError as exc:
        if approved:
            data = {"supervisors": list(approved), "why": str(exc), "by": actor,
                    "appraisal": appraisal}  # fmt: skip
            dock.audit.append(AuditKind.PURGE_REFUSED, approved[0], "", data)
        raise Refused(str(exc)) from None


def purge(
    dock: DockContext,
    actor: str,
    apply: bool = False,
    supervisor: str | None = None,
    supervisor_pin: str | None = None,
    second_supervisor: str | None = None,
    second_pin: str | None = None,
    appraisal: int | None = None,
) -> PurgeReport:
    """A dry run, or applied: two supervisors (four eyes) and the approved appraisal
    it follows (004 att.2 §6), of whose recordings it purges only those retention lets go.
    A dry run citing an appraisal shows what applying it would purge."""
    approved: tuple[str, ...] = ()
    if apply:
        approved = _four_eyes(
            dock, actor, supervisor, supervisor_pin, second_supervisor, second_pin
        )
        if appraisal is None:
            raise RequestError(
                "applying a purge needs an approved appraisal: --appraisal ID (004 att.2 §6)"
            )
    cited = None if appraisal is None else _appraisal(dock, actor, appraisal, approved)
    return run_purge(
        dock.store,
        dock.audit,
        register(dock),
        dock.offloader.seals,
        dock.offloader.evidence_dir,
        dock.policy,
        dock.clock.now(),
        dry_run=not apply,
        approved_by=approved,
        actor=actor,
        appraisal=cited,
        # footage attached to an open case is kept (000 §14.4; 001 art.20)
        case=case_lookup(dock),
    )
