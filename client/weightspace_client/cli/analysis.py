"""Analysis commands: PCA of the snapshots, distances between runs, trajectory metrics, and
``analyse``: one analysis across several experiments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

import weightspace_client.references as references
from weightspace_client.cli.app import ExperimentArgument, JsonOption, UrlOption, app
from weightspace_client.cli.output import client as _client
from weightspace_client.cli.output import (
    err,
    figures_table,
    note_incomplete,
    num,
    out,
    percent,
    print_json,
)
from weightspace_client.client import DEFAULT_URL
from weightspace_client.types import PCA, AnalysisKind, Distances

CsvOption = Annotated[
    bool, typer.Option("--csv", help="Print CSV (a header row, then one row per point or pair).")
]


def exclusive(as_json: bool, as_csv: bool) -> None:
    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv", param_hint="--csv")


def int_list(text: str | None, option: str) -> list[int] | None:
    """``"0,1, 2"`` -> ``[0, 1, 2]``; ``None`` stays ``None``."""
    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated integers such as 0,1,2, got {text!r}", param_hint=option
        ) from None
    if not values:
        raise typer.BadParameter("expected at least one integer", param_hint=option)
    return values


@app.command()
def pca(
    experiment_id: ExperimentArgument,
    components: Annotated[
        int, typer.Option("--components", min=1, help="Number of principal components.")
    ] = 2,
    runs: Annotated[
        str | None, typer.Option("--runs", help="Comma-separated runs, e.g. 0,1 (default: all).")
    ] = None,
    epochs: Annotated[
        str | None,
        typer.Option("--epochs", help="Comma-separated epochs (default: all snapshots)."),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """PCA of the snapshots: explained variance and each snapshot's coordinates."""
    run_list = int_list(runs, "--runs")
    epoch_list = int_list(epochs, "--epochs")
    exclusive(as_json, as_csv)
    with _client(url) as client:
        experiment_id = references.experiment_id(client, experiment_id)
        if as_csv:
            typer.echo(
                client.pca_csv(
                    experiment_id, components=components, runs=run_list, epochs=epoch_list
                ),
                nl=False,
            )
            return
        result = client.pca(experiment_id, components=components, runs=run_list, epochs=epoch_list)
    if as_json:
        print_json(result)
        return
    console = out()
    ratios = result.get("explained_variance_ratio") or []
    cumulative = result.get("cumulative_variance_ratio") or []
    variance = Table(
        "component", "explained variance ratio", "cumulative", title="explained variance"
    )
    for i, ratio in enumerate(ratios):
        total = cumulative[i] if i < len(cumulative) else None
        variance.add_row(f"PC{i + 1}", percent(ratio), percent(total))
    console.print(variance)
    console.print(_points_table(result))
    note_incomplete(result)


def _points_table(result: PCA) -> Table:
    components = len(result.get("explained_variance_ratio") or [])
    table = figures_table(
        "run", "epoch", *(f"PC{i + 1}" for i in range(components)), title="points"
    )
    for point in result.get("points") or []:
        coordinates = point.get("coordinates") or []
        table.add_row(
            str(point.get("run")), str(point.get("epoch")), *(num(c) for c in coordinates)
        )
    return table


@app.command()
def distances(
    experiment_id: ExperimentArgument,
    epoch: Annotated[
        int | None,
        typer.Option("--epoch", min=0, help="Epoch to compare at (default: the final one)."),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Euclidean distances between the runs, and of each run from the origin and its init."""
    exclusive(as_json, as_csv)
    with _client(url) as client:
        experiment_id = references.experiment_id(client, experiment_id)
        if as_csv:
            typer.echo(client.distances_csv(experiment_id, epoch=epoch), nl=False)
            return
        result = client.distances(experiment_id, epoch=epoch)
    if as_json:
        print_json(result)
        return
    console = out()
    runs = result.get("runs") or []
    console.print(_distance_matrix(result))
    origin = result.get("distance_from_origin") or []
    init = result.get("distance_from_init") or []
    norms = Table("run", "from origin", "from init")
    for i, run in enumerate(runs):
        norms.add_row(
            str(run),
            num(origin[i] if i < len(origin) else None),
            num(init[i] if i < len(init) else None),
        )
    console.print(norms)
    note_incomplete(result)


def _distance_matrix(result: Distances) -> Table:
    runs = result.get("runs") or []
    table = figures_table(
        "run", *(str(r) for r in runs), title=f"distances at epoch {result.get('epoch')}"
    )
    for run, row in zip(runs, result.get("distances") or [], strict=False):
        table.add_row(str(run), *(num(d) for d in row))
    return table


@app.command()
def trajectory(
    experiment_id: ExperimentArgument,
    points: Annotated[
        bool, typer.Option("--points", help="Also a table per run with every snapshot.")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Path metrics of each run: path length, displacement from init, straightness."""
    with _client(url) as client:
        result = client.trajectory(references.experiment_id(client, experiment_id))
    if as_json:
        print_json(result)
        return
    console = out()
    summary = Table(
        "run",
        "epochs",
        "path length",
        "displacement",
        "straightness",
        "from origin",
        "test acc",
        title="trajectories (at the last snapshot; --points for every one)",
    )
    for run in result.get("runs") or []:
        snapshots = run.get("points") or []
        if not snapshots:
            summary.add_row(str(run.get("run")), "-", "-", "-", "-", "-", "-")
            continue
        first, last = snapshots[0], snapshots[-1]
        summary.add_row(
            str(run.get("run")),
            f"{first.get('epoch')}-{last.get('epoch')}",
            num(last.get("path_length")),
            num(last.get("displacement")),
            num(last.get("straightness"), 3),
            num(last.get("distance_from_origin")),
            percent((last.get("metrics") or {}).get("test_accuracy")),
        )
    console.print(summary)
    if points:
        for run in result.get("runs") or []:
            table = Table(
                "epoch",
                "train loss",
                "test acc",
                "step",
                "path length",
                "displacement",
                "from origin",
                "straightness",
                title=f"run {run.get('run')}",
                caption="train loss and test acc: evaluated at each snapshot (dropout off)",
            )
            for point in run.get("points") or []:
                metrics = point.get("metrics") or {}
                table.add_row(
                    str(point.get("epoch")),
                    num(metrics.get("train_loss")),
                    percent(metrics.get("test_accuracy")),
                    num(point.get("step_length")),
                    num(point.get("path_length")),
                    num(point.get("displacement")),
                    num(point.get("distance_from_origin")),
                    num(point.get("straightness"), 3),
                )
            console.print(table)
    note_incomplete(result)


@app.command()
def analyse(
    kind: Annotated[AnalysisKind, typer.Argument(help="pca, distances or barriers.")],
    experiment_ids: Annotated[
        list[str],
        typer.Argument(
            metavar="ID...", help="Experiments: ids, id prefixes or names.", show_default=False
        ),
    ],
    components: Annotated[
        int, typer.Option("--components", min=1, help="pca: principal components.")
    ] = 2,
    runs: Annotated[
        str | None,
        typer.Option("--runs", help="Comma-separated runs of every experiment (default: all)."),
    ] = None,
    epochs: Annotated[
        str | None,
        typer.Option("--epochs", help="Comma-separated epochs (default: all snapshots)."),
    ] = None,
    svg: Annotated[
        Path | None,
        typer.Option("--svg", help="Also write the figure (experiments named) to this SVG file."),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="Give up after this many seconds.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """One analysis of snapshots of several experiments in one basis (POST /analyses): a joint
    PCA, the distances between every two snapshots, or loss barriers between the runs."""
    run_list = int_list(runs, "--runs")
    epoch_list = int_list(epochs, "--epochs")
    exclusive(as_json, as_csv)
    with _client(url) as client:
        ids = [references.experiment_id(client, e) for e in experiment_ids]
        selection: list[dict[str, Any]] = [
            {"experiment": i}
            | ({} if run_list is None else {"runs": run_list})
            | ({} if epoch_list is None else {"epochs": epoch_list})
            for i in ids
        ]
        result = client.analyse(kind, selection, components=components, timeout=timeout)
        if svg is not None:
            svg.write_bytes(client.analysis_svg(result["id"], timeout=timeout))
        if as_csv:
            typer.echo(client.analysis_csv(result["id"], timeout=timeout), nl=False)
            return
        names = {i: client.get_experiment(i).get("name") or i[:8] for i in dict.fromkeys(ids)}
    if as_json:
        print_json(result)
        return
    console = out()
    labels = [
        f"{names.get(s['experiment'], s['experiment'][:8])} r{s['run']} e{s['epoch']}"
        for s in result.get("snapshots") or []
    ]
    if (pca_result := result.get("pca")) is not None:
        ratios = pca_result["explained_variance_ratio"]
        table = figures_table(
            "snapshot", *(f"PC{i + 1} ({percent(r)})" for i, r in enumerate(ratios))
        )
        for label, row in zip(labels, pca_result["coordinates"], strict=False):
            table.add_row(label, *(num(c) for c in row))
        console.print(table)
    elif (matrix := result.get("distances")) is not None:
        table = figures_table("snapshot", *(str(i) for i in range(len(labels))))
        for i, (label, row) in enumerate(zip(labels, matrix["distances"], strict=False)):
            table.add_row(f"{i} {label}", *(num(d) for d in row))
        console.print(table)
    elif (found := result.get("barriers")) is not None:
        table = figures_table("kind", "from", "to", "distance", "test barrier", "disagreement")
        for line in found["lines"]:
            ends = [
                f"{names.get(e['experiment'], e['experiment'][:8])} r{e['run']} e{e['epoch']}"
                for e in (line["a"], line["b"])
            ]
            table.add_row(
                line["kind"],
                *ends,
                num(line["distance"]),
                num(line["test_barrier"]),
                percent(line["disagreement"]),
            )
        console.print(table)
    if svg is not None:
        err().print(f"figure written to {escape(str(svg))}")
    note_incomplete(result)
