"""Uploads at scale, over real HTTP to a live API on PostgreSQL and SeaweedFS: the body streams
through in chunks (the API holds a few of them, never the body), and a body refused or cut off
half-way leaves nothing behind: no object, no open multipart upload, no database row."""

from __future__ import annotations

import hashlib
import json
import re
import struct
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from weightspace_app.infra.db import SnapshotRecord
from weightspace_app.infra.s3 import S3Store
from weightspace_app.infra.settings import Settings

from tests.integration.serving import serving
from weightspace.snapshots import LocalStore, experiment_prefix, sha256_hex, snapshot_key
from weightspace_service.app import create_app

pytestmark = pytest.mark.integration

CHUNK = 1 << 20  # WEIGHTSPACE_UPLOAD_CHUNK_BYTES here: the body is many chunks
MiB = 1 << 20


def body_of(parameters: int, last: float = 1.0, *, cut: int = 0) -> Iterator[bytes]:
    """A safetensors file of one float32 tensor ``w`` of ``parameters`` values, generated a MiB
    at a time (the test never holds it either): ones, its last value ``last``; ``cut`` bytes
    short of what its header says."""
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [parameters], "data_offsets": [0, 4 * parameters]}}
    )
    yield struct.pack("<Q", len(header)) + header.encode()
    left = 4 * parameters - cut
    while left > 0:
        piece = np.ones(min(left, MiB) // 4, np.float32)
        left -= piece.nbytes
        if left <= 0:
            piece[-1] = last
        yield piece.tobytes()


def peak_rss_reset() -> None:
    """Reset this process's peak resident set (``VmHWM``) to its current one."""
    Path("/proc/self/clear_refs").write_text("5")


def rss(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` of this process (which serves the API), in bytes."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]


@dataclass
class Served:
    http: httpx.Client
    sessions: Any
    store: S3Store

    def experiment(self) -> str:
        response = self.http.post("/experiments", json={"source": "upload"})
        return str(response.raise_for_status().json()["id"])

    def put(self, eid: str, epoch: int, body: Any) -> httpx.Response:
        return self.http.put(f"/experiments/{eid}/runs/0/snapshots/{epoch}", content=body)

    def left_behind(self, eid: str) -> tuple[list[str], list[object], list[object]]:
        """The objects, open multipart uploads and snapshot rows of an experiment."""
        open_uploads = self.store.client.list_multipart_uploads(Bucket=self.store.bucket)
        with self.sessions() as session:
            rows = session.query(SnapshotRecord).filter_by(experiment_id=uuid.UUID(eid)).all()
        return self.store.keys(experiment_prefix(eid)), open_uploads.get("Uploads", []), rows


@pytest.fixture
def served(
    tmp_path: Path, migrated_postgres_url: str, s3_store: S3Store, seaweedfs: Any
) -> Iterator[Served]:
    config = Settings(
        home=tmp_path,
        database_url=migrated_postgres_url,
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        storage_url=f"s3://{s3_store.bucket}",
        s3_endpoint_url=seaweedfs.endpoint_url,
        s3_access_key=seaweedfs.access_key,
        s3_secret_key=seaweedfs.secret_key,
        s3_region=seaweedfs.region,
        upload_chunk_bytes=CHUNK,
    )
    app = create_app(config)
    with serving(app) as url, httpx.Client(base_url=url, timeout=300) as http:
        yield Served(http, app.state.sessions, s3_store)


def upload_growth(served: Served, size: int) -> int:
    """Bytes by which the peak RSS of this process (serving the API, sending the body) grows
    during the upload of a ``size``-byte snapshot to a new experiment."""
    eid = served.experiment()
    peak_rss_reset()
    before = rss("VmRSS")
    started = time.monotonic()
    response = served.put(eid, 0, body_of(size // 4))
    seconds = time.monotonic() - started
    grown = rss("VmHWM") - before
    assert response.status_code == 201, response.text
    keys, open_uploads, [record] = served.left_behind(eid)
    assert keys == [snapshot_key(eid, 0, 0)] and open_uploads == []
    stored = served.store.get(keys[0])
    assert sha256_hex(stored) == record.sha256 and len(stored) == record.size
    assert record.parameters == size // 4
    print(
        f"{size / MiB:.0f} MiB body: peak RSS +{grown / MiB:.1f} MiB, {size / MiB / seconds:.0f} MB/s"
    )
    return grown


def test_a_large_upload_holds_a_few_chunks_not_the_body(served: Served) -> None:
    upload_growth(served, 12 * MiB)  # every code path imported and warm (a multipart upload)
    body = 256 * MiB  # 256 chunks, 32 parts
    grown = upload_growth(served, body)
    # A few chunks and parts, and what the allocator keeps of them per thread (30-65 MiB
    # measured for bodies of 8 to 256 MiB); reading the body whole would cost it all, and more.
    assert grown < body // 2, f"{grown / MiB:.0f} MiB"


def test_a_large_state_dict_download_streams_too(served: Served) -> None:
    """``?format=state_dict`` rebuilds the file from the stored snapshot a chunk at a time
    (spooled to disk to know its checksum first), never the whole file in memory."""
    body = 128 * MiB
    upload_growth(served, body)  # warm, and the snapshot to download
    eid = served.experiment()
    assert served.put(eid, 0, body_of(body // 4, last=2.0)).status_code == 201
    peak_rss_reset()
    before = rss("VmRSS")
    digest, size, tail = hashlib.sha256(), 0, b""
    path = f"/experiments/{eid}/runs/0/snapshots/0"
    with served.http.stream("GET", path, params={"format": "state_dict"}) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
            tail = (tail + chunk)[-8:]
    grown = rss("VmHWM") - before
    assert response.headers["X-Checksum-Sha256"] == digest.hexdigest()
    assert int(response.headers["Content-Length"]) == size > body
    assert np.frombuffer(tail, np.float32).tolist() == [1.0, 2.0]  # w's last two values
    assert grown < body // 2, f"{grown / MiB:.0f} MiB"
    print(f"{body / MiB:.0f} MiB state dict download: peak RSS +{grown / MiB:.1f} MiB")


def test_a_body_refused_in_its_last_chunk_leaves_nothing(served: Served) -> None:
    eid = served.experiment()
    nan = served.put(eid, 0, body_of(4 * MiB, last=float("nan")))  # 16 MiB, NaN at its end
    assert nan.status_code == 422
    assert nan.json()["errors"] == [
        {"field": "body", "message": f"tensor 'w' holds 1 NaN or infinite values (of {4 * MiB})"}
    ]
    short = served.put(eid, 0, body_of(4 * MiB, cut=MiB + 8))  # ends a MiB early
    assert short.status_code == 422
    assert f"cover {16 * MiB} bytes, the data holds {15 * MiB - 8}" in short.text
    assert served.left_behind(eid) == ([], [], [])


def test_a_client_gone_half_way_leaves_nothing(served: Served) -> None:
    eid = served.experiment()

    def cut_off() -> Iterator[bytes]:
        for i, chunk in enumerate(body_of(8 * MiB)):
            if i == 12:
                raise ConnectionAbortedError("the client gives up")
            yield chunk

    with pytest.raises(ConnectionAbortedError):
        served.put(eid, 0, cut_off())
    time.sleep(1)  # the API sees the connection closed
    assert served.left_behind(eid) == ([], [], [])
    assert served.put(eid, 0, body_of(1000)).status_code == 201  # and it serves on


def _parts(total: int, fail_at: int | None = None) -> Iterator[bytes]:
    for i in range(total // MiB):
        if i == fail_at:
            raise RuntimeError("the snapshot's chunks fail half-way")
        yield bytes([i]) * MiB


def test_s3_put_stream_is_multipart_and_aborts_on_failure(s3_store: S3Store) -> None:
    assert s3_store.put_stream("a/big", _parts(12 * MiB)) == 12 * MiB  # parts of 8 + 4 MiB
    assert s3_store.get("a/big") == b"".join(_parts(12 * MiB))
    assert s3_store.put_stream("a/small", _parts(2 * MiB)) == 2 * MiB  # one PutObject
    assert s3_store.get("a/small") == b"".join(_parts(2 * MiB))
    with pytest.raises(RuntimeError):
        s3_store.put_stream("a/big", _parts(20 * MiB, fail_at=17))
    assert s3_store.get("a/big") == b"".join(_parts(12 * MiB))  # what was there before
    with pytest.raises(RuntimeError):
        s3_store.put_stream("a/none", _parts(20 * MiB, fail_at=17))
    assert not s3_store.exists("a/none")
    uploads = s3_store.client.list_multipart_uploads(Bucket=s3_store.bucket)
    assert uploads.get("Uploads", []) == []


def test_local_put_stream_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert store.put_stream("a/b", _parts(3 * MiB)) == 3 * MiB
    with pytest.raises(RuntimeError):
        store.put_stream("a/b", _parts(3 * MiB, fail_at=2))
    with pytest.raises(RuntimeError):
        store.put_stream("a/c", _parts(3 * MiB, fail_at=2))
    assert store.get("a/b") == b"".join(_parts(3 * MiB))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b"]
