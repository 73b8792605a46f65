"""Presets: the paper's experiments as data (``quick`` for a CPU, ``paper`` for a GPU).

A preset file names a default data set, subset sizes per data set, a ``base`` spec shared by
the experiments, and each experiment's own fields. :func:`load_preset` merges them into
validated :class:`~weightspace.spec.ExperimentSpec` objects for the data set asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

from weightspace.spec import ExperimentSpec, derive_seed
from weightspace.vocabulary import DATASET_NAMES, PRESET_NAMES, ROLES, Role, describe


class UnknownPreset(LookupError):
    pass


@dataclass(frozen=True)
class PresetExperiment:
    role: Role
    title: str
    spec: ExperimentSpec


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    dataset: str
    experiments: tuple[PresetExperiment, ...]
    seeds: int = 1  # replicates a reproduction runs by default (K)


def preset_names() -> list[str]:
    """The presets, in the order of :data:`weightspace.vocabulary.PRESET_NAMES`."""
    return list(PRESET_NAMES)


def preset_files() -> list[str]:
    """The preset files shipped in this package (a test checks they match the names)."""
    files = resources.files(__package__).iterdir()
    return sorted(f.name.removesuffix(".json") for f in files if f.name.endswith(".json"))


def _raw(name: str) -> dict[str, Any]:
    if name not in preset_names():
        raise UnknownPreset(f"no preset {name!r}; presets: {describe(PRESET_NAMES)}")
    preset: dict[str, Any] = json.loads(
        resources.files(__package__).joinpath(f"{name}.json").read_text()
    )
    return preset


def replicate_seed(seed: int, replicate: int) -> int:
    """Global seed of an experiment in replicate ``replicate`` (0: the preset's own seed)."""
    return seed if replicate == 0 else derive_seed(seed, "replicate", replicate)


def load_preset(name: str, dataset: str | None = None, replicate: int = 0) -> Preset:
    """The preset's experiments on ``dataset`` (default: the preset's own).

    ``replicate`` k > 0 gives every experiment a global seed derived from its own and k, so K
    replicates repeat the suite with K independent sets of seeds.
    """
    raw = _raw(name)
    dataset = dataset or raw["dataset"]
    if dataset not in DATASET_NAMES:
        raise ValueError(f"dataset must be {describe(DATASET_NAMES)}, got {dataset!r}")
    experiments = []
    for role in ROLES:
        entry = raw["experiments"][role]
        fields = {**raw["base"], **entry["spec"]}
        fields["seed"] = replicate_seed(fields.get("seed", 0), replicate)
        fields["name"] = f"{name}/{role}" + (f"/seed-{replicate}" if replicate else "")
        fields["dataset"] = {"name": dataset, **raw["subsets"].get(dataset, {})}
        experiments.append(
            PresetExperiment(role, entry["title"], ExperimentSpec.model_validate(fields))
        )
    return Preset(
        raw["name"], raw["description"], dataset, tuple(experiments), int(raw.get("seeds", 1))
    )


def with_epochs(preset: Preset, epochs: int) -> Preset:
    """The preset shortened (or lengthened) to ``epochs`` epochs in all, its proportions kept.

    Pretraining and the snapshot interval are scaled alike (each at least 1 where the preset
    has them), for dry runs and machines lent for a fixed time; the report states the specs.
    """
    if epochs < 2:
        raise ValueError("a preset needs at least 2 epochs (pretraining plus one)")
    experiments = []
    for experiment in preset.experiments:
        spec = experiment.spec
        scale = epochs / spec.final_epoch
        pretrain = min(max(1, round(spec.pretrain_epochs * scale)), epochs - 1)
        pretrain = pretrain if spec.pretrain_epochs else 0
        fields = {
            **spec.model_dump(),
            "pretrain_epochs": pretrain,
            "epochs": epochs - pretrain,
            "snapshot_every": max(1, round(spec.snapshot_every * scale)),
        }
        scaled = ExperimentSpec.model_validate(fields)
        experiments.append(PresetExperiment(experiment.role, experiment.title, scaled))
    return replace(preset, experiments=tuple(experiments))
