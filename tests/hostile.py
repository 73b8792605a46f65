"""Hostile state-dict uploads, as an attacker would write them by hand: each body with words its
422 must use (the unit tests call the core with them, the integration tests the API)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from _pytest.mark import ParameterSet
from safetensors.numpy import save as np_save
from safetensors.torch import save as torch_save

#: Text of the safetensors library and of Python that no answer may quote.
INTERNALS = (
    "Error while deserializing",
    "SafetensorError",
    "HeaderTooLarge",
    "HeaderTooSmall",
    "InvalidHeader",
    "MetadataIncompleteBuffer",
    "TensorInfo",
    "line 1 column",
    "Traceback",
    'File "',
    "Exception",
)


def raw(header: object, data: bytes = b"", *, length: int | None = None) -> bytes:
    """A safetensors-like body: an 8-byte little-endian length, the header, the data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def _f32(offsets: list[int], shape: object = (2,), dtype: object = "F32") -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


EIGHT = bytes(8)

#: (id, body, words of the 422's message): bodies that are not safetensors files.
MALFORMED: list[tuple[str, bytes, str]] = [
    ("empty", b"", "0 bytes, fewer than the 8 bytes of its header length"),
    ("three-bytes", b"\x01\x02\x03", "fewer than the 8 bytes"),
    ("length-past-end", raw({"x": _f32([0, 8])}, EIGHT, length=1 << 40), "runs past the end"),
    ("length-all-ones", b"\xff" * 8 + b"{}", "runs past the end"),
    ("text", b"not safetensors at all", "runs past the end"),
    ("length-zero", struct.pack("<Q", 0) + EIGHT, "the header is not valid JSON"),
    ("header-not-json", raw(b"{nope", EIGHT), "the header is not valid JSON"),
    ("header-not-utf8", raw(b'{"\xff\xfe": 1}'), "the header is not valid JSON"),
    ("header-deeply-nested", raw(b"[" * 100_000 + b"]" * 100_000), "not valid JSON"),
    ("header-array", raw([1, 2, 3]), "the header is not a JSON object"),
    ("header-string", raw("x"), "the header is not a JSON object"),
    ("metadata-numbers", raw({"__metadata__": {"a": 1}, "x": _f32([0, 8])}, EIGHT), "__metadata__"),
    ("metadata-list", raw({"__metadata__": [1], "x": _f32([0, 8])}, EIGHT), "__metadata__"),
    ("entry-number", raw({"x": 5}, EIGHT), "tensor 'x' needs a dtype, a shape and data_offsets"),
    ("entry-no-dtype", raw({"x": {"shape": [2], "data_offsets": [0, 8]}}, EIGHT), "needs a dtype"),
    ("dtype-unknown", raw({"x": _f32([0, 8], dtype="Q7")}, EIGHT), "tensor 'x' has dtype 'Q7'"),
    ("dtype-number", raw({"x": _f32([0, 8], dtype=4)}, EIGHT), "tensor 'x' has dtype 4"),
    ("dtype-lowercase", raw({"x": _f32([0, 8], dtype="f32")}, EIGHT), "has dtype 'f32'"),
    ("shape-negative", raw({"x": _f32([0, 8], shape=[-2])}, EIGHT), "shape must be a list"),
    ("shape-float", raw({"x": _f32([0, 8], shape=[2.0])}, EIGHT), "shape must be a list"),
    ("shape-bool", raw({"x": _f32([0, 8], shape=[True, 2])}, EIGHT), "shape must be a list"),
    ("shape-string", raw({"x": _f32([0, 8], shape="2")}, EIGHT), "shape must be a list"),
    ("shape-absurd", raw({"x": _f32([0, 8], shape=[2**62, 2**62])}, EIGHT), "span 8 bytes; its"),
    ("shape-too-big", raw({"x": _f32([0, 8], shape=[3])}, EIGHT), "span 8 bytes; its shape [3]"),
    ("offsets-one", raw({"x": _f32([0])}, EIGHT), "data_offsets must be two non-negative"),
    ("offsets-negative", raw({"x": _f32([-8, 0])}, EIGHT), "data_offsets must be two"),
    (
        "offsets-huge",
        raw({"x": _f32([2**70, 2**70 + 8])}, EIGHT),
        "start at 1180591620717411303424",
    ),
    ("offsets-reversed", raw({"x": _f32([8, 0])}, EIGHT), "span -8 bytes"),
    ("offsets-past-data", raw({"x": _f32([0, 8])}, bytes(4)), "cover 8 bytes, the data holds 4"),
    ("offsets-gap", raw({"a": _f32([0, 8]), "b": _f32([16, 24])}, bytes(24)), "expected 8"),
    ("offsets-overlap", raw({"a": _f32([0, 8]), "b": _f32([4, 12])}, bytes(12)), "start at 4"),
    ("trailing-bytes", raw({"x": _f32([0, 8])}, bytes(12)), "cover 8 bytes, the data holds 12"),
    ("no-tensors", raw({}), "the safetensors file holds no tensors"),
    ("only-metadata", raw({"__metadata__": {"a": "b"}}), "holds no tensors"),
    ("only-integers", np_save({"n": np.arange(3)}), "has no floating-point tensors"),
    ("empty-tensor", np_save({"w": np.zeros(0, np.float32)}), "tensors hold no values"),
]


def _with_bad(dtype: torch.dtype, value: float) -> bytes:
    bad = torch.ones(5, dtype=torch.float32)
    bad[[1, 3]] = value
    return torch_save({"a.fine": torch.ones(3, dtype=dtype), "b.bad": bad.to(dtype)})


#: (id, body, words of the 422's message): safetensors files whose values are not all finite.
NON_FINITE: list[tuple[str, bytes, str]] = [
    ("nan-float32", _with_bad(torch.float32, float("nan")), "tensor 'b.bad' holds 2 NaN"),
    ("inf-float64", _with_bad(torch.float64, float("inf")), "tensor 'b.bad' holds 2 NaN"),
    ("-inf-float16", _with_bad(torch.float16, float("-inf")), "tensor 'b.bad' holds 2 NaN"),
    ("nan-bfloat16", _with_bad(torch.bfloat16, float("nan")), "tensor 'b.bad' holds 2 NaN"),
    ("overflow-float16", _with_bad(torch.float16, 1e6), "holds 2 NaN or infinite values (of 5)"),
    (
        "two-tensors",
        np_save({"z": np.array([np.nan], np.float32), "y": np.array([1, np.inf], np.float32)}),
        "tensor 'y' holds 1 NaN or infinite values (of 2); 1 more tensor(s) hold some too",
    ),
]

#: Hostile tensor names: each makes a valid state dict the service must take (201) or refuse
#: (422), never fail on.
NAMES = ["", " ", "buffer:x", "params", "__metadata__x", "\u0000nul", "é/ü\u202etab\t", "n" * 5000]


def params(cases: list[tuple[str, bytes, str]]) -> list[ParameterSet]:
    """``cases`` as pytest parameters ``(body, words)`` named by their ids."""
    return [pytest.param(body, words, id=case) for case, body, words in cases]
