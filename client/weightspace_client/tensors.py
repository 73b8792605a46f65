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


#: ``__metadata__`` keys the service reads (see the service's ``weightspace.imports``).
TIED_KEY, BUFFERS_KEY = "weightspace.tied", "weightspace.buffers"


def _memory(value: Any) -> tuple[Any, ...] | None:
    """Where a tensor's or array's values lie (address, shape, strides, dtype), if known."""
    if type(value).__module__.startswith("torch"):
        return (value.data_ptr(), tuple(value.shape), tuple(value.stride()), str(value.dtype))
    interface = getattr(value, "__array_interface__", None)
    if interface is not None and interface["data"][0]:
        return (
            interface["data"][0],
            interface["shape"],
            interface["strides"],
            interface["typestr"],
        )
    return None


def tied(tensors: Mapping[str, Any]) -> dict[str, str]:
    """``{alias: tensor}`` for every tensor that shares its memory (same address, shape and
    strides) with another of ``tensors`` (tied weights): the first name in sorted order is kept,
    the others are its aliases, which the service counts once."""
    first: dict[tuple[Any, ...], str] = {}
    out = {}
    for name in sorted(tensors):
        where = _memory(tensors[name])
        if where is None:
            continue
        if where in first:
            out[name] = first[where]
        else:
            first[where] = name
    return out


def state_dict_file(source: Any) -> bytes:
    """The safetensors file of a state dict, or of a module's ``state_dict()``, that declares
    in its ``__metadata__`` the tensors tied to another (``weightspace.tied``) and, for a module,
    the names of its buffers (``weightspace.buffers``, from ``named_buffers()``), so that the
    service can count tied weights once and tell parameters from buffers (``include``)."""
    tensors = dict(source.state_dict()) if hasattr(source, "state_dict") else dict(source)
    metadata = {}
    if aliases := tied(tensors):
        metadata[TIED_KEY] = json.dumps(aliases, sort_keys=True)
    if hasattr(source, "named_buffers"):
        buffers = sorted(name for name, _ in source.named_buffers() if name in tensors)
        metadata[BUFFERS_KEY] = json.dumps(buffers)
    return encode_safetensors(tensors, metadata)


#: safetensors dtype code -> torch (and numpy) dtype name
DTYPE_NAMES = {code: name for name, code in _CODES.items()}


def decode_safetensors(
    data: bytes,
) -> tuple[dict[str, tuple[str, list[int], bytes]], dict[str, str]]:
    """The tensors of a safetensors file as ``{name: (dtype name, shape, bytes)}``, and its
    ``__metadata__``; the inverse of :func:`encode_safetensors` (no torch or numpy needed)."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    metadata = header.pop("__metadata__", None) or {}
    start = 8 + length
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        tensors[name] = (
            DTYPE_NAMES[info["dtype"]],
            list(info["shape"]),
            data[start + begin : start + end],
        )
    return tensors, metadata
