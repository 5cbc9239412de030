"""A recorder's mass-storage volume, confined: files are opened only inside it.

The recorder names both the volume (``local_path`` in its MASS_STORAGE reply: a path
on the dock host, in reality the mount point of its USB volume) and the recordings
on it. Neither is trusted:

* the volume must be an absolute path to an existing directory that is not itself a
  symlink; its real path may not be ``/``, nor the evidence store, inside it or one
  of its ancestors (where a recorder could point at footage already archived). The
  directory is opened once (``O_DIRECTORY | O_NOFOLLOW``) and every file is opened
  relative to that descriptor, so swapping the path afterwards changes nothing;
* a recording is looked for as ``<id>.mp4`` only when the id is one plain path
  component (not empty, ``.``, ``..``, no ``/`` or NUL, the name at most 255 bytes);
  it is opened with ``O_NOFOLLOW | O_NONBLOCK`` (a symlink or a FIFO cannot redirect
  or stall the read) and used only if ``fstat`` shows a regular file, the one checked
  before opening, of the size the recorder listed.

What is refused is read over the protocol instead (:meth:`Volume.open_recording`
says why); the recorder's capture hash still decides whether the bytes are its footage.
Not checked: that the directory is really a mount of this recorder's device (the
dock does not mount volumes itself), nor hard links the volume's file system may hold.
"""

from __future__ import annotations

import os
import stat
from typing import Any

#: The file a recording ``<id>`` is on its volume.
SUFFIX = ".mp4"
NAME_MAX = 255


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def volume_problem(local_path: Any, evidence_dir: str) -> str | None:
    """Why ``local_path`` may not be read as a recorder's volume, or None if it may."""
    if not isinstance(local_path, str) or not local_path:
        return "no local_path"
    if "\x00" in local_path or not os.path.isabs(local_path):
        return "not an absolute path"
    try:
        st = os.lstat(local_path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return "a symlink, not the volume itself"
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    real = os.path.realpath(local_path)
    evidence = os.path.realpath(evidence_dir)
    if real == "/":
        return "the root directory"
    if _inside(real, evidence) or _inside(evidence, real):
        return "the evidence store, inside it or above it"
    return None


def recording_problem(rec_id: Any) -> str | None:
    """Why ``<rec_id>.mp4`` is not one plain file name, or None if it is."""
    if not isinstance(rec_id, str) or not rec_id:
        return "empty recording id"
    if rec_id in (".", "..") or "/" in rec_id or "\x00" in rec_id:
        return "recording id is not one plain path component"
    if len((rec_id + SUFFIX).encode("utf-8", "surrogatepass")) > NAME_MAX:
        return "recording id too long for a file name"
    return None


class Volume:
    """An opened volume; :meth:`close` it (the offloader does, per offload)."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.real = os.path.realpath(path)
        self._fd = fd

    @classmethod
    def open(cls, local_path: Any, evidence_dir: str) -> tuple[Volume | None, str]:
        """(the volume, "") or (None, why it is refused)."""
        problem = volume_problem(local_path, evidence_dir)
        if problem:
            return None, problem
        try:
            before = os.lstat(local_path)
            fd = os.open(local_path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            return None, f"cannot be opened ({exc.strerror})"
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
            os.close(fd)
            return None, "changed while it was opened"
        return cls(local_path, fd), ""

    def open_recording(self, rec_id: str, size: int) -> tuple[int | None, str]:
        """(a file descriptor to read, "") or (None, why this file is not used)."""
        problem = recording_problem(rec_id)
        if problem:
            return None, problem
        name = rec_id + SUFFIX
        if os.path.dirname(os.path.realpath(os.path.join(self.real, name))) != self.real:
            return None, "resolves outside the volume"
        try:
            before = os.lstat(name, dir_fd=self._fd)
        except FileNotFoundError:
            return None, "not on the volume"
        except OSError as exc:
            return None, f"cannot be read ({exc.strerror})"
        if not stat.S_ISREG(before.st_mode):
            return None, "a symlink" if stat.S_ISLNK(before.st_mode) else "not a regular file"
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, dir_fd=self._fd)
        except OSError as exc:
            return None, f"cannot be opened ({exc.strerror})"
        st = os.fstat(fd)
        why = ""
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (
            before.st_dev,
            before.st_ino,
        ):
            why = "changed while it was opened"
        elif st.st_size != size:
            why = f"{st.st_size} bytes on the volume, {size} listed"
        if why:
            os.close(fd)
            return None, why
        os.set_blocking(fd, True)
        return fd, ""

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
