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

The **layout** of a snapshot (names, shapes and dtypes of the vector's tensors, then of the
kept buffers) is recorded in the snapshot; every snapshot of an experiment must have the same
layout, and analyses across experiments need the same layout too (compared by
:func:`layout_sha256`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
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

    def to_json(self) -> dict[str, Any]:
        return {
            "vector": [[n, list(s), d] for n, s, d in self.vector],
            "buffers": [[n, list(s), d] for n, s, d in self.buffers],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Layout:
        return cls(
            vector=tuple((n, tuple(s), d) for n, s, d in data["vector"]),
            buffers=tuple((n, tuple(s), d) for n, s, d in data.get("buffers", [])),
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
    """The tensors of a safetensors file; :class:`InvalidUpload` if it is not one."""
    try:
        tensors = st_load(bytes(data))
    except (SafetensorError, ValueError, RuntimeError, TypeError) as error:
        raise InvalidUpload("body", f"not a safetensors file: {error}") from None
    if not tensors:
        raise InvalidUpload("body", "the safetensors file holds no tensors")
    return tensors


def import_state_dict(
    data: bytes,
    *,
    experiment_id: uuid.UUID | str,
    run: int,
    epoch: int,
    metrics: Mapping[str, float],
) -> Imported:
    """Flatten the state dict in the safetensors file ``data`` into a weightspace snapshot file.

    See the module's docstring for the order, dtype and the buffers kept beside the vector.
    """
    tensors = load_state_dict(data)
    floating = sorted(n for n, t in tensors.items() if t.is_floating_point())
    if not floating:
        raise InvalidUpload("body", "the state dict has no floating-point tensors")
    buffers = sorted(n for n in tensors if n not in set(floating))
    wide = any(tensors[n].dtype in _WIDE for n in floating)
    target = torch.float64 if wide else torch.float32
    layout = Layout(
        vector=tuple((n, tuple(tensors[n].shape), _dtype_name(tensors[n].dtype)) for n in floating),
        buffers=tuple((n, tuple(tensors[n].shape), _dtype_name(tensors[n].dtype)) for n in buffers),
    )
    params = torch.cat([tensors[n].reshape(-1).to(target) for n in floating]).numpy()
    if not np.isfinite(params).all():
        raise InvalidUpload("body", "the parameters hold NaN or infinite values")
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
    return st_save(out)
