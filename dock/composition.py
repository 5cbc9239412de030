"""The composition root: the one place where the dock meets real hardware.

Everything else in ``dock`` depends on the interfaces in ``dock.interfaces``.
"""

from __future__ import annotations

from .interfaces import Transport


def open_transport(url: str) -> Transport:
    """Open a link to a recorder from a port URL.

    ``tcp://HOST:PORT`` is plain TCP; ``usb:BUS-PORT[.PORT...]`` is a recorder on
    that physical USB port; anything else goes to pyserial (a device path such
    as ``/dev/ttyACM0``, ``socket://``, ``loop://``, ``rfc2217://``).
    """
    from hardware.transports import SerialTransport, TcpTransport

    if url.startswith("tcp://"):
        return TcpTransport(url)
    if url.startswith("usb:"):
        from hardware.usb_transport import open_usb_port

        return open_usb_port(url.removeprefix("usb:"))
    return SerialTransport(url)
