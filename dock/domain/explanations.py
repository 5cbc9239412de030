"""The three steps of an explanation item, as one table (001 art.19(2)).

When recording was not used or is incomplete, the officer writes a written account of
why, the head of the unit reviews it, and the unit's recorder keeper files it. The dock
opens an item for each interruption and fault it finds in a recorder's logs
(:mod:`dock.evidence.gaps`); this module decides which step may follow which, and who may
take it. Pure: an item's state, the step and who asks in, the next state or a one-line
reason out.

::

    open --account (the item's officer)--> accounted
    accounted --accept (a supervisor, not the officer)--> reviewed
    accounted --return (a supervisor, not the officer, with a reason)--> open
    reviewed --file (a keeper, not the officer nor the reviewer)--> filed

``closed`` is an item a supervisor closed before the three steps existed: it keeps that
state, and no step applies to it. The refusals' words are here too, so each is said in
Chinese by the pages (``web_status/daemon_words.py``; a test holds every one to it).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dock.domain.roles import KEEPER, OFFICER, SUPERVISOR


class State(StrEnum):
    OPEN = "open"  # waiting for the officer's account (new, or returned by the review)
    ACCOUNTED = "accounted"  # the officer wrote it: waiting for a supervisor's review
    REVIEWED = "reviewed"  # a supervisor accepted it: waiting for the keeper to file it
    FILED = "filed"  # the keeper filed it: done
    CLOSED = "closed"  # closed by a supervisor before the three steps: done, kept as it was


class Step(StrEnum):
    ACCOUNT = "account"  # the officer writes the account
    ACCEPT = "accept"  # a supervisor accepts the account
    RETURN = "return"  # a supervisor returns it to the officer, with a reason
    FILE = "file"  # the keeper files the reviewed item


#: The one table: (state, step) -> the state after it. A step not listed for a state is
#: refused (out of order).
TRANSITIONS: Mapping[tuple[State, Step], State] = {
    (State.OPEN, Step.ACCOUNT): State.ACCOUNTED,
    (State.ACCOUNTED, Step.ACCEPT): State.REVIEWED,
    (State.ACCOUNTED, Step.RETURN): State.OPEN,
    (State.REVIEWED, Step.FILE): State.FILED,
}


@dataclass(frozen=True)
class Who:
    """Who may take a step: a role, and whether it must be the item's officer (``own``)
    or anyone but them (and, for filing, anyone but the reviewer)."""

    role: str
    own: bool


WHO: Mapping[Step, Who] = {
    Step.ACCOUNT: Who(OFFICER, own=True),
    Step.ACCEPT: Who(SUPERVISOR, own=False),
    Step.RETURN: Who(SUPERVISOR, own=False),
    Step.FILE: Who(KEEPER, own=False),
}

#: Where an item is, in the words a refusal uses (and the pages show).
STATE_WORDS: Mapping[State, str] = {
    State.OPEN: "waiting for the officer's account",
    State.ACCOUNTED: "waiting for a supervisor's review",
    State.REVIEWED: "reviewed and waiting to be filed",
    State.FILED: "filed",
    State.CLOSED: "closed before the three steps",
}

#: Why a step is refused in the state the item is in: ``{item}`` and ``{state}`` (one of
#: STATE_WORDS) filled in.
OUT_OF_ORDER: Mapping[Step, str] = {
    Step.ACCOUNT: "item {item} is {state}: an account is written only while the item waits for it",
    Step.ACCEPT: "item {item} is {state}: a supervisor reviews only an item with the "
    "officer's account",
    Step.RETURN: "item {item} is {state}: a supervisor reviews only an item with the "
    "officer's account",
    Step.FILE: "item {item} is {state}: the keeper files only an item a supervisor accepted",
}

#: Why a person may not take a step: ``{item}``, ``{officer}`` (the item's) and
#: ``{actor}`` filled in.
NOT_THEIRS: Mapping[Step, str] = {
    Step.ACCOUNT: "item {item} is officer {officer}'s: only they write its account",
    Step.ACCEPT: "item {item} is {actor}'s own: another supervisor reviews it",
    Step.RETURN: "item {item} is {actor}'s own: another supervisor reviews it",
    Step.FILE: "{actor} accounted for or reviewed item {item}: another keeper files it",
}
WRONG_ROLE: Mapping[Step, str] = {
    Step.ACCOUNT: "only the item's officer writes its account",
    Step.ACCEPT: "only a supervisor reviews an account",
    Step.RETURN: "only a supervisor reviews an account",
    Step.FILE: "only a records keeper files an explanation item",
}


def state_of(row: Mapping[str, Any]) -> State:
    """An item's state from its stored columns (``explanation_items``)."""
    if row.get("filed_at") is not None:
        return State.FILED
    if row.get("closed_at") is not None:
        return State.CLOSED
    if row.get("reviewed_at") is not None:
        return State.REVIEWED
    if row.get("account") is not None:
        return State.ACCOUNTED
    return State.OPEN


def refusal(
    item: int,
    state: State,
    step: Step,
    actor: str,
    roles: Collection[str],
    officer: str,
    reviewer: str | None = None,
) -> str | None:
    """Why ``actor`` (holding ``roles``) may not take ``step`` on ``item`` (of
    ``officer``; reviewed by ``reviewer`` if so) in ``state``: one line, or None when
    they may. The order is checked first, then the person."""
    if (state, step) not in TRANSITIONS:
        return OUT_OF_ORDER[step].format(item=item, state=STATE_WORDS[state])
    who = WHO[step]
    if who.own and actor != officer:
        return NOT_THEIRS[step].format(item=item, officer=officer, actor=actor)
    if who.role not in roles:
        return WRONG_ROLE[step]
    if not who.own and actor in (officer, reviewer):
        return NOT_THEIRS[step].format(item=item, officer=officer, actor=actor)
    return None


def after(state: State, step: Step) -> State:
    """The state after an allowed step (KeyError when the table does not allow it)."""
    return TRANSITIONS[(state, step)]


__all__ = [
    "NOT_THEIRS",
    "OUT_OF_ORDER",
    "STATE_WORDS",
    "TRANSITIONS",
    "WHO",
    "WRONG_ROLE",
    "State",
    "Step",
    "Who",
    "after",
    "refusal",
    "state_of",
]
