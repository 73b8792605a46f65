"""Data sets as tensors: MNIST and Fashion-MNIST from IDX files, scikit-learn's 8x8 digits."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from weightspace.spec import DatasetSpec

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# torchvision's class names: a download through torchvision lands in <root>/<class>/raw.
_TORCHVISION_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
# Where Debian's packages put the IDX files; searched after the data directory.
SYSTEM_DIRS = {"fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")], "mnist": []}


class DatasetNotFound(FileNotFoundError):
    """The IDX files of a data set are not where they were looked for."""


@dataclass(frozen=True)
class Dataset:
    """A whole data set as tensors, images standardised with the training set's mean and std."""

    name: str
    x_train: torch.Tensor  # float32, (N, 1, H, W)
    y_train: torch.Tensor  # int64, (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int = 10

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    def to(self, device: torch.device | str) -> Dataset:
        return Dataset(
            self.name,
            self.x_train.to(device),
            self.y_train.to(device),
            self.x_test.to(device),
            self.y_test.to(device),
            self.num_classes,
        )


_IDX_DTYPES: dict[int, str | type] = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def parse_idx(data: bytes) -> np.ndarray:
    """Parse an IDX array (the MNIST file format), given its uncompressed bytes."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError("not an IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    body = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"IDX body has {body.size} values, header says {dims}")
    return body.reshape(dims)


def _candidate_dirs(name: str, data_dir: Path | None) -> list[Path]:
    dirs: list[Path] = []
    if data_dir is not None:
        cls = _TORCHVISION_CLASS[name]
        dirs += [data_dir / name, data_dir / cls / "raw", data_dir]
    return dirs + SYSTEM_DIRS[name]


def find_idx_files(name: str, data_dir: Path | None) -> dict[str, Path]:
    """Locate the four IDX files (plain or .gz) of ``name``; the first directory holding all wins."""
    searched = _candidate_dirs(name, data_dir)
    for directory in searched:
        found = {}
        for role, stem in IDX_FILES.items():
            for candidate in (directory / stem, directory / f"{stem}.gz"):
                if candidate.is_file():
                    found[role] = candidate
                    break
        if len(found) == len(IDX_FILES):
            return found
    raise DatasetNotFound(
        f"{name}: expected the IDX files {', '.join(IDX_FILES.values())} (optionally .gz) in one of "
        f"{', '.join(str(d) for d in searched) or '(no directory)'}; set WEIGHTSPACE_DATA_DIR to "
        "where they are, or allow the download"
    )


def _read_idx(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    return parse_idx(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def _download(name: str, data_dir: Path) -> None:
    import torchvision.datasets  # only needed for the download

    cls = getattr(torchvision.datasets, _TORCHVISION_CLASS[name])
    cls(root=str(data_dir), train=True, download=True)


def _standardised(
    x_train: np.ndarray, x_test: np.ndarray, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    train = torch.from_numpy(x_train.astype(np.float32) / scale).unsqueeze(1)
    test = torch.from_numpy(x_test.astype(np.float32) / scale).unsqueeze(1)
    mean, std = train.mean(), train.std()
    return (train - mean) / std, (test - mean) / std


def _load_idx(name: str, data_dir: Path | None, allow_download: bool) -> tuple[np.ndarray, ...]:
    try:
        files = find_idx_files(name, data_dir)
    except DatasetNotFound:
        if not (allow_download and data_dir is not None):
            raise
        _download(name, data_dir)
        files = find_idx_files(name, data_dir)
    return tuple(_read_idx(files[role]) for role in IDX_FILES)


def _load_digits() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    return x_train, y_train, x_test, y_test


#: Examples (train, test) and input shape (channels, height, width) of each data set: what a
#: spec is checked against when it is submitted (loading checks the files themselves).
DATASET_SIZES: dict[str, tuple[int, int]] = {
    "digits": (1347, 450),
    "mnist": (60_000, 10_000),
    "fashion-mnist": (60_000, 10_000),
}
INPUT_SHAPES: dict[str, tuple[int, int, int]] = {
    "digits": (1, 8, 8),
    "mnist": (1, 28, 28),
    "fashion-mnist": (1, 28, 28),
}


def default_data_dir() -> Path | None:
    value = os.environ.get("WEIGHTSPACE_DATA_DIR")
    return Path(value) if value else None


def load_dataset(
    spec: DatasetSpec,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool = False,
) -> Dataset:
    """Load ``spec``'s data set on the CPU; the subsets are the first ``train_size``/``test_size``."""
    if spec.name == "digits":
        x_train, y_train, x_test, y_test = _load_digits()
        scale = 16.0
    else:
        directory = Path(data_dir) if data_dir is not None else default_data_dir()
        x_train, y_train, x_test, y_test = _load_idx(spec.name, directory, allow_download)
        scale = 255.0
    xt, xs = _standardised(x_train, x_test, scale)
    n_train = spec.train_size or len(y_train)
    n_test = spec.test_size or len(y_test)
    for field, wanted, available in (
        ("train_size", n_train, len(y_train)),
        ("test_size", n_test, len(y_test)),
    ):
        if wanted > available:
            raise ValueError(
                f"dataset.{field}={wanted} exceeds the {available} examples of {spec.name}"
            )
    return Dataset(
        name=spec.name,
        x_train=xt[:n_train].contiguous(),
        y_train=torch.from_numpy(np.asarray(y_train[:n_train], dtype=np.int64)),
        x_test=xs[:n_test].contiguous(),
        y_test=torch.from_numpy(np.asarray(y_test[:n_test], dtype=np.int64)),
    )
