"""The experiment spec: what to train, how many replicas, how they are seeded, when to snapshot."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from weightspace.vocabulary import DatasetName

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)


class DatasetSpec(BaseModel):
    """Which data set, and optionally only the first ``train_size``/``test_size`` examples."""

    model_config = _STRICT

    name: DatasetName = Field(
        description="`mnist` and `fashion-mnist` are read from IDX files; `digits` is scikit-learn's "
        "bundled 8x8 digits (1,347 train / 450 test), for fast runs."
    )
    train_size: int | None = Field(
        default=None, ge=10, le=60_000, description="Use only the first N training examples."
    )
    test_size: int | None = Field(
        default=None, ge=10, le=10_000, description="Use only the first N test examples."
    )


class PaperCNNSpec(BaseModel):
    """The paper's three-layer CNN (819,974 parameters on 28x28 inputs; see models.py)."""

    model_config = _STRICT

    kind: Literal["paper-cnn"] = Field(description="The model's architecture.")


class CNNSpec(BaseModel):
    """Two conv layers (ReLU, 2x2 max-pooling) and one hidden fully connected layer."""

    model_config = _STRICT

    kind: Literal["cnn"] = Field(description="The model's architecture.")
    channels: list[Annotated[int, Field(ge=1, le=512)]] = Field(
        default=[16, 32],
        min_length=2,
        max_length=2,
        description="Output channels of the two conv layers.",
    )
    kernel_size: Literal[3, 5] = Field(default=5, description="Side of the square conv kernels.")
    hidden: int = Field(
        default=128, ge=1, le=8192, description="Width of the fully connected hidden layer."
    )


class MLPSpec(BaseModel):
    """Fully connected ReLU layers."""

    model_config = _STRICT

    kind: Literal["mlp"] = Field(description="The model's architecture.")
    hidden: list[Annotated[int, Field(ge=1, le=8192)]] = Field(
        default=[128],
        min_length=1,
        max_length=8,
        description="Width of each hidden layer, input side first.",
    )


ModelSpec = Annotated[PaperCNNSpec | CNNSpec | MLPSpec, Field(discriminator="kind")]


class OptimizerSpec(BaseModel):
    model_config = _STRICT

    name: Literal["sgd", "adam"] = Field(default="sgd", description="The optimizer.")
    lr: float = Field(default=0.01, gt=0, le=10, description="Learning rate.")
    momentum: float = Field(default=0.0, ge=0, lt=1, description="SGD only.")
    nesterov: bool = Field(default=False, description="SGD only; needs momentum > 0.")
    weight_decay: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Weight decay: `weight_decay * w` added to the gradient (torch.optim's).",
    )
    betas: list[Annotated[float, Field(ge=0, lt=1)]] = Field(
        default=[0.9, 0.999], min_length=2, max_length=2, description="Adam only."
    )

    @model_validator(mode="after")
    def _check(self) -> OptimizerSpec:
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ValueError("nesterov needs name='sgd' and momentum > 0")
        if self.name == "adam" and self.momentum != 0:
            raise ValueError("momentum applies to sgd only (use betas for adam)")
        return self


#: Most snapshots one experiment may capture (replicas x snapshot epochs). Analyses hold the
#: float64 Gram matrix of all of them: 4,096 snapshots make a 128 MiB matrix.
MAX_SNAPSHOTS = 4096


class ExperimentSpec(BaseModel):
    """One experiment: ``replicas`` runs of the same model, seeded as ``init``/``data_order`` say.

    - ``init``: ``shared`` gives every replica the same initial weights; ``independent`` draws
      each replica's own.
    - ``data_order``: ``shared`` feeds every replica the same shuffles; ``independent`` gives
      each its own.
    - ``dropout_masks``: ``shared`` gives every replica the same stream of dropout masks;
      ``independent`` gives each its own. Left out, it follows ``data_order`` (the validated spec
      always states it). Its seeds are derived apart from the shuffles', so an experiment can
      vary the data order alone (``data_order='independent'``, ``dropout_masks='shared'``).
    - ``pretrain_epochs``: train one model for that many epochs, then clone it into the replicas,
      which continue for ``epochs`` more with their own data order (needs ``init='shared'``).
    - Snapshots are captured at the start of each replica's training (epoch 0, or
      ``pretrain_epochs`` for clones), every ``snapshot_every`` epochs, and at the final epoch.
    """

    model_config = _STRICT

    name: str | None = Field(default=None, max_length=200, description="A label of your choice.")
    seed: int = Field(
        default=0, ge=0, le=2**63 - 1, description="Global seed every run's seeds derive from."
    )
    dataset: DatasetSpec = Field(description="The data set to train and evaluate on.")
    model: ModelSpec = Field(description="The architecture, by `kind`.")
    optimizer: OptimizerSpec = Field(
        default=OptimizerSpec(), description="Optimizer and its hyperparameters."
    )
    epochs: int = Field(
        ge=1, le=10_000, description="Epochs each replica trains (after pretraining)."
    )
    batch_size: int = Field(default=64, ge=1, le=65_536, description="Examples per minibatch.")
    dropout: float = Field(
        default=0.0, ge=0, lt=1, description="Dropout probability of the model's dropout layers."
    )
    snapshot_every: int = Field(
        default=1, ge=1, le=10_000, description="Epochs between snapshots (the final one always)."
    )
    replicas: int = Field(
        default=1, ge=1, le=64, description="Runs of the same model (0..replicas-1)."
    )
    init: Literal["shared", "independent"] = Field(
        default="independent",
        description="`shared`: every replica starts from the same weights; `independent`: "
        "each draws its own.",
    )
    data_order: Literal["shared", "independent"] = Field(
        default="independent",
        description="`shared`: every replica sees the same shuffles; `independent`: each its own.",
    )
    dropout_masks: Literal["shared", "independent"] = Field(
        default="independent",
        description="Whether the replicas share one stream of dropout masks; "
        "left out, the same as `data_order`.",
    )
    pretrain_epochs: int = Field(
        default=0,
        ge=0,
        le=10_000,
        description="Train one model this many epochs first, then clone it into the replicas "
        "(needs `init: shared`).",
    )

    @model_validator(mode="before")
    @classmethod
    def _dropout_follows_data_order(cls, data: Any) -> Any:
        if isinstance(data, dict) and "dropout_masks" not in data:
            return {**data, "dropout_masks": data.get("data_order", "independent")}
        return data

    @model_validator(mode="after")
    def _check(self) -> ExperimentSpec:
        if self.pretrain_epochs > 0 and self.init != "shared":
            raise ValueError("pretrain_epochs > 0 clones one model: set init='shared'")
        if (count := self.replicas * len(self.snapshot_epochs())) > MAX_SNAPSHOTS:
            raise ValueError(
                f"replicas x snapshot epochs = {count} snapshots; at most {MAX_SNAPSHOTS} "
                "(raise snapshot_every or lower replicas)"
            )
        return self

    @property
    def first_epoch(self) -> int:
        return self.pretrain_epochs

    @property
    def final_epoch(self) -> int:
        return self.pretrain_epochs + self.epochs

    def snapshot_epochs(self) -> list[int]:
        """Epochs at which every replica is captured (counted from the very start)."""
        start, end = self.first_epoch, self.final_epoch
        epochs = list(range(start, end + 1, self.snapshot_every))
        if epochs[-1] != end:
            epochs.append(end)
        return epochs


class UploadSpec(BaseModel):
    """An experiment whose snapshots come from outside: ``replicas`` runs, uploaded one
    snapshot at a time (``PUT /experiments/{id}/runs/{run}/snapshots/{epoch}``), then completed.

    The service trains nothing for it. Analyses that evaluate the model (landscape planes,
    barriers) need one: either the upload declares a ``model`` the service can build (with the
    ``dataset`` to evaluate on), or the client evaluates the plane with its own model (``GET
    /experiments/{id}/landscape/plane``, then ``PUT /experiments/{id}/landscape``).
    """

    model_config = _STRICT

    source: Literal["upload"] = Field(
        description="`upload`: the snapshots come from your own training loop."
    )
    name: str | None = Field(default=None, max_length=200, description="A label of your choice.")
    replicas: int = Field(default=1, ge=1, le=64, description="Number of runs (0..replicas-1).")
    model: ModelSpec | None = Field(
        default=None,
        description="The architecture of the uploaded state dicts, when the service can build it "
        "(as in a training spec): every snapshot must then have its tensors (names and shapes), "
        "and landscape planes and barriers work as for a trained experiment. Needs `dataset`.",
    )
    dataset: DatasetSpec | None = Field(
        default=None,
        description="The data set that landscape planes and barriers evaluate `model` on.",
    )
    include: Literal["parameters", "parameters+buffers"] = Field(
        default="parameters+buffers",
        description="Which floating-point tensors form the analysed vector: "
        "`parameters+buffers` every one; `parameters` leaves buffers (BatchNorm's running "
        "statistics, and whatever the file lists as buffers) beside the vector. Tensors that "
        "the file declares tied to another are counted once either way.",
    )

    @model_validator(mode="after")
    def _model_and_dataset(self) -> UploadSpec:
        if (self.model is None) != (self.dataset is None):
            raise ValueError("`model` and `dataset` go together: give both or neither")
        return self

    def evaluation_spec(self) -> ExperimentSpec | None:
        """The declared model and data set as a spec to evaluate snapshots with (no dropout;
        nothing is trained from it), or ``None`` when the upload declares no model."""
        if self.model is None or self.dataset is None:
            return None
        return ExperimentSpec(
            name=self.name, dataset=self.dataset, model=self.model, epochs=1, replicas=self.replicas
        )


def source_of(data: object) -> str:
    """The ``source`` tag of a spec given as JSON or as a model: ``upload`` or ``train``."""
    if isinstance(data, dict):
        return "upload" if data.get("source") == "upload" else "train"
    return "upload" if isinstance(data, UploadSpec) else "train"


#: A request to create an experiment: a training spec (no ``source``, the original form) or an
#: upload spec (``"source": "upload"``). Existing training specs stay valid unchanged.
AnySpec = Annotated[
    Annotated[ExperimentSpec, Tag("train")] | Annotated[UploadSpec, Tag("upload")],
    Discriminator(source_of),
]


def parse_spec(data: dict[str, object]) -> ExperimentSpec | UploadSpec:
    """The stored spec of an experiment, as the model of its kind."""
    if source_of(data) == "upload":
        return UploadSpec.model_validate(data)
    return ExperimentSpec.model_validate(data)


def derive_seed(seed: int, *path: str | int) -> int:
    """A 63-bit seed derived from the global seed and a path such as ("init", 3)."""
    text = "/".join([str(seed), *map(str, path)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


@dataclass(frozen=True)
class RunPlan:
    """The seeds of one replica, all derived from the spec's global seed."""

    run: int
    init_seed: int  # initial weights (of the pretrained model, for clones)
    data_seed: int  # shuffling after the start epoch
    dropout_seed: int  # dropout masks after the start epoch
    pretrain_seed: int | None  # shuffling during pretraining (shared by clones)
    pretrain_dropout_seed: int | None  # dropout masks during pretraining


def plan_runs(spec: ExperimentSpec) -> list[RunPlan]:
    """Derive every run's seeds; recorded with the run so a researcher can see them."""
    pretraining = spec.pretrain_epochs > 0
    pretrain = derive_seed(spec.seed, "pretrain") if pretraining else None
    pretrain_dropout = derive_seed(spec.seed, "pretrain", "dropout") if pretraining else None
    plans = []
    for run in range(spec.replicas):
        init_path = ("init",) if spec.init == "shared" else ("init", run)
        data_path = ("data",) if spec.data_order == "shared" else ("data", run)
        dropout_path = ("dropout",) if spec.dropout_masks == "shared" else ("dropout", run)
        plans.append(
            RunPlan(
                run=run,
                init_seed=derive_seed(spec.seed, *init_path),
                data_seed=derive_seed(spec.seed, *data_path),
                dropout_seed=derive_seed(spec.seed, *dropout_path),
                pretrain_seed=pretrain,
                pretrain_dropout_seed=pretrain_dropout,
            )
        )
    return plans
