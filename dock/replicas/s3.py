"""S3-compatible object storage as a replication target (MinIO, Ceph RGW, the clouds).

Built on boto3 (AWS's own, kept S3 client; Debian bookworm ships it as python3-boto3, so
the .deb depends on Debian's rather than bundling it). Only calls present in bookworm's
botocore 1.29 are used; newer options are passed only where the installed botocore has
them.

Configured by ``[[replication.target]]`` (``kind = "s3"``: scheme, host, port, bucket,
path as the key prefix, region, access_key_file, secret_key_file, ca_file) or built
directly with keywords.

Objects cannot be appended to, so the engine's resumable contract maps onto a multipart
upload of fixed parts (``part_size``, 8 MiB by default; S3 wants at least 5 MiB):

* a file of at most one part is one PutObject (atomic: there is never a partial one);
* a larger one is a multipart upload at its temporary key. The server keeps the upload
  id and the finished parts, so nothing is kept on the dock: after a restart,
  :meth:`size` finds the unfinished upload (ListMultipartUploads, ListParts) and says
  how many bytes its parts hold **less the last part** (which is sent again). So
  ``size()`` of an unfinished upload is always below the file's size, and the engine,
  which continues with ``upload(offset=size())``, always reaches the call that completes
  it (CompleteMultipartUpload). An offset that is not a part boundary held by the
  upload is refused (ReplicaError): the engine starts again at 0, which aborts the
  stale upload;
* a finished object's size is its ContentLength.

Publish copies the temporary object to the final key, only if the final key is absent,
then deletes the temporary one. The final key is checked first (HeadObject), and the copy
carries ``If-None-Match: *`` (a conditional write that AWS S3 and recent servers honour
on PutObject and CompleteMultipartUpload). Ceph 16 (bookworm's radosgw) and moto were
seen to *ignore* that header on CopyObject and replace, so against them this is a
check-then-copy: a window only another writer of the same key could use, and final keys
are the dock's own. Objects over 5 GiB are copied part by part (UploadPartCopy).

Read-back is GetObject, streamed: the engine hashes what the server returns. S3's ETag
is not a SHA-256 (and not an MD5 for multipart objects) and is never trusted here.

Tested (tests/test_replica_s3.py) against a real S3 server, Ceph's radosgw 16.2 from
Debian (one monitor and one memstore OSD started by the test): radosgw killed mid-upload
and the upload resumed, wrong keys, a user quota (QuotaExceeded is ReplicaFull), an
object changed at the server; and against moto's S3 stand-in. Not tested against MinIO
or a cloud's object store (none installs here); botocore's CRC32 trailers are turned off
where the installed botocore would add them, as Ceph 16 refuses them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import boto3
import botocore.exceptions as bex
from botocore.config import Config

from dock.config.replication import TargetConfig
from dock.domain.replica import (
    Progress,
    ReplicaAuthError,
    ReplicaError,
    ReplicaFull,
    ReplicaUnavailable,
    safe_relpath,
)
from dock.replicas.credentials import read_secret
from dock.replicas.oneline import one_line

MiB = 1024 * 1024
#: Bytes per multipart part: a resumed upload sends at most this much again.
PART_SIZE = 8 * MiB
#: S3's smallest part (all but the last) and its largest single CopyObject.
MIN_PART = 5 * MiB
MAX_COPY = 5 * 1024 * MiB
COPY_PART = 1024 * MiB
#: Read-back chunk.
CHUNK = MiB
#: Bounds on listings (pages of 1000): a key has few uploads, a file at most 10000 parts.
MAX_PAGES = 20

_AUTH = {
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
    "ExpiredToken", "InvalidSecurity", "AuthorizationHeaderMalformed", "AllAccessDisabled",
}  # fmt: skip
_FULL = {
    "EntityTooLarge", "QuotaExceeded", "XMinioStorageFull", "XMinioAdminBucketQuotaExceeded",
    "InsufficientStorage", "StorageFull",
}  # fmt: skip
_CONNECTION = (
    bex.EndpointConnectionError,
    bex.ConnectTimeoutError,
    bex.ReadTimeoutError,
    bex.ConnectionClosedError,
    bex.ProxyConnectionError,
    bex.ResponseStreamingError if hasattr(bex, "ResponseStreamingError") else bex.HTTPClientError,
    bex.HTTPClientError,
)


def map_error(exc: BaseException, name: str, what: str) -> ReplicaError:
    """The ReplicaError kind for what botocore raised."""
    where = f"S3 target {one_line(name, 60)}: {what}"
    if isinstance(exc, bex.NoCredentialsError | bex.PartialCredentialsError):
        return ReplicaAuthError(f"{where}: no usable credentials configured")
    if isinstance(exc, bex.SSLError):
        return ReplicaError(f"{where}: TLS failed, certificate not trusted? ({one_line(exc)})")
    if isinstance(exc, _CONNECTION):
        return ReplicaUnavailable(f"{where}: the server is unreachable ({one_line(exc)})")
    if isinstance(exc, bex.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        text = f"{one_line(code, 60)} {one_line(err.get('Message', ''), 120)}".strip()
        if code in _FULL or status == 507:  # before 403: some servers send quotas so
            return ReplicaFull(f"{where}: no room or over quota ({text})")
        if code in _AUTH or status in (401, 403):
            return ReplicaAuthError(f"{where}: the server refused the credentials ({text})")
        if status >= 500 or code in ("SlowDown", "ServiceUnavailable", "RequestTimeout"):
            return ReplicaUnavailable(f"{where}: the server cannot serve now ({text})")
        return ReplicaError(f"{where}: {text or status}")
    if isinstance(exc, bex.BotoCoreError | OSError):
        return ReplicaUnavailable(f"{where}: {one_line(exc)}")
    return ReplicaError(f"{where}: {one_line(exc)}")


def _code(exc: bex.ClientError) -> tuple[str, int]:
    err = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return str(err.get("Code", "")), status


def _client_config(connect_timeout: float, timeout: float) -> Config:
    """Timeouts, few retries (the engine retries), path-style addressing, SigV4; and,
    where botocore has them, checksums only when required (servers such as Ceph and
    older MinIO refuse the CRC32 trailers botocore >= 1.36 adds by default)."""
    base: dict[str, Any] = {
        "connect_timeout": connect_timeout,
        "read_timeout": timeout,
        "retries": {"max_attempts": 2, "mode": "standard"},
        "s3": {"addressing_style": "path"},
        "signature_version": "s3v4",
    }
    try:
        return Config(
            **base,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
    except TypeError:  # botocore < 1.36 (Debian bookworm): no such options, no trailers
        return Config(**base)


class S3Target:
    """Objects under ``prefix/`` in one bucket of an S3-compatible server."""

    def __init__(
        self,
        name: str | TargetConfig,
        endpoint_url: str = "",
        bucket: str = "",
        prefix: str = "",
        access_key: str = "",
        secret_key: str = "",
        region: str = "us-east-1",
        verify_tls: bool = True,
        ca_file: str | None = None,
        timeout: float = 30.0,
        part_size: int = PART_SIZE,
        connect_timeout: float | None = None,
    ) -> None:
        if isinstance(name, TargetConfig):  # the factory's way (dock/replicas/build.py)
            cfg = name
            port = f":{cfg.port}" if cfg.port else ""  # else the scheme's own
            name, endpoint_url = cfg.name, f"{cfg.scheme}://{cfg.host}{port}"
            bucket, prefix, region = cfg.bucket, cfg.path, cfg.region or "us-east-1"
            access_key = read_secret(cfg.access_key_file, "access_key_file", cfg.name)
            secret_key = read_secret(cfg.secret_key_file, "secret_key_file", cfg.name)
            ca_file = cfg.ca_file or None
            timeout, connect_timeout = cfg.io_timeout_s, cfg.connect_timeout_s
        if not endpoint_url.startswith(("https://", "http://")):
            raise ValueError("S3 endpoint_url must start with https:// (or http://)")
        if not bucket or "/" in bucket:
            raise ValueError("S3 bucket is one name, without '/'")
        if part_size < MIN_PART:
            raise ValueError(f"S3 part size must be at least {MIN_PART} bytes")
        self.name = name
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        prefix = "/".join(p for p in prefix.split("/") if p)  # "/a//b/" is "a/b"
        self.prefix = safe_relpath(prefix) if prefix else ""
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.verify: bool | str = ca_file if ca_file else verify_tls
        self.timeout = timeout
        self.connect_timeout = connect_timeout or timeout
        self.part_size = part_size
        self._client: Any = None
        self._guard = False  # set while publishing: add If-None-Match: * to the write

    # -- helpers -------------------------------------------------------------------------

    def _key(self, relpath: str) -> str:
        rel = safe_relpath(relpath)
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _fail(self, exc: BaseException, what: str) -> ReplicaError:
        return map_error(exc, self.name, what)

    def _if_none_match(self, params: dict[str, Any], **_: Any) -> None:
        if self._guard:
            params.setdefault("headers", {})["If-None-Match"] = "*"

    @property
    def client(self) -> Any:
        if self._client is None:
            self.connect()
        return self._client

    def _uploads(self, key: str) -> list[dict[str, Any]]:
        """Unfinished multipart uploads of exactly ``key``, oldest first."""
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": key}
        for _ in range(MAX_PAGES):
            page = self.client.list_multipart_uploads(**kwargs)
            found += [u for u in page.get("Uploads", []) if u.get("Key") == key]
            if not page.get("IsTruncated"):
                break
            kwargs["KeyMarker"] = page.get("NextKeyMarker", "")
            kwargs["UploadIdMarker"] = page.get("NextUploadIdMarker", "")
        return sorted(found, key=lambda u: u.get("Initiated") or 0)

    def _parts(self, key: str, upload_id: str) -> list[dict[str, Any]]:
        """The upload's parts, by number."""
        parts: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "UploadId": upload_id}
        for _ in range(MAX_PAGES):
            page = self.client.list_parts(**kwargs)
            parts += page.get("Parts", [])
            if not page.get("IsTruncated"):
                break
            kwargs["PartNumberMarker"] = page.get("NextPartNumberMarker", 0)
        return sorted(parts, key=lambda p: int(p["PartNumber"]))

    def _full_parts(self, parts: list[dict[str, Any]]) -> int:
        """How many parts from 1 on are there in a row, each of ``part_size``."""
        n = 0
        for p in parts:
            if int(p["PartNumber"]) != n + 1 or int(p["Size"]) != self.part_size:
                break
            n += 1
        return n

    def _resumable(self, parts: list[dict[str, Any]]) -> int:
        """Bytes a restarted upload may keep: the parts in a row, less the last one sent."""
        n = 0
        for p in parts:
            if int(p["PartNumber"]) != n + 1:
                break
            n += 1
            if int(p["Size"]) != self.part_size:
                break
        return max(0, n - 1) * self.part_size

    def _head(self, key: str) -> int | None:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except bex.ClientError as exc:
            code, status = _code(exc)
            if status == 404 or code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _abort_all(self, key: str) -> None:
        for u in self._uploads(key):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=u["UploadId"])

    # -- ReplicaTarget -------------------------------------------------------------------

    def connect(self) -> None:
        """Make the client and check the bucket answers with these credentials."""
        if self._client is not None:
            return
        try:
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint_url,
                aws_access_key_id=self.access_key or None,
                aws_secret_access_key=self.secret_key or None,
                region_name=self.region,
                verify=self.verify,
                config=_client_config(self.connect_timeout, self.timeout),
            )
            client.meta.events.register("before-call.s3.CopyObject", self._if_none_match)
            client.meta.events.register(
                "before-call.s3.CompleteMultipartUpload", self._if_none_match
            )
            client.head_bucket(Bucket=self.bucket)
        except (bex.BotoCoreError, bex.ClientError, OSError, ValueError) as exc:
            raise self._fail(exc, "connect") from None
        self._client = client

    def close(self) -> None:
        """Drop the client and its pooled connections."""
        client, self._client = self._client, None
        if client is not None and hasattr(client, "close"):
            with contextlib.suppress(Exception):  # a dead pool may raise anything
                client.close()

    def size(self, relpath: str) -> int | None:
        """An unfinished upload's resumable bytes, else the object's size, else None."""
        key = self._key(relpath)
        try:
            uploads = self._uploads(key)
            if uploads:
                return self._resumable(self._parts(key, uploads[-1]["UploadId"]))
            return self._head(key)
        except (bex.BotoCoreError, bex.ClientError, OSError) as exc:
            raise self._fail(exc, f"size of {one_line(relpath)}") from None

    def upload(
        self, relpath: str, source: BinaryIO, offset: int, size: int, progress: Progress
    ) -> None:
        """PutObject for one part's worth, else a multipart upload continued at ``offset``."""
        key = self._key(relpath)
        what = f"upload of {one_line(relpath)}"
        if offset < 0 or offset > size:
            raise ReplicaError(f"S3 target {one_line(self.name, 60)}: {what}: bad offset {offset}")
        try:
            if size <= self.part_size:
                self._put_small(key, source, offset, size, progress, what)
            else:
                self._multipart(key, source, offset, size, progress, what)
        except ReplicaError:
            raise
        except (bex.BotoCoreError, bex.ClientError, OSError) as exc:
            raise self._fail(exc, what) from None

    def _read_exact(self, source: BinaryIO, n: int, what: str) -> bytes:
        """``n`` bytes of ``source``, which may hand them over in pieces (a throttled
        reader does); bounded: each pass takes at least a byte or ends."""
        pieces: list[bytes] = []
        got = 0
        while got < n:
            piece = source.read(n - got)
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
        data = b"".join(pieces)
        if len(data) != n:
            raise ReplicaError(
                f"S3 target {one_line(self.name, 60)}: {what}: the source ended early"
            )
        return data

    def _put_small(
        self, key: str, source: BinaryIO, offset: int, size: int, progress: Progress, what: str
    ) -> None:
        if offset != 0:
            raise ReplicaError(
                f"S3 target {one_line(self.name, 60)}: {what}: an object cannot be continued "
                f"at {offset}; start at 0"
            )
        self._abort_all(key)
        data = self._read_exact(source, size, what)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentMD5=_md5(data))
        progress(size)

    def _multipart(
        self, key: str, source: BinaryIO, offset: int, size: int, progress: Progress, what: str
    ) -> None:
        if offset == 0:
            self._abort_all(key)
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        else:
            uploads = self._uploads(key)
            if not uploads:
                raise ReplicaError(
                    f"S3 target {one_line(self.name, 60)}: {what}: no unfinished upload to "
                    f"continue at {offset}; start at 0"
                )
            upload_id = uploads[-1]["UploadId"]
            held = self._full_parts(self._parts(key, upload_id)) * self.part_size
            if offset % self.part_size or offset > held:
                raise ReplicaError(
                    f"S3 target {one_line(self.name, 60)}: {what}: cannot continue at "
                    f"{offset} (the unfinished upload holds {held} bytes in whole parts); "
                    "start at 0"
                )
        pos = offset
        for number in range(offset // self.part_size + 1, -(-size // self.part_size) + 1):
            n = min(self.part_size, size - pos)
            data = self._read_exact(source, n, what)
            self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                Body=data, ContentMD5=_md5(data),
            )  # fmt: skip
            pos += n
            progress(pos)
        parts = self._parts(key, upload_id)
        count = -(-size // self.part_size)
        if [int(p["PartNumber"]) for p in parts] != list(range(1, count + 1)) or sum(
            int(p["Size"]) for p in parts
        ) != size:
            raise ReplicaError(
                f"S3 target {one_line(self.name, 60)}: {what}: the server's parts do not add "
                f"up to {size} bytes; start at 0"
            )
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
            },
        )  # fmt: skip

    def publish(self, relpath: str, final_relpath: str) -> None:
        """Copy to the final key only if it is absent, then delete the temporary object."""
        src, dst = self._key(relpath), self._key(final_relpath)
        what = f"publish {one_line(relpath)} as {one_line(final_relpath)}"
        exists = ReplicaError(f"S3 target {one_line(self.name, 60)}: {what}: the final name exists")
        try:
            if self._head(dst) is not None:
                raise exists
            length = self._head(src)
            if length is None:
                raise ReplicaError(
                    f"S3 target {one_line(self.name, 60)}: {what}: no finished upload there"
                )
            self._guard = True
            try:
                if length <= MAX_COPY:
                    self.client.copy_object(
                        Bucket=self.bucket, Key=dst, CopySource={"Bucket": self.bucket, "Key": src}
                    )
                else:
                    self._copy_parts(src, dst, length)
            finally:
                self._guard = False
            self.client.delete_object(Bucket=self.bucket, Key=src)
        except ReplicaError:
            raise
        except bex.ClientError as exc:
            code, status = _code(exc)
            if status == 412 or code == "PreconditionFailed":
                raise exists from None
            raise self._fail(exc, what) from None
        except (bex.BotoCoreError, OSError) as exc:
            raise self._fail(exc, what) from None

    def _copy_parts(self, src: str, dst: str, length: int) -> None:
        """A server-side copy of an object over 5 GiB, COPY_PART at a time."""
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=dst)["UploadId"]
        parts = []
        for number, start in enumerate(range(0, length, COPY_PART), 1):
            end = min(start + COPY_PART, length) - 1
            done = self.client.upload_part_copy(
                Bucket=self.bucket, Key=dst, UploadId=upload_id, PartNumber=number,
                CopySource={"Bucket": self.bucket, "Key": src},
                CopySourceRange=f"bytes={start}-{end}",
            )  # fmt: skip
            parts.append({"PartNumber": number, "ETag": done["CopyPartResult"]["ETag"]})
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=dst, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    def read(self, relpath: str) -> Iterator[bytes]:
        """GetObject, streamed CHUNK at a time from the server."""
        key = self._key(relpath)
        what = f"read of {one_line(relpath)}"
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                yield from body.iter_chunks(CHUNK)
            finally:
                body.close()
        except (bex.BotoCoreError, bex.ClientError, OSError) as exc:
            raise self._fail(exc, what) from None
        except Exception as exc:  # urllib3's errors while streaming are not botocore's
            if type(exc).__module__.startswith(("urllib3", "http.client")):
                raise self._fail(ConnectionError(str(exc)), what) from None
            raise

    def delete(self, relpath: str) -> None:
        """Remove the object and any unfinished upload of the same key."""
        key = self._key(relpath)
        try:
            self._abort_all(key)
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (bex.BotoCoreError, bex.ClientError, OSError) as exc:
            raise self._fail(exc, f"delete of {one_line(relpath)}") from None


def _md5(data: bytes) -> str:
    """Content-MD5: the server refuses a part damaged on the way (transport check only;
    verification is the engine's SHA-256 of what is read back)."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


__all__ = ["PART_SIZE", "S3Target", "map_error"]
