"""Snapshots from outside: any state dict in a safetensors file, as a weightspace snapshot.

The flat parameter vector of an uploaded state dict is the concatenation, in **sorted order of
the tensor names** (Python's ``sorted``: Unicode code points, so ``"layer10.weight"`` sorts
before ``"layer2.weight"``), of every floating-point tensor flattened in row-major (C) order.
Sorted names make the order independent of how the file was written (safetensors files have
no meaningful tensor order of their own) and of the framework that wrote it.

The vector is float64 if any floating tensor is float64, else float32 (float16 and bfloat16
widen to float32 exactly). Tensors that are not floating point (integer counters such as
BatchNorm's ``num_batches_tracked``, boolean masks) are not parameters: they are kept beside
the vector, unchanged, so that :func:`state_dict_file` gives back the whole state dict.

Two entries of the file's ``__metadata__`` (the client writes them) refine this:
``weightspace.tied``, a JSON object ``{alias: tensor}`` of tensors tied to (sharing storage with)
another, which are counted once (the alias is checked equal to its tensor, left out of the
vector and given back by :func:`state_dict_file`); and ``weightspace.buffers``, a JSON list of
the names of the model's buffers. With ``include_buffers=False`` (an experiment's ``include:
parameters``) floating-point buffers, those listed and BatchNorm's running statistics
(``*.running_mean``, ``*.running_var``), are kept beside the vector too.

The **layout** of a snapshot (names, shapes and dtypes of the vector's tensors, then of the
kept buffers, and the tied pairs) is recorded in the snapshot; every snapshot of an experiment
must have the same layout (compared by :func:`layout_sha256`). Analyses across experiments
compare layouts by name and shape in the canonical order of :mod:`weightspace.layouts`.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from weightspace.errors import InvalidField
from weightspace.snapshots import (
    SNAPSHOT_FORMAT,
    ChecksumError,
    parse_header,
    sha256_hex,
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

    def invalid(message: str) -> InvalidUpload:
        return InvalidUpload("body", f"not a safetensors file: {message}")

    if len(data) < 8:
        raise invalid(f"{len(data)} bytes, fewer than the 8 bytes of its header length")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise invalid(
            f"the header length ({length} bytes) runs past the end of the body "
            f"({len(data) - 8} bytes after the length)"
        )
    try:
        header = json.loads(bytes(data[8 : 8 + length]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise invalid("the header is not valid JSON") from None
    if not isinstance(header, dict):
        raise invalid("the header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise invalid("the header's __metadata__ must map names to strings")
    spans = sorted(_span(name, info, invalid) for name, info in header.items())
    buffer = len(data) - 8 - length
    end = 0
    for begin, stop, name in spans:
        if begin != end:
            raise invalid(
                f"tensor {name!r}'s data_offsets start at {begin}, expected {end} "
                "(the tensors' bytes must follow each other without gaps or overlaps)"
            )
        end = stop
    if end != buffer:
        raise invalid(f"the tensors' data_offsets cover {end} bytes, the data holds {buffer}")


def _span(name: str, info: object, invalid: Callable[[str], InvalidUpload]) -> tuple[int, int, str]:
    """[begin, end) of one tensor's bytes in the buffer, after checking its header entry."""
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
        raise invalid(f"tensor {name!r} needs a dtype, a shape and data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise invalid(f"tensor {name!r} has dtype {dtype!r}; known: {', '.join(DTYPES)}")
    if not isinstance(shape, list) or not all(_natural(d) for d in shape):
        raise invalid(f"tensor {name!r}'s shape must be a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_natural, offsets))):
        raise invalid(f"tensor {name!r}'s data_offsets must be two non-negative integers")
    begin, end = offsets
    needed = math.prod(shape) * DTYPES[dtype].itemsize
    if end - begin != needed:
        raise invalid(
            f"tensor {name!r}'s data_offsets [{begin}, {end}] span {end - begin} bytes; "
            f"its shape {shape} and dtype {dtype} need {needed}"
        )
    return begin, end, name


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def import_state_dict(
    data: bytes,
    *,
    experiment_id: uuid.UUID | str,
    run: int,
    epoch: int,
    metrics: Mapping[str, float],
    include_buffers: bool = True,
) -> Imported:
    """Flatten the state dict in the safetensors file ``data`` into a weightspace snapshot file.

    See the module's docstring for the order, dtype and the buffers kept beside the vector.
    """
    tensors = load_state_dict(data)
    floating, buffers, tied = _split(data, tensors, include_buffers)
    if not floating:
        raise InvalidUpload("body", "the state dict has no floating-point tensors")
    wide = any(tensors[n].dtype in _WIDE for n in floating)
    target = torch.float64 if wide else torch.float32
    layout = Layout(
        vector=tuple((n, tuple(tensors[n].shape), _dtype_name(tensors[n].dtype)) for n in floating),
        buffers=tuple((n, tuple(tensors[n].shape), _dtype_name(tensors[n].dtype)) for n in buffers),
        tied=tied,
    )
    pieces = [tensors[n].reshape(-1).to(target) for n in floating]
    _check_finite(dict(zip(floating, pieces, strict=True)))
    params = torch.cat(pieces).numpy()
    if params.size == 0:
        raise InvalidUpload("body", "the state dict's floating-point tensors hold no values")
    stored: dict[str, torch.Tensor] = {"params": torch.from_numpy(params)}
    stored.update({BUFFER_PREFIX + n: tensors[n].contiguous() for n in buffers})
    metadata = {
        "format": SNAPSHOT_FORMAT,
        "experiment": uuid.UUID(str(experiment_id)).hex,
        "run": str(run),
        "epoch": str(epoch),
        "metrics": json.dumps({k: float(v) for k, v in metrics.items()}, sort_keys=True),
        "layout": json.dumps([[n, list(s)] for n, s, _ in layout.vector]),
        "source_layout": json.dumps(layout.to_json()),
        "params_sha256": sha256_hex(np.ascontiguousarray(params).tobytes()),
    }
    return Imported(data=st_save(stored, metadata=metadata), layout=layout, parameters=params.size)


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


def _split(
    data: bytes, tensors: Mapping[str, torch.Tensor], include_buffers: bool
) -> tuple[list[str], list[str], tuple[tuple[str, str], ...]]:
    """The sorted names of the vector's tensors and of those kept beside it, and the tied
    ``(alias, tensor)`` pairs (aliases are in neither list); see the module's docstring."""
    metadata = parse_header(data).metadata
    tied: dict[str, str] = _declared(metadata, TIED_KEY, dict)
    listed = set(_declared(metadata, BUFFERS_KEY, list))
    for alias, target in sorted(tied.items()):
        if alias not in tensors or target not in tensors or target in tied or alias == target:
            raise InvalidUpload(
                "body",
                f"{TIED_KEY}: {alias!r} -> {target!r} must tie one tensor of the file to "
                "another that is not itself tied",
            )
        first, second = tensors[alias], tensors[target]
        if (
            first.dtype != second.dtype
            or first.shape != second.shape
            or not torch.equal(first, second)
        ):
            raise InvalidUpload(
                "body", f"tensor {alias!r} is declared tied to {target!r} but differs from it"
            )
    names = [n for n in tensors if n not in tied]

    def beside(name: str) -> bool:
        is_buffer = name in listed or name.rsplit(".", 1)[-1] in KNOWN_BUFFERS
        return not tensors[name].is_floating_point() or (is_buffer and not include_buffers)

    floating = sorted(n for n in names if not beside(n))
    return floating, sorted(n for n in names if beside(n)), tuple(sorted(tied.items()))


def _check_finite(tensors: Mapping[str, torch.Tensor]) -> None:
    """422 naming the first tensor (in vector order) that holds NaN or infinite values, and how
    many of its values are."""
    bad = {n: t.numel() - int(torch.isfinite(t).sum()) for n, t in tensors.items()}
    named = [n for n, count in bad.items() if count]
    if named:
        first = named[0]
        more = f"; {len(named) - 1} more tensor(s) hold some too" if len(named) > 1 else ""
        raise InvalidUpload(
            "body",
            f"tensor {first!r} holds {bad[first]} NaN or infinite values "
            f"(of {tensors[first].numel()}){more}",
        )


def state_dict_file(snapshot: bytes, sha256: str | None = None) -> bytes:
    """A stored snapshot as a plain safetensors state dict, ready for ``load_state_dict``.

    Uploaded snapshots give back their tensors with their original names, shapes and dtypes;
    snapshots of trained experiments give their model's named parameters (float32).
    """
    if sha256 is not None and sha256_hex(snapshot) != sha256:
        raise ChecksumError("snapshot file does not match its recorded sha256")
    header = parse_header(snapshot)
    tensors = st_load(snapshot)
    params = tensors["params"]
    if sha256_hex(params.numpy().tobytes()) != header.metadata["params_sha256"]:
        raise ChecksumError("snapshot parameters do not match params_sha256")
    if "source_layout" in header.metadata:
        layout = Layout.from_json(json.loads(header.metadata["source_layout"]))
    else:
        pairs = json.loads(header.metadata["layout"])
        layout = Layout(vector=tuple((n, tuple(s), "float32") for n, s in pairs))
    out: dict[str, torch.Tensor] = {}
    offset = 0
    for name, shape, dtype in layout.vector:
        count = int(np.prod(shape, dtype=np.int64))
        piece = params[offset : offset + count].reshape(shape)
        out[name] = piece.to(getattr(torch, dtype)).contiguous()
        offset += count
    if offset != params.numel():
        raise ValueError("the snapshot's layout does not cover its parameter vector")
    for name, _, _ in layout.buffers:
        out[name] = tensors[BUFFER_PREFIX + name]
    for alias, target in layout.tied:
        out[alias] = out[target].clone()
    return st_save(out)
