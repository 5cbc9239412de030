"""Root drops to the service user before doing anything else.

On an installed dock every file in the state directory belongs to the ``dock`` user
(headquarters': ``dock-hq``). A command typed as root (``dock status`` at step 3 of
the installation) used to create the databases and the signing key owned by root,
after which the service, running as ``dock``, died with a ``PermissionError`` at every
start. So ``dock``, ``dock-web`` and ``dock-hq`` call :func:`drop_or_exit` first thing:

* not root: nothing happens (the service itself, an operator's own login);
* root, and the service user exists (an installed dock): the process takes that
  user's supplementary groups (initgroups), group and user (real, effective and saved),
  ``HOME``, and umask 0027; then it checks that it can no longer become root again;
* root, and no such user (a developer's machine, CI running as root): the command runs
  as it is, as root: there is no service whose files it could spoil;
* the switch fails (or root could be regained): one line saying how to run the
  command instead (``sudo -u dock dock …``) and a non-zero exit; nothing was done.

The user is named by the caller; the command lines read it from an environment variable
(``DOCK_SERVICE_USER``, ``DOCK_HQ_SERVICE_USER``; :func:`service_user`) so that a site
whose service runs under another name says so, and so the tests can use a throwaway
user. It is neutral ground (``common``): headquarters may not import the dock.
"""

from __future__ import annotations

import os
import pwd
import re
import sys
from collections.abc import Callable, Mapping

#: The service's umask: nothing it creates is writable by its group or readable by others.
SERVICE_UMASK = 0o027
#: A POSIX-ish user name (useradd's default rule).
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
#: (environment variable, default) naming the user ``dock`` and ``dock-web`` run as.
DOCK_USER = ("DOCK_SERVICE_USER", "dock")
#: (environment variable, default) naming the user ``dock-hq`` runs as.
HQ_USER = ("DOCK_HQ_SERVICE_USER", "dock-hq")


class PrivilegeError(Exception):
    """Root could not become the service user; the message says why, in one line."""


def service_user(variable: str, default: str, env: Mapping[str, str] = os.environ) -> str:
    """The service user's name: ``$variable`` when set and not empty, else ``default``."""
    return env.get(variable) or default


def drop_to(user: str) -> pwd.struct_passwd | None:
    """Become ``user`` if this process is root and ``user`` exists; its passwd entry
    then, None when nothing was changed (not root, or no such user). PrivilegeError
    when the switch fails or leaves a way back to root."""
    if os.geteuid() != 0:
        return None
    if not _USER_NAME.fullmatch(user):
        raise PrivilegeError(f"{user!r} is not a user name")
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None  # not an installed dock: run as root, as asked
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise PrivilegeError(f"user {user} is root (uid or gid 0): it cannot be the service user")
    try:
        os.initgroups(user, entry.pw_gid)
        os.setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid)
        os.setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid)
    except OSError as exc:
        raise PrivilegeError(f"cannot switch to user {user}: {exc.strerror or exc}") from None
    _verify(entry)
    os.environ["HOME"] = entry.pw_dir
    os.umask(SERVICE_UMASK)
    return entry


def _verify(entry: pwd.struct_passwd) -> None:
    """The switch took, and none of the ways back to root works."""
    uid, gid = entry.pw_uid, entry.pw_gid
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise PrivilegeError(f"switching to user {entry.pw_name} did not take")
    if sorted(set(os.getgroups())) != sorted(set(os.getgrouplist(entry.pw_name, gid))):
        raise PrivilegeError(f"user {entry.pw_name}'s groups were not taken")
    attempts: tuple[Callable[[], None], ...] = (
        lambda: os.setuid(0),
        lambda: os.seteuid(0),
        lambda: os.setgid(0),
        lambda: os.setgroups([0]),
    )
    for attempt in attempts:
        try:
            attempt()
        except PermissionError:
            continue
        raise PrivilegeError(f"after switching to user {entry.pw_name}, root could be regained")


def drop_or_exit(prog: str, user: str, exit_code: int) -> None:
    """:func:`drop_to`, or one line saying how to run ``prog`` and ``exit_code``."""
    try:
        drop_to(user)
    except PrivilegeError as exc:
        name = user if _USER_NAME.fullmatch(user) else repr(user)
        print(
            f"{prog}: running as root: {exc}; run it as the service user instead: "
            f"sudo -u {name} {prog} …",
            file=sys.stderr,
        )
        raise SystemExit(exit_code) from None


__all__ = [
    "DOCK_USER",
    "HQ_USER",
    "SERVICE_UMASK",
    "PrivilegeError",
    "drop_or_exit",
    "drop_to",
    "service_user",
]
