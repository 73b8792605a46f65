"""The submit-time data-set decision against the worker registry, and what a worker advertises."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from weightspace_app.infra.workers import Advert, check_datasets

from weightspace import data
from weightspace.data import DatasetUnavailable
from weightspace.spec import DatasetSpec

DIGITS_ONLY = {"digits": (1347, 450)}
WITH_MNIST = {**DIGITS_ONLY, "mnist": (60_000, 10_000)}


def worker(name: str, queues: tuple[str, ...], datasets: dict[str, tuple[int, int]]) -> Advert:
    return Advert(name, queues, "cpu", "x86_64", "2.0", datasets)


def local_has_everything(spec: DatasetSpec) -> None:
    return None


def local_has_nothing(spec: DatasetSpec) -> None:
    raise DatasetUnavailable("dataset.name", f"the server cannot find {spec.name}")


def refusal(specs: list[DatasetSpec], queue: str, live: list[Advert]) -> DatasetUnavailable:
    with pytest.raises(DatasetUnavailable) as info:
        check_datasets(specs, queue, live, local_has_everything)
    return info.value


def test_a_worker_of_the_queue_that_has_the_data_admits_without_warning() -> None:
    live = [worker("a", ("cpu",), DIGITS_ONLY), worker("b", ("cpu", "gpu"), WITH_MNIST)]
    assert check_datasets([DatasetSpec(name="mnist")], "cpu", live, local_has_nothing) == []


def test_live_workers_that_lack_the_data_set_refuse_naming_the_field() -> None:
    live = [worker("a@h", ("cpu",), DIGITS_ONLY), worker("b@h", ("gpu",), WITH_MNIST)]
    error = refusal([DatasetSpec(name="mnist")], "cpu", live)
    assert error.field == "dataset.name"
    assert "a@h" in str(error) and "b@h" not in str(error)  # only the queue's workers count
    assert "`digits`" in str(error) and "WEIGHTSPACE_DATA_DIR" in str(error)


def test_too_few_examples_on_every_worker_names_the_size_field() -> None:
    live = [worker("a", ("cpu",), {"mnist": (1000, 5000)}), worker("b", ("cpu",), DIGITS_ONLY)]
    error = refusal([DatasetSpec(name="mnist", train_size=5000)], "cpu", live)
    assert error.field == "dataset.train_size" and "1000" in str(error) and "a" in str(error)
    small = refusal([DatasetSpec(name="mnist", test_size=8000)], "cpu", live)
    assert small.field == "dataset.test_size"
    assert (
        check_datasets([DatasetSpec(name="mnist", train_size=1000)], "cpu", live, local_has_nothing)
        == []
    )


def test_every_spec_of_a_suite_is_checked() -> None:
    live = [worker("a", ("cpu",), WITH_MNIST)]
    specs = [DatasetSpec(name="mnist"), DatasetSpec(name="fashion-mnist")]
    assert refusal(specs, "cpu", live).field == "dataset.name"


def test_no_live_worker_on_the_queue_admits_with_a_warning() -> None:
    live = [worker("a", ("cpu",), WITH_MNIST)]
    warnings = check_datasets([DatasetSpec(name="mnist")], "gpu", live, local_has_everything)
    assert len(warnings) == 1 and "`gpu`" in warnings[0] and "queued" in warnings[0]
    assert check_datasets([DatasetSpec(name="digits")], "cpu", [], local_has_everything)
    assert check_datasets([], "gpu", [], local_has_everything) == []  # nothing to train


def test_with_no_live_worker_the_api_process_data_stands_in() -> None:
    with pytest.raises(DatasetUnavailable, match="server cannot find mnist"):
        check_datasets([DatasetSpec(name="mnist")], "gpu", [], local_has_nothing)


def idx_labels(path: Path, count: int, *, compress: bool = False) -> None:
    body = bytes([0, 0, 0x08, 1]) + count.to_bytes(4, "big") + bytes(count)
    path.write_bytes(gzip.compress(body) if compress else body)


def fake_mnist(directory: Path, train: int, test: int) -> None:
    directory.mkdir(parents=True)
    for role, stem in data.IDX_FILES.items():
        count = train if role.startswith("train") else test
        idx_labels(directory / f"{stem}.gz", count, compress=True)


def test_servable_sizes_count_the_files_found_and_verify_drops_corrupt_ones(
    tmp_path: Path,
) -> None:
    base = data.servable_sizes(tmp_path / "nothing")  # digits, and system-wide data sets
    assert base["digits"] == (1347, 450) and "mnist" not in base
    fake_mnist(tmp_path / "mnist", 600, 100)
    assert data.servable_sizes(tmp_path) == {**base, "mnist": (600, 100)}
    # The files are not the originals: verifying them (sha256) drops the data set.
    assert "mnist" not in data.servable_sizes(tmp_path, verify=True)
    everything = data.servable_sizes(tmp_path / "nothing", allow_download=True)
    assert everything == data.full_sizes()


def test_servable_sizes_of_the_real_mnist_files() -> None:
    directory = data.default_data_dir()
    try:
        data.find_idx_files("mnist", directory)
    except data.DatasetNotFound:
        pytest.skip("no MNIST files under WEIGHTSPACE_DATA_DIR")
    assert data.servable_sizes(directory, verify=True)["mnist"] == (60_000, 10_000)
