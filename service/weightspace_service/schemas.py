"""Response bodies of the API (requests are the core's ExperimentSpec itself).

Why one module of ~630 lines: declarations only (one pydantic model per request and response
body, the OpenAPI document's components), kept together so the contract reads in one place.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from weightspace import vocabulary
from weightspace.adapters import joint
from weightspace.adapters.db import Experiment, Run, SnapshotRecord, Suite
from weightspace.analysis import PCAResult
from weightspace.spec import AnySpec, ExperimentSpec, parse_spec
from weightspace_service.landscape_schemas import JointBarriers
from weightspace_service.params import BoundedInt

Status = vocabulary.Status


class Metrics(BaseModel):
    """Losses and accuracies (dropout off). Trained experiments have all four; uploaded
    snapshots have whatever metrics were sent with them (any names, as extra fields)."""

    model_config = ConfigDict(extra="allow")

    train_loss: float | None = Field(default=None, description="Mean loss on the training set.")
    train_accuracy: float | None = Field(default=None, description="Accuracy on the training set.")
    test_loss: float | None = Field(default=None, description="Mean loss on the test set.")
    test_accuracy: float | None = Field(default=None, description="Accuracy on the test set.")


class Seeds(BaseModel):
    init: int | None = Field(
        description="Seed of the initial weights (of the pretrained model, for clones); "
        "null for uploaded runs."
    )
    data: int | None = Field(description="Seed of the data order; null for uploaded runs.")
    dropout: int | None = Field(
        default=None,
        description="Seed of the dropout masks (null for runs submitted before it had its own).",
    )
    pretrain: int | None = Field(
        description="Seed of the pretraining's data order, when pretrain_epochs > 0."
    )
    pretrain_dropout: int | None = Field(
        default=None, description="Seed of the pretraining's dropout masks."
    )


class RunOut(BaseModel):
    run: int
    status: Status = Field(description="The run's own progress.")
    epoch: int | None = Field(description="Latest completed (or uploaded) epoch.")
    final_epoch: int | None = Field(
        description="The run's last epoch; for uploaded runs, null until the experiment is completed."
    )
    train_loss: float | None = Field(
        description="Mean minibatch loss of the latest epoch (dropout on)."
    )
    metrics: Metrics | None = Field(description="Losses and accuracies at the latest snapshot.")
    seeds: Seeds = Field(description="The seeds the run was derived with (from the spec's `seed`).")
    environment: dict[str, str] | None = Field(
        default=None,
        description="What the latest snapshot was computed with: torch version, device, CPU "
        "instruction set, thread count, determinism settings.",
    )
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, run: Run) -> RunOut:
        return cls(
            run=run.run,
            status=run.status,  # type: ignore[arg-type]
            epoch=run.epoch,
            final_epoch=run.final_epoch,
            train_loss=run.train_loss,
            metrics=Metrics(**run.metrics) if run.metrics else None,
            seeds=Seeds(
                init=run.init_seed,
                data=run.data_seed,
                dropout=run.dropout_seed,
                pretrain=run.pretrain_seed,
                pretrain_dropout=run.pretrain_dropout_seed,
            ),
            environment=run.environment,
            started_at=run.started_at,
            finished_at=run.finished_at,
            updated_at=run.updated_at,
        )


class ExperimentLinks(BaseModel):
    self: str = Field(description="This experiment.")
    runs: str = Field(description="Its runs and their progress.")
    pca: str = Field(description="PCA of its snapshots.")
    distances: str = Field(description="Distances between its runs at one epoch.")
    trajectory: str = Field(description="Per run and snapshot: step lengths, path, straightness.")
    suite: str | None = Field(
        default=None, description="The suite this experiment belongs to, if any."
    )
    report: str | None = Field(default=None, description="The suite's report (once built).")


class DamagedSnapshotOut(BaseModel):
    run: int
    epoch: int
    reason: str = Field(description="Why it cannot be used: missing object, checksum mismatch.")


def _warnings() -> Any:
    return Field(
        default_factory=list,
        description="Submission responses only: why the work may not start soon, e.g. that no live "
        "worker consumes the queue (it stays queued until one starts). Empty when read back.",
        examples=[
            [
                "no live worker consumes queue `gpu`: the experiment stays queued until one starts "
                "(GET /workers lists the live workers)"
            ]
        ],
    )


class ExperimentOut(BaseModel):
    id: uuid.UUID = Field(description="The experiment's id.")
    name: str | None = Field(description="The spec's `name`, if it gave one.")
    status: Status = Field(
        description="`queued`, `running`, then `succeeded`, `failed` or "
        "`cancelled`; the last three are final (until a retry)."
    )
    queue: str = Field(description="Worker queue (`upload` for uploaded experiments).")
    source: vocabulary.Source = Field(
        default="train",
        description="`train`: the service trains it from `spec`; `upload`: its snapshots are uploaded.",
    )
    spec: AnySpec = Field(description="The spec as validated, defaults filled in.")
    error: str | None = Field(
        description="Why it failed or was cancelled (null otherwise): the server's cause."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    runs: list[RunOut] = Field(description="Its runs (replicas), in run order.")
    suite_id: uuid.UUID | None = Field(default=None, description="The suite it belongs to, if any.")
    role: str | None = Field(
        default=None, description="Its role in the suite (a preset experiment)."
    )
    links: ExperimentLinks = Field(description="Where its resources are.")
    damaged_snapshots: list[DamagedSnapshotOut] = Field(
        default_factory=list,
        description="Snapshots found missing or corrupt (analyses that need them answer 409).",
    )
    warnings: list[str] = _warnings()

    @classmethod
    def of(
        cls, experiment: Experiment, damaged: list[DamagedSnapshotOut] | None = None
    ) -> ExperimentOut:
        base = f"/experiments/{experiment.id}"
        return cls(
            id=experiment.id,
            name=experiment.name,
            status=experiment.status,  # type: ignore[arg-type]
            queue=experiment.queue,
            source=experiment.source,  # type: ignore[arg-type]
            spec=parse_spec(experiment.spec),
            error=experiment.error,
            created_at=experiment.created_at,
            started_at=experiment.started_at,
            finished_at=experiment.finished_at,
            updated_at=experiment.updated_at,
            runs=[RunOut.of(r) for r in experiment.runs],
            damaged_snapshots=damaged or [],
            suite_id=experiment.suite_id,
            role=experiment.role,
            links=ExperimentLinks(
                self=base,
                runs=f"{base}/runs",
                pca=f"{base}/pca",
                distances=f"{base}/distances",
                trajectory=f"{base}/trajectory",
                suite=f"/suites/{experiment.suite_id}" if experiment.suite_id else None,
                report=f"/suites/{experiment.suite_id}/report/index.html"
                if experiment.suite_id
                else None,
            ),
        )


class ExperimentPage(BaseModel):
    items: list[ExperimentOut] = Field(description="This page's experiments, newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class RunPage(BaseModel):
    items: list[RunOut] = Field(description="This page's runs, in run order.")
    next_cursor: str | None = None


class SnapshotOut(BaseModel):
    run: int
    epoch: int
    parameters: int = Field(description="Length of the flat parameter vector.")
    size: int = Field(description="Bytes of the safetensors file.")
    sha256: str = Field(description="sha256 of the safetensors file.")
    metrics: Metrics = Field(description="Losses and accuracies at this snapshot.")
    created_at: datetime
    href: str = Field(description="Where to download the safetensors file.")
    damaged: str | None = Field(
        default=None, description="Why the stored file cannot be used, if a reader found out."
    )

    @classmethod
    def of(cls, record: SnapshotRecord) -> SnapshotOut:
        return cls(
            run=record.run,
            epoch=record.epoch,
            parameters=record.parameters,
            size=record.size,
            sha256=record.sha256,
            metrics=Metrics(**record.metrics),
            created_at=record.created_at,
            href=f"/experiments/{record.experiment_id}/runs/{record.run}/snapshots/{record.epoch}",
            damaged=record.damaged,
        )


class SnapshotPage(BaseModel):
    items: list[SnapshotOut] = Field(description="This page's snapshots, in epoch order.")
    next_cursor: str | None


class PCAPoint(BaseModel):
    run: int
    epoch: int
    coordinates: list[float] = Field(description="The snapshot's coordinate on each component.")


class PCAOut(BaseModel):
    experiment_id: uuid.UUID
    complete: bool = Field(
        description="False while the experiment is still running: the answer covers what exists."
    )
    components: int = Field(description="Number of components.")
    explained_variance: list[float] = Field(description="Per component (divisor n - 1).")
    explained_variance_ratio: list[float] = Field(description="Per component, of the total.")
    cumulative_variance_ratio: list[float] = Field(description="Running sum of the ratios.")
    points: list[PCAPoint] = Field(description="One per snapshot, by run, then epoch.")


class DistancesOut(BaseModel):
    experiment_id: uuid.UUID
    complete: bool
    epoch: int = Field(description="The epoch compared (the final one unless asked).")
    runs: list[int] = Field(description="The runs compared: the rows and columns, in order.")
    distances: list[list[float]] = Field(
        description="Euclidean distances between the runs' snapshots at `epoch`."
    )
    cosine_similarity: list[list[float]] = Field(
        description="Cosine similarities between the runs' snapshots at `epoch`."
    )
    distance_from_origin: list[float] = Field(description="Norm of each run's snapshot.")
    distance_from_init: list[float] = Field(
        description="Distance of each run's snapshot from the run's first snapshot."
    )


class GradientOut(BaseModel):
    """The full-batch gradient at a snapshot (train set, dropout off), recorded at capture."""

    norm: float = Field(description="Norm of the gradient of the mean train loss.")
    norm_with_weight_decay: float = Field(
        description="Norm of the gradient of the objective SGD minimises: mean train loss + "
        "weight_decay / 2 * |w|^2."
    )
    null_band: list[float] = Field(
        description="95% band of `norm_with_weight_decay` under the sign-flip null (what the "
        "norm is when the expected gradient is zero: a critical point)."
    )
    null_band_without_weight_decay: list[float] = Field(
        description="95% band of `norm` (no weight decay) under the sign-flip null."
    )
    chunks: int = Field(description="Chunks of the train set the sign-flip null flips.")


class TrajectoryPoint(BaseModel):
    epoch: int
    metrics: Metrics = Field(description="Losses and accuracies at this snapshot.")
    step_length: float = Field(description="Distance from the previous snapshot (0 at the first).")
    path_length: float = Field(description="Sum of the step lengths so far.")
    displacement: float = Field(description="Distance from the run's first snapshot.")
    distance_from_origin: float = Field(description="Norm of the parameter vector.")
    straightness: float = Field(
        description="`displacement / path_length` (1.0 where the path length is 0)."
    )
    distance_per_epoch: float | None = Field(
        description="Distance from the previous snapshot / epochs between them (null at the first)."
    )
    loss_change_per_epoch: float | None = Field(
        description="Absolute change of the train loss since the previous snapshot, per epoch."
    )
    gradient: GradientOut | None = Field(
        description="Full-batch gradient norms and their null (null if not recorded)."
    )


class RunTrajectory(BaseModel):
    run: int
    points: list[TrajectoryPoint] = Field(description="The run's snapshots, in epoch order.")


class TrajectoryOut(BaseModel):
    experiment_id: uuid.UUID
    complete: bool
    runs: list[RunTrajectory] = Field(description="One per run, in run order.")


class Health(BaseModel):
    status: Literal["ok"] = Field(description="The process answers.")


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"] = Field(
        description="`ready` when every dependency answers (else with HTTP 503)."
    )
    checks: dict[str, str] = Field(
        description="`ok`, or the error, per dependency: database, broker, store."
    )


class PresetExperimentOut(BaseModel):
    role: vocabulary.Role = Field(description="Which of the paper's experiments it is.")
    title: str = Field(description="What it tests, in words.")
    spec: ExperimentSpec = Field(description="The spec a suite submits for it.")


class PresetOut(BaseModel):
    name: str = Field(description="The preset's name (`quick` or `paper`).")
    description: str = Field(description="What it runs and how long it takes.")
    dataset: str = Field(
        description="The data set these specs use (the preset's default unless `dataset` was given)."
    )
    experiments: list[PresetExperimentOut] = Field(description="Its four experiments.")


class PresetList(BaseModel):
    items: list[PresetOut] = Field(description="Every preset.")


MAX_SEEDS = 10


class SuiteIn(BaseModel):
    """Reproduce the paper: the preset's four experiments, on one data set."""

    model_config = ConfigDict(extra="forbid")

    preset: vocabulary.PresetName = Field(
        description="`quick`: minutes on a CPU; `paper`: the paper's scale, for a GPU."
    )
    dataset: vocabulary.DatasetName | None = Field(
        default=None, description="Default: the preset's (quick: fashion-mnist, paper: mnist)."
    )
    seeds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SEEDS,
        description="Repeat the four experiments with this many sets of derived global seeds "
        "(K); the report gives each statistic as a mean with a 95% interval over them and how "
        "many seeds agree on each verdict. Default: the preset's (quick: 3, paper: 1).",
    )


SUITE_EXAMPLES = {
    "quick": {
        "summary": "The quick preset on the small digits data set, two seeds",
        "value": {"preset": "quick", "dataset": "digits", "seeds": 2},
    },
    "paper": {
        "summary": "The paper's scale on MNIST (for a GPU worker)",
        "value": {"preset": "paper", "dataset": "mnist"},
    },
}


class SuiteExperiment(BaseModel):
    role: str = Field(description="Which of the preset's experiments it is.")
    replicate: int = Field(default=0, description="Its seed index in the suite (0..seeds-1).")
    experiment: ExperimentOut = Field(description="The experiment and its progress.")


class SuiteReport(BaseModel):
    status: vocabulary.ReportStatus = Field(
        description="The report is built once every experiment has ended."
    )
    error: str | None = Field(description="Why the report could not be built (null otherwise).")
    url: str | None = Field(description="The HTML report, once ready.")
    files: list[str] = Field(
        description="The report's files (relative names under `/suites/{id}/report/`), once ready."
    )


class SuiteOut(BaseModel):
    id: uuid.UUID = Field(description="The suite's id.")
    preset: str = Field(description="The preset it runs.")
    dataset: str = Field(description="The data set its experiments use.")
    seeds: int = Field(default=1, description="Sets of derived seeds the experiments repeat with.")
    status: Status = Field(description="Summarises its experiments' statuses.")
    created_at: datetime
    experiments: list[SuiteExperiment] = Field(description="Its experiments, by role and seed.")
    report: SuiteReport = Field(description="The report's progress and files.")
    warnings: list[str] = _warnings()

    @classmethod
    def of(cls, suite: Suite, status: str) -> SuiteOut:
        ready = suite.report_status == "ready"
        return cls(
            id=suite.id,
            preset=suite.preset,
            dataset=suite.dataset,
            seeds=suite.seeds or 1,
            status=status,  # type: ignore[arg-type]
            created_at=suite.created_at,
            experiments=[
                SuiteExperiment(
                    role=e.role or "", replicate=e.replicate or 0, experiment=ExperimentOut.of(e)
                )
                for e in suite.experiments
            ],
            report=SuiteReport(
                status=suite.report_status,  # type: ignore[arg-type]
                error=suite.report_error,
                url=f"/suites/{suite.id}/report/index.html" if ready else None,
                files=suite.report_files or [],
            ),
        )


class ReferenceOut(BaseModel):
    description: str = Field(
        description="What the null model or control is and how it was obtained."
    )
    band: list[float] = Field(description="Its 95% band (mean of the seeds' bands).")
    bands: list[list[float]] = Field(default_factory=list, description="Each seed's band.")
    mean: float = Field(description="Mean of the reference's samples.")
    samples: int = Field(description="Samples the band was estimated from.")


class ClaimTestOut(BaseModel):
    name: str = Field(description="The statistic tested.")
    description: str = Field(description="What the statistic is, in words.")
    direction: Literal["above", "below"] = Field(
        description="Where the claim puts the statistic relative to the band."
    )
    bound: float | None = Field(description="The band's edge the value must pass.")
    value: float | None = Field(description="Mean over the seeds.")
    interval: list[float] | None = Field(description="95% interval of the mean (2+ seeds).")
    values: list[float | None] = Field(description="The statistic for each seed.")
    null: ReferenceOut | None = Field(
        default=None, description="The null model, if the test has one."
    )
    control: ReferenceOut | None = Field(
        default=None, description="The control experiment, if the test has one."
    )
    tolerance: ReferenceOut | None = Field(
        default=None, description="The tolerance, if the test compares against one."
    )
    passed: int = Field(description="Seeds whose value lies beyond the band.")
    seeds: int = Field(description="Seeds measured.")


class Stability(BaseModel):
    seeds: int = Field(description="Seeds measured.")
    agree: int = Field(description="Seeds whose verdict is the one shown.")
    verdicts: dict[str, int] = Field(description="How many seeds gave each verdict.")


class ClaimOut(BaseModel):
    id: str = Field(description="1, 2a, 2b, 3, 4 or 5.")
    paper: str = Field(description="The paper's own wording.")
    statement: str = Field(description="What is measured.")
    rule: str = Field(description="When the claim counts as supported, in words.")
    threshold: str = Field(description="The rule, as before (kept for older clients).")
    verdict: Literal["supported", "not supported", "not measured"] = Field(
        description="The majority over the seeds (ties: the more cautious)."
    )
    stability: Stability = Field(description="How far the seeds agree on the verdict.")
    seed_verdicts: list[str] = Field(description="Each seed's verdict, in seed order.")
    statistic: str | None = Field(
        default=None, description="The primary test's statistic (null if not measured)."
    )
    value: float | None = Field(default=None, description="The primary statistic's mean.")
    interval: list[float] | None = Field(
        default=None, description="95% interval of that mean (2+ seeds)."
    )
    values: list[float | None] | None = Field(
        default=None, description="The primary statistic for each seed."
    )
    null: ReferenceOut | None = Field(default=None, description="The primary test's null model.")
    control: ReferenceOut | None = Field(
        default=None, description="The primary test's control experiment."
    )
    tolerance: ReferenceOut | None = Field(
        default=None, description="The primary test's tolerance."
    )
    tests: list[ClaimTestOut] = Field(description="Every test; all must pass for `supported`.")
    measured: dict[str, Any] = Field(description="Further measured figures, by name.")
    note: str = Field(description="Why it is not measured, or a caveat (empty if none).")


class ClaimsOut(BaseModel):
    suite_id: uuid.UUID = Field(description="The suite whose report this is.")
    claims: list[ClaimOut] = Field(description="The paper's claims: 1, 2a, 2b, 3, 4, 5.")


class LineOut(BaseModel):
    alphas: list[float] = Field(description="Positions on the line: 0 at `a`, 1 at `b`.")
    train_loss: list[float] = Field(description="Mean train loss at each alpha (nats).")
    test_loss: list[float] = Field(description="Mean test loss at each alpha (nats).")


class SnapshotRef(BaseModel):
    run: int
    epoch: int


class BarrierLineOut(BaseModel):
    kind: Literal["pair", "control"] = Field(
        description="`pair`: two runs' final solutions; `control`: one run's final solution and "
        "its own earlier snapshot at about the runs' mean separation."
    )
    a: SnapshotRef = Field(description="The line's start.")
    b: SnapshotRef = Field(description="The line's end.")
    distance: float = Field(description="Euclidean distance between `a` and `b`.")
    train_barrier: float = Field(
        description="Max over the line of the train loss minus the straight interpolation of "
        "its end losses (nats)."
    )
    test_barrier: float = Field(description="The same barrier on the test loss (nats).")
    disagreement: float = Field(
        description="Share of test examples the two ends classify differently."
    )
    line: LineOut = Field(description="The losses along the line.")


class BarriersOut(BaseModel):
    experiment_id: uuid.UUID
    status: Literal["ready"] = Field(description="The barriers are computed.")
    lines: list[BarrierLineOut] = Field(description="Every pair of runs, then the controls.")


class BarriersPending(BaseModel):
    experiment_id: uuid.UUID
    status: Literal["queued"] = Field(description="A worker computes them: ask again later.")
    detail: str = Field(description="What is happening, in words.")


# --------------------------------------------------------------------------- across experiments


class SelectionIn(BaseModel):
    """Snapshots of one experiment: the given runs at the given epochs (default: all)."""

    model_config = ConfigDict(extra="forbid")

    experiment: uuid.UUID = Field(description="An experiment of yours.")
    runs: list[BoundedInt] | None = Field(
        default=None, max_length=64, description="Runs to include; all by default."
    )
    epochs: list[BoundedInt] | None = Field(
        default=None, max_length=10_000, description="Epochs to include; all by default."
    )


class AnalysisIn(BaseModel):
    """An analysis of snapshots from several experiments with the same parameter layout."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["pca", "distances", "barriers"] = Field(
        description="`pca`: one joint PCA basis; `distances`: the matrix of distances between "
        "every pair of selected snapshots; `barriers`: loss barriers between every two selected "
        "runs' last selected snapshots (experiments the service trained, one model and data set)."
    )
    selection: list[SelectionIn] = Field(
        min_length=1, max_length=32, description="One entry per experiment (each at most once)."
    )
    components: int = Field(default=2, ge=1, le=64, description="PCA only: components.")

    def to_request(self) -> joint.Request:
        return joint.Request(
            self.kind,
            tuple(
                joint.Part(
                    s.experiment,
                    None if s.runs is None else tuple(sorted(set(s.runs))),
                    None if s.epochs is None else tuple(sorted(set(s.epochs))),
                )
                for s in self.selection
            ),
            self.components,
        )


ANALYSIS_EXAMPLES = {
    "pca": {
        "summary": "Joint PCA of two experiments' final snapshots",
        "value": {
            "kind": "pca",
            "components": 2,
            "selection": [
                {"experiment": "0b7c3c1e-6f6a-4f3e-9a39-1d2b7e2f8c10", "epochs": [20]},
                {"experiment": "5d2e9f4a-2c3b-4b8e-8f61-7a9c0d1e2f30", "runs": [0, 1]},
            ],
        },
    },
    "barriers": {
        "summary": "Barriers between the final solutions of two trained experiments",
        "value": {
            "kind": "barriers",
            "selection": [
                {"experiment": "0b7c3c1e-6f6a-4f3e-9a39-1d2b7e2f8c10"},
                {"experiment": "5d2e9f4a-2c3b-4b8e-8f61-7a9c0d1e2f30"},
            ],
        },
    },
    "distances": {
        "summary": "Distances between every snapshot of two experiments",
        "value": {
            "kind": "distances",
            "selection": [
                {"experiment": "0b7c3c1e-6f6a-4f3e-9a39-1d2b7e2f8c10"},
                {"experiment": "5d2e9f4a-2c3b-4b8e-8f61-7a9c0d1e2f30"},
            ],
        },
    },
}


class JointSnapshot(BaseModel):
    experiment: uuid.UUID = Field(description="The experiment of this row.")
    run: int = Field(description="Its run within that experiment.")
    epoch: int = Field(description="Its epoch.")

    @classmethod
    def of(cls, label: joint.Label) -> JointSnapshot:
        return cls(experiment=label.experiment, run=label.run, epoch=label.epoch)


class JointPCA(BaseModel):
    components: int = Field(description="Number of components.")
    explained_variance: list[float] = Field(description="Per component (divisor n - 1).")
    explained_variance_ratio: list[float] = Field(description="Per component, of the total.")
    cumulative_variance_ratio: list[float] = Field(description="Running sum of the ratios.")
    coordinates: list[list[float]] = Field(
        description="One row per selected snapshot (in `snapshots` order), one column per component."
    )

    @classmethod
    def of(cls, result: PCAResult) -> JointPCA:
        return cls(
            components=int(result.coordinates.shape[1]),
            explained_variance=result.explained_variance.tolist(),
            explained_variance_ratio=result.explained_variance_ratio.tolist(),
            cumulative_variance_ratio=result.cumulative_variance_ratio.tolist(),
            coordinates=result.coordinates.tolist(),
        )


class JointDistances(BaseModel):
    distances: list[list[float]] = Field(description="Euclidean distances, `snapshots` order.")
    cosine_similarity: list[list[float]] = Field(description="Cosine similarities.")
    distance_from_origin: list[float] = Field(description="Norm of each snapshot.")

    @classmethod
    def of(cls, matrix: joint.DistanceMatrix) -> JointDistances:
        return cls(
            distances=matrix.distances.tolist(),
            cosine_similarity=matrix.cosine_similarity.tolist(),
            distance_from_origin=matrix.distance_from_origin.tolist(),
        )


class AnalysisOut(BaseModel):
    id: uuid.UUID = Field(description="The same request gets the same id.")
    kind: Literal["pca", "distances", "barriers"] = Field(description="What was asked.")
    status: Literal["running", "succeeded"] = Field(description="`running`: poll `links.self`.")
    complete: bool = Field(description="False while any selected experiment is still running.")
    snapshots: list[JointSnapshot] = Field(description="The rows, in order.")
    pca: JointPCA | None = Field(default=None, description="For `pca`, once succeeded.")
    distances: JointDistances | None = Field(
        default=None, description="For `distances`, once succeeded."
    )
    barriers: JointBarriers | None = Field(
        default=None, description="For `barriers`, once succeeded."
    )
    links: dict[str, str] = Field(description="`self`: where to poll.")


class WorkerOut(BaseModel):
    """A live worker, as it advertised itself at its last heartbeat."""

    id: str = Field(description="Celery hostname, e.g. `celery@gpu-node-1`.")
    queues: list[str] = Field(description="Queues it consumes.")
    device: Literal["cpu", "cuda"] = Field(description="Where its `gpu`-queue tasks train.")
    device_name: str = Field(description="GPU name, or the CPU's.")
    torch_version: str = Field(description="`torch.__version__` of the worker.")
    datasets: dict[str, list[int]] = Field(
        description="Data sets it can load: name -> [training, test] examples.",
        examples=[{"digits": [1347, 450], "mnist": [60000, 10000]}],
    )
    started_at: datetime
    seen_at: datetime = Field(description="Its last heartbeat.")


class WorkerList(BaseModel):
    items: list[WorkerOut] = Field(description="Live workers, by id.")
    ttl_seconds: float = Field(
        description="A worker is listed while its last heartbeat is this recent "
        "(`WEIGHTSPACE_WORKER_TTL`)."
    )
