"""The Gram matrix of an experiment's snapshots, cached as ``.npy`` objects in the snapshot store.

Objects live beside the snapshots (deleted with the experiment's prefix):

``experiments/<id>/gram/<fingerprint>.npy``  the float64 matrix, rows in *entry* order
``experiments/<id>/gram/latest.json``         ``{"fingerprint", "size", "entries"}``: which
                                              snapshots (run, epoch, sha256) the rows are

When snapshots arrive, the cached matrix is **extended**: rows of snapshots still present (same
sha256) are re-used as they are, only the new snapshots' rows are computed
(:func:`weightspace.analysis.extend_gram`). Rows stay in the order they were added; callers
re-order with :meth:`~weightspace.analysis.Gram.subset`, which costs no I/O.

A snapshot that cannot be read (missing object, checksum mismatch, unparseable header) or
cannot be analysed (NaN or infinite values, values whose squares overflow) raises
:class:`DamagedSnapshot` naming its run and epoch; a store that cannot be reached raises whatever
the store raises (a transient fault, not damage).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from weightspace import analysis
from weightspace.snapshots import (
    ChecksumError,
    ObjectNotFound,
    ObjectStore,
    ReorderedVector,
    StoredVector,
    experiment_prefix,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotRef:
    """What an analysis needs to know of one stored snapshot (read, then the session is closed)."""

    run: int
    epoch: int
    key: str
    sha256: str
    metrics: dict[str, float]
    damaged: str | None = None
    gradient: dict[str, Any] | None = None  # full-batch gradient norms at capture (claim 1)
    #: Stored element ranges in the order to read them (``weightspace.layouts.canonical_pieces``)
    #: for analyses across experiments; ``None``: as stored.
    pieces: tuple[tuple[int, int], ...] | None = None

    @property
    def entry(self) -> tuple[int, int, str]:
        return (self.run, self.epoch, self.sha256)


class DamagedSnapshot(RuntimeError):
    """A stored snapshot is missing, does not match its checksum, or cannot be analysed."""

    def __init__(self, ref: SnapshotRef, reason: str, experiment: uuid.UUID | None = None) -> None:
        where = f"run {ref.run} at epoch {ref.epoch}"
        if experiment is not None:
            where += f" of experiment {experiment}"
        super().__init__(f"the snapshot of {where} is damaged: {reason}")
        self.ref = ref
        self.reason = reason


def fingerprint(refs: Sequence[SnapshotRef]) -> str:
    text = "|".join(f"{r.run}:{r.epoch}:{r.sha256}" for r in refs)
    return hashlib.sha256(text.encode()).hexdigest()


class _Vector:
    """A snapshot's parameter vector whose read errors name the snapshot (see DamagedSnapshot)."""

    def __init__(
        self, store: ObjectStore, ref: SnapshotRef, window: tuple[int, int] | None = None
    ) -> None:
        self.ref = ref
        self._vector = self._guard(
            lambda: (
                StoredVector(store, ref.key, window)
                if ref.pieces is None
                else ReorderedVector(store, ref.key, ref.pieces, window)
            )
        )
        self.size = self._vector.size
        self._nonfinite = 0

    def _guard(self, action: Any) -> Any:
        try:
            return action()
        except ObjectNotFound:
            raise DamagedSnapshot(self.ref, "its object is missing from the store") from None
        except ChecksumError:
            raise DamagedSnapshot(self.ref, "its bytes do not match their checksum") from None
        except ValueError as error:  # unparseable header, short read
            raise DamagedSnapshot(self.ref, f"unreadable ({error})") from None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Values ``[start, stop)``; past the last one, DamagedSnapshot if any was NaN or
        infinite (stored by an older release, or damaged in a way its checksum does not show)."""
        values: np.ndarray = self._guard(lambda: self._vector.read(start, stop))
        self._nonfinite += values.size - int(np.count_nonzero(np.isfinite(values)))
        if stop == self.size and self._nonfinite:
            raise DamagedSnapshot(
                self.ref,
                f"its parameter vector holds {self._nonfinite} NaN or infinite values "
                f"(of {self.size}), which no analysis can use",
            )
        return values


def _keys(experiment_id: uuid.UUID, shard: tuple[int, int] | None = None) -> tuple[str, str]:
    """Where the Gram is cached; a shard's partial Gram under ``gram/shards/<start>-<stop>/``."""
    base = f"{experiment_prefix(experiment_id)}gram/"
    if shard is not None:
        base += f"shards/{shard[0]}-{shard[1]}/"
    return base, f"{base}latest.json"


def _encode(matrix: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, matrix, allow_pickle=False)
    return out.getvalue()


def _decode(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Cached:
    entries: list[tuple[int, int, str]]
    gram: analysis.Gram
    fingerprint: str


def load_latest(
    store: ObjectStore, experiment_id: uuid.UUID, shard: tuple[int, int] | None = None
) -> Cached | None:
    """The experiment's latest cached Gram (of ``shard``'s parameters if given), or ``None`` if
    there is none or it cannot be read."""
    base, latest = _keys(experiment_id, shard)
    try:
        meta = json.loads(store.get(latest))
        matrix = _decode(store.get(f"{base}{meta['fingerprint']}.npy"))
        entries = [(int(r), int(e), str(s)) for r, e, s in meta["entries"]]
        if matrix.shape != (len(entries) + 1, len(entries) + 1):
            raise ValueError("cached matrix and entries disagree")
        return Cached(entries, analysis.Gram(matrix, int(meta["size"])), meta["fingerprint"])
    except ObjectNotFound:
        return None
    except (ValueError, KeyError, TypeError) as error:
        log.warning("ignoring unreadable Gram cache of %s: %s", experiment_id, error)
        return None


def save(
    store: ObjectStore,
    experiment_id: uuid.UUID,
    cached: Cached,
    previous: str | None,
    shard: tuple[int, int] | None = None,
) -> None:
    """Write the matrix, then point ``latest.json`` at it, then drop the superseded matrix."""
    base, latest = _keys(experiment_id, shard)
    store.put(f"{base}{cached.fingerprint}.npy", _encode(cached.gram.matrix))
    meta = {
        "fingerprint": cached.fingerprint,
        "size": cached.gram.size,
        "entries": [list(e) for e in cached.entries],
    }
    store.put(latest, json.dumps(meta).encode())
    if previous is not None and previous != cached.fingerprint:
        store.delete_prefix(f"{base}{previous}.npy")


def _check_analysable(cached: Cached, refs: Mapping[tuple[int, int, str], SnapshotRef]) -> None:
    """DamagedSnapshot for the first snapshot too large for the analyses (see
    :meth:`~weightspace.analysis.Gram.first_unanalysable`): finite values whose squares overflow."""
    if (index := cached.gram.first_unanalysable()) is not None:
        raise DamagedSnapshot(
            refs[cached.entries[index]],
            "its values are too large to analyse (their squares overflow float64)",
        )


def gram_of(
    store: ObjectStore,
    experiment_id: uuid.UUID,
    refs: Sequence[SnapshotRef],
    alive: Callable[[], bool] | None = None,
    shard: tuple[int, int] | None = None,
) -> Cached:
    """The Gram of ``refs`` (rows in the returned ``entries`` order), from the cache if it has
    them, else by extending the cached matrix with the missing snapshots' rows; the result is
    cached. Raises :class:`DamagedSnapshot` for the first unreadable snapshot met.

    ``alive`` is asked after the cache is written: if the experiment was deleted meanwhile
    (``False``), everything under its prefix is deleted again, so that no cache outlives it.
    (Deleting sweeps the prefix once more after its commit, so one of the two sees the other.)

    ``shard=(start, stop)``: the partial Gram of parameters ``[start, stop)`` only (read from
    the store as byte ranges), cached apart from the whole Gram and extended alike; the partial
    Grams of all shards sum to the whole one (:func:`weightspace.sharding.combine`)."""
    if not refs:
        raise ValueError("no snapshots")
    wanted = {r.entry: r for r in refs}
    fp = fingerprint(sorted(refs, key=lambda r: (r.run, r.epoch)))
    cached = load_latest(store, experiment_id, shard)
    if cached is not None and cached.fingerprint == fp and set(cached.entries) == set(wanted):
        _check_analysable(cached, wanted)
        return cached
    kept: list[tuple[int, int, str]] = []
    base: analysis.Gram | None = None
    if cached is not None:
        positions = [i for i, e in enumerate(cached.entries) if e in wanted]
        if positions:
            kept = [cached.entries[i] for i in positions]
            same = positions == list(range(len(cached.entries)))
            base = cached.gram if same else cached.gram.subset(positions)
    fresh = [r.entry for r in refs if r.entry not in set(kept)]
    with np.errstate(over="ignore", invalid="ignore"):  # overflow: _check_analysable below
        if base is None:
            vectors = [_Vector(store, wanted[e], shard) for e in fresh]
            gram = analysis.gram(vectors)
            entries = fresh
        else:
            old = [_Vector(store, wanted[e], shard) for e in kept]
            new = [_Vector(store, wanted[e], shard) for e in fresh]
            gram = analysis.extend_gram(base, old, new)
            entries = kept + fresh
    result = Cached(entries, gram, fp)
    _check_analysable(result, wanted)
    try:
        save(store, experiment_id, result, None if cached is None else cached.fingerprint, shard)
    except Exception as error:  # the answer stands; the cache is an optimisation
        log.warning("could not cache the Gram matrix of %s: %s", experiment_id, error)
    if alive is not None and not alive():
        log.info("experiment %s was deleted while its Gram was computed", experiment_id)
        store.delete_prefix(experiment_prefix(experiment_id))
    return result
