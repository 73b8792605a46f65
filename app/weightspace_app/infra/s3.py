"""The object store on any S3-compatible endpoint (AWS S3, SeaweedFS, MinIO) through boto3."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from weightspace.snapshots import (
    ChecksumError,
    ObjectNotFound,
    StoreUnavailable,
    check_key,
    sha256_hex,
)

# Object metadata key holding the sha256 of the body; sent as ``x-amz-meta-sha256``.
SHA256_METADATA = "sha256"
CONTENT_TYPE = "application/octet-stream"
MAX_DELETE_BATCH = 1000  # the S3 limit on keys per DeleteObjects request
MIN_PART_BYTES = 5 << 20  # the S3 limit on every part of a multipart upload but the last

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


def default_config() -> Config:
    """Client settings that suit S3-compatible servers as well as AWS.

    Path-style addressing (``http://host/bucket/key``) because SeaweedFS and MinIO do not serve
    buckets as subdomains; checksums only where a request requires them, because newer botocore
    otherwise sends trailing CRC checksums that some servers refuse (the store keeps its own
    sha256).
    """
    return Config(
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        tcp_keepalive=True,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return None if status is None else int(status)


F = TypeVar("F", bound=Callable[..., Any])


def _transient(method: F) -> F:
    """Connection failures, timeouts and 5xx answers become :class:`StoreUnavailable` (retryable;
    the message names the error, never the endpoint's address)."""

    @wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except BotoCoreError as exc:
            raise StoreUnavailable(
                f"the snapshot store is unreachable ({type(exc).__name__})"
            ) from exc
        except ClientError as exc:
            if (_status(exc) or 0) >= 500 or _error_code(exc) in {"SlowDown", "ServiceUnavailable"}:
                raise StoreUnavailable(
                    f"the snapshot store answered {_status(exc)} ({_error_code(exc)})"
                ) from exc
            raise

    return wrapper  # type: ignore[return-value]


def _parts(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """``chunks`` regrouped into parts of ``size`` bytes (the last one shorter)."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)


class S3Store:
    """Objects in one bucket, optionally under a key prefix (``ObjectStore`` protocol).

    Every object carries the sha256 of its bytes as metadata (``x-amz-meta-sha256``), checked
    on each full :meth:`get`. Keys are validated with :func:`~weightspace.snapshots.check_key`
    before any request is made.

    Parameters
    ----------
    bucket
        Bucket name.
    prefix
        Key prefix inside the bucket (``"a/b"`` stores ``key`` as ``"a/b/key"``); itself a valid
        key, or empty.
    endpoint_url, region, access_key, secret_key
        Connection settings; ``None`` leaves them to boto3's usual resolution (environment,
        config files, instance roles).
    create_bucket
        Create the bucket if it does not exist yet.
    client
        A ready boto3 S3 client, instead of building one from the settings above.
    page_size
        Keys per ``ListObjectsV2`` page and per ``DeleteObjects`` batch in :meth:`delete_prefix`
        (at most 1000).
    part_bytes
        Bytes per part of the multipart uploads of :meth:`put_stream` (at least 5 MiB); an
        object no larger is written by one ``PutObject``.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        create_bucket: bool = False,
        client: Any | None = None,
        page_size: int = MAX_DELETE_BATCH,
        part_bytes: int = 8 << 20,
    ) -> None:
        if not bucket:
            raise ValueError("bucket name must not be empty")
        if not 1 <= page_size <= MAX_DELETE_BATCH:
            raise ValueError(f"page_size must be between 1 and {MAX_DELETE_BATCH}")
        prefix = prefix.strip("/")
        if prefix:
            check_key(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self.page_size = page_size
        self.part_bytes = max(part_bytes, MIN_PART_BYTES)
        if client is None:
            # A session per store: boto3's default session is not thread-safe, clients are.
            session = boto3.session.Session(
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                region_name=region,
            )
            client = session.client("s3", endpoint_url=endpoint_url, config=default_config())
        self.client = client
        self.endpoint_url: str = client.meta.endpoint_url
        if create_bucket:
            self._create_bucket(region)

    def __repr__(self) -> str:
        return (
            f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r}, "
            f"endpoint_url={self.endpoint_url!r})"
        )

    # ----------------------------------------------------------------------- keys

    def _object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _list_prefix(self, prefix: str) -> str:
        """The bucket-level listing prefix for a store-level key prefix."""
        if prefix:
            # Any prefix of a valid key is accepted ("experiments/ab", "experiments/ab/").
            check_key(prefix.rstrip("/") or "/")
        # With a store prefix "p" the listing is always under "p/", never a sibling "p2/...".
        return f"{self.prefix}/{prefix}" if self.prefix else prefix

    # ----------------------------------------------------------------------- protocol

    @_transient
    def put(self, key: str, data: bytes) -> None:
        object_key = self._object_key(key)
        self.client.put_object(
            Bucket=self.bucket,
            Key=object_key,
            Body=bytes(data),
            ContentType=CONTENT_TYPE,
            Metadata={SHA256_METADATA: sha256_hex(data)},
        )

    @_transient
    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        """One ``PutObject`` (with the sha256 metadata) for an object of at most one part;
        else a multipart upload of ``part_bytes`` parts, aborted on any failure (of ``chunks``
        too), so that no part stays behind. Such an object carries no sha256 metadata: its
        sha256 is known only once its last part is sent (the database records it)."""
        object_key = self._object_key(key)
        parts = _parts(chunks, self.part_bytes)
        first = next(parts, b"")
        second = next(parts, None)
        if second is None:
            self.put(key, first)
            return len(first)
        upload = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=object_key, ContentType=CONTENT_TYPE
        )["UploadId"]
        try:
            sent, size = [], 0
            for number, part in enumerate(itertools.chain([first, second], parts), start=1):
                answer = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=object_key,
                    UploadId=upload,
                    PartNumber=number,
                    Body=part,
                )
                sent.append({"PartNumber": number, "ETag": answer["ETag"]})
                size += len(part)
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=object_key,
                UploadId=upload,
                MultipartUpload={"Parts": sent},
            )
        except BaseException:
            with contextlib.suppress(BotoCoreError, ClientError):
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=object_key, UploadId=upload
                )
            raise
        return size

    @_transient
    def get(self, key: str) -> bytes:
        object_key = self._object_key(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise ObjectNotFound(key) from None
            raise
        data: bytes = response["Body"].read()
        expected = response.get("Metadata", {}).get(SHA256_METADATA)
        if expected is not None and sha256_hex(data) != expected:
            raise ChecksumError(f"object {key!r} does not match its recorded sha256")
        return data

    @_transient
    def get_range(self, key: str, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of the object; shorter (or empty) past its end, like a file."""
        object_key = self._object_key(key)
        if start < 0 or stop < start:
            raise ValueError(f"invalid byte range [{start}, {stop})")
        if start == stop:
            if not self.exists(key):
                raise ObjectNotFound(key)
            return b""
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=object_key, Range=f"bytes={start}-{stop - 1}"
            )
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise ObjectNotFound(key) from None
            if _error_code(exc) == "InvalidRange" or _status(exc) == 416:
                return b""  # the range starts at or past the end of the object
            raise
        data: bytes = response["Body"].read()
        if "ContentRange" not in response:
            # A server that ignores Range answers 200 with the whole object.
            data = data[start:stop]
        return data

    @_transient
    def exists(self, key: str) -> bool:
        object_key = self._object_key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if _status(exc) == 404 or _error_code(exc) in _NOT_FOUND:
                return False
            raise
        return True

    def _bucket_keys(self, prefix: str) -> list[str]:
        """Bucket-level keys of every object under the store-level ``prefix``."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self._list_prefix(prefix),
            PaginationConfig={"PageSize": self.page_size},
        )
        return [item["Key"] for page in pages for item in page.get("Contents", ())]

    @_transient
    def keys(self, prefix: str) -> list[str]:
        """Keys of the objects whose key starts with ``prefix``, sorted."""
        strip = len(f"{self.prefix}/") if self.prefix else 0
        return sorted(key[strip:] for key in self._bucket_keys(prefix))

    @_transient
    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with ``prefix``; return how many.

        An empty ``prefix`` deletes every object of the store (everything under its own
        prefix), as :class:`~weightspace.snapshots.LocalStore` does.
        """
        # List everything first: deleting while paginating could shift the listing under us.
        keys = self._bucket_keys(prefix)
        for begin in range(0, len(keys), self.page_size):
            batch = keys[begin : begin + self.page_size]
            response = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise OSError(
                    f"could not delete {len(errors)} object(s) from bucket {self.bucket!r}, "
                    f"first {first.get('Key')!r}: {first.get('Code')} {first.get('Message')}"
                )
        return len(keys)

    def ping(self) -> None:
        """Raise :class:`OSError` if the bucket cannot be reached."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise OSError(
                f"S3 bucket {self.bucket!r} at {self.endpoint_url} is not reachable: {exc}"
            ) from exc

    # ----------------------------------------------------------------------- setup

    def _create_bucket(self, region: str | None) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _status(exc) != 404:
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(**kwargs)
        except ClientError as exc:
            # Another process may have created it in between.
            if _error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise
