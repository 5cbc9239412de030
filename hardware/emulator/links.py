"""Named links to emulated recorders: Unix sockets in the emulated dock's own folder.

``dock run --emulate`` serves each recorder on ``emulated:<state>/recorders/slot-N.sock``
and writes those into the configuration it leaves for other commands. Unlike a
``/dev/pts/N`` path, a link cannot name anyone else's terminal: it is a socket file the
emulated dock made (mode 0600) and removes when the recorder is taken out of its bay or
the emulated dock stops. The dock then finds either no link (no recorder in the bay) or
no emulated dock at all, which it says in one line instead of opening anything.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat

from hardware.port_guard import PortRefused
from hardware.transports import LinkClosed, TcpTransport

LINK_SCHEME = "emulated:"
#: Longest path a Unix socket may have on Linux (sun_path, less its final NUL).
MAX_PATH = 107


def link_path(folder: str, slot_id: str) -> str:
    """Where the recorder of slot ``slot_id`` is served."""
    return os.path.join(folder, f"slot-{slot_id}.sock")


def control_path(folder: str) -> str:
    """Where the running emulated fleet takes commands (hardware/emulator/control.py)."""
    return os.path.join(folder, "control.sock")


def bind_link(path: str, backlog: int = 1) -> socket.socket:
    """A listening Unix socket at ``path`` (mode 0600); a socket file left by an emulator
    that died is replaced, anything else at ``path`` is an error. Bound under a
    temporary name, given its mode, then renamed: never reachable with looser ones
    (and no process-wide umask changed under other threads' feet)."""
    folder, name = os.path.split(path)
    fresh = os.path.join(folder, f".{name}.new")
    if len(os.fsencode(fresh)) > MAX_PATH:
        raise ValueError(f"{path}: too long for a socket path (at most {MAX_PATH - 5} bytes)")
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise ValueError(f"{path} exists and is not a socket: not replaced")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(fresh)  # left by a bind that died half-way
        sock.bind(fresh)
        os.chmod(fresh, 0o600)  # only the dock's user connects
        sock.listen(backlog)
        os.replace(fresh, path)
    except OSError:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(fresh)
        raise
    return sock


def unlink_link(path: str, inode: int) -> None:
    """Remove the socket file at ``path`` if it is still the one bound (``inode``)."""
    with contextlib.suppress(OSError):
        if os.lstat(path).st_ino == inode:
            os.unlink(path)


def fleet_running(folder: str) -> bool:
    """Whether an emulated fleet answers at ``folder``'s control socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(control_path(folder))
        except OSError:
            return False
    return True


class EmulatedLink(TcpTransport):
    """The dock's end of a named link (``emulated:PATH``): a Unix stream socket."""

    def __init__(self, url: str, connect_timeout: float = 3.0) -> None:
        path = url.removeprefix(LINK_SCHEME)
        if not os.path.isabs(path):
            raise PortRefused(f"port {url} refused: an emulated link is an absolute path")
        self.url = url
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(connect_timeout)
        try:
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise PortRefused(f"port {url} refused: {path} is not an emulated recorder's link")
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            if isinstance(exc, PortRefused):
                raise
            if not fleet_running(os.path.dirname(path)):
                raise PortRefused(
                    f"port {url} refused: the emulated recorders behind it are not running "
                    "(the `dock run --emulate` that served it has stopped); nothing was opened"
                ) from None
            raise LinkClosed(f"{url}: no recorder in this bay ({exc.strerror or exc})") from None
