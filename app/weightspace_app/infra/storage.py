"""Open the object store a URL names: ``file:///abs/path`` or ``s3://bucket/optional/prefix``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from weightspace.snapshots import LocalStore, ObjectStore
from weightspace_app.infra.s3 import S3Store
from weightspace_app.infra.settings import Settings


def open_store(
    url: str,
    *,
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str | None = None,
    create_bucket: bool = False,
) -> ObjectStore:
    """The store ``url`` names.

    ``file:///abs/path`` opens a :class:`~weightspace.snapshots.LocalStore` rooted there (the
    keyword arguments are ignored); ``s3://bucket/optional/prefix`` opens an
    :class:`~weightspace_app.infra.s3.S3Store` with the given connection settings, typically
    via :func:`store_for`. Any other scheme raises :class:`ValueError`.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if parts.query or parts.fragment:
        raise ValueError(f"storage URL {url!r} must not have a query or fragment")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file storage URL must be file:///absolute/path, got {url!r}")
        path = unquote(parts.path)
        if not path.startswith("/") or path == "/":
            raise ValueError(f"file storage URL must name an absolute directory, got {url!r}")
        return LocalStore(Path(path))
    if scheme == "s3":
        if not parts.netloc or "@" in parts.netloc or ":" in parts.netloc:
            raise ValueError("s3 storage URL must be s3://bucket/optional/prefix")
        return S3Store(
            parts.netloc,
            prefix=unquote(parts.path).strip("/"),
            endpoint_url=endpoint_url,
            region=region,
            access_key=access_key,
            secret_key=secret_key,
            create_bucket=create_bucket,
        )
    raise ValueError(f"unsupported storage URL scheme {parts.scheme!r} (expected 'file' or 's3')")


def store_for(settings: Settings, *, create_bucket: bool = False) -> ObjectStore:
    """The store of ``settings.storage_url``, with the ``WEIGHTSPACE_S3_*`` connection settings."""
    return open_store(
        settings.storage_url,
        endpoint_url=settings.s3_endpoint_url,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        region=settings.s3_region,
        create_bucket=create_bucket,
    )
