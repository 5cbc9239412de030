"""One wording for what a failed USB transfer means to the person at the dock.

Both USB drivers (our protocol's bulk transport and the vendor command set) meet the
same libusb errors; the person needs the same words for them: unplugged, held by another
program, or not permitted (the udev rule that gives the dock the device is missing).
"""

from __future__ import annotations

import errno

import usb.core


def usb_failure(url: str, what: str, exc: usb.core.USBError, device: str) -> str:
    """One line for ``exc`` met while doing ``what`` with the ``device`` at ``url``."""
    if exc.errno == errno.ENODEV:
        return f"{url}: {what}: {device} unplugged"
    if exc.errno == errno.EBUSY:
        return f"{url}: {what}: in use by another program"
    if exc.errno == errno.EACCES:
        return f"{url}: {what}: permission denied (udev rule missing?)"
    return f"{url}: {what}: {exc}"
