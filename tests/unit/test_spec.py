"""The experiment spec: strict validation with bounds, and seed derivation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from weightspace.spec import ExperimentSpec, derive_seed, plan_runs

MINIMAL = {"dataset": {"name": "digits"}, "model": {"kind": "mlp"}, "epochs": 3}


def spec(**overrides) -> ExperimentSpec:
    return ExperimentSpec.model_validate({**MINIMAL, **overrides})


def error_locations(**overrides) -> list[tuple]:
    with pytest.raises(ValidationError) as info:
        spec(**overrides)
    return [e["loc"] for e in info.value.errors()]


def test_paper_designs_are_expressible() -> None:
    one = spec(
        model={"kind": "paper-cnn"},
        dataset={"name": "mnist"},
        epochs=200,
        dropout=0.5,
        optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},
    )
    assert one.snapshot_epochs() == list(range(201))
    two = spec(
        replicas=5, init="independent", data_order="independent", epochs=200, snapshot_every=10
    )
    assert two.snapshot_epochs() == list(range(0, 201, 10))
    clones = spec(replicas=5, init="shared", pretrain_epochs=10, epochs=190, snapshot_every=10)
    assert clones.snapshot_epochs() == list(range(10, 201, 10))


def test_final_epoch_is_always_captured() -> None:
    assert spec(epochs=7, snapshot_every=3).snapshot_epochs() == [0, 3, 6, 7]
    assert spec(epochs=7, snapshot_every=100).snapshot_epochs() == [0, 7]


@pytest.mark.parametrize(
    ("overrides", "location"),
    [
        ({"epochs": 0}, ("epochs",)),
        ({"epochs": "3"}, ("epochs",)),
        ({"replicas": 65}, ("replicas",)),
        ({"dropout": 1.0}, ("dropout",)),
        ({"dataset": {"name": "cifar"}}, ("dataset", "name")),
        ({"dataset": {"name": "digits", "train_size": 5}}, ("dataset", "train_size")),
        ({"model": {"kind": "mlp", "hidden": []}}, ("model", "mlp", "hidden")),
        ({"model": {"kind": "cnn", "channels": [4, 8, 16]}}, ("model", "cnn", "channels")),
        ({"optimizer": {"name": "sgd", "lr": 0}}, ("optimizer", "lr")),
        ({"unknown": 1}, ("unknown",)),
    ],
)
def test_bad_fields_are_named(overrides: dict, location: tuple) -> None:
    assert location in error_locations(**overrides)


def test_cross_field_rules() -> None:
    with pytest.raises(ValidationError, match="init='shared'"):
        spec(pretrain_epochs=2, init="independent")
    with pytest.raises(ValidationError, match="nesterov"):
        spec(optimizer={"name": "sgd", "nesterov": True})
    with pytest.raises(ValidationError, match="momentum applies to sgd"):
        spec(optimizer={"name": "adam", "momentum": 0.9})


def test_seeds_are_derived_and_follow_the_design() -> None:
    assert derive_seed(1, "init", 0) == derive_seed(1, "init", 0) != derive_seed(1, "init", 1)
    assert 0 <= derive_seed(2**63 - 1, "x") < 2**63
    shared = plan_runs(spec(replicas=3, init="shared", data_order="independent"))
    assert len({p.init_seed for p in shared}) == 1 and len({p.data_seed for p in shared}) == 3
    indep = plan_runs(spec(replicas=3, init="independent", data_order="shared"))
    assert len({p.init_seed for p in indep}) == 3 and len({p.data_seed for p in indep}) == 1
    assert all(p.pretrain_seed is None for p in indep)
    assert plan_runs(spec(seed=1))[0] != plan_runs(spec(seed=2))[0]


def test_dropout_masks_follow_data_order_unless_stated_and_are_seeded_apart() -> None:
    assert spec(data_order="shared").dropout_masks == "shared"
    assert spec(data_order="independent").dropout_masks == "independent"
    assert spec().model_dump()["dropout_masks"] == spec().data_order  # always stated
    # Shuffles vary, masks are shared: experiment 3 can vary the data order alone.
    plans = plan_runs(spec(replicas=3, data_order="independent", dropout_masks="shared"))
    assert len({p.data_seed for p in plans}) == 3 and len({p.dropout_seed for p in plans}) == 1
    assert {p.dropout_seed for p in plans}.isdisjoint({p.data_seed for p in plans})
    plans = plan_runs(spec(replicas=3, data_order="shared", dropout_masks="independent"))
    assert len({p.data_seed for p in plans}) == 1 and len({p.dropout_seed for p in plans}) == 3
    clones = plan_runs(spec(replicas=2, init="shared", pretrain_epochs=2))
    assert all(p.pretrain_seed != p.pretrain_dropout_seed is not None for p in clones)
    with pytest.raises(ValidationError):
        spec(dropout_masks="per-batch")
