"""Live progress (Rich): bars per run while an experiment trains, per experiment for a suite."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, get_args

import typer
from rich.console import RenderableType
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.text import Text

from weightspace_client.cli.output import err, num, out, print_json, styled
from weightspace_client.client import WeightspaceClient
from weightspace_client.operations import REPORT_TERMINAL_STATUSES, TERMINAL_STATUSES
from weightspace_client.types import Experiment, Role, Run, Suite

#: The roles of a suite's experiments, in the order they are shown (the API's order).
ROLES: tuple[Role, ...] = get_args(Role)


def runs_of(client: WeightspaceClient, experiment: Experiment) -> list[Run]:
    """The experiment's runs: embedded in it, else fetched."""
    runs = experiment.get("runs")
    return runs if runs is not None else client.list_runs(experiment["id"])


def follow(
    client: WeightspaceClient,
    experiment_id: str,
    *,
    as_json: bool,
    poll: float,
    timeout: float | None,
) -> None:
    """Wait for the end (live progress unless ``as_json``); exit 1 unless it succeeded."""
    if as_json:
        final = client.wait(experiment_id, poll=poll, timeout=timeout, check=False)
        print_json(final)
    else:
        final = wait_with_progress(client, experiment_id, poll=poll, timeout=timeout)
    if final["status"] != "succeeded":
        message = f"experiment {final['id']} {final['status']}"
        if final.get("error"):
            message += f": {final['error']}"
        err().print(f"[red]error:[/] {escape(message)}")
        raise typer.Exit(1)
    if not as_json:
        out().print(f"experiment [bold]{escape(final['id'])}[/] {styled('succeeded')}")


def wait_with_progress(
    client: WeightspaceClient, experiment_id: str, *, poll: float, timeout: float | None
) -> Experiment:
    progress = Progress(
        TextColumn("run {task.fields[run]:>3}"),
        BarColumn(),
        TextColumn("epoch {task.completed:>4.0f}/{task.total:.0f}"),
        TextColumn("batch loss {task.fields[loss]:>8}"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=out(),
    )
    tasks: dict[int, TaskID] = {}

    def update(experiment: Experiment) -> None:
        for run in runs_of(client, experiment):
            completed = run.get("epoch") or 0
            total = run.get("final_epoch") or 0
            loss = num(run.get("train_loss"))
            status = styled(run.get("status"))
            if run["run"] not in tasks:
                tasks[run["run"]] = progress.add_task(
                    f"run {run['run']}",
                    total=total,
                    completed=completed,
                    run=run["run"],
                    loss=loss,
                    status=status,
                )
            else:
                progress.update(
                    tasks[run["run"]], total=total, completed=completed, loss=loss, status=status
                )
        if not tasks:
            progress.console.print(
                f"experiment {escape(experiment_id)}: {styled(experiment['status'])}"
            )

    with progress:
        return client.wait(experiment_id, poll=poll, timeout=timeout, on_update=update, check=False)


class _StateColumn(ProgressColumn):
    """A spinner while a task is under way; a mark once it has ended."""

    def __init__(self) -> None:
        super().__init__()
        self.spinner = Spinner("dots", style="progress.spinner")

    def render(self, task: Task) -> RenderableType:
        state = task.fields.get("state")
        if state in ("succeeded", "ready"):
            return Text("✓", style="green")
        if state in ("failed", "cancelled"):
            return Text("✗", style="red")
        if state == "queued":
            return Text("·", style="yellow")
        return self.spinner.render(task.get_time())


class _BarColumn(BarColumn):
    """A bar that pulses only while its total is unknown (not merely before it starts)."""

    def render(self, task: Task) -> ProgressBar:
        bar = super().render(task)
        bar.pulse = task.total is None
        return bar


def experiment_progress(experiment: Experiment) -> tuple[int, int, str]:
    """(epochs done, epochs in all, "runs 2/5  batch loss 0.31") over the experiment's runs."""
    runs = experiment.get("runs") or []
    spec: Mapping[str, Any] = experiment.get("spec") or {}
    replicas = len(runs) or int(spec.get("replicas") or 1)
    if runs:
        total = sum(int(r.get("final_epoch") or 0) for r in runs)
        done = sum(int(r.get("epoch") or 0) for r in runs)
    else:
        per_run = int(spec.get("epochs") or 0) + int(spec.get("pretrain_epochs") or 0)
        total, done = replicas * per_run, 0
    if experiment.get("status") == "succeeded":
        done = total
    finished = sum(r.get("status") == "succeeded" for r in runs)
    detail = f"runs {finished}/{replicas}"
    losses = [float(loss) for r in runs if (loss := r.get("train_loss")) is not None]
    if losses:
        detail += f"  batch loss {num(sum(losses) / len(losses), 2)}"
    return done, total, detail


def role_of(item: Mapping[str, Any]) -> str:
    experiment = item.get("experiment") or {}
    return str(item.get("role") or experiment.get("role") or experiment.get("name") or "?")


def wait_suite_with_progress(
    client: WeightspaceClient,
    suite_id: str,
    *,
    poll: float,
    timeout: float | None,
    check: Callable[[], None],
) -> Suite:
    """Follow the suite: a bar per experiment (epochs over its runs), then the report's build."""
    progress = Progress(
        _StateColumn(),
        TextColumn("{task.description}"),
        _BarColumn(bar_width=30),
        TextColumn("{task.fields[epochs]}"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=out(),
    )
    tasks: dict[str, TaskID] = {}
    report_task: list[TaskID] = []
    report_text = {
        "pending": "building report",
        "building": "building report",
        "ready": "[green]report ready[/]",
        "failed": "[red]report failed[/]",
    }

    def update(suite: Suite) -> None:
        check()
        items = sorted(
            suite.get("experiments") or [],
            key=lambda item: (
                ROLES.index(role_of(item)) if role_of(item) in ROLES else len(ROLES),
                role_of(item),
            ),
        )
        for item in items:
            experiment = item["experiment"]
            status = experiment.get("status") or "queued"
            done, total, detail = experiment_progress(experiment)
            fields: dict[str, Any] = {
                "epochs": f"{done:>3}/{total} epochs",
                # The mark in front says running (a spinner) and succeeded; the rest in words.
                "detail": escape(detail)
                + ("" if status in ("running", "succeeded") else f"  {styled(status)}"),
                "state": status,
            }
            key = experiment["id"]
            if key not in tasks:
                tasks[key] = progress.add_task(
                    escape(f"{role_of(item):<17}"),
                    total=total or None,
                    completed=done,
                    start=status != "queued",
                    **fields,
                )
            else:
                progress.update(tasks[key], total=total or None, completed=done, **fields)
            task = progress.tasks[tasks[key]]
            if status != "queued" and not task.started:
                progress.start_task(tasks[key])
            if status in TERMINAL_STATUSES and task.stop_time is None and task.started:
                progress.stop_task(tasks[key])
        ended = all((item["experiment"].get("status") in TERMINAL_STATUSES) for item in items)
        report = suite["report"]["status"]
        if ended or report != "pending":
            fields = {"epochs": "", "detail": report_text.get(report, report), "state": report}
            if not report_task:
                report_task.append(
                    progress.add_task(escape(f"{'report':<17}"), total=None, **fields)
                )
            else:
                progress.update(report_task[0], **fields)
            if report in REPORT_TERMINAL_STATUSES:
                progress.update(report_task[0], total=1, completed=1)
                progress.stop_task(report_task[0])

    with progress:
        return client.wait_suite(
            suite_id, poll=poll, timeout=timeout, on_update=update, check=False
        )
