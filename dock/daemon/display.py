"""What the dock's status screen shows, and for how long.

The screen is the officer's only word from a dock with an LCD, so it always says
something: an idle text ("swipe badge or enter ID") above the slots being offloaded
(with their progress) or just offloaded ("done"). A check-out decision replaces all of
that for :data:`DECISION_HOLD_S` seconds; the daemon's loop calls :meth:`Display.tick`
and the screen goes back to idle when the time is up: no timer thread per decision.

Everything here is fed from several threads (badges, the control socket, offload
workers) and drawn under one lock. Offload progress only updates numbers; the drawing
happens at the next ``tick`` (the daemon's loop wakes every :data:`PROGRESS_REFRESH_S`
while an offload runs), so a fast copy cannot flood a slow LCD.

The words are in the screen's locale, which is English on a display that cannot draw
Chinese (an HD44780) even when the dock's locale is Chinese.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from dock.domain.interfaces import Screen

log = logging.getLogger("dock.daemon.display")

#: Seconds a check-out decision stays on the screen before it goes back to idle.
DECISION_HOLD_S = 6.0
#: Seconds between redraws while an offload's progress changes.
PROGRESS_REFRESH_S = 1.0
#: Seconds a slot's "done" stays on the screen when its recorder stays docked.
DONE_HOLD_S = 300.0

WORDS: dict[str, dict[str, str]] = {
    "idle": {"zh": "请刷卡或输入警号", "en": "Swipe badge/enter ID"},
    "copying": {"zh": "{slot}号 导出 {pct}%", "en": "Slot {slot}: copy {pct}%"},
    "copying_of": {"zh": "{slot}号 导出{k}/{n} {pct}%", "en": "Slot {slot}: {k}/{n} {pct}%"},
    "done": {"zh": "{slot}号 完成 {n}个已核验", "en": "Slot {slot}: done {n} OK"},
    "failed": {"zh": "{slot}号 导出未完成", "en": "Slot {slot}: not done"},
    "stopped": {"zh": "坞站已停止服务", "en": "Dock stopped"},
}


def words(code: str, locale: str, **detail: object) -> str:
    """``code``'s words in ``locale`` (Chinese for any ``zh*``, else English)."""
    table = WORDS[code]
    return table["zh" if locale.lower().startswith("zh") else "en"].format(**detail)


@dataclass
class _SlotLine:
    stage: str  # "copying", "done" or "failed"
    since: float
    recording: str = ""
    done: int = 0
    total: int = 0
    seen: int = 0  # recordings started in this offload
    expected: int = 0  # recordings it was to copy (0: unknown)
    verified: int = 0


class Display:
    """The screen's text: idle, a decision for a while, offloads per slot."""

    def __init__(
        self,
        screen: Screen,
        locale: Callable[[], str],
        hold_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.screen = screen
        self._locale = locale  # asked at each drawing: the dock's locale may change
        self.hold_s = DECISION_HOLD_S if hold_s is None else hold_s
        self._clock = clock
        self._lock = threading.Lock()
        self._decision: list[str] | None = None
        self._decision_until = 0.0
        self._slots: dict[str, _SlotLine] = {}
        self._dirty = True
        self._broken = False

    # -- what happens ----------------------------------------------------------------

    def decision(self, lines: list[str]) -> None:
        """Show ``lines`` now, for ``hold_s`` seconds (then idle, at a ``tick``)."""
        with self._lock:
            self._decision = list(lines)
            self._decision_until = self._clock() + self.hold_s
            self._draw()

    def offload_started(self, slot_id: str, expected: int = 0) -> None:
        with self._lock:
            self._slots[slot_id] = _SlotLine("copying", self._clock(), expected=expected)
            self._dirty = True

    def offload_progress(self, slot_id: str, recording: str, done: int, total: int) -> None:
        """Numbers only; drawn at the next tick."""
        with self._lock:
            line = self._slots.get(slot_id)
            if line is None or line.stage != "copying":
                line = self._slots[slot_id] = _SlotLine("copying", self._clock())
            if recording != line.recording:
                line.recording = recording
                line.seen += 1
            line.done, line.total = done, total
            self._dirty = True

    def offload_done(self, slot_id: str, verified: int) -> None:
        with self._lock:
            self._slots[slot_id] = _SlotLine("done", self._clock(), verified=verified)
            self._dirty = True

    def offload_failed(self, slot_id: str) -> None:
        with self._lock:
            self._slots[slot_id] = _SlotLine("failed", self._clock())
            self._dirty = True

    def slot_emptied(self, slot_id: str) -> None:
        """The recorder left its slot: nothing more to say about that slot."""
        with self._lock:
            if self._slots.pop(slot_id, None) is not None:
                self._dirty = True

    def stopped(self) -> None:
        """The daemon stops: an LCD keeps its last text, which must not invite a badge."""
        with self._lock:
            self._decision = [words("stopped", self._locale())]
            self._decision_until = math.inf
            self._draw()

    # -- the daemon's loop -----------------------------------------------------------

    def tick(self) -> float:
        """Redraw what is due; the seconds until the next tick is needed (inf: none)."""
        with self._lock:
            now = self._clock()
            if self._decision is not None and now >= self._decision_until:
                self._decision = None
                self._dirty = True
            for slot_id, line in list(self._slots.items()):
                if line.stage != "copying" and now - line.since >= DONE_HOLD_S:
                    del self._slots[slot_id]
                    self._dirty = True
            if self._dirty:
                self._draw()
            waits = [math.inf]
            if self._decision is not None:
                waits.append(self._decision_until - now)
            if any(line.stage == "copying" for line in self._slots.values()):
                waits.append(PROGRESS_REFRESH_S)
            if self._slots:
                waits.append(min(line.since for line in self._slots.values()) + DONE_HOLD_S - now)
            return max(0.0, min(waits))

    def idle_lines(self) -> list[str]:
        """The idle text, then one line per slot with an offload to tell of."""
        with self._lock:
            return self._idle_lines()

    # -- drawing (under the lock) ----------------------------------------------------

    def _idle_lines(self) -> list[str]:
        lines = [words("idle", self._locale())]
        order = {"copying": 0, "failed": 1, "done": 2}
        for slot_id, line in sorted(self._slots.items(), key=lambda s: (order[s[1].stage], s[0])):
            lines.append(self._slot_text(slot_id, line))
        return lines

    def _slot_text(self, slot_id: str, line: _SlotLine) -> str:
        if line.stage == "done":
            return words("done", self._locale(), slot=slot_id, n=line.verified)
        if line.stage == "failed":
            return words("failed", self._locale(), slot=slot_id)
        pct = 100 * line.done // line.total if line.total > 0 else 0
        if line.expected > 1:
            k = max(1, min(line.seen, line.expected))
            return words("copying_of", self._locale(), slot=slot_id, k=k, n=line.expected, pct=pct)
        return words("copying", self._locale(), slot=slot_id, pct=pct)

    def _draw(self) -> None:
        self._dirty = False
        try:
            self.screen.show(self._decision if self._decision is not None else self._idle_lines())
        except Exception as exc:  # a broken screen never stops a check-out or an offload
            if not self._broken:
                log.warning("the status screen cannot be drawn: %s", exc)
            self._broken = True
        else:
            self._broken = False
