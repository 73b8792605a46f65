"""A safetensors writer in plain Python, for uploading state dicts without extra dependencies.

It accepts PyTorch tensors and NumPy arrays (recognised by their attributes; neither library is
imported here) and writes the file format of https://github.com/huggingface/safetensors: an
8-byte little-endian header length, a JSON header, then the raw little-endian tensor bytes.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Mapping
from typing import Any

# torch dtype name or numpy dtype name -> safetensors dtype code
_CODES = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}


def _as_bytes(value: Any) -> tuple[str, list[int], bytes]:
    """(safetensors dtype, shape, little-endian bytes) of a torch tensor or numpy array."""
    module = type(value).__module__
    if module.startswith("torch"):
        tensor = value.detach().to("cpu").contiguous()
        name = str(tensor.dtype).removeprefix("torch.")
        shape = list(tensor.shape)
        if name == "bfloat16":  # numpy has no bfloat16: reinterpret the bits
            tensor = tensor.view(_torch_int16(tensor))
        array = tensor.numpy()
    elif hasattr(value, "dtype") and hasattr(value, "tobytes"):
        array = value
        name = str(value.dtype)
        shape = list(value.shape)
    else:
        raise TypeError(f"expected torch tensors or numpy arrays, got {type(value).__name__}")
    if name not in _CODES:
        raise TypeError(f"unsupported dtype {name}")
    if sys.byteorder != "little" or getattr(array.dtype, "byteorder", "=") == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return _CODES[name], shape, array.tobytes(order="C")


def _torch_int16(tensor: Any) -> Any:
    import torch  # only reached with a torch tensor in hand

    return torch.int16


def encode_safetensors(
    tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None
) -> bytes:
    """The safetensors file of ``tensors`` (name -> torch tensor or numpy array)."""
    if not tensors:
        raise ValueError("no tensors to write")
    header: dict[str, Any] = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        code, shape, data = _as_bytes(tensors[name])
        header[str(name)] = {
            "dtype": code,
            "shape": shape,
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # align the data to 8 bytes, as the reference writer does
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)
