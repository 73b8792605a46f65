"""Presets: the paper's four experiments as data (``quick`` for a CPU, ``paper`` for a GPU).

A preset file names a default data set, subset sizes per data set, a ``base`` spec shared by
the four experiments, and each experiment's own fields. :func:`load_preset` merges them into
validated :class:`~weightspace.spec.ExperimentSpec` objects for the data set asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from weightspace.spec import ExperimentSpec

Role = Literal["trajectory", "independent-inits", "shared-init", "pretrained-clones"]
ROLES: tuple[Role, ...] = ("trajectory", "independent-inits", "shared-init", "pretrained-clones")
DATASETS = ("mnist", "fashion-mnist", "digits")


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


def preset_names() -> list[str]:
    files = resources.files(__package__).iterdir()
    return sorted(f.name.removesuffix(".json") for f in files if f.name.endswith(".json"))


def _raw(name: str) -> dict[str, Any]:
    if name not in preset_names():
        raise UnknownPreset(f"no preset {name!r}; presets: {', '.join(preset_names())}")
    preset: dict[str, Any] = json.loads(
        resources.files(__package__).joinpath(f"{name}.json").read_text()
    )
    return preset


def load_preset(name: str, dataset: str | None = None) -> Preset:
    """The preset's four experiments on ``dataset`` (default: the preset's own)."""
    raw = _raw(name)
    dataset = dataset or raw["dataset"]
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    experiments = []
    for role in ROLES:
        entry = raw["experiments"][role]
        fields = {**raw["base"], **entry["spec"]}
        fields["name"] = f"{name}/{role}"
        fields["dataset"] = {"name": dataset, **raw["subsets"].get(dataset, {})}
        experiments.append(
            PresetExperiment(role, entry["title"], ExperimentSpec.model_validate(fields))
        )
    return Preset(raw["name"], raw["description"], dataset, tuple(experiments))
