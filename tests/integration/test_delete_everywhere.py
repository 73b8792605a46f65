"""Deleting an experiment leaves no object that mentions it in the store (SeaweedFS): its own,
the cached Grams and stored requests of analyses across experiments that include it, and a Gram
that an analysis writes concurrently with the deletion."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker
from weightspace_app.access import ANONYMOUS
from weightspace_app.infra.s3 import S3Store
from weightspace_app.infra.settings import Settings
from weightspace_app.usecases import analyses, lifecycle

from tests.conftest import SeaweedFS
from tests.integration.serving import serving
from weightspace_client import ApiError, WeightspaceClient
from weightspace_service.app import create_app

pytestmark = pytest.mark.integration
P = 64
T = TypeVar("T", bound=S3Store)


@dataclass
class Served:
    ws: WeightspaceClient
    store: S3Store
    sessions: sessionmaker[Session]
    url: str

    def exist(self, experiment_ids: Sequence[uuid.UUID]) -> bool:
        with self.sessions() as session:
            return analyses.all_exist(session, experiment_ids)

    def objects(self) -> dict[str, bytes]:
        return {key: self.store.get(key) for key in self.store.keys("")}

    def mentioning(self, experiment_id: str) -> list[str]:
        hexid = uuid.UUID(experiment_id).hex
        return [
            key
            for key, body in self.objects().items()
            if hexid in key or experiment_id.encode() in body or hexid.encode() in body
        ]


@pytest.fixture
def served(
    tmp_path: Path, migrated_postgres_url: str, seaweedfs: SeaweedFS, s3_store: S3Store
) -> Iterator[Served]:
    settings = Settings(
        home=tmp_path,
        database_url=migrated_postgres_url,
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        storage_url=f"s3://{s3_store.bucket}",
        s3_endpoint_url=seaweedfs.endpoint_url,
        s3_access_key=seaweedfs.access_key,
        s3_secret_key=seaweedfs.secret_key,
        s3_region=seaweedfs.region,
    )
    app = create_app(settings)
    with serving(app) as url, WeightspaceClient(url, timeout=60) as ws:
        yield Served(ws, s3_store, app.state.sessions, url)


def uploaded(ws: WeightspaceClient, seed: int, runs: int = 2, epochs: int = 3) -> str:
    rng = np.random.default_rng(seed)
    eid = ws.create_upload(replicas=runs)["id"]
    for run in range(runs):
        for epoch in range(epochs):
            ws.upload(eid, run, epoch, {"w": rng.normal(size=P).astype(np.float32)})
    ws.complete(eid)
    return eid


def test_delete_removes_joint_grams_and_requests_that_include_it(served: Served) -> None:
    ws = served.ws
    a, b, c = (uploaded(ws, seed) for seed in range(3))
    ws.pca(a)  # a's own Gram
    with_a = ws.analyse("pca", [{"experiment": a}, {"experiment": b}], poll=0.1, timeout=60)
    without_a = ws.analyse("distances", [{"experiment": b}, {"experiment": c}], poll=0.1)
    assert with_a["status"] == without_a["status"] == "succeeded"
    keys = served.store.keys("")
    assert f"analyses/{uuid.UUID(with_a['id']).hex}.json" in keys
    grams = {k.split("/")[1] for k in keys if k.endswith("/gram/latest.json")}
    assert len(grams) == 3  # a's own, and one per analysis across experiments
    assert served.mentioning(a)

    ws.delete(a)

    assert served.mentioning(a) == []
    left = served.store.keys("")
    assert f"analyses/{uuid.UUID(with_a['id']).hex}.json" not in left
    assert len({k.split("/")[1] for k in left if k.endswith("/gram/latest.json")}) == 1
    assert httpx.get(f"{served.url}/analyses/{with_a['id']}").status_code == 404
    # The analysis that did not include it is untouched, and still answered.
    kept = httpx.get(f"{served.url}/analyses/{without_a['id']}")
    assert kept.status_code == 200 and kept.json()["status"] == "succeeded"
    assert served.mentioning(b) and served.mentioning(c)


def test_a_selection_with_a_deleted_experiment_leaves_nothing(served: Served) -> None:
    ws = served.ws
    a, b = uploaded(ws, 1), uploaded(ws, 2)
    ws.delete(a)
    before = served.store.keys("")
    with pytest.raises(ApiError) as missing:
        ws.analyse("pca", [{"experiment": a}, {"experiment": b}], poll=0.1)
    assert missing.value.status == 404
    assert served.store.keys("") == before


class HookedStore(S3Store):
    """Runs ``hook`` once just before its first write of a Gram."""

    hook: Callable[[], None] | None = None

    def put(self, key: str, data: bytes) -> None:
        if "/gram/" in key and self.hook is not None:
            hook, self.hook = self.hook, None
            hook()
        super().put(key, data)


def hooked(store: S3Store) -> HookedStore:
    return copy_of(store, HookedStore)


def test_a_gram_written_after_the_delete_is_removed_by_its_writer(served: Served) -> None:
    a = uploaded(served.ws, 4)
    inputs = analyses.load_inputs(served.sessions, ANONYMOUS, uuid.UUID(a))
    store = hooked(served.store)

    def delete_now() -> None:  # the DELETE request completes while the Gram is being written
        with served.sessions() as session:
            lifecycle.delete_experiment(session, served.store, ANONYMOUS, uuid.UUID(a))
        assert served.mentioning(a) == []

    store.hook = delete_now
    analyzer = analyses.Analyzer(store, served.sessions)
    try:
        analyzer.snapshots(inputs).result(timeout=60)
    finally:
        analyzer.shutdown()
    assert store.hook is None  # the hook ran
    assert served.mentioning(a) == []


class GatedStore(S3Store):
    """Holds a Gram's first write until ``gate`` opens; ``reached`` says it got there."""

    gate: threading.Event
    reached: threading.Event

    def put(self, key: str, data: bytes) -> None:
        if "/gram/" in key:
            self.reached.set()
            assert self.gate.wait(30)
        super().put(key, data)


class SlowDeleteStore(S3Store):
    """Runs ``between`` after its first deletion under ``experiments/`` (before the rows are
    deleted and committed)."""

    between: Callable[[], None] | None = None

    def delete_prefix(self, prefix: str) -> int:
        count = super().delete_prefix(prefix)
        if prefix.startswith("experiments/") and self.between is not None:
            between, self.between = self.between, None
            between()
        return count


def copy_of(store: S3Store, kind: type[T]) -> T:
    copy = kind.__new__(kind)
    copy.__dict__.update(store.__dict__)
    return copy


def test_a_gram_written_between_the_deletion_of_objects_and_the_commit_is_swept(
    served: Served,
) -> None:
    a = uploaded(served.ws, 5)
    inputs = analyses.load_inputs(served.sessions, ANONYMOUS, uuid.UUID(a))
    gated = copy_of(served.store, GatedStore)
    gated.gate, gated.reached = threading.Event(), threading.Event()
    writer = threading.Thread(target=analyses.build, args=(gated, inputs, None, served.exist))
    writer.start()
    assert gated.reached.wait(60)  # it has read the snapshots; its Gram is about to be written
    deleting = copy_of(served.store, SlowDeleteStore)

    def write_the_gram() -> None:  # the row still exists: the writer keeps its Gram
        gated.gate.set()
        writer.join(60)
        assert served.store.keys(f"experiments/{uuid.UUID(a).hex}/gram/")

    deleting.between = write_the_gram
    with served.sessions() as session:
        lifecycle.delete_experiment(session, deleting, ANONYMOUS, uuid.UUID(a))
    assert deleting.between is None and not writer.is_alive()
    assert served.mentioning(a) == []
