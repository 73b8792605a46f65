"""Data sets as tensors: MNIST and Fashion-MNIST from IDX files, scikit-learn's 8x8 digits."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
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


@dataclass(frozen=True)
class DatasetFacts:
    """What the project knows of one data set, in one place."""

    examples: tuple[int, int]  # train, test: what a spec is checked against when submitted
    input_shape: tuple[int, int, int]  # channels, height, width
    scale: float  # the largest pixel value: images are divided by it before standardising
    # sha256 of the uncompressed IDX files, by file name (plain and any .gz verify alike)
    idx_sha256: Mapping[str, str] = field(default_factory=dict)
    torchvision_class: str | None = None  # a download through torchvision: <root>/<class>/raw
    system_dirs: tuple[Path, ...] = ()  # where Debian's packages put the IDX files


# MNIST's sha256: the widely published values of LeCun, Cortes and Burges' originals (also in
# ../shared/data/mnist/SHA256SUMS.raw); Fashion-MNIST's: Zalando's originals as Debian's
# dataset-fashion-mnist ships them.
DATASETS: dict[str, DatasetFacts] = {
    # scikit-learn's 1,797 images, split 3:1 (see _load_digits)
    "digits": DatasetFacts(examples=(1347, 450), input_shape=(1, 8, 8), scale=16.0),
    "mnist": DatasetFacts(
        examples=(60_000, 10_000),
        input_shape=(1, 28, 28),
        scale=255.0,
        idx_sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        torchvision_class="MNIST",
    ),
    "fashion-mnist": DatasetFacts(
        examples=(60_000, 10_000),
        input_shape=(1, 28, 28),
        scale=255.0,
        idx_sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        torchvision_class="FashionMNIST",
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    ),
}


def full_sizes() -> dict[str, tuple[int, int]]:
    """Examples (train, test) of every data set at its full size."""
    return {name: facts.examples for name, facts in DATASETS.items()}


class DatasetNotFound(FileNotFoundError):
    """The IDX files of a data set are not where they were looked for."""


class DatasetUnavailable(ValueError):
    """A spec asks for data this machine cannot provide; ``field`` names the spec's field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_available(
    spec: DatasetSpec,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool = False,
) -> None:
    """Raise :class:`DatasetUnavailable` unless ``spec``'s data can be loaded here (files found,
    or a download allowed; subsets no larger than the data set). Reads no data."""
    if (problem := unservable(spec, full_sizes())) is not None:
        raise problem
    if spec.name == "digits" or allow_download:
        return
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    try:
        find_idx_files(spec.name, directory)
    except DatasetNotFound as error:
        raise DatasetUnavailable("dataset.name", f"the server cannot find {error}") from None


class DatasetCorrupt(ValueError):
    """An IDX file's content differs from the data set's known sha256."""


def unservable(
    spec: DatasetSpec, sizes: Mapping[str, tuple[int, int]], where: str = ""
) -> DatasetUnavailable | None:
    """Why ``spec`` cannot be served from data sets of ``sizes`` (name -> examples (train,
    test)), naming the spec's field; ``None`` if it can. ``where`` ends the message (" on ...")."""
    if spec.name not in sizes:
        return DatasetUnavailable("dataset.name", f"{spec.name} is not available{where}")
    n_train, n_test = sizes[spec.name]
    for size, wanted, available in (
        ("train_size", spec.train_size, n_train),
        ("test_size", spec.test_size, n_test),
    ):
        if wanted is not None and wanted > available:
            return DatasetUnavailable(
                f"dataset.{size}",
                f"{spec.name} has {available} {size.split('_')[0]} examples{where}, not {wanted}",
            )
    return None


def servable_sizes(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool = False,
    verify: bool = False,
) -> dict[str, tuple[int, int]]:
    """Examples (train, test) of each data set this machine can load now: digits always; MNIST
    and Fashion-MNIST when their IDX files are found (counted from the label files' headers;
    with ``verify``, only if all four match their sha256, which reads them whole), or at their
    full size when a download is allowed. What a worker advertises."""
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    out: dict[str, tuple[int, int]] = {}
    for name, full in full_sizes().items():
        if name == "digits" or allow_download:
            out[name] = full
            continue
        try:
            files = find_idx_files(name, directory)
            if verify:
                for path in files.values():
                    _read_idx(name, path)
            out[name] = (_idx_length(files["train_labels"]), _idx_length(files["test_labels"]))
        except (OSError, ValueError, EOFError):  # not found, corrupt, unreadable: not servable
            continue
    return out


def _idx_length(path: Path) -> int:
    """The first dimension of an IDX file (plain or .gz), from its header."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as compressed:
            header = compressed.read(8)
    else:
        with path.open("rb") as plain:
            header = plain.read(8)
    if len(header) < 8 or header[:2] != b"\0\0" or header[3] < 1:
        raise ValueError(f"{path} is not an IDX file")
    return int.from_bytes(header[4:8], "big")


def _what_to_do(name: str) -> str:
    files = ", ".join(IDX_FILES.values())
    return (
        f"put the four original {name} IDX files ({files}; plain or .gz) in one directory and "
        f"set WEIGHTSPACE_DATA_DIR to it (or to its parent, holding them in {name}/); in this "
        "project's CI they are in ../shared/data/mnist (WEIGHTSPACE_DATA_DIR=../shared/data)"
        + (
            ", Fashion-MNIST also in Debian's dataset-fashion-mnist"
            if name == "fashion-mnist"
            else ""
        )
        + "; or set WEIGHTSPACE_ALLOW_DOWNLOAD=true to let torchvision download them"
    )


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
    facts = DATASETS[name]
    dirs: list[Path] = []
    if data_dir is not None:
        dirs += [data_dir / name, data_dir / str(facts.torchvision_class) / "raw", data_dir]
    return dirs + list(facts.system_dirs)


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
        f"{name}: the IDX files are in none of "
        f"{', '.join(str(d) for d in searched) or '(no directory: WEIGHTSPACE_DATA_DIR is unset)'}. "
        f"To fix: {_what_to_do(name)}."
    )


def _read_idx(name: str, path: Path) -> np.ndarray:
    """The IDX array in ``path``, its uncompressed bytes verified against the known sha256."""
    raw = path.read_bytes()
    try:
        data = gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError) as error:
        raise DatasetCorrupt(
            f"{name}: {path} is not a valid gzip file ({error}). To fix: {_what_to_do(name)}."
        ) from None
    stem = path.name.removesuffix(".gz")
    expected = DATASETS[name].idx_sha256.get(stem)
    digest = hashlib.sha256(data).hexdigest()
    if expected is not None and digest != expected:
        raise DatasetCorrupt(
            f"{name}: {path} has sha256 {digest} (uncompressed), not the original's {expected}: "
            f"the file is damaged or a different data set. To fix: {_what_to_do(name)}."
        )
    return parse_idx(data)


def _download(name: str, data_dir: Path) -> None:
    import torchvision.datasets  # only needed for the download

    cls = getattr(torchvision.datasets, str(DATASETS[name].torchvision_class))
    cls(root=str(data_dir), train=True, download=True)


def _pixel_statistics(pixels: np.ndarray, scale: float) -> tuple[float, float]:
    """Mean and sample standard deviation of ``pixels / scale``, the same on every machine.

    The pixels are integers (IDX bytes, ``digits``' 0-16), so their sum and sum of squares are
    exact in int64 and the moments exact as fractions; each is rounded once. A float reduction
    would give bits that depend on the thread count and the vector width (torch splits a sum over
    its intra-op threads): every trained number downstream would inherit them.
    """
    integers = np.asarray(pixels, dtype=np.int64)
    if not np.array_equal(integers, pixels):
        raise ValueError("image pixels must be whole numbers")
    n = integers.size
    total = int(integers.sum())
    squares = int(np.square(integers).sum())
    mean = Fraction(total, n) / Fraction(scale)
    variance = Fraction(n * squares - total * total, n * (n - 1)) / Fraction(scale) ** 2
    return float(mean), math.sqrt(variance)


def _standardised(
    x_train: np.ndarray, x_test: np.ndarray, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as float32 ``(x / scale - mean) / std`` with the training set's statistics;
    elementwise, so each value is rounded the same way whatever the threads."""
    mean, std = (np.float32(value) for value in _pixel_statistics(x_train, scale))

    def standardise(x: np.ndarray) -> torch.Tensor:
        values = (x.astype(np.float32) / np.float32(scale) - mean) / std
        return torch.from_numpy(values).unsqueeze(1)

    return standardise(x_train), standardise(x_test)


def _load_idx(name: str, data_dir: Path | None, allow_download: bool) -> tuple[np.ndarray, ...]:
    try:
        files = find_idx_files(name, data_dir)
    except DatasetNotFound:
        if not (allow_download and data_dir is not None):
            raise
        _download(name, data_dir)
        files = find_idx_files(name, data_dir)
    return tuple(_read_idx(name, files[role]) for role in IDX_FILES)


def _load_digits() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    return x_train, y_train, x_test, y_test


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
    else:
        directory = Path(data_dir) if data_dir is not None else default_data_dir()
        x_train, y_train, x_test, y_test = _load_idx(spec.name, directory, allow_download)
    xt, xs = _standardised(x_train, x_test, DATASETS[spec.name].scale)
    n_train = spec.train_size or len(y_train)
    n_test = spec.test_size or len(y_test)
    for size, wanted, available in (
        ("train_size", n_train, len(y_train)),
        ("test_size", n_test, len(y_test)),
    ):
        if wanted > available:
            raise ValueError(
                f"dataset.{size}={wanted} exceeds the {available} examples of {spec.name}"
            )
    return Dataset(
        name=spec.name,
        x_train=xt[:n_train].contiguous(),
        y_train=torch.from_numpy(np.asarray(y_train[:n_train], dtype=np.int64)),
        x_test=xs[:n_test].contiguous(),
        y_test=torch.from_numpy(np.asarray(y_test[:n_test], dtype=np.int64)),
    )
