"""Gaps in recording, the three steps of an item (001 art.19(2)): the officer's account,
a supervisor's review (accepted with a written explanation, or returned with a reason),
the records keeper's filing. ``dock.evidence.gaps.GapRegister`` checks the order and
audits each; this binds it to the dock and resolves "every open item of this officer"."""

from __future__ import annotations

from collections.abc import Sequence

from dock.domain.explanations import State
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
    """Review items (listed, or every one of an officer with an account waiting for the
    review), accepting their accounts with one written explanation."""
    if bool(ids) == bool(all_open_for):
        raise RequestError("give item ids (12 14 20-25) or --all-open-for OFFICER")
    gaps = register(dock)
    if all_open_for:  # every item of the officer whose account waits for the review
        ids = [i.id for i in gaps.list_items(all_open_for) if i.state is State.ACCOUNTED]
        if not ids:
            raise Refused(f"no account of officer {all_open_for} waits for review")
    return gaps.close_items(ids, supervisor, pin, text)


def return_account(
    dock: DockContext, actor: str, supervisor: str, pin: str, text: str, ids: Sequence[int]
) -> list[ExplanationItem]:
    """A supervisor returns accounts to their officers with a reason (written again)."""
    if not ids:
        raise RequestError("give the ids of the items to return")
    return register(dock).review_items(ids, supervisor, pin, text, accept=False)


def file(
    dock: DockContext, actor: str, keeper: str, pin: str, ids: Sequence[int], note: str = ""
) -> list[ExplanationItem]:
    """The records keeper files reviewed items."""
    if not ids:
        raise RequestError("give the ids of the items to file")
    return register(dock).file_items(ids, keeper, pin, note)
