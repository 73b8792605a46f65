"""Request and response bodies of presets, suites and their claims report.

A suite lists its experiments as ``ExperimentOut`` (from ``experiments``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from weightspace_app.infra.db import Suite

from weightspace import vocabulary
from weightspace.spec import ExperimentSpec
from weightspace_service.schemas.common import Status, _warnings
from weightspace_service.schemas.experiments import ExperimentOut


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
    experiments: list[PresetExperimentOut] = Field(
        description="Its experiments (1, 2, 3, 3b and 4 in the paper's numbering)."
    )


class PresetList(BaseModel):
    items: list[PresetOut] = Field(description="Every preset.")


MAX_SEEDS = 10


class SuiteIn(BaseModel):
    """Reproduce the paper: the preset's experiments, on one data set."""

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
        description="Repeat the experiments with this many sets of derived global seeds "
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
    def of(cls, suite: Suite, status: Status) -> SuiteOut:
        ready = suite.report_status == "ready"
        return cls(
            id=suite.id,
            preset=suite.preset,
            dataset=suite.dataset,
            seeds=suite.seeds or 1,
            status=status,
            created_at=suite.created_at,
            experiments=[
                SuiteExperiment(
                    role=e.role or "", replicate=e.replicate or 0, experiment=ExperimentOut.of(e)
                )
                for e in suite.experiments
            ],
            report=SuiteReport(
                status=suite.report_status,
                error=suite.report_error,
                url=f"/suites/{suite.id}/report/index.html" if ready else None,
                files=suite.report_files or [],
            ),
        )


class SuitePage(BaseModel):
    items: list[SuiteOut] = Field(description="This page's suites, newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class ReferenceOut(BaseModel):
    description: str = Field(
        description="What the null model or control is and how it was obtained."
    )
    band: list[float] = Field(description="Its 95% band (mean of the seeds' bands).")
    bands: list[list[float]] = Field(default_factory=list, description="Each seed's band.")
    mean: float = Field(description="Mean of the reference's samples.")
    samples: int = Field(description="Samples the band was estimated from.")


class EffectOut(BaseModel):
    value: float = Field(
        description="How far the statistic lies from the reference's mean, positive in the "
        "claimed direction (mean over the seeds)."
    )
    interval: list[float] = Field(
        description="95% interval of the effect: over 2+ seeds the t-interval of the mean, for "
        "one seed the effect against each edge of the reference's band."
    )
    values: list[float] | None = Field(default=None, description="The effect for each seed.")
    minimum: float = Field(description="The least effect the rule accepts as support.")


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
    effect: EffectOut | None = Field(
        default=None, description="The effect size with its interval and least effect."
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
    beside: list[ClaimTestOut] = Field(
        default_factory=list,
        description="Tests reported beside the verdict without deciding it (another reference "
        "or variant: e.g. the random walks beside claim 2b's straight line).",
    )
    measured: dict[str, Any] = Field(description="Further measured figures, by name.")
    note: str = Field(description="Why it is not measured, or a caveat (empty if none).")


class ClaimsOut(BaseModel):
    suite_id: uuid.UUID = Field(description="The suite whose report this is.")
    claims: list[ClaimOut] = Field(description="The paper's claims: 1, 2a, 2b, 3, 4, 5.")
