"""Uploaded state dicts made into snapshots: hostile bodies refused in the project's words."""

from __future__ import annotations

import io
import uuid

import numpy as np
import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from tests.hostile import INTERNALS, MALFORMED, NAMES, NON_FINITE, params
from weightspace.exports import state_dict_file
from weightspace.imports import (
    InvalidUpload,
    Receiver,
    import_state_dict,
    load_state_dict,
    prepare,
)


def imported(body: bytes) -> int:
    return import_state_dict(
        body, experiment_id=uuid.UUID(int=1), run=0, epoch=0, metrics={}
    ).parameters


@pytest.mark.parametrize(("body", "words"), params(MALFORMED + NON_FINITE))
def test_hostile_bodies_are_refused_naming_what_is_wrong(body: bytes, words: str) -> None:
    with pytest.raises(InvalidUpload) as error:
        imported(body)
    assert error.value.field == "body"
    assert words in str(error.value)
    assert not [text for text in INTERNALS if text in str(error.value)]


@pytest.mark.parametrize(("body", "words"), params([c for c in MALFORMED if "tensors" not in c[2]]))
def test_the_library_refuses_every_body_the_check_refuses(body: bytes, words: str) -> None:
    """The check in front of the library is no stricter than the library itself."""
    with pytest.raises((SafetensorError, ValueError, RuntimeError, TypeError)):
        st_load(body)


def test_files_the_library_writes_pass_the_check() -> None:
    tensors = {
        "w": torch.randn(3, 4, dtype=torch.float64),
        "h": torch.ones(2, dtype=torch.bfloat16),
        "e": torch.zeros(0, 5),
        "f8": torch.ones(4).to(torch.float8_e5m2),
        "n": torch.arange(3),
        "mask": torch.tensor([True, False]),
    }
    loaded = load_state_dict(st_save(tensors, metadata={"framework": "pt"}))
    assert {k: v.dtype for k, v in loaded.items()} == {k: v.dtype for k, v in tensors.items()}
    assert torch.equal(loaded["w"], tensors["w"])
    assert imported(st_save(tensors)) == 12 + 2 + 0 + 4


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_any_tensor_name_is_taken(name: str) -> None:
    assert imported(st_save({name: torch.ones(3), "other": torch.ones(2)})) == 5


def test_finite_extremes_are_taken() -> None:
    extremes = np.array([np.finfo(np.float32).max, np.finfo(np.float32).tiny, -0.0], np.float32)
    assert imported(st_save({"x": torch.from_numpy(extremes)})) == 3


def _streamed(body: bytes, size: int, chunk_bytes: int) -> bytes:
    """``body`` taken ``size`` bytes at a time and made into a snapshot file, read and written
    ``chunk_bytes`` at a time."""
    receiver = Receiver(io.BytesIO())
    for start in range(0, max(len(body), 1), size):
        receiver.write(body[start : start + size])
    prepared = prepare(
        receiver.finish(), experiment_id=uuid.UUID(int=1), run=0, epoch=0, metrics={}
    )
    return b"".join(prepared.chunks(chunk_bytes))


@pytest.mark.parametrize(("body", "words"), params(MALFORMED + NON_FINITE))
def test_a_body_taken_in_pieces_is_refused_in_the_same_words(body: bytes, words: str) -> None:
    with pytest.raises(InvalidUpload) as whole:
        imported(body)
    with pytest.raises(InvalidUpload) as pieces:
        _streamed(body, 7, 16)
    assert str(pieces.value) == str(whole.value)


def test_the_snapshot_file_is_the_same_whatever_the_chunks() -> None:
    tensors = {
        "w": torch.randn(300, dtype=torch.float64),
        "h": torch.randn(7).to(torch.bfloat16),
        "n": torch.arange(5),
    }
    body = st_save(tensors)
    whole = import_state_dict(body, experiment_id=uuid.UUID(int=1), run=0, epoch=0, metrics={})
    assert _streamed(body, 5, 24) == _streamed(body, len(body), 1 << 20) == whole.data
    back = st_load(state_dict_file(whole.data))
    assert all(torch.equal(back[n], t) for n, t in tensors.items())
