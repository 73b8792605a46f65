"""Analyses of an experiment's snapshots: PCA, distances, trajectory metrics."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from weightspace_app.infra.gram_store import SnapshotRef
from weightspace_app.infra.queue import BARRIERS_TASK
from weightspace_app.usecases import analyses, barriers, sharded
from weightspace_app.usecases import experiments as usecases

from weightspace_service import jobs, tables
from weightspace_service.deps import (
    AUTHENTICATED,
    AnalyzerDep,
    CeleryDep,
    PrincipalDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
    StoreDep,
)
from weightspace_service.params import INT32_MAX, MAX_SELECTED_EPOCHS, BoundedInt
from weightspace_service.problems import problem_responses
from weightspace_service.protocol import StrictJSONRoute
from weightspace_service.schemas import (
    BarriersOut,
    BarriersPending,
    DistancesOut,
    GradientOut,
    GramPending,
    Metrics,
    PCAOut,
    PCAPoint,
    RunTrajectory,
    TrajectoryOut,
    TrajectoryPoint,
)

T = TypeVar("T")

router = APIRouter(
    prefix="/experiments/{experiment_id}",
    tags=["analysis"],
    route_class=StrictJSONRoute,
    dependencies=AUTHENTICATED,
    responses=problem_responses(401),
)

#: 202 while workers compute a Gram too large for the API (see ``Analysis``).
PENDING = jobs.pending_responses(GramPending)


@dataclass(frozen=True)
class Analysis:
    """One analysis of an experiment's snapshots, for the caller: its inputs, then the answer,
    computed here (the analyzer's pool) or, past ``inline_analysis_max_bytes``, 202 while the
    workers compute the Gram (:func:`weightspace_service.jobs.on_workers`)."""

    request: Request
    sessions: SessionsDep
    store: StoreDep
    celery: CeleryDep
    settings: SettingsDep
    principal: PrincipalDep
    analyzer: AnalyzerDep

    async def inputs(self, experiment_id: uuid.UUID) -> analyses.Inputs:
        """The experiment's snapshots and their state (404 if not the caller's)."""
        return await run_in_threadpool(
            analyses.load_inputs, self.sessions, self.principal, experiment_id
        )

    async def run(
        self, inputs: analyses.Inputs, fn: Callable[..., T], *args: object
    ) -> T | JSONResponse:
        """``fn(snapshots, *args)`` (see :meth:`Analyzer.analyse`), or 202 while workers
        compute the Gram."""
        if queued := await self.queued(inputs):
            return queued
        return await asyncio.wrap_future(self.analyzer.analyse(inputs, fn, *args))

    async def queued(self, inputs: analyses.Inputs) -> JSONResponse | None:
        """202 with this very request as ``Location`` while workers compute the snapshots' Gram
        (more than ``inline_analysis_max_bytes`` to read, not cached); None: answer here."""
        on_workers = functools.partial(
            jobs.on_workers,
            self.sessions,
            self.store,
            self.celery,
            self.settings,
            inputs,
            subject=sharded.subject_of("experiment", inputs.experiment_id),
            owner=self.principal.id,
            experiment_id=inputs.experiment_id,
        )
        if not await run_in_threadpool(on_workers):
            return None
        pending = GramPending(
            experiment_id=inputs.experiment_id,
            status="queued",
            detail="workers compute the Gram matrix of the snapshots, sharded over parameters",
        )
        url = self.request.url
        return jobs.accepted(pending, url.path + (f"?{url.query}" if url.query else ""))


AnalysisDep = Annotated[Analysis, Depends(Analysis)]


@router.get(
    "/pca",
    response_model=PCAOut,
    responses={
        **tables.csv_response("The PCA (as CSV with `format=csv`)", tables.PCA_EXAMPLE),
        **PENDING,
        **problem_responses(404, 409, 422, 503),
    },
)
async def get_pca(
    experiment_id: uuid.UUID,
    analysis: AnalysisDep,
    components: Annotated[
        int, Query(ge=1, le=64, description="Number of principal components.")
    ] = 2,
    runs: Annotated[
        list[BoundedInt] | None,
        Query(max_length=64, description="Runs to include (repeatable)."),
    ] = None,
    epochs: Annotated[
        list[BoundedInt] | None,
        Query(max_length=MAX_SELECTED_EPOCHS, description="Epochs to include (repeatable)."),
    ] = None,
    format: Annotated[tables.Format, tables.FormatQuery] = "json",
) -> PCAOut | Response:
    """Joint PCA of the selected snapshots (default: all runs, all epochs).

    Repeat `runs`/`epochs` to select several (`?runs=0&runs=2`). Signs are deterministic: in each
    component, the point with the largest absolute coordinate is positive. Past
    `WEIGHTSPACE_INLINE_ANALYSIS_MAX_BYTES` of snapshots, the first request is answered 202
    while workers compute (poll `Location`).
    """
    inputs = await analysis.inputs(experiment_id)
    chosen = analyses.check_selection(inputs, runs, epochs)
    report = await analysis.run(inputs, analyses.pca, chosen, components)
    if isinstance(report, JSONResponse):
        return report
    result = report.result
    answer = PCAOut(
        experiment_id=experiment_id,
        complete=report.complete,
        components=components,
        explained_variance=result.explained_variance.tolist(),
        explained_variance_ratio=result.explained_variance_ratio.tolist(),
        cumulative_variance_ratio=result.cumulative_variance_ratio.tolist(),
        points=[
            PCAPoint(run=r.run, epoch=r.epoch, coordinates=coords.tolist())
            for r, coords in zip(report.refs, result.coordinates, strict=True)
        ],
    )
    return tables.pca_csv(answer) if format == "csv" else answer


@router.get(
    "/distances",
    response_model=DistancesOut,
    responses={
        **tables.csv_response("The distances (as CSV with `format=csv`)", tables.DISTANCES_EXAMPLE),
        **PENDING,
        **problem_responses(404, 409, 422, 503),
    },
)
async def get_distances(
    experiment_id: uuid.UUID,
    analysis: AnalysisDep,
    epoch: Annotated[
        int | None,
        Query(
            ge=0,
            le=INT32_MAX,
            description="Default: the final epoch (while running, the latest epoch every run has reached).",
        ),
    ] = None,
    format: Annotated[tables.Format, tables.FormatQuery] = "json",
) -> DistancesOut | Response:
    """Run-by-run euclidean distances and cosine similarities at one epoch (202 while workers
    compute, as for the PCA)."""
    inputs = await analysis.inputs(experiment_id)
    chosen = analyses.check_epoch(inputs, epoch)
    report = await analysis.run(inputs, analyses.distances_at, chosen)
    if isinstance(report, JSONResponse):
        return report
    answer = DistancesOut(experiment_id=experiment_id, **report.__dict__)
    return tables.distances_csv(answer) if format == "csv" else answer


@router.get(
    "/trajectory",
    response_model=TrajectoryOut,
    responses={**PENDING, **problem_responses(404, 409, 422, 503)},
)
async def get_trajectory(
    experiment_id: uuid.UUID,
    analysis: AnalysisDep,
) -> TrajectoryOut | JSONResponse:
    """Per run and snapshot: losses, accuracies, step length, path length, displacement,
    straightness, distance travelled and absolute loss change per epoch, and the full-batch
    gradient norms (with and without the weight-decay term) beside their sign-flip null (202
    while workers compute, as for the PCA)."""
    inputs = await analysis.inputs(experiment_id)
    per_run = await analysis.run(inputs, analyses.trajectories)
    if isinstance(per_run, JSONResponse):
        return per_run

    def per_epoch(records: list[SnapshotRef], i: int, change: float | None) -> float | None:
        if i == 0 or change is None:
            return None
        return change / (records[i].epoch - records[i - 1].epoch)

    def loss_change(records: list[SnapshotRef], i: int) -> float | None:
        """|change of train_loss| since the previous snapshot; None where either lacks it (an
        upload need not send it)."""
        now, before = (records[j].metrics.get("train_loss") for j in (i, max(i - 1, 0)))
        return None if now is None or before is None else abs(now - before)

    runs = [
        RunTrajectory(
            run=run,
            points=[
                TrajectoryPoint(
                    epoch=record.epoch,
                    metrics=Metrics(**record.metrics),
                    step_length=float(metrics.step_length[i]),
                    path_length=float(metrics.path_length[i]),
                    displacement=float(metrics.displacement[i]),
                    distance_from_origin=float(metrics.distance_from_origin[i]),
                    straightness=float(metrics.straightness[i]),
                    distance_per_epoch=per_epoch(records, i, float(metrics.step_length[i])),
                    loss_change_per_epoch=per_epoch(records, i, loss_change(records, i)),
                    gradient=GradientOut(**record.gradient) if record.gradient else None,
                )
                for i, record in enumerate(records)
            ],
        )
        for run, records, metrics in per_run
    ]
    return TrajectoryOut(experiment_id=experiment_id, complete=inputs.complete, runs=runs)


@router.get(
    "/barriers",
    response_model=BarriersOut,
    responses={
        **jobs.pending_responses(BarriersPending),
        **problem_responses(404, 409, 422, 503),
    },
)
def get_barriers(
    experiment_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    celery: CeleryDep,
) -> BarriersOut | JSONResponse:
    """Loss barriers between every two runs' final solutions (and the same-run controls).

    Each line has 25 points with train and test loss (dropout off), its barrier and the share of
    test examples its two ends classify differently. The first request queues a worker job and
    answers 202; once computed, the result is cached and answered with 200.
    """
    experiment = usecases.get_experiment(session, principal, experiment_id)
    if (document := barriers.cached(session, store, experiment)) is not None:
        return BarriersOut(experiment_id=experiment.id, status="ready", **document)
    if barriers.request_barriers(session, experiment):
        undo = functools.partial(barriers.undo_request, session, experiment.id)
        jobs.enqueue(celery, BARRIERS_TASK, [str(experiment.id)], experiment.queue, undo)
    pending = BarriersPending(
        experiment_id=experiment.id,
        status="queued",
        detail="the barriers are being computed by a worker",
    )
    return jobs.accepted(pending, f"/experiments/{experiment.id}/barriers")
