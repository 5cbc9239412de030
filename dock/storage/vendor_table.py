"""``vendor_cameras``: which enrolled device a vendor camera is, by the USB serial it shows.

A camera of the common vendor command set says its id only after a login with its
password, and the password is per device: the dock must know which enrolment it is
talking to before it sends any password. The USB serial string is what it shows
before that; this table maps it to the enrolled device (``devices``, whose ``secret``
is the camera's password). The mapping is written first and the device row second (a
kill in between leaves a mapping to nothing, which :meth:`link` replaces and
:meth:`device_for` does not follow).
"""

from __future__ import annotations

import sqlite3

from dock.storage.evidence_tables import Table, one
from dock.storage.store import Device, StoreError


class VendorCameraTable(Table):
    """Owner of ``vendor_cameras`` (dock.storage.schema)."""

    def link(self, serial: str, usb_serial: str, model: str) -> None:
        """Map ``usb_serial`` to ``serial``: StoreError when an enrolled camera already
        shows that USB serial (the dock could not tell the two apart before a login)."""
        try:
            with self.transaction():
                db = self._db()
                db.execute(
                    "DELETE FROM vendor_cameras WHERE (usb_serial = ? OR serial = ?) AND serial "
                    "NOT IN (SELECT serial FROM devices)",
                    (usb_serial, serial),
                )
                db.execute(
                    "INSERT INTO vendor_cameras (serial, usb_serial, model) VALUES (?, ?, ?)",
                    (serial, usb_serial, model),
                )
        except sqlite3.IntegrityError:
            raise StoreError(
                f"an enrolled camera already shows USB serial {usb_serial!r} (or {serial!r} "
                "is already enrolled): the dock could not tell them apart"
            ) from None

    def device_for(self, usb_serial: str) -> Device | None:
        """The enrolled device a camera showing ``usb_serial`` claims to be, if any."""
        row = one(
            self._db().execute(
                "SELECT serial FROM vendor_cameras WHERE usb_serial = ?", (usb_serial,)
            )
        )
        return None if row is None else self._store.device(str(row["serial"]))

    def usb_serial(self, serial: str) -> str | None:
        row = one(
            self._db().execute("SELECT usb_serial FROM vendor_cameras WHERE serial = ?", (serial,))
        )
        return None if row is None else str(row["usb_serial"])
