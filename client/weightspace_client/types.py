"""Typed shapes of the service's JSON documents, as plain dicts (no pydantic on the client side).

They mirror the service's ``weightspace_service.schemas`` package (see ``openapi/openapi.json``).
Keys marked ``NotRequired`` may be absent; every other key is present, possibly ``null``.
Timestamps are ISO 8601 strings and ids are UUID strings.

Why one module of ~600 lines: one TypedDict per response schema of openapi/openapi.json,
declarations only, mapped in OPENAPI_SCHEMAS and checked against the document by a test.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]

#: An experiment in one of these states will not change any more.
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class FieldError(TypedDict):
    """One entry of a problem document's ``errors`` list."""

    field: str  # dotted path, e.g. "optimizer.lr" or "query.components"
    message: str


class Problem(TypedDict):
    """An RFC 9457 problem document (``application/problem+json``)."""

    type: NotRequired[str]  # "about:blank" when absent
    title: str
    status: int
    detail: NotRequired[str | None]
    instance: NotRequired[str | None]
    errors: NotRequired[list[FieldError] | None]
    request_id: NotRequired[str | None]  # also in the X-Request-ID header and the server's log


class Metrics(TypedDict):
    """Trained experiments have all four; uploaded snapshots whatever metrics came with them
    (other names appear as extra keys)."""

    train_loss: NotRequired[float | None]
    train_accuracy: NotRequired[float | None]
    test_loss: NotRequired[float | None]
    test_accuracy: NotRequired[float | None]


class Seeds(TypedDict):
    init: int | None  # initial weights (of the pretrained model, for clones); null: uploaded
    data: int | None  # data order; null for uploaded runs
    dropout: NotRequired[int | None]  # dropout masks (null for runs from before it had its own)
    pretrain: int | None  # pretraining's data order, when pretrain_epochs > 0
    pretrain_dropout: NotRequired[int | None]  # pretraining's dropout masks


class Run(TypedDict):
    """One replica of an experiment and its progress."""

    run: int
    status: Status
    epoch: int | None  # latest completed epoch
    final_epoch: int | None  # null for an uploaded run until its experiment is completed
    train_loss: float | None  # mean minibatch loss of the latest epoch
    metrics: Metrics | None  # at the latest snapshot
    seeds: Seeds
    # What the latest snapshot was computed with: torch version, device, threads, determinism.
    environment: NotRequired[dict[str, str] | None]
    started_at: str | None
    finished_at: str | None
    updated_at: str


class ExperimentLinks(TypedDict):
    self: str
    runs: str
    pca: str
    distances: str
    trajectory: str
    suite: NotRequired[str | None]  # the suite the experiment belongs to, if any
    report: NotRequired[str | None]  # that suite's report page


class DamagedSnapshot(TypedDict):
    run: int
    epoch: int
    reason: str  # missing object, checksum mismatch


class Experiment(TypedDict):
    id: str
    name: str | None
    status: Status
    queue: str
    source: NotRequired[Literal["train", "upload"]]  # upload: its snapshots are uploaded
    spec: dict[str, Any]  # the ExperimentSpec (or upload spec), defaults filled in
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    updated_at: str
    runs: list[Run]
    suite_id: NotRequired[str | None]  # set for the experiments of a suite
    role: NotRequired[str | None]  # and their role in it (a preset experiment's)
    links: ExperimentLinks
    damaged_snapshots: NotRequired[list[DamagedSnapshot]]  # found missing or corrupt
    warnings: NotRequired[list[str]]  # on submission: e.g. no live worker consumes the queue
    tags: NotRequired[list[str]]  # sorted; set with PATCH (client.annotate)
    note: NotRequired[str | None]


class ExperimentPage(TypedDict):
    items: list[Experiment]
    next_cursor: str | None


class SnapshotInfo(TypedDict):
    """Metadata of one stored snapshot (a safetensors file of the flat parameter vector)."""

    run: int
    epoch: int
    parameters: int  # length of the flat parameter vector
    size: int  # bytes of the file
    sha256: str  # hex digest of the file's bytes
    metrics: Metrics
    created_at: str
    href: str  # where to download it
    damaged: NotRequired[str | None]  # why the file cannot be used, if a reader found out


class PCAPoint(TypedDict):
    run: int
    epoch: int
    coordinates: list[float]  # one per component


class PCA(TypedDict):
    """Joint PCA of a set of snapshots (scikit-learn's conventions; deterministic signs)."""

    experiment_id: str
    complete: bool  # false while the experiment runs: covers the snapshots that exist
    components: int
    explained_variance: list[float]
    explained_variance_ratio: list[float]
    cumulative_variance_ratio: list[float]
    points: list[PCAPoint]


class Distances(TypedDict):
    """The runs' snapshots at one epoch (the final one by default), compared."""

    experiment_id: str
    complete: bool
    epoch: int
    runs: list[int]
    distances: list[list[float]]  # len(runs) x len(runs), euclidean
    cosine_similarity: list[list[float]]
    distance_from_origin: list[float]  # per run
    distance_from_init: list[float]  # per run, from its own first snapshot


class Gradient(TypedDict):
    """The full-batch train gradient at a snapshot, beside its sign-flip null band."""

    norm: float  # of the mean train loss (dropout off)
    norm_with_weight_decay: float  # of the objective SGD minimises
    null_band: list[float]  # 95% band of norm_with_weight_decay at a critical point
    null_band_without_weight_decay: list[float]
    chunks: int


class TrajectoryPoint(TypedDict):
    epoch: int
    metrics: Metrics
    step_length: float
    path_length: float
    displacement: float  # from the run's first snapshot
    distance_from_origin: float
    straightness: float  # displacement / path_length (1.0 where the path length is 0)
    distance_per_epoch: float | None  # since the previous snapshot (None at the first)
    loss_change_per_epoch: float | None
    gradient: Gradient | None  # None where it was not measured


class RunTrajectory(TypedDict):
    run: int
    points: list[TrajectoryPoint]  # in epoch order


class Trajectory(TypedDict):
    experiment_id: str
    complete: bool
    runs: list[RunTrajectory]


class Health(TypedDict):
    status: Literal["ok"]


class Readiness(TypedDict):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str]  # "ok", or the error, per dependency: database, broker, store


# -- presets, suites and the paper's claims ----------------------------------------------

Dataset = Literal["mnist", "fashion-mnist", "digits"]
ReportStatus = Literal["pending", "building", "ready", "failed"]
Verdict = Literal["supported", "not supported", "not measured"]

#: The presets that reproduce the paper: ``quick`` for a CPU, ``paper`` for a GPU.
PRESETS: tuple[str, ...] = ("quick", "paper")
DATASETS: tuple[str, ...] = ("mnist", "fashion-mnist", "digits")
#: A suite's report in one of these states will not change any more.
REPORT_TERMINAL_STATUSES: frozenset[str] = frozenset({"ready", "failed"})


class PresetExperiment(TypedDict):
    role: str  # trajectory, independent-inits, shared-init, shared-init-masks or pretrained-clones
    title: str
    spec: dict[str, Any]  # the ExperimentSpec, defaults filled in


class Preset(TypedDict):
    """One of the paper's reproductions: its experiment specs on one data set."""

    name: str
    description: str
    dataset: str  # the preset's default, unless another was asked for
    experiments: list[PresetExperiment]


class PresetList(TypedDict):
    items: list[Preset]


class SuiteExperiment(TypedDict):
    role: str
    replicate: NotRequired[int]  # its seed index in the suite (0 when absent)
    experiment: Experiment


class SuiteReport(TypedDict):
    status: ReportStatus  # pending until every experiment has ended, then building
    error: str | None  # why it failed
    url: str | None  # the HTML page (a path on the server), once ready
    files: list[str]  # index.html, claims.json and the figures (.svg and .png), once ready


class Suite(TypedDict):
    """A preset's experiments, submitted together, and the report built from them."""

    id: str
    preset: str
    dataset: str
    seeds: NotRequired[int]  # replicates of the experiments (1 when absent)
    status: Status  # of the experiments together: failed if any failed, once all have ended
    created_at: str
    experiments: list[SuiteExperiment]
    report: SuiteReport
    warnings: NotRequired[list[str]]  # on submission: e.g. no live worker consumes the queue


class SuitePage(TypedDict):
    items: list[Suite]
    next_cursor: str | None


class ClaimReference(TypedDict):
    """A null model or control: what it is, and its 95% band."""

    description: str
    band: list[float]
    bands: NotRequired[list[list[float]]]  # each seed's
    mean: float
    samples: int


class ClaimEffect(TypedDict):
    """How far a statistic lies from its reference's mean, in the claimed direction."""

    value: float  # mean over the seeds
    interval: list[float]  # 95%: t-interval over 2+ seeds, the band's edges for one
    values: NotRequired[list[float] | None]  # per seed
    minimum: float  # the least effect the rule accepts


class ClaimTest(TypedDict):
    """One statistic of a claim over the seeds, beside its null's or control's band."""

    name: str
    description: str
    direction: Literal["above", "below"]  # where the claim puts it relative to the band
    bound: float | None
    value: float | None  # mean over the seeds
    interval: list[float] | None  # 95% interval of the mean
    values: list[float | None]
    null: NotRequired[ClaimReference | None]
    control: NotRequired[ClaimReference | None]
    tolerance: NotRequired[ClaimReference | None]
    effect: NotRequired[ClaimEffect | None]
    passed: int  # seeds beyond the band
    seeds: int


class ClaimStability(TypedDict):
    seeds: int
    agree: int
    verdicts: dict[str, int]


class Claim(TypedDict):
    """One of the paper's claims, checked against a reproduction over K seeds."""

    id: str  # 1, 2a, 2b, 3, 4, 5
    paper: str  # the paper's own wording
    statement: str  # what is measured
    rule: str
    threshold: str  # the rule, as before
    verdict: Verdict  # the majority over the seeds
    stability: ClaimStability
    seed_verdicts: list[str]
    statistic: NotRequired[str | None]
    value: NotRequired[float | None]
    interval: NotRequired[list[float] | None]
    values: NotRequired[list[float | None] | None]
    null: NotRequired[ClaimReference | None]
    control: NotRequired[ClaimReference | None]
    tolerance: NotRequired[ClaimReference | None]
    tests: list[ClaimTest]
    beside: NotRequired[list[ClaimTest]]  # reported, not deciding the verdict
    measured: dict[str, Any]  # more figures (the first seed's)
    note: str


class Claims(TypedDict):
    suite_id: str
    claims: list[Claim]


#: The schema in ``openapi/openapi.json`` (``components.schemas``) each TypedDict above mirrors;
#: tests/unit/test_client_types.py checks their fields, which are required and their types.
class JointSnapshot(TypedDict):
    """One row of an analysis across experiments."""

    experiment: str
    run: int
    epoch: int


class JointPCA(TypedDict):
    components: int
    explained_variance: list[float]
    explained_variance_ratio: list[float]
    cumulative_variance_ratio: list[float]
    coordinates: list[list[float]]  # one row per snapshot, one column per component


class JointDistances(TypedDict):
    distances: list[list[float]]
    cosine_similarity: list[list[float]]
    distance_from_origin: list[float]


class JointEnd(TypedDict):
    """One end of a line between snapshots of different experiments."""

    experiment: str
    run: int
    epoch: int


class JointLineLoss(TypedDict):
    alphas: list[float]
    train_loss: list[float]
    test_loss: list[float]


class JointBarrierLine(TypedDict):
    kind: Literal["pair", "control"]
    a: JointEnd
    b: JointEnd
    distance: float
    train_barrier: float
    test_barrier: float
    disagreement: float
    line: JointLineLoss


class JointBarriers(TypedDict):
    lines: list[JointBarrierLine]


class Analysis(TypedDict):
    """``POST /analyses`` / ``GET /analyses/{id}``: PCA, distances or barriers across
    experiments."""

    id: str
    kind: Literal["pca", "distances", "barriers"]
    status: Literal["running", "succeeded"]
    complete: bool
    snapshots: list[JointSnapshot]
    pca: NotRequired[JointPCA | None]
    distances: NotRequired[JointDistances | None]
    barriers: NotRequired[JointBarriers | None]
    links: dict[str, str]


class Landscape(TypedDict):
    """``GET /experiments/{id}/landscape``: loss on a grid over the PC1-PC2 plane of a run."""

    experiment_id: str
    status: Literal["ready"]
    run: int
    epochs: list[int]
    normalisation: Literal["none", "filter"]
    explained_variance_ratio: list[float]
    alphas: list[float]  # PC1 axis
    betas: list[float]  # PC2 axis
    train_loss: list[list[float]]  # [beta index][alpha index]
    test_loss: list[list[float]] | None  # None: a client evaluated one data set only
    trajectory: list[list[float]]  # per snapshot (PC1, PC2); the final one is (0, 0)
    train_examples: int
    test_examples: int | None
    evaluated_by: NotRequired[Literal["service", "client"]]


class LandscapePending(TypedDict):
    experiment_id: str
    status: Literal["queued"]
    detail: str


class SnapshotRef(TypedDict):
    run: int
    epoch: int


class Line(TypedDict):
    """Loss along the straight line between two parameter vectors (dropout off)."""

    alphas: list[float]
    train_loss: list[float]
    test_loss: list[float]


class BarrierLine(TypedDict):
    kind: Literal["pair", "control"]  # two final solutions, or a run's line to its own past
    a: SnapshotRef
    b: SnapshotRef
    distance: float
    train_barrier: float  # max over the line of loss minus the ends' linear interpolation
    test_barrier: float
    disagreement: float  # share of test images the two ends classify differently
    line: Line


class Barriers(TypedDict):
    experiment_id: str
    status: Literal["ready"]
    lines: list[BarrierLine]


class BarriersPending(TypedDict):
    experiment_id: str
    status: Literal["queued"]
    detail: str


class GramPending(TypedDict):
    """202 of PCA, distances, trajectory: workers compute the Gram (the client waits)."""

    experiment_id: str
    status: Literal["queued"]
    detail: str


class MetricValues(TypedDict):
    stored: float | None  # null if absent or not finite
    replayed: float | None


class Difference(TypedDict):
    """The first stored snapshot a replay did not reproduce bit for bit."""

    run: int
    epoch: int
    # parameters (and perhaps metrics), metrics alone, or a missing or corrupt stored file
    reason: Literal["parameters", "metrics", "unreadable"]
    detail: str
    differing_values: int  # parameters whose bits differ
    max_abs_difference: float | None  # largest among them; null if none is finite
    metrics: dict[str, MetricValues]  # the metrics that differ
    stored_environment: dict[str, str]  # torch version, device, CPU instruction set, threads
    replay_environment: dict[str, str]


class Verification(TypedDict):
    """``GET /experiments/{id}/verify``: a replay's verdict on the stored snapshots."""

    experiment_id: str
    status: Literal["ready"]
    run: int | None  # asked for; null: every run
    epoch: int | None  # asked for; null: the final epoch
    verified_at: str
    verdict: Literal["identical", "differs"]
    runs: list[int]
    until_epoch: int
    compared: list[SnapshotRef]  # reproduced bitwise, in replay order
    environment: dict[str, str]  # the replay's
    difference: Difference | None


class VerificationPending(TypedDict):
    experiment_id: str
    status: Literal["queued"]
    detail: str


class Worker(TypedDict):
    """A live worker, as it advertised itself at its last heartbeat (``GET /workers``)."""

    id: str  # Celery hostname
    queues: list[str]
    device: Literal["cpu", "cuda"]
    device_name: str
    torch_version: str
    datasets: dict[str, list[int]]  # name -> [training, test] examples it can load
    started_at: str
    seen_at: str


class WorkerList(TypedDict):
    items: list[Worker]
    ttl_seconds: float  # listed while the last heartbeat is this recent


OPENAPI_SCHEMAS: dict[str, str] = {
    "Worker": "WorkerOut",
    "WorkerList": "WorkerList",
    "SnapshotRef": "SnapshotRef",
    "Line": "LineOut",
    "BarrierLine": "BarrierLineOut",
    "Barriers": "BarriersOut",
    "BarriersPending": "BarriersPending",
    "GramPending": "GramPending",
    "JointSnapshot": "JointSnapshot",
    "JointPCA": "JointPCA",
    "JointDistances": "JointDistances",
    "Analysis": "AnalysisOut",
    "JointEnd": "JointEnd",
    "JointLineLoss": "JointLineLoss",
    "JointBarrierLine": "JointBarrierLine",
    "JointBarriers": "JointBarriers",
    "Landscape": "LandscapeOut",
    "LandscapePending": "LandscapePending",
    "MetricValues": "MetricValues",
    "Difference": "DifferenceOut",
    "Verification": "VerificationOut",
    "VerificationPending": "VerificationPending",
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
}
