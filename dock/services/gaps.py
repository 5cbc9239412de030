"""Gaps in recording: the officer's account of an item and a supervisor's explanation
closing items. ``dock.evidence.gaps.GapRegister`` audits each; this binds it to the
dock and resolves "every open item of this officer"."""

from __future__ import annotations

from collections.abc import Sequence

from dock.evidence.gaps import ExplanationItem, GapRegister
from dock.services.context import DockContext
from dock.services.errors import Refused, RequestError


def register(dock: DockContext) -> GapRegister:
    return GapRegister(dock.store, dock.audit)


def account(
    dock: DockContext, actor: str, item_id: int, officer: str, pin: str, text: str
) -> ExplanationItem:
    return register(dock).add_account(item_id, officer, pin, text)


def explain(
    dock: DockContext,
    actor: str,
    supervisor: str,
    pin: str,
    text: str,
    ids: Sequence[int] = (),
    all_open_for: str | None = None,
) -> list[ExplanationItem]:
    """Close items (listed, or every open one of an officer) with one explanation."""
    if bool(ids) == bool(all_open_for):
        raise RequestError("give item ids (12 14 20-25) or --all-open-for OFFICER")
    gaps = register(dock)
    if all_open_for:
        ids = [i.id for i in gaps.list_items(all_open_for)]
        if not ids:
            raise Refused(f"no open items of officer {all_open_for}")
    return gaps.close_items(ids, supervisor, pin, text)
