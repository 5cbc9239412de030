"""Talking to one slot: its lock file, then an open session with the recorder in it.

The lock is a file lock, so the daemon's sweeps and a command-line check-out in
another process never interleave on one port.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import cast

from dock.daemon.parts import SlotWiring
from dock.devices.recorder_client import LinkError, NoAnswer, RecorderClient
from dock.devices.ums.attach import UmsSlot

#: Seconds a recorder has to open a session when the dock looks at its slot: silence
#: usually means that no recorder is docked there (PROTOCOL.md 3.7).
SLOT_OPEN_TIMEOUT_S = 3.0


class SlotAccess:
    """Per-slot locks and sessions."""

    def __init__(self, wiring: SlotWiring) -> None:
        self.wiring = wiring
        #: A vendor bay's step before its disk is there: login, clock, vouch, disk mode
        #: (dock/daemon/vendor_cameras.py, set by the service); raises a slot fault.
        self.vendor: Callable[[str, UmsSlot], object] | None = None
        os.makedirs(wiring.lock_dir, exist_ok=True)

    @contextmanager
    def session(self, slot_id: str, timeout: float = 10.0) -> Iterator[RecorderClient]:
        """The slot's lock, and an open session with the recorder in it."""
        path = os.path.join(self.wiring.lock_dir, f"slot-{slot_id}.lock")
        with open(path, "a+") as lock:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LinkError(f"slot {slot_id} is busy") from None
                    time.sleep(0.01)
            ums = self.wiring.ums.get(slot_id)
            if ums is not None:
                self._vendor_step(slot_id, ums)  # under this lock
            if ums is not None and ums.takes_session():
                with ums.session() as camera:
                    # the client's surface over a mounted volume (dock/devices/ums/recorder.py)
                    yield cast(RecorderClient, camera)
                return
            try:
                # Replies are waited for REPLY_TIMEOUT_S, as PROTOCOL.md 3.7 says.
                client = RecorderClient(self.wiring.open_transport(self.wiring.ports[slot_id]))
            except PermissionError as exc:  # the dock refused the port: a fault, said
                raise LinkError(f"slot {slot_id}: {exc}") from exc
            except (ConnectionError, ValueError) as exc:  # port gone: nothing docked there
                raise NoAnswer(f"slot {slot_id}: {exc}") from exc
            try:
                client.open(timeout=SLOT_OPEN_TIMEOUT_S)
                yield client
            finally:
                client.close()

    def _vendor_step(self, slot_id: str, ums: UmsSlot) -> None:
        """A vendor camera in a vendor bay with no disk there yet (and none awaited from
        an earlier switch): the vendor step, which may make its disk appear."""
        if not ums.vendor or self.vendor is None:
            return
        if not ums.present() and not ums.awaiting_disk():
            self.vendor(slot_id, ums)
