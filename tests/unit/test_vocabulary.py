"""One source for each vocabulary: presets on disk, schemas and the database agree with it."""

from __future__ import annotations

import json
from typing import get_args

from scripts.openapi import document
from weightspace import vocabulary
from weightspace.presets import load_preset, preset_files


def test_preset_files_are_the_preset_names() -> None:
    assert preset_files() == sorted(vocabulary.PRESET_NAMES)


def test_every_preset_defines_the_four_roles_on_every_data_set() -> None:
    for name in vocabulary.PRESET_NAMES:
        for dataset in vocabulary.DATASET_NAMES:
            preset = load_preset(name, dataset)
            assert tuple(e.role for e in preset.experiments) == vocabulary.ROLES
            assert {e.spec.dataset.name for e in preset.experiments} == {dataset}


def test_terminal_statuses_are_statuses() -> None:
    assert set(vocabulary.STATUSES) > vocabulary.TERMINAL
    assert get_args(vocabulary.Status) == vocabulary.STATUSES


def test_the_api_lists_each_vocabulary_from_the_core() -> None:
    text = json.dumps(document())
    schemas = document()["components"]["schemas"]
    assert schemas["ExperimentOut"]["properties"]["status"]["enum"] == list(vocabulary.STATUSES)
    assert schemas["SuiteIn"]["properties"]["preset"]["enum"] == list(vocabulary.PRESET_NAMES)
    assert schemas["DatasetSpec"]["properties"]["name"]["enum"] == list(vocabulary.DATASET_NAMES)
    for queue in vocabulary.QUEUES:
        assert f'"{queue}"' in text
