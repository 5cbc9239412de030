"""Opening a recorder's port by its URL: the one thing an offload worker needs of the
composition root.

Its own small module so that a worker process (``offload_worker.py``) opens a port
without importing the composition root, the configuration and what they pull in (each
worker's resident memory, issue 15). With ``composition.py``, the only modules of
``dock`` that import ``hardware`` (an import-linter contract).
"""

from __future__ import annotations

from dock.domain.interfaces import Transport

#: An emulated recorder's named link (``dock.config.slots.EMULATED_SCHEME``, the same
#: text; not imported from there, as importing dock.config loads the whole checker).
EMULATED_SCHEME = "emulated:"


def open_transport(url: str, explicit: bool = False) -> Transport:
    """Open a link to a recorder from a port URL.

    ``tcp://HOST:PORT`` is plain TCP; ``usb:BUS-PORT[.PORT...]`` is a recorder on
    that physical USB port; ``emulated:PATH`` an emulated recorder's named link (a
    Unix socket of ``dock run --emulate``); anything else goes to pyserial (a device
    path such as ``/dev/ttyACM0``, ``socket://``, ``loop://``, ``rfc2217://``). A
    device path must be a recorder's (a USB CDC-ACM port; hardware/port_guard.py)
    unless ``explicit``: a person named it by hand (``dock probe``). A port refused
    raises PermissionError (one line: which port and why); nothing was opened.
    """
    from hardware.transports import SerialTransport, TcpTransport

    if url.startswith("tcp://"):
        return TcpTransport(url)
    if url.startswith("usb:"):
        from hardware.usb_transport import open_usb_port

        return open_usb_port(url.removeprefix("usb:"))
    if url.startswith(EMULATED_SCHEME):
        from hardware.emulator.links import EmulatedLink

        return EmulatedLink(url)
    return SerialTransport(url, explicit=explicit)


def preload() -> None:
    """Import what opening a serial or TCP port needs now (an offload worker's fork
    server, so that its workers share these pages)."""
    import hardware.transports  # noqa: F401
