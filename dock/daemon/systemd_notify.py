"""What ``dock run`` tells systemd (``Type=notify``, ``WatchdogSec=``): sd_notify(3).

* ``READY=1`` once the control socket serves and the first sweep is done: units ordered
  after ``dock.service`` (``dock-web``) start when the dock can answer them;
* ``STATUS=...`` when the slots' summary changes (``systemctl status dock`` shows it);
* ``WATCHDOG=1`` after each completed sweep of the daemon's own loop, and from nowhere
  else: the maintenance threads, the control socket and the badge reader do not feed
  it. A sweep that hangs stops the pings, and systemd restarts the daemon after
  ``WatchdogSec`` (docs/OPERATIONS.md, "Running as a service", says what to set);
* ``STOPPING=1`` when it begins to shut down.

Only when systemd asked for it (``NOTIFY_SOCKET`` set); ``WATCHDOG=1`` only while a
watchdog is on for this process (``WATCHDOG_USEC``, and ``WATCHDOG_PID`` absent or ours,
as sd_watchdog_enabled(3) reads them). The datagrams go through the kept library
``systemd-python`` (``systemd.daemon.notify``); where it is not installed, one warning
and no notifications (the unit's ``Type=notify`` would then time out: install it).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("dock.daemon.systemd")

#: Longest STATUS= text sent (systemctl shows one line).
STATUS_MAX = 200

Send = Callable[[str], object]


def watchdog_seconds(env: Mapping[str, str] = os.environ, pid: int | None = None) -> float | None:
    """The watchdog's period for this process in seconds, None when it has none."""
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    owner = env.get("WATCHDOG_PID")
    if usec <= 0 or (owner and owner != str(os.getpid() if pid is None else pid)):
        return None
    return usec / 1e6


def status_text(report: Mapping[str, Any]) -> str:
    """One line for ``systemctl status``: slots by state, and whether the clock is trusted."""
    slots = report.get("slots") or []
    states = Counter(str(row.get("state")) for row in slots)
    by_state = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    clock = "clock trusted" if (report.get("clock") or {}).get("trusted") else "clock NOT trusted"
    text = f"{len(slots)} slot(s): {by_state or 'none'}; {clock}"
    return "".join(ch if ch.isprintable() else " " for ch in text)[:STATUS_MAX]


class ServiceNotifier:
    """The daemon's messages to systemd; every method does nothing without a socket."""

    def __init__(self, send: Send | None, watchdog_s: float | None = None) -> None:
        self._send = send
        self.watchdog_s = watchdog_s if send is not None else None
        self._ready = False
        self._status: str | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> ServiceNotifier:
        """Notifications as systemd asked for them in the environment (none outside it)."""
        if not env.get("NOTIFY_SOCKET"):
            return cls(None)
        try:  # by name: the repository's own systemd/ folder (unit files) would shadow it for mypy
            daemon = importlib.import_module("systemd.daemon")
        except ImportError:
            log.warning(
                "NOTIFY_SOCKET is set but systemd-python is not installed: systemd is not "
                "told that the dock is ready (pip install systemd-python)"
            )
            return cls(None)
        return cls(daemon.notify, watchdog_seconds(env))

    @property
    def enabled(self) -> bool:
        return self._send is not None

    def check_interval(self, interval_s: float) -> None:
        """Warn when sweeps are so far apart that the watchdog would fire between them."""
        if self.watchdog_s is not None and interval_s * 2 > self.watchdog_s:
            log.warning(
                "the sweep interval (%g s) is more than half of WatchdogSec (%g s): systemd "
                "may restart a healthy dock; raise WatchdogSec or lower --interval",
                interval_s,
                self.watchdog_s,
            )

    def swept(self, report: Mapping[str, Any]) -> None:
        """A sweep of the daemon's loop has completed: ready (the first time), the status
        when it changed, and a watchdog ping."""
        if self._send is None:
            return
        lines = [] if self._ready else ["READY=1"]
        status = status_text(report)
        if status != self._status:
            lines.append(f"STATUS={status}")
        if self.watchdog_s is not None:
            lines.append("WATCHDOG=1")
        if lines:
            self._notify(lines)
        self._ready, self._status = True, status

    def stopping(self) -> None:
        """The daemon is shutting down (offloads finishing, reporter saying goodbye)."""
        if self._send is not None:
            self._notify(["STOPPING=1", "STATUS=stopping"])

    def _notify(self, lines: list[str]) -> None:
        assert self._send is not None
        try:
            self._send("\n".join(lines))
        except (OSError, ValueError) as exc:  # systemd gone: the dock's work goes on
            log.warning("could not notify systemd: %s", exc)


__all__ = ["STATUS_MAX", "ServiceNotifier", "status_text", "watchdog_seconds"]
