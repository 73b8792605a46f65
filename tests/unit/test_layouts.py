"""The canonical order of parameter vectors (weightspace.layouts) and reading stored snapshots
in it (snapshots.ReorderedVector), on a store written as this release writes it."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from weightspace import layouts
from weightspace.analysis import gram
from weightspace.models import build_model, flat_parameters, parameter_layout
from weightspace.snapshots import (
    ChecksumError,
    LocalStore,
    ReorderedVector,
    Snapshot,
    StoredVector,
    put_snapshot,
)
from weightspace.spec import MLPSpec

EXPERIMENT = uuid.UUID("5d1c0e6a-7b2f-4c38-9e41-0a6b2c3d4e5f")


class PlainMLP(nn.Module):
    """The service's ``mlp`` built with plain torch.nn, as the README's upload section says."""

    def __init__(self, sizes: list[int], classes: int = 10) -> None:
        super().__init__()
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.out = nn.Linear(sizes[-1], classes)


def _trained_store(tmp_path: Path) -> tuple[LocalStore, list[str], nn.Module]:
    """Snapshots of the service's mlp written by this release's code path (module order)."""
    store = LocalStore(tmp_path)
    keys = []
    model = build_model(MLPSpec(kind="mlp", hidden=[6, 5]), (1, 3, 3), 0.0, seed=1)
    for epoch in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * epoch)
        snapshot = Snapshot(
            run=0,
            epoch=epoch,
            params=flat_parameters(model).numpy(),
            layout=parameter_layout(model),
        )
        keys.append(put_snapshot(store, EXPERIMENT, snapshot).key)
    return store, keys, model


def _canonical_vector(state: dict[str, torch.Tensor]) -> np.ndarray:
    return np.concatenate([state[name].reshape(-1).numpy() for name in sorted(state)])


def test_a_plain_torch_model_of_the_mlp_names_the_same_tensors() -> None:
    service = build_model(MLPSpec(kind="mlp", hidden=[6, 5]), (1, 3, 3), 0.0, seed=1)
    plain = PlainMLP([9, 6, 5])
    assert layouts.difference(parameter_layout(service), parameter_layout(plain)) is None
    assert list(service.state_dict()) == [name for name, _ in parameter_layout(service)]


def test_pieces_and_reorder_follow_the_names() -> None:
    layout = [("b.weight", (2, 2)), ("b.bias", (2,)), ("a", (1,)), ("empty", (0,))]
    vector = np.arange(7.0)  # b.weight 0..3, b.bias 4..5, a 6
    pieces = layouts.canonical_pieces(layout)
    assert pieces == ((6, 7), (4, 6), (0, 4))
    canonical = np.concatenate([vector[slice(*p)] for p in pieces])
    assert canonical.tolist() == [6.0, 4.0, 5.0, 0.0, 1.0, 2.0, 3.0]
    target = layouts.canonical(layout)
    assert layouts.reorder(vector, layout, target).tolist() == canonical.tolist()
    assert layouts.canonical_pieces(target) is None
    with pytest.raises(ValueError, match="'a'"):
        layouts.reorder(vector, layout, [("a", (2,)), *target[1:]])


def test_difference_names_the_first_differing_tensor() -> None:
    first = [("out.weight", (10, 5)), ("out.bias", (10,))]
    assert layouts.difference(first, list(reversed(first))) is None
    assert "'out.weight' has shape [10, 6], expected [10, 5]" in str(
        layouts.difference(first, [("out.weight", (10, 6)), ("out.bias", (10,))])
    )
    assert "'out.bias' [10] is missing" in str(layouts.difference(first, first[:1]))
    assert "'extra' [1] is not expected" in str(
        layouts.difference(first, [*first, ("extra", (1,))])
    )


@pytest.mark.parametrize("chunk", [1, 4, 7, 1000])
def test_a_stored_trained_snapshot_reads_in_canonical_order(tmp_path: Path, chunk: int) -> None:
    store, keys, model = _trained_store(tmp_path)
    pieces = layouts.canonical_pieces(parameter_layout(model))
    assert pieces is not None
    expected = _canonical_vector({k: v.detach() for k, v in model.state_dict().items()})
    vector = ReorderedVector(store, keys[-1], pieces)
    read = [vector.read(s, min(s + chunk, vector.size)) for s in range(0, vector.size, chunk)]
    np.testing.assert_array_equal(np.concatenate(read), expected)


def test_a_window_of_the_canonical_vector(tmp_path: Path) -> None:
    store, keys, model = _trained_store(tmp_path)
    pieces = layouts.canonical_pieces(parameter_layout(model))
    assert pieces is not None
    expected = _canonical_vector({k: v.detach() for k, v in model.state_dict().items()})
    vector = ReorderedVector(store, keys[-1], pieces, (3, 40))
    assert vector.size == 37
    np.testing.assert_array_equal(
        np.concatenate([vector.read(0, 20), vector.read(20, 37)]), expected[3:40]
    )


def test_the_gram_is_the_same_in_either_order(tmp_path: Path) -> None:
    store, keys, model = _trained_store(tmp_path)
    pieces = layouts.canonical_pieces(parameter_layout(model))
    assert pieces is not None
    reordered = gram([ReorderedVector(store, k, pieces) for k in keys], chunk_elements=5)
    stored = gram([StoredVector(store, k) for k in keys], chunk_elements=5)
    np.testing.assert_allclose(reordered.matrix, stored.matrix, rtol=1e-12, atol=1e-12)


def test_a_damaged_vector_read_in_canonical_order_fails_its_checksum(tmp_path: Path) -> None:
    store, keys, model = _trained_store(tmp_path)
    pieces = layouts.canonical_pieces(parameter_layout(model))
    assert pieces is not None
    path = tmp_path / keys[0]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the last byte of the vector: out.bias, read before out.weight
    path.write_bytes(bytes(data))
    vector = ReorderedVector(store, keys[0], pieces)
    with pytest.raises(ChecksumError):
        vector.read(0, vector.size)
