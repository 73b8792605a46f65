"""``weightspace import``: a folder of your own checkpoints becomes an uploaded experiment.

The checkpoints are found and read by :mod:`weightspace_client.checkpoints`; here they are
uploaded run by run with a progress bar, skipping what the experiment already holds, so an
interrupted import continues where it stopped when the same command is given again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import weightspace_client.checkpoints as checkpoints
from weightspace_client.cli.app import JsonOption, UrlOption, app
from weightspace_client.cli.output import client as _client
from weightspace_client.cli.output import err, out, print_json
from weightspace_client.client import DEFAULT_URL, WeightspaceClient
from weightspace_client.errors import WeightspaceError
from weightspace_client.references import experiment_id as resolve_experiment
from weightspace_client.types import Experiment


def _target(
    client: WeightspaceClient, reference: str | None, name: str, runs: int
) -> tuple[Experiment, bool]:
    """(the experiment to upload into, whether it was created now). ``reference`` names one;
    without it an unfinished upload of the same name and run count is continued."""
    if reference is not None:
        experiment = client.get_experiment(resolve_experiment(client, reference))
    else:
        unfinished = [
            e
            for e in client.list_experiments(status="running", limit=100)
            if e.get("source") == "upload" and e.get("name") == name and len(e["runs"]) == runs
        ]
        if not unfinished:
            return client.create_upload(name=name, replicas=runs), True
        experiment = unfinished[0]
    if experiment.get("source") != "upload":
        raise WeightspaceError(f"experiment {experiment['id']} is trained by the service")
    if experiment["status"] != "running":
        raise WeightspaceError(
            f"experiment {experiment['id']} is {experiment['status']}; it takes no more uploads"
        )
    if len(experiment["runs"]) != runs:
        raise WeightspaceError(
            f"experiment {experiment['id']} has {len(experiment['runs'])} runs, "
            f"but {runs} were found"
        )
    return experiment, False


@app.command("import")
def import_checkpoints(
    path: Annotated[
        Path,
        typer.Argument(
            help="A checkpoint, a folder of checkpoints (one run), or a folder of run folders.",
            show_default=False,
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option("--name", help="Name of the new experiment (default: the folder's name)."),
    ] = None,
    experiment: Annotated[
        str | None,
        typer.Option(
            "--experiment",
            help="Upload into this experiment (id, id prefix or name) instead of a new one.",
        ),
    ] = None,
    runs_glob: Annotated[
        str | None,
        typer.Option(
            "--runs-glob",
            help="Run folders under PATH, e.g. 'seed-*' or 'lightning_logs/version_*' "
            "(default: PATH's sub-folders that hold checkpoints, or PATH itself).",
        ),
    ] = None,
    number_by: Annotated[
        str,
        typer.Option(
            "--number-by",
            help="Snapshot numbers: 'step' (the step in each name: checkpoint-N, step=N, "
            "else its last number) or 'position' (0, 1, ... in that order).",
        ),
    ] = "step",
    strip_prefix: Annotated[
        str | None,
        typer.Option(
            "--strip-prefix",
            help="Remove this prefix from tensor names, e.g. 'model.' for a LightningModule "
            "that holds its network as self.model (names are kept as saved by default).",
        ),
    ] = None,
    complete: Annotated[
        bool,
        typer.Option(
            "--complete/--no-complete",
            help="Close the experiment once every checkpoint is uploaded.",
        ),
    ] = True,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Upload your own checkpoints (a folder of them) as an experiment.

    Formats: .safetensors, .pt/.pth/.bin, PyTorch Lightning .ckpt, Hugging Face Trainer
    checkpoint-N/ folders (those other than .safetensors need PyTorch). Each run's checkpoints
    are ordered by step; a checkpoint records its step and epoch in the snapshot's metrics.
    Giving the same command again continues an interrupted import (the snapshots the
    experiment holds are skipped).
    """
    if number_by not in ("step", "position"):
        raise typer.BadParameter("choose step or position", param_hint="--number-by")
    by: checkpoints.NumberBy = "step" if number_by == "step" else "position"
    with _client(url) as client:
        runs = checkpoints.find_runs(path, runs_glob=runs_glob, by=by)
        checkpoints.check_readable(runs)
        label = name or path.resolve().name
        target, created = _target(client, experiment, label, len(runs))
        eid = target["id"]
        held = [{s["epoch"] for s in client.list_snapshots(eid, r)} for r in range(len(runs))]
        todo = [
            (r, c) for r, run in enumerate(runs) for c in run.checkpoints if c.number not in held[r]
        ]
        skipped = [why for run in runs for why in run.skipped]
        if not as_json:
            console = err()
            verb = "importing into new" if created else "continuing"
            console.print(
                f"{verb} experiment [bold]{escape(eid)}[/] ({escape(label)}): runs {len(runs)}, "
                f"checkpoints to upload {len(todo)}, already there {sum(map(len, held))}"
            )
            for why in skipped:
                console.print(f"[yellow]left out:[/] {escape(why)}")
        _upload(client, eid, todo, strip_prefix, quiet=as_json)
        final = client.complete(eid) if complete else client.get_experiment(eid)
    summary = {
        "experiment": eid,
        "status": final["status"],
        "runs": [str(run.folder) for run in runs],
        "uploaded": len(todo),
        "already_there": sum(map(len, held)),
        "left_out": skipped,
    }
    if as_json:
        print_json(summary)
        return
    out().print(
        f"experiment [bold]{escape(eid)}[/]: {len(todo)} snapshots uploaded, "
        f"{final['status']}" + ("" if complete else " (complete it with --complete)")
    )


def _upload(
    client: WeightspaceClient,
    experiment_id: str,
    todo: list[tuple[int, checkpoints.Checkpoint]],
    strip_prefix: str | None,
    *,
    quiet: bool,
) -> None:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err(),
        disable=quiet,
    )
    with progress:
        task = progress.add_task("uploading", total=len(todo))
        for run, checkpoint in todo:
            progress.update(task, description=f"run {run} {escape(checkpoint.path.name)}")
            snapshot = checkpoints.read(checkpoint, strip_prefix=strip_prefix)
            client.upload(
                experiment_id, run, checkpoint.number, snapshot.body, metrics=snapshot.metrics
            )
            progress.advance(task)
