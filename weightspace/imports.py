"""Snapshots from outside: any state dict in a safetensors file, as a weightspace snapshot.

The flat parameter vector of an uploaded state dict is the concatenation, in **sorted order of
the tensor names** (Python's ``sorted``: Unicode code points, so ``"layer10.weight"`` sorts
before ``"layer2.weight"``), of every floating-point tensor flattened in row-major (C) order.
Sorted names make the order independent of how the file was written (safetensors files have
no meaningful tensor order of their own) and of the framework that wrote it.

The vector is float64 if any floating tensor is float64, else float32 (float16 and bfloat16
widen to float32 exactly). Tensors that are not floating point (integer counters such as
BatchNorm's ``num_batches_tracked``, boolean masks) are not parameters: they are kept beside
the vector, unchanged, so that :func:`weightspace.exports.state_dict_file` gives back the whole state dict.

Two entries of the file's ``__metadata__`` (the client writes them) refine this:
``weightspace.tied``, a JSON object ``{alias: tensor}`` of tensors tied to (sharing storage with)
another, which are counted once (the alias is checked equal to its tensor, left out of the
vector and given back by :mod:`weightspace.exports`); and ``weightspace.buffers``, a JSON list of
the names of the model's buffers. With ``include_buffers=False`` (an experiment's ``include:
parameters``) floating-point buffers, those listed and BatchNorm's running statistics
(``*.running_mean``, ``*.running_var``), are kept beside the vector too.

The **layout** of a snapshot (names, shapes and dtypes of the vector's tensors, then of the
kept buffers, and the tied pairs) is recorded in the snapshot; every snapshot of an experiment
must have the same layout (compared by :func:`layout_sha256`). Analyses across experiments
compare layouts by name and shape in the canonical order of :mod:`weightspace.layouts`.

A body of any size is taken in bounded memory: :class:`Receiver` takes it chunk by chunk
(checks the header once it is in, hashes every byte, spools the data section to a file),
:func:`prepare` checks the tensors and lays out the snapshot file reading the spool a chunk at a
time, and :meth:`Prepared.chunks` gives the snapshot file piece by piece, converted on the way.
:func:`import_state_dict` does the same in memory, for bodies at hand. The way back, a snapshot
as a state dict, is :mod:`weightspace.exports`.

Why one module of ~580 lines: the header's checks, the receiving and the preparation are one
direction (a body to a snapshot) over one :class:`Entry` per tensor, and the hostile-upload
tests hold all three to the same messages.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load

from weightspace.errors import InvalidField
from weightspace.snapshots import (
    SNAPSHOT_FORMAT,
)

#: Prefix of the non-floating tensors kept beside ``params`` in a snapshot file.
BUFFER_PREFIX = "buffer:"
_WIDE = {torch.float64}


class InvalidUpload(InvalidField):
    """The uploaded bytes are not a usable state dict (HTTP 422, naming ``field``)."""


@dataclass(frozen=True)
class Layout:
    """Names, shapes and dtypes of a state dict: the vector's tensors, then the kept buffers."""

    vector: tuple[tuple[str, tuple[int, ...], str], ...]
    buffers: tuple[tuple[str, tuple[int, ...], str], ...] = ()
    tied: tuple[tuple[str, str], ...] = ()  # (alias, tensor it is tied to), counted once

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "vector": [[n, list(s), d] for n, s, d in self.vector],
            "buffers": [[n, list(s), d] for n, s, d in self.buffers],
        }
        if self.tied:  # absent otherwise: layouts recorded before keep their sha256
            out["tied"] = [list(pair) for pair in self.tied]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Layout:
        return cls(
            vector=tuple((n, tuple(s), d) for n, s, d in data["vector"]),
            buffers=tuple((n, tuple(s), d) for n, s, d in data.get("buffers", [])),
            tied=tuple((a, t) for a, t in data.get("tied", [])),
        )

    @property
    def parameters(self) -> int:
        return sum(int(np.prod(s, dtype=np.int64)) for _, s, _ in self.vector)

    def sha256(self) -> str:
        return layout_sha256(self.to_json())

    def difference(self, other: Layout) -> str:
        """A short description of how ``other`` differs from this layout ('' if equal)."""
        mine = {n: (s, d) for n, s, d in (*self.vector, *self.buffers)}
        theirs = {n: (s, d) for n, s, d in (*other.vector, *other.buffers)}
        if missing := sorted(mine.keys() - theirs.keys()):
            return f"tensors missing: {missing[:5]}"
        if extra := sorted(theirs.keys() - mine.keys()):
            return f"unexpected tensors: {extra[:5]}"
        for name in sorted(mine):
            if mine[name] != theirs[name]:
                (s1, d1), (s2, d2) = mine[name], theirs[name]
                return f"tensor {name!r} is {list(s2)} {d2}, expected {list(s1)} {d1}"
        return ""


def layout_sha256(layout_json: Mapping[str, Any]) -> str:
    """Fingerprint of a layout, for comparing experiments."""
    return hashlib.sha256(json.dumps(layout_json, sort_keys=True).encode()).hexdigest()


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class Imported:
    """A state dict made into a snapshot file."""

    data: bytes  # the weightspace snapshot file
    layout: Layout
    parameters: int


def load_state_dict(data: bytes) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; :class:`InvalidUpload`, saying what is wrong with it
    (header length, header JSON, a tensor's dtype, shape or offsets), if it is not one."""
    check_structure(data)
    try:
        tensors = st_load(bytes(data))
    except (SafetensorError, ValueError, RuntimeError, TypeError):
        raise InvalidUpload("body", "not a readable safetensors file") from None
    if not tensors:
        raise InvalidUpload("body", "the safetensors file holds no tensors")
    return tensors


#: The dtypes a state dict's tensors may have (safetensors' names).
DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U64": torch.uint64,
    "U32": torch.uint32,
    "U16": torch.uint16,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def check_structure(data: bytes) -> None:
    """Check the layout of a safetensors file before it is decoded: an 8-byte little-endian
    header length, a JSON object of tensors (``dtype``, ``shape``, ``data_offsets``) and an
    optional ``__metadata__`` of strings, and offsets that tile the byte buffer exactly.
    Raises :class:`InvalidUpload` naming the first problem, in this project's words."""
    receiver = Receiver(None)
    receiver.write(data)
    receiver.finish(tensors_needed=False)


def _invalid(message: str) -> InvalidUpload:
    return InvalidUpload("body", f"not a safetensors file: {message}")


@dataclass(frozen=True)
class Entry:
    """One tensor of a received safetensors file: its dtype (safetensors' name), shape, and
    bytes ``[begin, end)`` of the data section."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError("a name occurs twice")
    return dict(pairs)


def _parse_header_json(raw: bytes) -> tuple[dict[str, Entry], dict[str, str], int]:
    """The tensors of a safetensors header (its JSON ``raw``), its metadata and the bytes its
    tensors cover; InvalidUpload naming the first problem."""
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _invalid("the header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _invalid("the header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise _invalid("the header's __metadata__ must map names to strings")
    entries = {name: _entry(name, info) for name, info in header.items()}
    end = 0
    for name, entry in sorted(
        entries.items(), key=lambda item: (item[1].begin, item[1].end, item[0])
    ):
        if entry.begin != end:
            raise _invalid(
                f"tensor {name!r}'s data_offsets start at {entry.begin}, expected {end} "
                "(the tensors' bytes must follow each other without gaps or overlaps)"
            )
        end = entry.end
    return entries, metadata or {}, end


def _entry(name: str, info: object) -> Entry:
    """One tensor's header entry, checked."""
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
        raise _invalid(f"tensor {name!r} needs a dtype, a shape and data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise _invalid(f"tensor {name!r} has dtype {dtype!r}; known: {', '.join(DTYPES)}")
    if not isinstance(shape, list) or not all(_natural(d) for d in shape):
        raise _invalid(f"tensor {name!r}'s shape must be a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_natural, offsets))):
        raise _invalid(f"tensor {name!r}'s data_offsets must be two non-negative integers")
    begin, end = offsets
    needed = math.prod(shape) * DTYPES[dtype].itemsize
    if end - begin != needed:
        raise _invalid(
            f"tensor {name!r}'s data_offsets [{begin}, {end}] span {end - begin} bytes; "
            f"its shape {shape} and dtype {dtype} need {needed}"
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(f"tensor name {name!r} is not valid Unicode") from None
    return Entry(dtype, tuple(shape), begin, end)


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


#: Largest safetensors header taken (the safetensors library's own limit).
MAX_HEADER_BYTES = 100_000_000
#: Bytes read at a time from a received body's spool (memory in use is a few of these).
CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class Received:
    """A safetensors body taken chunk by chunk: its checked header, its sha256 and size, and its
    data section in ``spool`` (a file, from offset 0)."""

    spool: io.BufferedIOBase
    entries: Mapping[str, Entry]
    metadata: Mapping[str, str]
    size: int
    sha256: str

    def read(self, entry: Entry, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytearray]:
        """The bytes of ``entry`` in pieces of at most ``chunk_bytes``, whole elements each."""
        itemsize = entry.torch_dtype.itemsize
        step = max(chunk_bytes // itemsize, 1) * itemsize
        for start in range(entry.begin, entry.end, step):
            piece = bytearray(min(step, entry.end - start))
            self.spool.seek(start)  # each piece: two tensors may be read in turn
            if self.spool.readinto(piece) != len(piece):
                raise OSError("the upload's spool file is shorter than its data")
            yield piece

    def values(
        self, entry: Entry, target: torch.dtype, chunk_bytes: int = CHUNK_BYTES
    ) -> Iterator[torch.Tensor]:
        """The values of ``entry``, flattened and converted to ``target``, piece by piece."""
        for piece in self.read(entry, chunk_bytes):
            yield torch.frombuffer(piece, dtype=entry.torch_dtype).to(target)


class Receiver:
    """Takes a safetensors body chunk by chunk (memory bounded by the header and one chunk):
    checks the header as soon as it is in, hashes every byte, and writes the data section to
    ``spool`` (None: nowhere, a check only). :meth:`finish` raises what :func:`check_structure`
    raises for the whole body, in the same words."""

    def __init__(self, spool: io.BufferedIOBase | None) -> None:
        self.spool = spool
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._head = bytearray()
        self._length: int | None = None  # of the header JSON, once its 8 bytes are in
        self._parsed: tuple[dict[str, Entry], dict[str, str], int] | None = None
        self._data = 0  # bytes of the data section received

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        view = memoryview(chunk).cast("B")
        self._sha256.update(view)
        self.size += len(view)
        if self._parsed is None:
            view = self._take_header(view)
        if self._parsed is not None and len(view):
            covered = self._parsed[2]
            if self.spool is not None and self._data < covered:
                self.spool.write(view[: covered - self._data])  # trailing bytes: only counted
            self._data += len(view)

    def _take_header(self, view: memoryview) -> memoryview:
        """Keep the header's bytes of ``view`` (parse the header once whole); the rest."""
        if self._length is None:
            taken = min(8 - len(self._head), len(view))
            self._head += view[:taken]
            view = view[taken:]
            if len(self._head) < 8:
                return view
            (self._length,) = struct.unpack("<Q", self._head)
            self._head.clear()
        remaining = self._length - len(self._head)
        if self._length > MAX_HEADER_BYTES:  # not kept: finish() says why
            return view[len(view) :]
        taken = min(remaining, len(view))
        self._head += view[:taken]
        if len(self._head) == self._length:
            self._parsed = _parse_header_json(bytes(self._head))
            self._head = bytearray()
        return view[taken:]

    def finish(self, *, tensors_needed: bool = True) -> Received:
        """The received body, once every chunk is in; InvalidUpload naming what is wrong."""
        if self.size < 8:
            raise _invalid(f"{self.size} bytes, fewer than the 8 bytes of its header length")
        assert self._length is not None
        if self._length > self.size - 8:
            raise _invalid(
                f"the header length ({self._length} bytes) runs past the end of the body "
                f"({self.size - 8} bytes after the length)"
            )
        if self._parsed is None:
            raise _invalid(
                f"the header is {self._length} bytes, more than the {MAX_HEADER_BYTES} a "
                "safetensors header may have"
            )
        entries, metadata, covered = self._parsed
        if covered != self._data:
            raise _invalid(
                f"the tensors' data_offsets cover {covered} bytes, the data holds {self._data}"
            )
        if tensors_needed and not entries:
            raise InvalidUpload("body", "the safetensors file holds no tensors")
        if self.spool is not None:
            self.spool.flush()
        return Received(
            spool=self.spool if self.spool is not None else io.BytesIO(),
            entries=entries,
            metadata=metadata,
            size=self.size,
            sha256=self._sha256.hexdigest(),
        )


@dataclass(frozen=True)
class Prepared:
    """A received state dict, checked and ready to be written as a snapshot file piece by
    piece (:meth:`chunks`); ``size`` bytes in all."""

    received: Received
    layout: Layout
    parameters: int
    target: torch.dtype  # of the parameter vector
    header: bytes  # the snapshot file's 8-byte length and JSON header
    order: tuple[
        str, ...
    ]  # the snapshot's tensors ("params", then "buffer:..." keys), in file order
    size: int

    def chunks(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The snapshot file: its header, then its tensors' bytes, at most about
        ``chunk_bytes`` at a time."""
        yield self.header
        entries = self.received.entries
        for key in self.order:
            if key == "params":
                for name, _, _ in self.layout.vector:
                    for values in self.received.values(entries[name], self.target, chunk_bytes):
                        yield values.numpy().tobytes()
            else:
                yield from map(bytes, self.received.read(entries[key.removeprefix(BUFFER_PREFIX)]))


def prepare(
    received: Received,
    *,
    experiment_id: uuid.UUID | str,
    run: int,
    epoch: int,
    metrics: Mapping[str, float],
    include_buffers: bool = True,
    chunk_bytes: int = CHUNK_BYTES,
) -> Prepared:
    """Check the received state dict (tied tensors, finite values) and lay out its snapshot
    file, reading the spool a chunk at a time; see the module's docstring for the order, dtype
    and the buffers kept beside the vector."""
    entries = received.entries
    floating, buffers, tied = _split(received, include_buffers, chunk_bytes)
    if not floating:
        raise InvalidUpload("body", "the state dict has no floating-point tensors")
    wide = any(entries[n].torch_dtype in _WIDE for n in floating)
    target = torch.float64 if wide else torch.float32

    def described(names: list[str]) -> tuple[tuple[str, tuple[int, ...], str], ...]:
        return tuple((n, entries[n].shape, _dtype_name(entries[n].torch_dtype)) for n in names)

    layout = Layout(vector=described(floating), buffers=described(buffers), tied=tied)
    digest, bad = hashlib.sha256(), {}
    for name in floating:
        bad[name] = 0
        for values in received.values(entries[name], target, chunk_bytes):
            bad[name] += values.numel() - int(torch.isfinite(values).sum())
            digest.update(values.numpy().data)
    _check_finite(layout, bad)
    parameters = layout.parameters
    if parameters == 0:
        raise InvalidUpload("body", "the state dict's floating-point tensors hold no values")
    metadata = {
        "format": SNAPSHOT_FORMAT,
        "experiment": uuid.UUID(str(experiment_id)).hex,
        "run": str(run),
        "epoch": str(epoch),
        "metrics": json.dumps({k: float(v) for k, v in metrics.items()}, sort_keys=True),
        "layout": json.dumps([[n, list(s)] for n, s, _ in layout.vector]),
        "source_layout": json.dumps(layout.to_json()),
        "params_sha256": digest.hexdigest(),
    }
    stored: dict[str, tuple[str, tuple[int, ...]]] = {
        "params": (DTYPE_NAMES[target], (parameters,))
    }
    stored.update({BUFFER_PREFIX + n: (entries[n].dtype, entries[n].shape) for n in buffers})
    header, order, size = safetensors_header(stored, metadata)
    return Prepared(received, layout, parameters, target, header, order, size)


DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}


def safetensors_header(
    tensors: Mapping[str, tuple[str, tuple[int, ...]]], metadata: Mapping[str, str]
) -> tuple[bytes, tuple[str, ...], int]:
    """The header of a safetensors file of ``tensors`` (name: dtype, shape), laid out as the
    safetensors library lays them out (widest dtype first, then by name, so that every tensor
    is aligned), its tensors' order and the file's size."""
    order = tuple(sorted(tensors, key=lambda n: (-DTYPES[tensors[n][0]].itemsize, n)))
    header: dict[str, Any] = {"__metadata__": dict(metadata)}
    offset = 0
    for name in order:
        dtype, shape = tensors[name]
        end = offset + math.prod(shape) * DTYPES[dtype].itemsize
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, end]}
        offset = end
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)  # the data starts 8-byte aligned
    return struct.pack("<Q", len(text)) + text, order, 8 + len(text) + offset


def import_state_dict(
    data: bytes,
    *,
    experiment_id: uuid.UUID | str,
    run: int,
    epoch: int,
    metrics: Mapping[str, float],
    include_buffers: bool = True,
) -> Imported:
    """Flatten the state dict in the safetensors file ``data`` into a weightspace snapshot file
    (in memory; uploads go through :class:`Receiver` and :func:`prepare` instead)."""
    receiver = Receiver(io.BytesIO())
    receiver.write(data)
    prepared = prepare(
        receiver.finish(),
        experiment_id=experiment_id,
        run=run,
        epoch=epoch,
        metrics=metrics,
        include_buffers=include_buffers,
    )
    return Imported(b"".join(prepared.chunks()), prepared.layout, prepared.parameters)


#: The last name part of buffers known by name (BatchNorm's running statistics and counter).
KNOWN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
TIED_KEY, BUFFERS_KEY = "weightspace.tied", "weightspace.buffers"


def _declared(metadata: Mapping[str, str], key: str, kind: type) -> Any:
    """The JSON value of the file's ``__metadata__[key]`` (empty when absent), if of ``kind``
    holding tensor names; InvalidUpload otherwise."""
    try:
        value = json.loads(metadata.get(key, "{}" if kind is dict else "[]"))
    except ValueError:
        value = None
    names = list(value.items()) if isinstance(value, dict) else value
    if not isinstance(value, kind) or not all(
        isinstance(n, str) or (isinstance(n, tuple) and all(isinstance(m, str) for m in n))
        for n in names
    ):
        shape = "an object of tensor names" if kind is dict else "a list of tensor names"
        raise InvalidUpload("body", f"the file's __metadata__ {key!r} must be JSON: {shape}")
    return value


def _equal(received: Received, first: Entry, second: Entry, chunk_bytes: int) -> bool:
    """Whether two tensors of the received file are equal (same dtype and shape, equal
    values: NaN differs from itself, 0.0 equals -0.0), compared a chunk at a time."""
    if first.dtype != second.dtype or first.shape != second.shape:
        return False
    pairs = zip(
        received.values(first, first.torch_dtype, chunk_bytes // 2),
        received.values(second, second.torch_dtype, chunk_bytes // 2),
        strict=True,
    )
    return all(torch.equal(a, b) for a, b in pairs)


def _split(
    received: Received, include_buffers: bool, chunk_bytes: int
) -> tuple[list[str], list[str], tuple[tuple[str, str], ...]]:
    """The sorted names of the vector's tensors and of those kept beside it, and the tied
    ``(alias, tensor)`` pairs (aliases are in neither list); see the module's docstring."""
    entries = received.entries
    tied: dict[str, str] = _declared(received.metadata, TIED_KEY, dict)
    listed = set(_declared(received.metadata, BUFFERS_KEY, list))
    for alias, target in sorted(tied.items()):
        if alias not in entries or target not in entries or target in tied or alias == target:
            raise InvalidUpload(
                "body",
                f"{TIED_KEY}: {alias!r} -> {target!r} must tie one tensor of the file to "
                "another that is not itself tied",
            )
        if not _equal(received, entries[alias], entries[target], chunk_bytes):
            raise InvalidUpload(
                "body", f"tensor {alias!r} is declared tied to {target!r} but differs from it"
            )
    names = [n for n in entries if n not in tied]

    def beside(name: str) -> bool:
        is_buffer = name in listed or name.rsplit(".", 1)[-1] in KNOWN_BUFFERS
        return not entries[name].torch_dtype.is_floating_point or (
            is_buffer and not include_buffers
        )

    floating = sorted(n for n in names if not beside(n))
    return floating, sorted(n for n in names if beside(n)), tuple(sorted(tied.items()))


def _check_finite(layout: Layout, bad: Mapping[str, int]) -> None:
    """422 naming the first tensor (in vector order) that holds NaN or infinite values, and how
    many of its values are."""
    named = [n for n, _, _ in layout.vector if bad[n]]
    if named:
        first = named[0]
        count = math.prod(dict((n, s) for n, s, _ in layout.vector)[first])
        more = f"; {len(named) - 1} more tensor(s) hold some too" if len(named) > 1 else ""
        raise InvalidUpload(
            "body",
            f"tensor {first!r} holds {bad[first]} NaN or infinite values (of {count}){more}",
        )
