"""Apply a unit file's seccomp-based settings to this process, then run a command.

Where systemd is not PID 1 (a container, CI) a unit cannot be started, but most of its
hardening is seccomp filters any process can load on itself. This program reads them
from the unit file and loads them the way systemd does (src/shared/seccomp-util.c),
then execs the command:

  SystemCallFilter=         the allow list and its ~removals, groups resolved by
                            `systemd-analyze syscall-filter`; anything else fails with
                            SystemCallErrorNumber= (EPERM); native architecture only
  RestrictAddressFamilies=  socket() of another family fails with EAFNOSUPPORT
  MemoryDenyWriteExecute=   mmap W+X, mprotect/pkey_mprotect +X, shmat SHM_EXEC: EPERM
  RestrictNamespaces=yes    unshare/setns/clone with a namespace flag: EPERM; clone3:
                            ENOSYS (so that the C library falls back to clone)
  RestrictRealtime=yes      sched_setscheduler to FIFO, RR or DEADLINE: EPERM
  NoNewPrivileges=yes       set by loading a filter (libseccomp's default)

Not emulated here (the caller does the rest: a read-only mount namespace, another user,
no capabilities): LockPersonality (Python never calls personality(2)), the device
policy, ProtectKernel*, ProtectProc. Run with Debian's python3 (python3-seccomp).

    python3 unit_sandbox.py UNIT_FILE -- COMMAND [ARG...]
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys

import seccomp  # type: ignore[import-not-found]  # Debian's python3-seccomp

PROT_WRITE, PROT_EXEC = 0x2, 0x4
SHM_EXEC = 0o100000
CLONE_NEW = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
SCHED_FIFO, SCHED_RR, SCHED_DEADLINE = 1, 2, 6
ADDRESS_FAMILIES = 46  # AF_MAX on Linux 6.x


def unit_settings(path: str) -> dict[str, list[str]]:
    """Every KEY=value of the unit file, in order (comments and sections skipped)."""
    found: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if "=" in line and not line.startswith(("#", ";", "[")):
                key, value = line.split("=", 1)
                found.setdefault(key.strip(), []).append(value.strip())
    return found


def group(name: str, seen: set[str] | None = None) -> set[str]:
    """The system calls in a group, nested groups included."""
    seen = set() if seen is None else seen
    if name in seen:
        return set()
    seen.add(name)
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager", name],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    calls: set[str] = set()
    for word in out.split():
        if word.startswith("#") or word == name:
            continue
        calls |= group(word, seen) if word.startswith("@") else {word}
    return calls


def names(words: str) -> set[str]:
    found: set[str] = set()
    for word in words.split():
        found |= group(word) if word.startswith("@") else {word}
    return found


def allowed_calls(lines: list[str]) -> set[str]:
    """SystemCallFilter= lines as systemd folds them: the first is an allow list; then
    lines without ~ add to it and lines with ~ take from it."""
    if not lines or lines[0].startswith("~"):
        raise SystemExit("unit_sandbox: only an allow-list SystemCallFilter= is emulated")
    calls: set[str] = set()
    for line in lines:
        if line.startswith("~"):
            calls -= names(line[1:])
        else:
            calls |= names(line)
    return calls


def allow_list(calls: set[str], error: int) -> seccomp.SyscallFilter:
    f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(error))
    for call in sorted(calls):
        try:
            f.add_rule(seccomp.ALLOW, call)
        except (RuntimeError, ValueError):  # not a system call on this architecture
            continue
    return f


def address_families(words: str) -> seccomp.SyscallFilter:
    keep = {int(getattr(socket, w)) for w in words.split()}
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for family in range(ADDRESS_FAMILIES):
        if family not in keep:
            rule = seccomp.Arg(0, seccomp.EQ, family)
            f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", rule)
    return f


def memory_deny_write_execute() -> seccomp.SyscallFilter:
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    wx = PROT_WRITE | PROT_EXEC
    f.add_rule(seccomp.ERRNO(errno.EPERM), "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, wx, wx))
    for call in ("mprotect", "pkey_mprotect"):
        rule = seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, PROT_EXEC)
        f.add_rule(seccomp.ERRNO(errno.EPERM), call, rule)
    rule = seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, SHM_EXEC)
    f.add_rule(seccomp.ERRNO(errno.EPERM), "shmat", rule)
    return f


def restrict_namespaces() -> seccomp.SyscallFilter:
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for call in ("unshare", "clone"):  # any one namespace flag set: refused
        for bit in range(32):
            if CLONE_NEW & (1 << bit):
                rule = seccomp.Arg(0, seccomp.MASKED_EQ, 1 << bit, 1 << bit)
                f.add_rule(seccomp.ERRNO(errno.EPERM), call, rule)
    f.add_rule(seccomp.ERRNO(errno.EPERM), "setns")
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    return f


def restrict_realtime() -> seccomp.SyscallFilter:
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for policy in (SCHED_FIFO, SCHED_RR, SCHED_DEADLINE):
        rule = seccomp.Arg(1, seccomp.EQ, policy)
        f.add_rule(seccomp.ERRNO(errno.EPERM), "sched_setscheduler", rule)
    return f


def filters(settings: dict[str, list[str]]) -> list[seccomp.SyscallFilter]:
    """The unit's filters, in the order they are loaded: the allow list last, since it
    may not allow loading more."""
    out = []
    if settings.get("RestrictAddressFamilies"):
        out.append(address_families(settings["RestrictAddressFamilies"][-1]))
    if settings.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes":
        out.append(memory_deny_write_execute())
    if settings.get("RestrictNamespaces", ["no"])[-1] == "yes":
        out.append(restrict_namespaces())
    if settings.get("RestrictRealtime", ["no"])[-1] == "yes":
        out.append(restrict_realtime())
    if settings.get("SystemCallFilter"):
        error = settings.get("SystemCallErrorNumber", ["EPERM"])[-1]
        calls = allowed_calls(settings["SystemCallFilter"])
        out.append(allow_list(calls, getattr(errno, error)))
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: unit_sandbox.py UNIT_FILE -- COMMAND [ARG...]\n")
        return 2
    loaded = filters(unit_settings(argv[1]))  # resolved before any filter is loaded
    for f in loaded:
        f.load()
    os.execvp(argv[3], argv[3:])
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv))
