"""Snapshots given back: a stored snapshot as a plain safetensors state dict, ready for
``load_state_dict`` (the reverse of :mod:`weightspace.imports`).

Uploaded snapshots give back their tensors with their original names, shapes and dtypes (the
``source_layout`` recorded at import, tied aliases and kept buffers included); snapshots of
trained experiments give their model's named parameters (float32). :class:`StateDictFile` writes
the file tensor by tensor from ranges of the snapshot's bytes, so neither file is ever whole in
memory: :class:`SpooledStateDict` for a download, :func:`state_dict_file` for bytes at hand.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch

from weightspace.imports import (
    BUFFER_PREFIX,
    CHUNK_BYTES,
    DTYPE_NAMES,
    DTYPES,
    Layout,
    safetensors_header,
)
from weightspace.snapshots import (
    HEADER_PROBE_BYTES,
    ChecksumError,
    header_length,
    parse_header,
    sha256_hex,
)


@dataclass(frozen=True)
class _Piece:
    """One tensor of a state dict file: ``count`` elements stored at byte ``start`` of the
    snapshot file as ``stored``, written as ``written``."""

    start: int
    count: int
    stored: torch.dtype
    written: torch.dtype

    def chunks(self, read: Callable[[int, int], bytes], chunk_bytes: int) -> Iterator[bytes]:
        width = self.stored.itemsize
        step = max(1, chunk_bytes // width)
        for first in range(0, self.count, step):
            last = min(first + step, self.count)
            data = read(self.start + first * width, self.start + last * width)
            if len(data) != (last - first) * width:
                raise ValueError("the snapshot file is shorter than its header says")
            if self.written == self.stored:
                yield bytes(data)
            else:
                values = torch.frombuffer(bytearray(data), dtype=self.stored).to(self.written)
                yield values.view(torch.uint8).numpy().tobytes()


@dataclass(frozen=True)
class StateDictFile:
    """A stored snapshot as a plain safetensors state dict, ready for ``load_state_dict``,
    produced piece by piece from the snapshot file's bytes (never all in memory).

    Uploaded snapshots give back their tensors with their original names, shapes and dtypes;
    snapshots of trained experiments give their model's named parameters (float32).
    """

    header: bytes
    size: int
    pieces: tuple[_Piece, ...]  # in file order, after the header
    params: tuple[int, int]  # the snapshot file's [start, stop) bytes of ``params``
    params_sha256: str

    @classmethod
    def of(cls, snapshot_header: bytes) -> StateDictFile:
        """The state dict file of the snapshot whose file starts with ``snapshot_header``."""
        header = parse_header(snapshot_header)
        if "source_layout" in header.metadata:
            layout = Layout.from_json(json.loads(header.metadata["source_layout"]))
        else:
            pairs = json.loads(header.metadata["layout"])
            layout = Layout(vector=tuple((n, tuple(s), "float32") for n, s in pairs))
        begin, end = header.params_range()
        stored = DTYPES[str(header.tensors["params"]["dtype"])]
        tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
        pieces: dict[str, _Piece] = {}
        offset = begin
        for name, shape, dtype in layout.vector:
            count = math.prod(shape)
            written = getattr(torch, dtype)
            tensors[name] = (DTYPE_NAMES[written], shape)
            pieces[name] = _Piece(offset, count, stored, written)
            offset += count * stored.itemsize
        if offset != end:
            raise ValueError("the snapshot's layout does not cover its parameter vector")
        for name, shape, _ in layout.buffers:
            info = header.tensors[BUFFER_PREFIX + name]
            kind = DTYPES[str(info["dtype"])]
            first = header.data_start + int(info["data_offsets"][0])  # type: ignore[index]
            tensors[name] = (DTYPE_NAMES[kind], shape)
            pieces[name] = _Piece(first, math.prod(shape), kind, kind)
        for alias, target in layout.tied:
            tensors[alias], pieces[alias] = tensors[target], pieces[target]
        text, order, size = safetensors_header(tensors, {})
        return cls(
            text,
            size,
            tuple(pieces[name] for name in order),
            (begin, end),
            header.metadata["params_sha256"],
        )

    def chunks(
        self, read: Callable[[int, int], bytes], chunk_bytes: int = CHUNK_BYTES
    ) -> Iterator[bytes]:
        """The file's bytes, from ``read(start, stop)`` of the snapshot file's bytes."""
        yield self.header
        for piece in self.pieces:
            yield from piece.chunks(read, chunk_bytes)

    def check(self, read: Callable[[int, int], bytes], chunk_bytes: int = CHUNK_BYTES) -> None:
        """ChecksumError unless the snapshot's parameters match its ``params_sha256``."""
        digest = hashlib.sha256()
        for first in range(self.params[0], self.params[1], chunk_bytes):
            digest.update(read(first, min(first + chunk_bytes, self.params[1])))
        if digest.hexdigest() != self.params_sha256:
            raise ChecksumError("snapshot parameters do not match params_sha256")


def state_dict_file(snapshot: bytes, sha256: str | None = None) -> bytes:
    """:class:`StateDictFile` of a snapshot file at hand, in memory."""
    if sha256 is not None and sha256_hex(snapshot) != sha256:
        raise ChecksumError("snapshot file does not match its recorded sha256")
    plan = StateDictFile.of(snapshot)
    view = memoryview(snapshot)

    def read(start: int, stop: int) -> bytes:
        return bytes(view[start:stop])

    plan.check(read)
    return b"".join(plan.chunks(read))


class SpooledStateDict:
    """A stored snapshot's bytes spooled to an anonymous temporary file in ``directory``, ready
    to be sent as a state dict file: ``plan`` (its size), ``sha256`` (of the file to send) and
    :meth:`chunks`. The caller verifies the bytes against the file's recorded sha256 as they come
    (``params_sha256``, inside the same file, is then not read again). Memory stays one chunk;
    the disk holds one snapshot until the chunks are read or abandoned.
    """

    def __init__(self, snapshot: Iterable[bytes], directory: str | None = None) -> None:
        self._spool = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115  (closed by chunks)
        try:
            for chunk in snapshot:
                self._spool.write(chunk)
            self._spool.flush()
            head = self.read(0, HEADER_PROBE_BYTES)
            self.plan = StateDictFile.of(self.read(0, header_length(head)))
            digest = hashlib.sha256()
            for chunk in self.plan.chunks(self.read):
                digest.update(chunk)
            self.sha256 = digest.hexdigest()
        except BaseException:
            self._spool.close()
            raise

    def read(self, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of the snapshot file."""
        return os.pread(self._spool.fileno(), stop - start, start)

    def chunks(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The state dict file's bytes; the spool is closed (and gone) after the last."""
        try:
            yield from self.plan.chunks(self.read, chunk_bytes)
        finally:
            self._spool.close()
