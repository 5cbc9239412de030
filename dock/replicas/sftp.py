"""An SFTP replication target (OpenSSH's server): paramiko's SFTP over OpenSSH's client.

The SSH layer under the SFTP session is OpenSSH's own client (dock/replicas/openssh_link.py)
when it is installed and the target logs in with a key, else paramiko's (a password
target, ``ssh_client = "paramiko"``, no ``ssh``); the SFTP requests above are paramiko's
either way.

The server's host key must be in the configured ``known_hosts_file``: an unknown or
changed key is refused in one line (paramiko's RejectPolicy; a key is never learnt). The
dock logs in with its own key (``key_file``) or a password read from a file; nothing
secret is in dock.toml. Works with Debian bookworm's paramiko 2.12 and later releases.

Resume: a ``.part`` file of ``k`` bytes is opened for update and written on from ``k``.
Publish: SFTP's RENAME, which OpenSSH refuses when the new name exists (never replaces).
A write refused after the file was opened (OpenSSH says only "Failure") is taken as the
target's file system or quota being full: :class:`ReplicaFull`.
Verify: the engine reads each file back (default), or with ``verify = "remote-sha256sum"``
asks :meth:`SftpTarget.sha256_at_target` for the server's own hash of what it stored.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import re
import shlex
import socket
import stat
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

import paramiko
from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY, SFTPError

from dock.config.replication import TargetConfig
from dock.domain.replica import (
    Progress,
    ReplicaAuthError,
    ReplicaError,
    ReplicaFull,
    ReplicaUnavailable,
    safe_relpath,
)
from dock.replicas import openssh_link
from dock.replicas.oneline import one_line

#: Bytes taken from the source per write call and asked of each read call.
CHUNK = 256 << 10

#: Bytes per SFTP read or write request to an OpenSSH server: its sftp-server takes
#: messages up to 256 KiB (255 KiB of data, what its limits@openssh.com announces), where
#: paramiko's default is 32 KiB. Eight times fewer requests, answers and Python
#: round trips per byte: uploads ~1.4x, read-backs ~1.5x here (bench/RESULTS.md). Other
#: servers keep paramiko's 32 KiB, which every SFTP server accepts.
OPENSSH_REQUEST = 255 << 10

#: The SSH channel's receive window and largest packet we accept (paramiko's defaults are
#: 2 MiB and 32 KiB): room for a read-back's parallel requests in flight.
WINDOW = 16 << 20
MAX_PACKET = 256 << 10

#: AES-GCM first when this paramiko offers it (3.x and later; bookworm's 2.12 does not):
#: one pass of OpenSSL's AEAD per packet instead of AES-CTR plus a separate HMAC-SHA-256,
#: measured ~1.3-1.6x the throughput both ways here (bench/RESULTS.md). The server still
#: chooses among everything else paramiko speaks when it offers no GCM.
_GCM = tuple(c for c in paramiko.Transport._preferred_ciphers if "-gcm@" in c)


class _Transport(paramiko.Transport):
    """paramiko's Transport with the AEAD ciphers preferred (same list, new order)."""

    _preferred_ciphers = _GCM + tuple(
        c for c in paramiko.Transport._preferred_ciphers if c not in _GCM
    )


#: ``transport_factory`` arrived in paramiko 3.2; older releases have no GCM to prefer.
_FACTORY = (
    {"transport_factory": _Transport}
    if _GCM and "transport_factory" in inspect.signature(paramiko.SSHClient.connect).parameters
    else {}
)

#: ``verify = "remote-sha256sum"``: the only answer taken (sha256sum's line for a plain
#: name), at most this many bytes of output read, and the time allowed per MiB hashed.
_SHA256_LINE = re.compile(rb"([0-9a-f]{64}) [ *]")
_HASH_OUTPUT_MAX = 64 << 10
_HASH_S_PER_MIB = 0.05

#: Files smaller than this are read back even with ``"remote-sha256sum"``: reading a tag
#: file costs a round trip or two, a command a session, a shell and two processes.
REMOTE_HASH_MIN = 1 << 20

#: What goes wrong with the network or a server that went away mid-way.
_LINK_ERRORS = (socket.error, EOFError, paramiko.SSHException, TimeoutError, SFTPError)


def _first_line(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except OSError as exc:
        raise ReplicaAuthError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None


class SftpTarget:
    """One ``[[replication.target]]`` of kind ``sftp``. Not thread-safe."""

    def __init__(self, cfg: TargetConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self._client: paramiko.SSHClient | None = None
        self._link: openssh_link.OpenSshLink | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._made: set[str] = set()
        self._request = 32768
        self.base = cfg.path.rstrip("/") if cfg.path not in ("", "/") else cfg.path

    # ------------------------------------------------------------------ session
    def connect(self) -> None:
        cfg = self.cfg
        where = f"{self.name} ({cfg.host}:{cfg.effective_port})"
        if self.uses_openssh():
            self._connect_openssh(where)
        else:
            self._connect_paramiko(where)
        self._made = set()

    def uses_openssh(self) -> bool:
        """Whether the SSH layer is OpenSSH's client (``ssh_client``: "openssh" always,
        "auto" where :func:`openssh_link.usable`)."""
        choice = self.cfg.ssh_client
        return choice == "openssh" or (choice == "auto" and openssh_link.usable(self.cfg))

    def _connect_openssh(self, where: str) -> None:
        cfg = self.cfg
        for path in (cfg.key_file, cfg.known_hosts_file):
            if not openssh_link.plain_path(path):
                raise ReplicaAuthError(
                    f"{where}: {path!r}: ssh cannot be given this path (blanks, quotes); "
                    'move the file to a plain path or set ssh_client = "paramiko"'
                )
        try:
            with open(cfg.known_hosts_file, "rb"):
                pass
        except OSError as exc:
            raise ReplicaAuthError(
                f"{where}: known_hosts_file {cfg.known_hosts_file} unreadable "
                f"({exc.strerror or exc})"
            ) from None
        link = openssh_link.OpenSshLink(self.cfg)
        # the client's ConnectTimeout bounds the TCP connect and the key exchange; the
        # login and the SFTP greeting get as long again
        limit = 2 * self.cfg.connect_timeout_s + 5
        link.sock.settimeout(limit)
        try:
            sftp = paramiko.SFTPClient(link.sock)
            self._request = _request_size(sftp, 32768)
        except TimeoutError:
            link.close()
            raise ReplicaUnavailable(f"{where}: no SFTP session within {limit:.0f} s") from None
        except SFTPError as exc:
            link.close()
            raise ReplicaError(f"{where}: the server's answer is not SFTP ({_one_line(exc)}): "
                               "does the account's shell print text?") from None  # fmt: skip
        except (paramiko.SSHException, EOFError, OSError):
            raise link.failure(where) from None
        except BaseException:
            link.close()
            raise
        link.sock.settimeout(self.cfg.io_timeout_s)
        self._link, self._sftp = link, sftp

    def _connect_paramiko(self, where: str) -> None:
        cfg = self.cfg
        client = paramiko.SSHClient()
        try:
            client.get_host_keys().load(cfg.known_hosts_file)
        except (OSError, paramiko.SSHException) as exc:
            raise ReplicaAuthError(
                f"{where}: known_hosts_file {cfg.known_hosts_file} unreadable ({exc})"
            ) from None
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        password = None
        if cfg.password_file and not cfg.key_file:
            password = _first_line(cfg.password_file, "password_file")
        try:
            client.connect(
                cfg.host, port=cfg.effective_port, username=cfg.user, password=password,
                key_filename=cfg.key_file or None, look_for_keys=False, allow_agent=False,
                timeout=cfg.connect_timeout_s, banner_timeout=cfg.connect_timeout_s,
                auth_timeout=cfg.connect_timeout_s, **_FACTORY,
            )  # fmt: skip
            sftp = paramiko.SFTPClient.from_transport(
                client.get_transport(), window_size=WINDOW, max_packet_size=MAX_PACKET
            )
            if sftp is None:
                raise paramiko.SSHException("the server refused the sftp subsystem")
            sftp.get_channel().settimeout(cfg.io_timeout_s)
            transport = client.get_transport()
            version = transport.remote_version if transport is not None else ""
            request = _request_size(sftp, OPENSSH_REQUEST if "OpenSSH" in version else 32768)
        except SFTPError as exc:
            client.close()
            raise ReplicaError(f"{where}: the server's answer is not SFTP ({_one_line(exc)}): "
                               "does the account's shell print text?") from None  # fmt: skip
        except paramiko.BadHostKeyException:
            client.close()
            raise ReplicaAuthError(
                f"{where}: the server's host key differs from known_hosts_file: refused"
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            raise ReplicaAuthError(f"{where}: login refused for user {cfg.user!r}") from None
        except paramiko.SSHException as exc:
            client.close()
            if "known_hosts" in str(exc) or "not found in" in str(exc):
                raise ReplicaAuthError(
                    f"{where}: the server's host key is not in known_hosts_file: refused"
                ) from None
            raise ReplicaUnavailable(f"{where}: {_one_line(exc)}") from None
        except (OSError, EOFError) as exc:
            client.close()
            raise ReplicaUnavailable(f"{where}: cannot connect ({_one_line(exc)})") from None
        self._client, self._sftp, self._request = client, sftp, request

    def close(self) -> None:
        for thing in (self._sftp, self._client, self._link):
            if thing is not None:
                with contextlib.suppress(Exception):  # a dead session: nothing to keep
                    thing.close()
        self._sftp = self._client = self._link = None

    def _alive(self) -> bool:
        if self._link is not None:
            return self._link.alive()
        transport = self._client.get_transport() if self._client is not None else None
        return transport is not None and transport.is_active()

    # ------------------------------------------------------------------ files
    def _path(self, relpath: str) -> str:
        rel = safe_relpath(relpath)
        return f"{self.base}/{rel}" if self.base else rel

    def _s(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            raise ReplicaUnavailable(f"{self.name}: not connected")
        return self._sftp

    def size(self, relpath: str) -> int | None:
        path = self._path(relpath)
        try:
            st = self._call(lambda: self._s().stat(path), path)
        except FileNotFoundError:
            return None
        if st.st_mode is not None and not stat.S_ISREG(st.st_mode):
            raise ReplicaError(f"{self.name}: {path} is not a file")
        return int(st.st_size or 0)

    def _mkdirs(self, path: str) -> None:
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if not parent or parent in self._made:
            return
        parts = parent.split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if not d or d in self._made:
                continue
            try:
                self._call(lambda d=d: self._s().stat(d), d)
            except FileNotFoundError:
                self._call(lambda d=d: self._s().mkdir(d, 0o750), d)
            self._made.add(d)

    def upload(
        self, relpath: str, source: BinaryIO, offset: int, size: int, progress: Progress
    ) -> None:
        path = self._path(relpath)
        self._mkdirs(path)
        f = self._call(lambda: self._s().open(path, "r+b" if offset else "wb"), path)
        sent = offset
        try:
            f.MAX_REQUEST_SIZE = self._request
            f.set_pipelined(True)
            if offset:
                f.seek(offset)
            while sent < size:
                # one SFTP request per read: paramiko splits a write at its request size
                chunk = source.read(min(self._request, size - sent))
                if not chunk:
                    raise ReplicaError(f"{self.name}: the local file ended at {sent} bytes")
                self._write(f, chunk, path)
                sent += len(chunk)
                progress(sent)
            self._write_close(f, path, size)
        finally:
            with contextlib.suppress(Exception):  # already reported above
                f.close()

    def _write(self, f: Any, chunk: bytes, path: str) -> None:
        try:
            f.write(chunk)
        except OSError as exc:
            raise self._write_error(exc, path) from None
        except _LINK_ERRORS as exc:
            raise ReplicaUnavailable(f"{self.name}: connection lost ({_one_line(exc)})") from None

    def _write_close(self, f: Any, path: str, size: int) -> None:
        """Wait for every pipelined write's answer, then close. paramiko keeps a refused
        pipelined write's error for the file's next operation (its close drops it), so
        the file's size is asked first (answers come in order) and both are checked."""
        try:
            f.flush()
            stored = f.stat().st_size
            saved = getattr(f, "_saved_exception", None)  # paramiko 2.12 .. 5: same name
            if isinstance(saved, OSError):
                raise saved
            if stored is not None and stored < size:
                raise OSError(f"{stored} of {size} bytes stored")
            f.close()
        except OSError as exc:
            raise self._write_error(exc, path) from None
        except _LINK_ERRORS as exc:
            raise ReplicaUnavailable(f"{self.name}: connection lost ({_one_line(exc)})") from None

    def _write_error(self, exc: OSError, path: str) -> ReplicaError:
        """A refused write: the link gone (the session is dead, or a socket error), else
        the server's own "Failure" on an open file: its disk or the user's quota."""
        if not self._alive() or isinstance(exc, socket.timeout | ConnectionError) or exc.errno in (
            errno.EPIPE, errno.ECONNRESET,
        ):  # fmt: skip
            return ReplicaUnavailable(f"{self.name}: connection lost ({_one_line(exc)})")
        return ReplicaFull(
            f"{self.name}: a write to {path} was refused ({_one_line(exc)}): "
            "no space left or quota reached at the target"
        )

    def publish(self, relpath: str, final_relpath: str) -> None:
        src, dst = self._path(relpath), self._path(final_relpath)
        self._call(lambda: self._s().rename(src, dst), dst)

    def read(self, relpath: str) -> Iterator[bytes]:
        path = self._path(relpath)
        f = self._call(lambda: self._s().open(path, "rb"), path)
        try:
            size = self._call(lambda: f.stat().st_size, path)
            f.MAX_REQUEST_SIZE = self._request
            f.prefetch(size)
            while True:
                chunk = self._call(lambda: f.read(CHUNK), path)
                if not chunk:
                    return
                yield chunk
        finally:
            with contextlib.suppress(Exception):
                f.close()

    def follows_uploads(self) -> bool:
        # remote-sha256sum hashes every file this large at the server
        return self.cfg.verify == "read-back"

    def open_growing(self, relpath: str) -> _GrowingFile:
        path = self._path(relpath)
        f = self._call(lambda: self._s().open(path, "rb"), path)
        f.MAX_REQUEST_SIZE = self._request
        return _GrowingFile(self, f, path)

    def sha256_at_target(self, relpath: str) -> str | None:
        """``verify = "remote-sha256sum"``: the server's own SHA-256 of the stored file,
        computed after the file is fsynced there (``sync FILE``, then ``sha256sum``), in
        an exec channel of this session; None (read it back) with the default
        ``"read-back"`` or below :data:`REMOTE_HASH_MIN` bytes. Anything but exit status
        0 and one well-formed line within the time allowed is an error."""
        if self.cfg.verify != "remote-sha256sum":
            return None
        path = self._path(relpath)
        size = self.size(relpath)
        if size is None:
            raise ReplicaError(f"{self.name}: {path}: not at the target to hash")
        if size < REMOTE_HASH_MIN:
            return None
        q = shlex.quote(path)
        limit = self.cfg.io_timeout_s + _HASH_S_PER_MIB * size / (1 << 20)
        status, out, err = self._exec(f"sync -- {q} && sha256sum -b -- {q}", limit)
        match = _SHA256_LINE.match(out)
        if status != 0 or match is None or out.count(b"\n") != 1:
            said = _one_line(Exception(err.decode("utf-8", "replace"))) if err else "no hash"
            raise ReplicaError(
                f"{self.name}: sha256sum of {path} at the target failed "
                f'(exit {status}: {said}); set verify = "read-back" if the account may not '
                "run commands"
            )
        return match.group(1).decode("ascii")

    def _exec(self, command: str, limit_s: float) -> tuple[int, bytes, bytes]:
        """Run ``command`` on the server: (exit status, stdout, stderr), each output
        bounded to :data:`_HASH_OUTPUT_MAX` bytes, the whole within ``limit_s``."""
        if self._link is not None:
            return self._link.exec(command, limit_s, _HASH_OUTPUT_MAX)
        transport = self._client.get_transport() if self._client is not None else None
        if transport is None or not transport.is_active():
            raise ReplicaUnavailable(f"{self.name}: not connected")
        deadline = time.monotonic() + limit_s
        out, err = bytearray(), bytearray()
        try:
            chan = transport.open_session(timeout=self.cfg.io_timeout_s)
            try:
                chan.settimeout(min(1.0, limit_s))
                chan.exec_command(command)
                chan.shutdown_write()  # no input: a forced sftp-server ends at once
                while True:  # until stdout's end; bounded by the deadline and the sizes
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"no answer within {limit_s:.0f} s")
                    if len(out) > _HASH_OUTPUT_MAX or len(err) > _HASH_OUTPUT_MAX:
                        raise ReplicaError(f"{self.name}: too much output from the server")
                    if chan.recv_stderr_ready():
                        err += chan.recv_stderr(4096)
                    try:
                        data = chan.recv(4096)
                    except TimeoutError:
                        continue
                    if not data:
                        break
                    out += data
                if not chan.status_event.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"no exit status within {limit_s:.0f} s")
                if chan.recv_stderr_ready():
                    err += chan.recv_stderr(_HASH_OUTPUT_MAX)
                return chan.recv_exit_status(), bytes(out), bytes(err)
            finally:
                chan.close()
        except TimeoutError as exc:
            raise ReplicaUnavailable(f"{self.name}: {_one_line(exc)}") from None
        except _LINK_ERRORS as exc:
            raise ReplicaUnavailable(f"{self.name}: connection lost ({_one_line(exc)})") from None

    def delete(self, relpath: str) -> None:
        path = self._path(relpath)
        with contextlib.suppress(FileNotFoundError):
            self._call(lambda: self._s().remove(path), path)

    # ------------------------------------------------------------------ errors
    def _call(self, fn: Any, path: str) -> Any:
        """``fn()``, its failures as the Protocol's errors (FileNotFoundError kept)."""
        try:
            return fn()
        except FileNotFoundError:
            raise
        except PermissionError as exc:
            raise ReplicaError(f"{self.name}: {path}: permission denied ({exc})") from None
        except OSError as exc:
            if isinstance(exc, socket.timeout | ConnectionError):
                raise ReplicaUnavailable(f"{self.name}: {_one_line(exc)}") from None
            raise ReplicaError(f"{self.name}: {path}: {_one_line(exc)}") from None
        except _LINK_ERRORS as exc:
            raise ReplicaUnavailable(f"{self.name}: connection lost ({_one_line(exc)})") from None


class _GrowingFile:
    """A file at the server read by ranges while it is written (paramiko's readv: the
    range's requests sent at once, the answers taken in order)."""

    def __init__(self, target: SftpTarget, f: Any, path: str) -> None:
        self._target, self._f, self._path = target, f, path

    def stored(self) -> int:
        st = self._target._call(lambda: self._f.stat(), self._path)
        return int(st.st_size or 0)

    def read_range(self, start: int, end: int) -> Iterator[bytes]:
        step = self._target._request  # one SFTP request per range (paramiko splits at it)
        chunks = [(at, min(step, end - at)) for at in range(start, end, step)]
        if not chunks:
            return
        blocks = self._target._call(lambda: self._f.readv(chunks), self._path)
        while True:
            block = self._target._call(lambda: next(blocks, None), self._path)
            if not block:
                return
            yield block

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a dead session: nothing to keep
            self._f.close()


def _request_size(sftp: paramiko.SFTPClient, fallback: int) -> int:
    """Bytes per read or write request: what the server announces in OpenSSH's
    ``limits@openssh.com`` (its largest read and write), at most :data:`OPENSSH_REQUEST`
    and at least paramiko's 32 KiB; ``fallback`` where the server has no such extension."""
    try:
        kind, msg = sftp._request(CMD_EXTENDED, "limits@openssh.com")
    except (OSError, SFTPError):  # not supported: an error status
        return fallback
    if kind != CMD_EXTENDED_REPLY:
        return fallback
    _packet, largest_read, largest_write = msg.get_int64(), msg.get_int64(), msg.get_int64()
    if not largest_read or not largest_write:
        return fallback
    return max(32768, min(OPENSSH_REQUEST, largest_read, largest_write))


def _one_line(exc: BaseException) -> str:
    """An error's text (often the server's words) escaped and bounded: :func:`one_line`."""
    return one_line(" ".join(str(exc).split()) or type(exc).__name__)
