"""Typed shapes of the service's JSON documents, as plain dicts (no pydantic on the client side).

Generated from openapi/openapi.json by scripts/client_types.py: do not edit it by hand. After
the document changes (``python scripts/openapi.py``), regenerate it with
``python scripts/client_types.py``; tests/unit/test_client_types.py fails while it drifts.

Keys marked ``NotRequired`` may be absent; every other key is present, possibly ``null``.
Timestamps are ISO 8601 strings and ids are UUID strings.

Why one file of ~870 lines: it mirrors the document's schemas one for one, and nobody edits it.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

# -- enums the client names (its CLI's choices among them) ------------------------------------
#: ``ExperimentOut.status`` in openapi/openapi.json.
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
#: ``SuiteReport.status`` in openapi/openapi.json.
ReportStatus = Literal["pending", "building", "ready", "failed"]
#: ``ClaimOut.verdict`` in openapi/openapi.json.
Verdict = Literal["supported", "not supported", "not measured"]
#: ``PresetExperimentOut.role`` in openapi/openapi.json.
Role = Literal[
    "trajectory", "independent-inits", "shared-init", "shared-init-masks", "pretrained-clones"
]
#: ``SuiteIn.preset`` in openapi/openapi.json.
PresetName = Literal["quick", "paper"]
#: ``DatasetSpec.name`` in openapi/openapi.json.
DatasetName = Literal["mnist", "fashion-mnist", "digits"]
#: ``create_experiment(queue)`` in openapi/openapi.json.
QueueName = Literal["gpu", "cpu"]
#: ``AnalysisIn.kind`` in openapi/openapi.json.
AnalysisKind = Literal["pca", "distances", "barriers"]
#: ``LandscapeOut.normalisation`` in openapi/openapi.json.
Normalisation = Literal["none", "filter"]


class FieldError(TypedDict):
    # Dotted path of the offending field, e.g. `optimizer.lr` or `query.components`.
    field: str
    # What is wrong with it.
    message: str


class Problem(TypedDict):
    """An RFC 9457 problem document."""

    # What went wrong with this request.
    detail: NotRequired[str | None]
    # One entry per invalid field (422 only).
    errors: NotRequired[list[FieldError] | None]
    # The request's path.
    instance: NotRequired[str | None]
    # The request's id (also in the `X-Request-ID` header and the server's log).
    request_id: NotRequired[str | None]
    # The HTTP status code.
    status: int
    # A short summary of the kind of problem.
    title: str
    # A URI naming the kind of problem.
    type: NotRequired[str]


class Metrics(TypedDict):
    """Losses and accuracies (dropout off). Trained experiments have all four; uploaded snapshots
    have whatever metrics were sent with them (any names, as extra fields).
    """

    # Accuracy on the test set.
    test_accuracy: NotRequired[float | None]
    # Mean loss on the test set.
    test_loss: NotRequired[float | None]
    # Accuracy on the training set.
    train_accuracy: NotRequired[float | None]
    # Mean loss on the training set.
    train_loss: NotRequired[float | None]


class Seeds(TypedDict):
    # Seed of the data order; null for uploaded runs.
    data: int | None
    # Seed of the dropout masks (null for runs submitted before it had its own).
    dropout: NotRequired[int | None]
    # Seed of the initial weights (of the pretrained model, for clones); null for uploaded runs.
    init: int | None
    # Seed of the pretraining's data order, when pretrain_epochs > 0.
    pretrain: int | None
    # Seed of the pretraining's dropout masks.
    pretrain_dropout: NotRequired[int | None]


class Run(TypedDict):
    # What the latest snapshot was computed with: torch version, device, CPU instruction set, thread
    # count, determinism settings.
    environment: NotRequired[dict[str, str] | None]
    # Latest completed (or uploaded) epoch.
    epoch: int | None
    # The run's last epoch; for uploaded runs, null until the experiment is completed.
    final_epoch: int | None
    # When it ended (null until then).
    finished_at: str | None
    # Losses and accuracies at the latest snapshot.
    metrics: Metrics | None
    # Run (replica) index within its experiment, 0..replicas-1.
    run: int
    # The seeds the run was derived with (from the spec's `seed`).
    seeds: Seeds
    # When work on it started (null until then).
    started_at: str | None
    # The run's own progress.
    status: Status
    # Mean minibatch loss of the latest epoch (dropout on).
    train_loss: float | None
    # When it last changed.
    updated_at: str


class ExperimentLinks(TypedDict):
    # Distances between its runs at one epoch.
    distances: str
    # PCA of its snapshots.
    pca: str
    # The suite's report (once built).
    report: NotRequired[str | None]
    # Its runs and their progress.
    runs: str
    # This experiment.
    self: str
    # The suite this experiment belongs to, if any.
    suite: NotRequired[str | None]
    # Per run and snapshot: step lengths, path, straightness.
    trajectory: str


class DamagedSnapshot(TypedDict):
    # Training epoch (0: before the first step; clones start at `pretrain_epochs`).
    epoch: int
    # Why it cannot be used: missing object, checksum mismatch.
    reason: str
    # Run (replica) index within its experiment, 0..replicas-1.
    run: int


class Experiment(TypedDict):
    # When it was created (ISO 8601, UTC).
    created_at: str
    # Snapshots found missing or corrupt (analyses that need them answer 409).
    damaged_snapshots: NotRequired[list[DamagedSnapshot]]
    # Why it failed or was cancelled (null otherwise): the server's cause.
    error: str | None
    # When it ended (null until then).
    finished_at: str | None
    # The experiment's id.
    id: str
    # Where its resources are.
    links: ExperimentLinks
    # The spec's `name`, if it gave one.
    name: str | None
    # Its note (`PATCH`).
    note: NotRequired[str | None]
    # Worker queue (`upload` for uploaded experiments).
    queue: str
    # Its role in the suite (a preset experiment).
    role: NotRequired[str | None]
    # Its runs (replicas), in run order.
    runs: list[Run]
    # `train`: the service trains it from `spec`; `upload`: its snapshots are uploaded.
    source: NotRequired[Literal["train", "upload"]]
    # The spec as validated, defaults filled in.
    spec: dict[str, Any]
    # When work on it started (null until then).
    started_at: str | None
    # `queued`, `running`, then `succeeded`, `failed` or `cancelled`; the last three are final
    # (until a retry).
    status: Status
    # The suite it belongs to, if any.
    suite_id: NotRequired[str | None]
    # Its tags, sorted (`PATCH`).
    tags: NotRequired[list[str]]
    # When it last changed.
    updated_at: str
    # Submission responses only: why the work may not start soon, e.g. that no live worker consumes
    # the queue (it stays queued until one starts).
    warnings: NotRequired[list[str]]


class ExperimentPage(TypedDict):
    # This page's experiments, newest first.
    items: list[Experiment]
    # Pass as `cursor` for the next page; null on the last page.
    next_cursor: str | None


class SnapshotInfo(TypedDict):
    # When it was created (ISO 8601, UTC).
    created_at: str
    # Why the stored file cannot be used, if a reader found out.
    damaged: NotRequired[str | None]
    # Training epoch (0: before the first step; clones start at `pretrain_epochs`).
    epoch: int
    # Where to download the safetensors file.
    href: str
    # Losses and accuracies at this snapshot.
    metrics: Metrics
    # Length of the flat parameter vector.
    parameters: int
    # Run (replica) index within its experiment, 0..replicas-1.
    run: int
    # sha256 of the safetensors file.
    sha256: str
    # Bytes of the safetensors file.
    size: int


class PCAPoint(TypedDict):
    # The snapshot's coordinate on each component.
    coordinates: list[float]
    # Training epoch (0: before the first step; clones start at `pretrain_epochs`).
    epoch: int
    # Run (replica) index within its experiment, 0..replicas-1.
    run: int


class PCA(TypedDict):
    # False while the experiment is still running: the answer covers what exists.
    complete: bool
    # Number of components.
    components: int
    # Running sum of the ratios.
    cumulative_variance_ratio: list[float]
    # The experiment's id.
    experiment_id: str
    # Per component (divisor n - 1).
    explained_variance: list[float]
    # Per component, of the total.
    explained_variance_ratio: list[float]
    # One per snapshot, by run, then epoch.
    points: list[PCAPoint]


class Distances(TypedDict):
    # False while the experiment is still running: the answer covers what exists.
    complete: bool
    # Cosine similarities between the runs' snapshots at `epoch`.
    cosine_similarity: list[list[float]]
    # Distance of each run's snapshot from the run's first snapshot.
    distance_from_init: list[float]
    # Norm of each run's snapshot.
    distance_from_origin: list[float]
    # Euclidean distances between the runs' snapshots at `epoch`.
    distances: list[list[float]]
    # The epoch compared (the final one unless asked).
    epoch: int
    # The experiment's id.
    experiment_id: str
    # The runs compared: the rows and columns, in order.
    runs: list[int]


class Gradient(TypedDict):
    """The full-batch gradient at a snapshot (train set, dropout off), recorded at capture."""

    # Chunks of the train set the sign-flip null flips.
    chunks: int
    # Norm of the gradient of the mean train loss.
    norm: float
    # Norm of the gradient of the objective SGD minimises: mean train loss + weight_decay / 2 *
    # |w|^2.
    norm_with_weight_decay: float
    # 95% band of `norm_with_weight_decay` under the sign-flip null (what the norm is when the
    # expected gradient is zero: a critical point).
    null_band: list[float]
    # 95% band of `norm` (no weight decay) under the sign-flip null.
    null_band_without_weight_decay: list[float]


class TrajectoryPoint(TypedDict):
    # Distance from the run's first snapshot.
    displacement: float
    # Norm of the parameter vector.
    distance_from_origin: float
    # Distance from the previous snapshot / epochs between them (null at the first).
    distance_per_epoch: float | None
    # Training epoch (0: before the first step; clones start at `pretrain_epochs`).
    epoch: int
    # Full-batch gradient norms and their null (null if not recorded).
    gradient: Gradient | None
    # Absolute change of the train loss since the previous snapshot, per epoch.
    loss_change_per_epoch: float | None
    # Losses and accuracies at this snapshot.
    metrics: Metrics
    # Sum of the step lengths so far.
    path_length: float
    # Distance from the previous snapshot (0 at the first).
    step_length: float
    # `displacement / path_length` (1.0 where the path length is 0).
    straightness: float


class RunTrajectory(TypedDict):
    # The run's snapshots, in epoch order.
    points: list[TrajectoryPoint]
    # Run (replica) index within its experiment, 0..replicas-1.
    run: int


class Trajectory(TypedDict):
    # False while the experiment is still running: the answer covers what exists.
    complete: bool
    # The experiment's id.
    experiment_id: str
    # One per run, in run order.
    runs: list[RunTrajectory]


class GramPending(TypedDict):
    # What is happening, in words.
    detail: str
    # The experiment's id.
    experiment_id: str
    # Too large to compute in the API: workers compute the snapshots' Gram matrix, sharded over
    # parameters; ask again at `Location` later.
    status: Literal["queued"]


class Health(TypedDict):
    # The process answers.
    status: Literal["ok"]


class Readiness(TypedDict):
    # `ok`, or the error, per dependency: database, broker, store.
    checks: dict[str, str]
    # `ready` when every dependency answers (else with HTTP 503).
    status: Literal["ready", "unavailable"]


class PresetExperiment(TypedDict):
    # Which of the paper's experiments it is.
    role: Role
    # The spec a suite submits for it.
    spec: dict[str, Any]
    # What it tests, in words.
    title: str


class Preset(TypedDict):
    # The data set these specs use (the preset's default unless `dataset` was given).
    dataset: str
    # What it runs and how long it takes.
    description: str
    # Its experiments (1, 2, 3, 3b and 4 in the paper's numbering).
    experiments: list[PresetExperiment]
    # The preset's name (`quick` or `paper`).
    name: str


class PresetList(TypedDict):
    # Every preset.
    items: list[Preset]


class SuiteExperiment(TypedDict):
    # The experiment and its progress.
    experiment: Experiment
    # Its seed index in the suite (0..seeds-1).
    replicate: NotRequired[int]
    # Which of the preset's experiments it is.
    role: str


class SuiteReport(TypedDict):
    # Why the report could not be built (null otherwise).
    error: str | None
    # The report's files (relative names under `/suites/{id}/report/`), once ready.
    files: list[str]
    # The report is built once every experiment has ended.
    status: ReportStatus
    # The HTML report, once ready.
    url: str | None


class Suite(TypedDict):
    # When it was created (ISO 8601, UTC).
    created_at: str
    # The data set its experiments use.
    dataset: str
    # Its experiments, by role and seed.
    experiments: list[SuiteExperiment]
    # The suite's id.
    id: str
    # The preset it runs.
    preset: str
    # The report's progress and files.
    report: SuiteReport
    # Sets of derived seeds the experiments repeat with.
    seeds: NotRequired[int]
    # Summarises its experiments' statuses.
    status: Status
    # Submission responses only: why the work may not start soon, e.g. that no live worker consumes
    # the queue (it stays queued until one starts).
    warnings: NotRequired[list[str]]


class SuitePage(TypedDict):
    # This page's suites, newest first.
    items: list[Suite]
    # Pass as `cursor` for the next page; null on the last page.
    next_cursor: str | None


class ClaimReference(TypedDict):
    # Its 95% band (mean of the seeds' bands).
    band: list[float]
    # Each seed's band.
    bands: NotRequired[list[list[float]]]
    # What the null model or control is and how it was obtained.
    description: str
    # Mean of the reference's samples.
    mean: float
    # Samples the band was estimated from.
    samples: int


class ClaimEffect(TypedDict):
    # 95% interval of the effect: over 2+ seeds the t-interval of the mean, for one seed the effect
    # against each edge of the reference's band.
    interval: list[float]
    # The least effect the rule accepts as support.
    minimum: float
    # How far the statistic lies from the reference's mean, positive in the claimed direction (mean
    # over the seeds).
    value: float
    # The effect for each seed.
    values: NotRequired[list[float] | None]


class ClaimTest(TypedDict):
    # The band's edge the value must pass.
    bound: float | None
    # The control experiment, if the test has one.
    control: NotRequired[ClaimReference | None]
    # What the statistic is, in words.
    description: str
    # Where the claim puts the statistic relative to the band.
    direction: Literal["above", "below"]
    # The effect size with its interval and least effect.
    effect: NotRequired[ClaimEffect | None]
    # 95% interval of the mean (2+ seeds).
    interval: list[float] | None
    # The statistic tested.
    name: str
    # The null model, if the test has one.
    null: NotRequired[ClaimReference | None]
    # Seeds whose value lies beyond the band.
    passed: int
    # Seeds measured.
    seeds: int
    # The tolerance, if the test compares against one.
    tolerance: NotRequired[ClaimReference | None]
    # Mean over the seeds.
    value: float | None
    # The statistic for each seed.
    values: list[float | None]


class ClaimStability(TypedDict):
    # Seeds whose verdict is the one shown.
    agree: int
    # Seeds measured.
    seeds: int
    # How many seeds gave each verdict.
    verdicts: dict[str, int]


class Claim(TypedDict):
    # Tests reported beside the verdict without deciding it (another reference or variant: e.g. the
    # random walks beside claim 2b's straight line).
    beside: NotRequired[list[ClaimTest]]
    # The primary test's control experiment.
    control: NotRequired[ClaimReference | None]
    # 1, 2a, 2b, 3, 4 or 5.
    id: str
    # 95% interval of that mean (2+ seeds).
    interval: NotRequired[list[float] | None]
    # Further measured figures, by name.
    measured: dict[str, Any]
    # Why it is not measured, or a caveat (empty if none).
    note: str
    # The primary test's null model.
    null: NotRequired[ClaimReference | None]
    # The paper's own wording.
    paper: str
    # When the claim counts as supported, in words.
    rule: str
    # Each seed's verdict, in seed order.
    seed_verdicts: list[str]
    # How far the seeds agree on the verdict.
    stability: ClaimStability
    # What is measured.
    statement: str
    # The primary test's statistic (null if not measured).
    statistic: NotRequired[str | None]
    # Every test; all must pass for `supported`.
    tests: list[ClaimTest]
    # The rule, as before (kept for older clients).
    threshold: str
    # The primary test's tolerance.
    tolerance: NotRequired[ClaimReference | None]
    # The primary statistic's mean.
    value: NotRequired[float | None]
    # The primary statistic for each seed.
    values: NotRequired[list[float | None] | None]
    # The majority over the seeds (ties: the more cautious).
    verdict: Verdict


class Claims(TypedDict):
    # The paper's claims: 1, 2a, 2b, 3, 4, 5.
    claims: list[Claim]
    # The suite whose report this is.
    suite_id: str


class JointSnapshot(TypedDict):
    # Its epoch.
    epoch: int
    # The experiment of this row.
    experiment: str
    # Its run within that experiment.
    run: int


class JointPCA(TypedDict):
    # Number of components.
    components: int
    # One row per selected snapshot (in `snapshots` order), one column per component.
    coordinates: list[list[float]]
    # Running sum of the ratios.
    cumulative_variance_ratio: list[float]
    # Per component (divisor n - 1).
    explained_variance: list[float]
    # Per component, of the total.
    explained_variance_ratio: list[float]


class JointDistances(TypedDict):
    # Cosine similarities.
    cosine_similarity: list[list[float]]
    # Norm of each snapshot.
    distance_from_origin: list[float]
    # Euclidean distances, `snapshots` order.
    distances: list[list[float]]


class JointEnd(TypedDict):
    # Its epoch.
    epoch: int
    # Its experiment.
    experiment: str
    # Its run in that experiment.
    run: int


class JointLineLoss(TypedDict):
    # Positions along the line (0: `a`, 1: `b`).
    alphas: list[float]
    # Test loss at each position.
    test_loss: list[float]
    # Train loss at each position (dropout off).
    train_loss: list[float]


class JointBarrierLine(TypedDict):
    # Where the line starts.
    a: JointEnd
    # Where the line ends.
    b: JointEnd
    # Share of test examples the two ends classify differently.
    disagreement: float
    # Euclidean distance between the ends.
    distance: float
    # `pair`: two selected runs' last selected snapshots; `control`: one run's last selected
    # snapshot and its own earlier selected snapshot at about the pairs' mean separation.
    kind: Literal["pair", "control"]
    # The losses along the line.
    line: JointLineLoss
    # Likewise for the test loss.
    test_barrier: float
    # Max over the line of the train loss minus the straight interpolation of its end losses (nats).
    train_barrier: float


class JointBarriers(TypedDict):
    # Every pair, then the controls.
    lines: list[JointBarrierLine]


class Analysis(TypedDict):
    # For `barriers`, once succeeded.
    barriers: NotRequired[JointBarriers | None]
    # False while any selected experiment is still running.
    complete: bool
    # For `distances`, once succeeded.
    distances: NotRequired[JointDistances | None]
    # The same request gets the same id.
    id: str
    # What was asked.
    kind: AnalysisKind
    # `self`: where to poll.
    links: dict[str, str]
    # For `pca`, once succeeded.
    pca: NotRequired[JointPCA | None]
    # The rows, in order.
    snapshots: list[JointSnapshot]
    # `running`: poll `links.self`.
    status: Literal["running", "succeeded"]


class Landscape(TypedDict):
    """Train and test loss on a grid over the PC1-PC2 plane of one run's trajectory."""

    # Grid coordinates along PC1 (symmetric about the final snapshot, 0).
    alphas: list[float]
    # Grid coordinates along PC2.
    betas: list[float]
    # Epochs of the run's snapshots, in the order of `trajectory`.
    epochs: list[int]
    # `service`: a worker evaluated the grid with the experiment's model; `client`: the owner's
    # client evaluated it with its own model (`PUT /experiments/{id}/landscape`).
    evaluated_by: NotRequired[Literal["service", "client"]]
    # The experiment.
    experiment_id: str
    # Share of the run's variance explained by PC1 and PC2.
    explained_variance_ratio: list[float]
    # `none`: the axes are the unit principal directions, and `trajectory` is the orthogonal
    # projection (the snapshots' PCA scores minus the final snapshot's).
    normalisation: Normalisation
    # The run whose trajectory spans the plane.
    run: int
    # Always `ready` here.
    status: Literal["ready"]
    # Test examples, likewise.
    test_examples: int | None
    # Mean test loss, like `train_loss` (null when a client evaluated the plane on one data set
    # only).
    test_loss: list[list[float]] | None
    # Train examples the losses average over (the first ones, at most 2048).
    train_examples: int
    # Mean train loss (dropout off) at `centre + alphas[i] d1 + betas[j] d2`, indexed `[j][i]` (one
    # row per beta).
    train_loss: list[list[float]]
    # Per snapshot (in `epochs` order) its (PC1, PC2) coordinates; the last is (0, 0).
    trajectory: list[list[float]]


class LandscapePending(TypedDict):
    # What is happening.
    detail: str
    # The experiment.
    experiment_id: str
    # A worker computes the plane; poll `Location`.
    status: Literal["queued"]


class SnapshotRef(TypedDict):
    # Training epoch (0: before the first step; clones start at `pretrain_epochs`).
    epoch: int
    # Run (replica) index within its experiment, 0..replicas-1.
    run: int


class Line(TypedDict):
    # Positions on the line: 0 at `a`, 1 at `b`.
    alphas: list[float]
    # Mean test loss at each alpha (nats).
    test_loss: list[float]
    # Mean train loss at each alpha (nats).
    train_loss: list[float]


class BarrierLine(TypedDict):
    # The line's start.
    a: SnapshotRef
    # The line's end.
    b: SnapshotRef
    # Share of test examples the two ends classify differently.
    disagreement: float
    # Euclidean distance between `a` and `b`.
    distance: float
    # `pair`: two runs' final solutions; `control`: one run's final solution and its own earlier
    # snapshot at about the runs' mean separation.
    kind: Literal["pair", "control"]
    # The losses along the line.
    line: Line
    # The same barrier on the test loss (nats).
    test_barrier: float
    # Max over the line of the train loss minus the straight interpolation of its end losses (nats).
    train_barrier: float


class Barriers(TypedDict):
    # The experiment's id.
    experiment_id: str
    # Every pair of runs, then the controls.
    lines: list[BarrierLine]
    # The barriers are computed.
    status: Literal["ready"]


class BarriersPending(TypedDict):
    # What is happening, in words.
    detail: str
    # The experiment's id.
    experiment_id: str
    # A worker computes them: ask again later.
    status: Literal["queued"]


class MetricValues(TypedDict):
    # The replay's value, likewise.
    replayed: float | None
    # The stored snapshot's value (null if absent or not finite).
    stored: float | None


class Difference(TypedDict):
    """The first stored snapshot that the replay does not reproduce bitwise."""

    # What differs, in words.
    detail: str
    # Parameters whose bits differ (0 for `metrics` and `unreadable`).
    differing_values: int
    # Training epoch (0: before the first step; clones start at `pretrain_epochs`).
    epoch: int
    # The largest absolute difference among them (null if none is finite).
    max_abs_difference: float | None
    # The metrics whose values differ, by name.
    metrics: dict[str, MetricValues]
    # `parameters`: the parameter vector's bits differ (the metrics may too); `metrics`: only the
    # metrics; `unreadable`: the stored file is missing or its bytes do not match their checksum.
    reason: Literal["parameters", "metrics", "unreadable"]
    # What the replay computed with.
    replay_environment: dict[str, str]
    # Run (replica) index within its experiment, 0..replicas-1.
    run: int
    # What the stored snapshot was computed with (torch version, device, CPU instruction set,
    # threads; empty for an unreadable file).
    stored_environment: dict[str, str]


class Verification(TypedDict):
    """The latest verification of a scope: the replay's verdict and, if any, what differs."""

    # The snapshots reproduced bitwise, in the order the replay reached them.
    compared: list[SnapshotRef]
    # The first snapshot not reproduced (null when `identical`).
    difference: Difference | None
    # What the replay computed with.
    environment: dict[str, str]
    # The epoch asked for (null: the final epoch).
    epoch: int | None
    # The experiment's id.
    experiment_id: str
    # The run asked for (null: every run).
    run: int | None
    # The runs replayed.
    runs: list[int]
    # Always `ready` here.
    status: Literal["ready"]
    # The epoch the replay ran to.
    until_epoch: int
    # `identical`: every compared snapshot was reproduced bit for bit (parameters and metrics);
    # `differs`: see `difference`.
    verdict: Literal["identical", "differs"]
    # When the replay finished (ISO 8601, UTC).
    verified_at: str


class VerificationPending(TypedDict):
    # What is happening.
    detail: str
    # The experiment's id.
    experiment_id: str
    # A worker replays the runs; poll `Location`.
    status: Literal["queued"]


class Worker(TypedDict):
    """A live worker, as it advertised itself at its last heartbeat."""

    # Data sets it can load: name -> [training, test] examples.
    datasets: dict[str, list[int]]
    # Where its `gpu`-queue tasks train.
    device: Literal["cpu", "cuda"]
    # GPU name, or the CPU's.
    device_name: str
    # Celery hostname, e.g. `celery@gpu-node-1`.
    id: str
    # Queues it consumes.
    queues: list[str]
    # Its last heartbeat.
    seen_at: str
    # When work on it started (null until then).
    started_at: str
    # `torch.__version__` of the worker.
    torch_version: str


class WorkerList(TypedDict):
    # Live workers, by id.
    items: list[Worker]
    # A worker is listed while its last heartbeat is this recent (`WEIGHTSPACE_WORKER_TTL`).
    ttl_seconds: float


#: The schema (``components.schemas``) each TypedDict above mirrors.
OPENAPI_SCHEMAS: dict[str, str] = {
    "FieldError": "FieldError",
    "Problem": "Problem",
    "Metrics": "Metrics",
    "Seeds": "Seeds",
    "Run": "RunOut",
    "ExperimentLinks": "ExperimentLinks",
    "DamagedSnapshot": "DamagedSnapshotOut",
    "Experiment": "ExperimentOut",
    "ExperimentPage": "ExperimentPage",
    "SnapshotInfo": "SnapshotOut",
    "PCAPoint": "PCAPoint",
    "PCA": "PCAOut",
    "Distances": "DistancesOut",
    "Gradient": "GradientOut",
    "TrajectoryPoint": "TrajectoryPoint",
    "RunTrajectory": "RunTrajectory",
    "Trajectory": "TrajectoryOut",
    "GramPending": "GramPending",
    "Health": "Health",
    "Readiness": "Readiness",
    "PresetExperiment": "PresetExperimentOut",
    "Preset": "PresetOut",
    "PresetList": "PresetList",
    "SuiteExperiment": "SuiteExperiment",
    "SuiteReport": "SuiteReport",
    "Suite": "SuiteOut",
    "SuitePage": "SuitePage",
    "ClaimReference": "ReferenceOut",
    "ClaimEffect": "EffectOut",
    "ClaimTest": "ClaimTestOut",
    "ClaimStability": "Stability",
    "Claim": "ClaimOut",
    "Claims": "ClaimsOut",
    "JointSnapshot": "JointSnapshot",
    "JointPCA": "JointPCA",
    "JointDistances": "JointDistances",
    "JointEnd": "JointEnd",
    "JointLineLoss": "JointLineLoss",
    "JointBarrierLine": "JointBarrierLine",
    "JointBarriers": "JointBarriers",
    "Analysis": "AnalysisOut",
    "Landscape": "LandscapeOut",
    "LandscapePending": "LandscapePending",
    "SnapshotRef": "SnapshotRef",
    "Line": "LineOut",
    "BarrierLine": "BarrierLineOut",
    "Barriers": "BarriersOut",
    "BarriersPending": "BarriersPending",
    "MetricValues": "MetricValues",
    "Difference": "DifferenceOut",
    "Verification": "VerificationOut",
    "VerificationPending": "VerificationPending",
    "Worker": "WorkerOut",
    "WorkerList": "WorkerList",
}
