"""Models (the paper's parameter count, the flat order) and data loading (IDX files, digits)."""

from __future__ import annotations

import gzip
import hashlib
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from weightspace import data
from weightspace.data import DatasetNotFound, find_idx_files, load_dataset, parse_idx
from weightspace.models import (
    build_model,
    count_parameters,
    flat_parameters,
    load_flat_parameters,
    parameter_layout,
)
from weightspace.spec import CNNSpec, DatasetSpec, PaperCNNSpec

PAPER_PARAMETERS = 819_557


# The original MNIST, where the environment has it (CI: WEIGHTSPACE_DATA_DIR=../shared/data).
MNIST_DIR = (data.default_data_dir() or Path("/nonexistent")) / "mnist"


def test_paper_cnn_is_within_one_percent_of_the_paper() -> None:
    model = build_model(PaperCNNSpec(kind="paper-cnn"), (1, 28, 28), 0.5, seed=0)
    count = count_parameters(model)
    assert count == 819_974
    assert abs(count - PAPER_PARAMETERS) / PAPER_PARAMETERS < 0.01
    names = [name for name, _ in parameter_layout(model)]
    assert names == [
        "conv1.weight",
        "conv1.bias",
        "conv2.weight",
        "conv2.bias",
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
    ]
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_flat_vector_round_trip_and_seeded_init() -> None:
    spec = PaperCNNSpec(kind="paper-cnn")
    a = build_model(spec, (1, 8, 8), 0.0, seed=1)
    b = build_model(spec, (1, 8, 8), 0.0, seed=2)
    assert not torch.equal(flat_parameters(a), flat_parameters(b))
    assert torch.equal(
        flat_parameters(a), flat_parameters(build_model(spec, (1, 8, 8), 0.0, seed=1))
    )
    load_flat_parameters(b, flat_parameters(a))
    assert torch.equal(flat_parameters(a), flat_parameters(b))
    # The flat order is the concatenation of the layout, row-major.
    vector = flat_parameters(a)
    assert torch.equal(vector[: 32 * 25].reshape(32, 1, 5, 5), a.conv1.weight.detach())
    with pytest.raises(ValueError, match="parameters"):
        load_flat_parameters(a, vector[:-1])


def test_the_cnn_computes_channels_last_and_keeps_that_order_through_a_load() -> None:
    """The CNN's convolution weights are channels-last and stay so when a vector is loaded; its
    evaluation without autograd (the fast pooling) gives exactly the logits of the autograd path,
    and the same as the textbook order of operations (ReLU, then max-pooling) up to rounding."""
    spec = CNNSpec(kind="cnn", channels=[4, 8], kernel_size=3, hidden=16)
    model = build_model(spec, (1, 10, 9), 0.0, seed=1).eval()  # odd sizes: pooling floors
    load_flat_parameters(model, flat_parameters(build_model(spec, (1, 10, 9), 0.0, seed=2)))
    assert model.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(6, 1, 10, 9, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fast = model(x)
    with torch.enable_grad():
        assert torch.equal(fast, model(x).detach())
        textbook = F.max_pool2d(F.relu(model.conv1(x)), 2)
        textbook = F.max_pool2d(F.relu(model.conv2(textbook)), 2)
        textbook = model.fc2(F.relu(model.fc1(textbook.flatten(1)))).detach()
    assert torch.allclose(fast, textbook, atol=1e-6)


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    raw = _idx_bytes(array)
    if compress:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def write_mnist_like(
    directory: Path,
    n_train: int = 50,
    n_test: int = 20,
    compress: bool = False,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> tuple[np.ndarray, ...]:
    """Random IDX files named like MNIST's; with ``monkeypatch``, their hashes are made the known
    ones (to test layouts and subsets; without it they fail the sha256 check, as they should)."""
    rng = np.random.default_rng(0)
    arrays = (
        rng.integers(0, 256, (n_train, 28, 28)),
        rng.integers(0, 10, n_train),
        rng.integers(0, 256, (n_test, 28, 28)),
        rng.integers(0, 10, n_test),
    )
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array in zip(
        [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ],
        arrays,
        strict=True,
    ):
        write_idx(directory / stem, array, compress)
    if monkeypatch is not None:
        known = {
            stem: hashlib.sha256(_idx_bytes(array)).hexdigest()
            for stem, array in zip(data.IDX_FILES.values(), arrays, strict=True)
        }
        monkeypatch.setitem(
            data.DATASETS, "mnist", replace(data.DATASETS["mnist"], idx_sha256=known)
        )
    return arrays


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("layout", ["flat", "named", "torchvision"])
def test_mnist_from_idx_files(
    tmp_path: Path, compress: bool, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = {
        "flat": tmp_path,
        "named": tmp_path / "mnist",
        "torchvision": tmp_path / "MNIST" / "raw",
    }[layout]
    x_train, y_train, _x_test, y_test = write_mnist_like(
        where, compress=compress, monkeypatch=monkeypatch
    )
    data = load_dataset(DatasetSpec(name="mnist", train_size=40), tmp_path)
    assert data.input_shape == (1, 28, 28)
    assert data.x_train.shape == (40, 1, 28, 28) and data.x_test.shape == (20, 1, 28, 28)
    assert torch.equal(data.y_train, torch.from_numpy(y_train[:40]))
    assert torch.equal(data.y_test, torch.from_numpy(y_test))
    # Standardised with the (whole) training split's statistics, order preserved.
    raw = torch.from_numpy(x_train.astype(np.float32) / 255)
    expected = (raw - raw.mean()) / raw.std()
    torch.testing.assert_close(data.x_train[:, 0], expected[:40])


def test_missing_idx_files_name_the_files_and_directories(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFound) as info:
        load_dataset(DatasetSpec(name="mnist"), tmp_path)
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert str(tmp_path) in message and "WEIGHTSPACE_DATA_DIR" in message


@pytest.mark.parametrize("compress", [False, True])
def test_files_that_are_not_the_originals_are_refused(tmp_path: Path, compress: bool) -> None:
    write_mnist_like(tmp_path, compress=compress)
    with pytest.raises(data.DatasetCorrupt) as info:
        load_dataset(DatasetSpec(name="mnist"), tmp_path)
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and "sha256" in message
    assert data.DATASETS["mnist"].idx_sha256["train-images-idx3-ubyte"] in message
    assert "WEIGHTSPACE_DATA_DIR" in message


@pytest.mark.skipif(
    not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(), reason="MNIST is not at hand"
)
def test_the_original_mnist_verifies_and_loads(tmp_path: Path) -> None:
    loaded = load_dataset(DatasetSpec(name="mnist", test_size=100), MNIST_DIR.parent)
    assert loaded.x_train.shape == (60_000, 1, 28, 28) and loaded.x_test.shape == (100, 1, 28, 28)
    counts = torch.bincount(loaded.y_train).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    # Decompressed copies verify alike (the known hashes are of the raw files).
    for stem in data.IDX_FILES.values():
        (tmp_path / stem).write_bytes(gzip.decompress((MNIST_DIR / f"{stem}.gz").read_bytes()))
    plain = load_dataset(DatasetSpec(name="mnist", train_size=10, test_size=10), tmp_path)
    assert torch.equal(plain.y_train, loaded.y_train[:10])


def test_subset_larger_than_the_data_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_mnist_like(tmp_path, n_train=20, monkeypatch=monkeypatch)
    with pytest.raises(ValueError, match=r"dataset\.train_size"):
        load_dataset(DatasetSpec(name="mnist", train_size=30), tmp_path)


def test_parse_idx_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_idx(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError):
        parse_idx(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3)


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_fashion_mnist_found_in_the_debian_package(tmp_path: Path) -> None:
    files = find_idx_files("fashion-mnist", tmp_path)
    assert files["train_images"].parent == Path("/usr/share/datasets/fashion-mnist")
    data = load_dataset(DatasetSpec(name="fashion-mnist", train_size=100, test_size=50), tmp_path)
    assert data.x_train.shape == (100, 1, 28, 28)
    assert int(data.y_train.max()) <= 9


def test_digits_split_is_fixed() -> None:
    a = load_dataset(DatasetSpec(name="digits"))
    assert a.x_train.shape == (1347, 1, 8, 8) and a.x_test.shape == (450, 1, 8, 8)
    b = load_dataset(DatasetSpec(name="digits", train_size=100))
    assert torch.equal(a.x_train[:100], b.x_train)


def test_a_spec_whose_data_the_server_lacks_is_refused(tmp_path: Path) -> None:
    with pytest.raises(data.DatasetUnavailable) as info:
        data.check_available(DatasetSpec(name="mnist"), tmp_path / "empty")
    assert info.value.field == "dataset.name" and "WEIGHTSPACE_DATA_DIR" in str(info.value)
    data.check_available(DatasetSpec(name="mnist"), tmp_path / "empty", allow_download=True)
    with pytest.raises(data.DatasetUnavailable) as too_big:
        data.check_available(DatasetSpec(name="digits", train_size=2000))
    assert too_big.value.field == "dataset.train_size" and "1347" in str(too_big.value)
    data.check_available(DatasetSpec(name="digits", train_size=1347))


def test_every_data_set_of_the_vocabulary_has_one_record_of_facts() -> None:
    from weightspace.vocabulary import DATASET_NAMES

    assert sorted(data.DATASETS) == sorted(DATASET_NAMES)
    for name, facts in data.DATASETS.items():
        assert facts.input_shape[0] == 1 and facts.examples[0] > facts.examples[1] > 0
        if name != "digits":
            assert sorted(facts.idx_sha256) == sorted(data.IDX_FILES.values())
            assert facts.torchvision_class is not None
