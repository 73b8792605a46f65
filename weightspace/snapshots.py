"""Snapshot files (one safetensors object per captured parameter vector) and the stores holding them.

One file on purpose (~500 lines): the snapshot format, its encoding and the stores are one contract
(keys, checksums, metadata) that every reader and writer must agree on.

A snapshot object is a safetensors file with one tensor ``params`` (the flat parameter vector,
float32, in the order of :func:`weightspace.models.parameter_layout`; for uploaded state dicts
float32 or float64 in the order :mod:`weightspace.imports` documents, with ``source_layout``
metadata and any non-floating buffers beside it) and string metadata:

``format``         ``weightspace.snapshot/1``
``experiment``     experiment id (hex uuid)
``run``, ``epoch`` integers
``metrics``        JSON object of floats (train/test loss and accuracy)
``layout``         JSON list of ``[name, shape]`` pairs describing the flat order
``params_sha256``  sha256 of the raw little-endian float32 bytes of ``params``
``environment``    JSON object of strings: what the numbers were computed with (torch version,
                   device, CPU instruction set, threads; see weightspace.determinism). Optional.

Resume states (parameters, optimizer buffers and RNG states) use the same container with
``format`` ``weightspace.state/1``; nothing is ever pickled.

Object keys are built from ids only (:func:`snapshot_key`, :func:`state_key`); stores refuse
any other shape of key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import tempfile
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

SNAPSHOT_FORMAT = "weightspace.snapshot/1"
STATE_FORMAT = "weightspace.state/1"
_KEY_RE = re.compile(r"[a-z0-9]+(?:/[a-z0-9][a-z0-9._-]*)*")


class ChecksumError(ValueError):
    """Raised when stored bytes do not match their recorded sha256."""


class ObjectNotFound(KeyError):
    """Raised when a store has no object under the requested key."""


class StoreUnavailable(OSError):
    """The store cannot be reached or answered with a server error: a transient fault, worth
    retrying (unlike :class:`ObjectNotFound` and :class:`ChecksumError`)."""


def sha256_hex(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def _experiment_hex(experiment_id: uuid.UUID | str) -> str:
    return uuid.UUID(str(experiment_id)).hex


def experiment_prefix(experiment_id: uuid.UUID | str) -> str:
    return f"experiments/{_experiment_hex(experiment_id)}/"


def snapshot_key(experiment_id: uuid.UUID | str, run: int, epoch: int) -> str:
    """Object key of one snapshot; built from ids only."""
    if run < 0 or epoch < 0:
        raise ValueError("run and epoch must be non-negative")
    return f"{experiment_prefix(experiment_id)}runs/{run:04d}/epoch-{epoch:06d}.safetensors"


def state_key(experiment_id: uuid.UUID | str, run: int, epoch: int) -> str:
    """Object key of a run's resume state at ``epoch``.

    One key per epoch, never overwritten: the database's pointer to the latest state stays valid
    whatever point a worker dies at.
    """
    if run < 0 or epoch < 0:
        raise ValueError("run and epoch must be non-negative")
    return f"{experiment_prefix(experiment_id)}runs/{run:04d}/state-{epoch:06d}.safetensors"


def check_key(key: str) -> str:
    if not _KEY_RE.fullmatch(key) or ".." in key:
        raise ValueError(f"invalid object key {key!r}")
    return key


# --------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class Snapshot:
    """One captured parameter vector of one run at one epoch."""

    run: int
    epoch: int
    params: np.ndarray  # float32, shape (P,)
    metrics: Mapping[str, float] = field(default_factory=dict)
    layout: tuple[tuple[str, tuple[int, ...]], ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainState:
    """Everything needed to continue a run bitwise-identically from ``epoch``."""

    run: int
    epoch: int
    params: np.ndarray  # float32, shape (P,)
    optimizer: Mapping[str, np.ndarray]  # flat buffers, e.g. "0.momentum_buffer"
    rng: Mapping[str, np.ndarray]  # uint8 generator states, e.g. "data", "noise"


def encode_snapshot(snapshot: Snapshot, experiment_id: uuid.UUID | str) -> bytes:
    params = np.ascontiguousarray(snapshot.params, dtype="<f4")
    if params.ndim != 1:
        raise ValueError("params must be a flat vector")
    metadata = {
        "format": SNAPSHOT_FORMAT,
        "experiment": _experiment_hex(experiment_id),
        "run": str(snapshot.run),
        "epoch": str(snapshot.epoch),
        "metrics": json.dumps({k: float(v) for k, v in snapshot.metrics.items()}, sort_keys=True),
        "layout": json.dumps([[name, list(shape)] for name, shape in snapshot.layout]),
        "params_sha256": sha256_hex(params.tobytes()),
    }
    if snapshot.environment:
        metadata["environment"] = json.dumps(dict(snapshot.environment), sort_keys=True)
    return st_save({"params": params}, metadata=metadata)


def _check_format(metadata: Mapping[str, str], expected: str) -> None:
    if metadata.get("format") != expected:
        raise ValueError(f"not a {expected} object (format={metadata.get('format')!r})")


def decode_snapshot(data: bytes, sha256: str | None = None) -> Snapshot:
    """Parse a snapshot object, verifying the file checksum (if given) and the params checksum."""
    if sha256 is not None and sha256_hex(data) != sha256:
        raise ChecksumError("snapshot file does not match its recorded sha256")
    header = parse_header(data)
    _check_format(header.metadata, SNAPSHOT_FORMAT)
    params = st_load(data)["params"]
    if sha256_hex(params.tobytes()) != header.metadata["params_sha256"]:
        raise ChecksumError("snapshot parameters do not match params_sha256")
    meta = header.metadata
    return Snapshot(
        run=int(meta["run"]),
        epoch=int(meta["epoch"]),
        params=params,
        metrics=json.loads(meta["metrics"]),
        layout=tuple((name, tuple(shape)) for name, shape in json.loads(meta["layout"])),
        environment=json.loads(meta.get("environment", "{}")),
    )


def encode_state(state: TrainState, experiment_id: uuid.UUID | str) -> bytes:
    tensors: dict[str, np.ndarray] = {"params": np.ascontiguousarray(state.params, dtype="<f4")}
    tensors.update({f"optimizer.{k}": np.ascontiguousarray(v) for k, v in state.optimizer.items()})
    tensors.update({f"rng.{k}": np.ascontiguousarray(v) for k, v in state.rng.items()})
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].tobytes())
    metadata = {
        "format": STATE_FORMAT,
        "experiment": _experiment_hex(experiment_id),
        "run": str(state.run),
        "epoch": str(state.epoch),
        "tensors_sha256": digest.hexdigest(),
    }
    return st_save(tensors, metadata=metadata)


def decode_state(data: bytes) -> TrainState:
    header = parse_header(data)
    _check_format(header.metadata, STATE_FORMAT)
    tensors = st_load(data)
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].tobytes())
    if digest.hexdigest() != header.metadata["tensors_sha256"]:
        raise ChecksumError("resume state does not match its recorded sha256")
    return TrainState(
        run=int(header.metadata["run"]),
        epoch=int(header.metadata["epoch"]),
        params=tensors["params"],
        optimizer={
            k.removeprefix("optimizer."): v
            for k, v in tensors.items()
            if k.startswith("optimizer.")
        },
        rng={k.removeprefix("rng."): v for k, v in tensors.items() if k.startswith("rng.")},
    )


@dataclass(frozen=True)
class Header:
    """The parsed safetensors header: where each tensor's bytes lie, and the metadata."""

    data_start: int  # offset of the byte buffer within the object
    tensors: Mapping[str, Mapping[str, object]]
    metadata: Mapping[str, str]

    def params_dtype(self) -> str:
        """``<f4`` or ``<f8``: trained snapshots are float32, uploads of float64 models float64."""
        dtype = self.tensors["params"]["dtype"]
        if dtype not in PARAMS_DTYPES:
            raise ValueError("params must be float32 or float64")
        return PARAMS_DTYPES[str(dtype)]

    def params_range(self) -> tuple[int, int]:
        """Absolute [start, stop) byte range of the ``params`` tensor."""
        info = self.tensors["params"]
        self.params_dtype()
        offsets: list[int] = list(info["data_offsets"])  # type: ignore[call-overload]
        return self.data_start + int(offsets[0]), self.data_start + int(offsets[1])


HEADER_PROBE_BYTES = 64 * 1024
PARAMS_DTYPES = {"F32": "<f4", "F64": "<f8"}


def header_length(prefix: bytes) -> int:
    """Total bytes (length field + JSON) of the header that ``prefix`` starts with."""
    if len(prefix) < 8:
        raise ValueError("truncated safetensors object")
    (n,) = struct.unpack("<Q", prefix[:8])
    if n > 100 * 1024 * 1024:
        raise ValueError("safetensors header too large")
    return 8 + int(n)


def parse_header(data: bytes) -> Header:
    total = header_length(data)
    if len(data) < total:
        raise ValueError("truncated safetensors header")
    raw = json.loads(data[8:total])
    metadata = raw.pop("__metadata__", {}) or {}
    return Header(data_start=total, tensors=raw, metadata=metadata)


# --------------------------------------------------------------------------- stores


class ObjectStore(Protocol):
    """Bytes under keys. Implementations: :class:`LocalStore` and ``weightspace_app.infra.s3.S3Store``."""

    def put(self, key: str, data: bytes) -> None: ...

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        """Write the object from ``chunks`` (memory bounded by a chunk or a part), return its
        size. Nothing is visible under ``key`` unless every chunk was written: an exception from
        ``chunks`` or the store leaves what was there before."""
        ...

    def get(self, key: str) -> bytes: ...

    def get_range(self, key: str, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of the object."""
        ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str) -> list[str]:
        """Keys of the objects whose key starts with ``prefix``, sorted."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with ``prefix``; return how many."""
        ...

    def ping(self) -> None:
        """Raise if the store cannot be reached."""
        ...


class LocalStore:
    """Objects as files under a root directory (the embedded default)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> None:
        self.put_stream(key, [data])

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees a half-written object.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    size += f.write(chunk)
            os.chmod(
                tmp, 0o644
            )  # mkstemp makes 0600; the API and the worker may run as other users
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    def get_range(self, key: str, start: int, stop: int) -> bytes:
        try:
            with self._path(key).open("rb") as f:
                f.seek(start)
                return f.read(stop - start)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _under(self, prefix: str) -> list[Path]:
        """Files and directories under ``prefix``, deepest first (in-flight temporaries skipped).
        Walks only the deepest directory the prefix names."""
        top = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        if not top.is_dir():
            return []
        return [
            path
            for path in sorted(top.rglob("*"), reverse=True)
            if path.relative_to(self.root).as_posix().startswith(prefix)
            and not path.name.startswith(".tmp-")
        ]

    def keys(self, prefix: str) -> list[str]:
        return sorted(
            p.relative_to(self.root).as_posix() for p in self._under(prefix) if p.is_file()
        )

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        for path in self._under(prefix):
            if path.is_file():
                path.unlink()
                count += 1
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        return count

    def ping(self) -> None:
        if not self.root.is_dir() or not os.access(self.root, os.W_OK):
            raise OSError(f"snapshot directory {self.root} is not writable")


@dataclass(frozen=True)
class StoredSnapshot:
    """Where a snapshot went and what it weighs."""

    key: str
    size: int
    sha256: str


def put_snapshot(
    store: ObjectStore, experiment_id: uuid.UUID | str, snapshot: Snapshot
) -> StoredSnapshot:
    data = encode_snapshot(snapshot, experiment_id)
    key = snapshot_key(experiment_id, snapshot.run, snapshot.epoch)
    store.put(key, data)
    return StoredSnapshot(key=key, size=len(data), sha256=sha256_hex(data))


def get_snapshot(store: ObjectStore, key: str, sha256: str | None = None) -> Snapshot:
    return decode_snapshot(store.get(key), sha256)


class StoredVector:
    """A snapshot's parameter vector read in ranges, for streaming analysis.

    Reads must cover the vector in order, each byte once (as :func:`weightspace.analysis.gram`
    does); the params checksum is verified when the last byte has been read.

    ``window=(start, stop)`` makes it the slice ``[start, stop)`` of the vector (a shard of a
    sharded Gram): only those bytes are read from the store, indices are relative to ``start``,
    and the params checksum, which covers the whole vector, is verified only when the window
    is the whole vector.
    """

    def __init__(self, store: ObjectStore, key: str, window: tuple[int, int] | None = None) -> None:
        self.store = store
        self.key = key
        prefix = store.get_range(key, 0, HEADER_PROBE_BYTES)
        total = header_length(prefix)
        if total > len(prefix):
            prefix = store.get_range(key, 0, total)
        header = parse_header(prefix)
        _check_format(header.metadata, SNAPSHOT_FORMAT)
        self._begin, end = header.params_range()
        self._dtype = np.dtype(header.params_dtype())
        self._expected = header.metadata["params_sha256"]
        self._digest = hashlib.sha256()
        self._position = 0
        whole = (end - self._begin) // self._dtype.itemsize
        if whole == 0:
            raise ValueError(f"snapshot {key} has an empty parameter vector")
        start, stop = window or (0, whole)
        if not 0 <= start < stop <= whole:
            raise ValueError(f"window [{start}, {stop}) is not within the {whole} parameters")
        self._begin += start * self._dtype.itemsize
        self._whole = (start, stop) == (0, whole)
        self.size = stop - start

    def read(self, start: int, stop: int) -> np.ndarray:
        if start != self._position:
            raise ValueError("StoredVector must be read in order, each element once")
        width = self._dtype.itemsize
        data = self.store.get_range(
            self.key, self._begin + width * start, self._begin + width * stop
        )
        if len(data) != width * (stop - start):
            raise ValueError(f"short read from {self.key}")
        self._position = stop
        if not self._whole:
            return np.frombuffer(data, dtype=self._dtype)
        self._digest.update(data)
        if stop == self.size and self._digest.hexdigest() != self._expected:
            raise ChecksumError(f"snapshot {self.key} does not match params_sha256")
        return np.frombuffer(data, dtype=self._dtype)


class ReorderedVector(StoredVector):
    """A snapshot's vector read with its pieces in another order (e.g. the canonical order of
    :mod:`weightspace.layouts`): ``pieces`` are ``[start, stop)`` element ranges of the stored
    vector, in the order to read them, covering it exactly once; ``window`` is a slice of the
    reordered vector, as for :class:`StoredVector`.

    Reads follow the same contract as :class:`StoredVector` (in order, each element once) and the
    checksum, which is of the stored order, is verified when the last element of the whole
    vector has been read: a piece read ahead of its stored turn waits in memory until the bytes
    before it are hashed (for a model stored in registration order, the biases read before
    their weights).
    """

    def __init__(
        self,
        store: ObjectStore,
        key: str,
        pieces: Sequence[tuple[int, int]],
        window: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(store, key)
        if sum(stop - start for start, stop in pieces) != self.size:
            raise ValueError(f"snapshot {key}: the pieces do not cover its {self.size} values")
        first, last = window or (0, self.size)
        if not 0 <= first < last <= self.size:
            raise ValueError(f"window [{first}, {last}) is not within the {self.size} parameters")
        self._pieces, offset = [], 0  # the stored ranges behind the window, in reading order
        for begin, end in pieces:
            low, high = max(first, offset), min(last, offset + end - begin)
            if low < high:
                self._pieces.append((begin + low - offset, begin + high - offset))
            offset += end - begin
        self._whole = (first, last) == (0, self.size)
        self.size = last - first
        self._waiting: dict[int, bytes] = {}  # stored element offset -> bytes read ahead
        self._hashed = 0  # stored elements hashed so far

    def read(self, start: int, stop: int) -> np.ndarray:
        if start != self._position:
            raise ValueError("ReorderedVector must be read in order, each element once")
        width, parts, offset = self._dtype.itemsize, [], 0
        for begin, end in self._pieces:  # the stored ranges behind [start, stop)
            low, high = max(start, offset), min(stop, offset + end - begin)
            if low < high:
                at = begin + low - offset
                data = self.store.get_range(
                    self.key, self._begin + width * at, self._begin + width * (at + high - low)
                )
                if len(data) != width * (high - low):
                    raise ValueError(f"short read from {self.key}")
                if self._whole:
                    self._waiting[at] = data
                parts.append(data)
            offset += end - begin
        while self._hashed in self._waiting:
            data = self._waiting.pop(self._hashed)
            self._digest.update(data)
            self._hashed += len(data) // width
        self._position = stop
        if (
            self._whole
            and stop == self.size
            and (self._waiting or self._digest.hexdigest() != self._expected)
        ):
            raise ChecksumError(f"snapshot {self.key} does not match params_sha256")
        return np.frombuffer(b"".join(parts), dtype=self._dtype)
