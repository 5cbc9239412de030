"""The slots' state machines, and the one table of what the daemon does for each action.

``dock.domain.slot_state`` decides; this module carries out. Every action type the
machine can return must have a handler here (``SlotMachine`` refuses to start
otherwise), so the transition table in slot_state is the whole truth about what
happens to a slot: nothing it asks for is silently dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dock.domain import slot_state as sm

#: A handler: (slot id, the action) -> None. Typed loosely: each takes its own action type.
Handler = Callable[[str, Any], None]


def missing_handlers(handlers: Mapping[type, Handler]) -> list[type]:
    """Action types of the state machine that ``handlers`` does not carry out."""
    return [t for t in sm.ACTION_TYPES if t not in handlers]


class SlotMachine:
    """Each slot's status; events in, actions carried out at once, in order.

    A slot's events are fed under that slot's own lock (re-entrant: an action's handler
    may feed more events, as an offload run inside an inspection does), so one slot's
    slow action never holds up another slot.
    """

    def __init__(self, slot_ids: Iterable[str], handlers: Mapping[type, Handler]) -> None:
        missing = missing_handlers(handlers)
        if missing:
            names = ", ".join(t.__name__ for t in missing)
            raise ValueError(f"no handler for state-machine action(s): {names}")
        self.handlers = dict(handlers)
        self.status: dict[str, sm.SlotStatus] = {sid: sm.SlotStatus() for sid in slot_ids}
        self._locks = {sid: threading.RLock() for sid in self.status}

    def state(self, slot_id: str) -> sm.SlotState:
        return self.status[slot_id].state

    def feed(self, slot_id: str, *events: object) -> None:
        """Run the slot's state machine and carry out what it asks for."""
        with self._locks[slot_id]:
            for event in events:
                status, actions = sm.transition(self.status[slot_id], event)
                self.status[slot_id] = status
                for action in actions:
                    self.handlers[type(action)](slot_id, action)
