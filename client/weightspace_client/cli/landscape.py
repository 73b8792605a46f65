"""The landscape command: loss on the PC1-PC2 plane of a run's trajectory (a worker job)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

import weightspace_client.references as references
from weightspace_client.cli.app import ExperimentArgument, JsonOption, UrlOption, app
from weightspace_client.cli.output import client as _client
from weightspace_client.cli.output import num, out, percent, print_json
from weightspace_client.client import DEFAULT_URL
from weightspace_client.types import Normalisation


@app.command()
def landscape(
    experiment_id: ExperimentArgument,
    run: Annotated[
        int, typer.Option("--run", min=0, help="The run whose path spans the plane.")
    ] = 0,
    resolution: Annotated[
        int, typer.Option("--resolution", min=5, max=51, help="Grid points per axis.")
    ] = 21,
    margin: Annotated[
        float, typer.Option("--margin", min=0.0, max=4.0, help="Reach beyond the trajectory.")
    ] = 0.25,
    normalisation: Annotated[
        Normalisation,
        typer.Option("--normalisation", help="`filter`: filter-normalised directions."),
    ] = "none",
    svg: Annotated[
        Path | None, typer.Option("--svg", help="Also write the figure to this SVG file.")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.0, help="Seconds to wait for the worker.")
    ] = 600.0,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Train and test loss on a grid over the plane of PC1 and PC2 of one run's trajectory,
    centred on its final snapshot (waits while a worker computes it)."""
    options: dict[str, Any] = {
        "run": run,
        "resolution": resolution,
        "margin": margin,
        "normalisation": normalisation,
    }
    with _client(url) as client:
        experiment_id = references.experiment_id(client, experiment_id)
        result = client.landscape(experiment_id, wait=True, timeout=timeout, **options)
        if svg is not None:
            figure = client.landscape_svg(experiment_id, **options)
            if figure is not None:
                svg.write_bytes(figure)
    if as_json:
        print_json(result)
        return
    if result["status"] != "ready":
        raise typer.Exit(1)
    middle = resolution // 2
    table = Table("", "train loss", "test loss", title=f"landscape of run {run}")
    train, test = result["train_loss"], result["test_loss"] or None  # None: a client sent one
    if resolution % 2 == 1:
        table.add_row(
            "final snapshot", num(train[middle][middle]), num(test and test[middle][middle])
        )
    table.add_row("grid minimum", num(min(map(min, train))), num(test and min(map(min, test))))
    table.add_row("grid maximum", num(max(map(max, train))), num(test and max(map(max, test))))
    console = out()
    console.print(table)
    ratio = result["explained_variance_ratio"]
    console.print(
        f"PC1 explains {percent(ratio[0])}, PC2 {percent(ratio[1])} of the run's variance"
    )
