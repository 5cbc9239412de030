"""Mounting a mass-storage camera's volume: read-only, confined, unmounted on undock.

Through the ``mount``/``umount`` commands of util-linux rather than mount(2) by ctypes:
they set up a loop device for an image, find the exFAT helper where the kernel has no
exFAT, and word their failures; mount(2) alone would need each of those by hand. Every
mount is ``ro,nosuid,nodev,noexec`` with the type named (no probing by the kernel), into
a folder the dock owns under its state directory; a delete remounts read-write for that
one step and back read-only, whatever happens in between.

Needs privilege (root or CAP_SYS_ADMIN): without it :class:`MountFailed` says so and the
dock reads the volume through the FAT library instead (dock/devices/ums/attach.py).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

MOUNT_OPTIONS = "ro,nosuid,nodev,noexec"
#: Owner-only names and files for the dock's user on FAT (which has no owners).
FAT_OWNER = "uid={uid},gid={gid},fmask=0177,dmask=0077"
TIMEOUT_S = 30.0


class MountFailed(OSError):
    """The volume could not be mounted (or remounted); the message says why, in one line."""


def _run(args: list[str]) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S,
                              check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MountFailed(f"{args[0]}: {exc}") from exc
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise MountFailed(f"{' '.join(args[:1])}: {why[0] if why else done.returncode}")


def mount_readonly(device: str, target: str, fstype: str, loop: bool = False) -> None:
    """Mount ``device`` (or an image, ``loop``) at ``target`` read-only, no exec/suid/dev."""
    if fstype not in ("vfat", "exfat"):
        raise MountFailed(f"{fstype}: only vfat and exfat volumes are mounted")
    if os.geteuid() != 0:
        raise MountFailed("not root: the dock reads the volume without mounting it")
    os.makedirs(target, mode=0o700, exist_ok=True)
    owner = FAT_OWNER.format(uid=os.getuid(), gid=os.getgid())
    options = f"{MOUNT_OPTIONS},{owner}" + (",loop" if loop else "")
    _run(["mount", "-t", fstype, "-o", options, device, target])


def remount(target: str, writable: bool) -> None:
    _run(["mount", "-o", f"remount,{'rw' if writable else 'ro'}", target])


def writable_for(target: str) -> Callable[[Callable[[], None]], None]:
    """Run one step with ``target`` remounted read-write, then read-only again."""

    def run(step: Callable[[], None]) -> None:
        remount(target, True)
        try:
            step()
        finally:
            remount(target, False)

    return run


def unmount(target: str) -> None:
    _run(["umount", target])


def mounts_under(folder: str) -> list[str]:
    """Mount points at or below ``folder`` (a previous run's, left by a crash)."""
    real = os.path.realpath(folder).rstrip("/")
    found: list[str] = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4:
                    point = fields[4].encode().decode("unicode_escape")
                    if point == real or point.startswith(real + "/"):
                        found.append(point)
    except OSError:
        return []
    return sorted(found, reverse=True)  # deepest first


def unmount_stale(folder: str) -> list[str]:
    """Unmount every mount under ``folder``; the ones that failed, with why."""
    failed = []
    for point in mounts_under(folder):
        try:
            unmount(point)
        except MountFailed as exc:
            failed.append(f"{point}: {exc}")
    return failed
