"""Experiment commands: submit, list, status, wait and download."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich import box
from rich.markup import escape
from rich.table import Table

import weightspace_client.references as references
from weightspace_client.cli.app import ExperimentArgument, JsonOption, UrlOption, app
from weightspace_client.cli.output import client as _client
from weightspace_client.cli.output import num, out, percent, print_json, styled
from weightspace_client.cli.progress import follow, runs_of
from weightspace_client.client import DEFAULT_URL
from weightspace_client.types import Experiment, QueueName, Run, Status

#: Largest page asked of the list endpoint; ``list --limit`` above it takes several pages.
MAX_PAGE = 100


def load_spec(path: Path) -> dict[str, Any]:
    """Read an experiment spec from a .json, .yaml or .yml file (else a usage error: exit 2)."""

    def bad(message: str) -> typer.BadParameter:
        return typer.BadParameter(message, param_hint="SPEC")

    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise bad(f"{path} must be a .json, .yaml or .yml file")
    if not path.exists():
        raise bad(f"file {path} does not exist")
    if not path.is_file():
        raise bad(f"{path} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise bad(f"cannot read {path}: {error}") from None
    if suffix == ".json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise bad(f"{path} is not valid JSON: {error}") from None
    else:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise bad(f"{path} is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        raise bad(f"{path} must hold a mapping (an experiment spec), but it is {kind}")
    return document


@app.command()
def submit(
    spec: Annotated[
        Path,
        typer.Argument(help="Experiment spec file (.json, .yaml or .yml).", show_default=False),
    ],
    queue: Annotated[
        QueueName | None,
        typer.Option("--queue", help="Queue to train on (default: the service's)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Then follow the training as `weightspace wait` does.")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Submit an experiment and print its id."""
    document = load_spec(spec)
    with _client(url) as client:
        experiment = client.submit(document, queue=queue)
        if as_json and not wait:
            print_json(experiment)
            return
        if not as_json:
            out().print(
                f"submitted experiment [bold]{escape(experiment['id'])}[/] "
                f"({styled(experiment.get('status'))}, "
                f"queue {escape(str(experiment.get('queue')))})"
            )
        if wait:
            follow(client, experiment["id"], as_json=as_json, poll=1.0, timeout=None)


@app.command("list")
def list_experiments(
    status: Annotated[
        Status | None, typer.Option("--status", help="Only experiments in this state.")
    ] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", help="Only experiments with this tag.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 20,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """List experiments, newest first."""
    with _client(url) as client:
        pages = client.list_experiments(status=status, tag=tag, limit=min(limit, MAX_PAGE))
        experiments = list(islice(pages, limit))
    if as_json:
        print_json(experiments)
        return
    out().print(_experiments_table(experiments) if experiments else "no experiments")


def _experiments_table(experiments: Sequence[Experiment]) -> Table:
    table = Table(title="experiments", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0, 0, 1))
    # Ids are what people copy from this table: never cut them.
    table.add_column(
        "id", no_wrap=True, min_width=max((len(e["id"]) for e in experiments), default=2)
    )
    table.add_column("name", overflow="fold", min_width=8)
    table.add_column("status", no_wrap=True, min_width=9)
    table.add_column("created", no_wrap=True)
    table.add_column("tags", overflow="fold")
    for experiment in experiments:
        created = str(experiment.get("created_at") or "-")[:10]  # the day: ids tell them apart
        table.add_row(
            escape(experiment["id"]),
            escape(experiment.get("name") or "-"),
            styled(experiment.get("status")),
            escape(created),
            escape(" ".join(experiment.get("tags") or []) or "-"),
        )
    return table


#: The two training losses, told apart wherever both can be seen.
LOSS_CAPTION = (
    "batch loss: mean minibatch loss during the latest epoch (dropout on); "
    "train loss: evaluated on the training set at the latest snapshot (dropout off)"
)


def _runs_table(runs: Sequence[Run]) -> Table:
    table = Table(
        "run",
        "status",
        "epoch/final",
        "batch loss",
        "train loss",
        "test acc",
        caption=LOSS_CAPTION,
        caption_justify="left",
    )
    for run in runs:
        metrics: Mapping[str, Any] = run.get("metrics") or {}
        epoch = run.get("epoch")
        table.add_row(
            str(run["run"]),
            styled(run.get("status")),
            f"{'-' if epoch is None else epoch}/{run.get('final_epoch', '-')}",
            num(run.get("train_loss")),
            num(metrics.get("train_loss")),
            percent(metrics.get("test_accuracy")),
        )
    return table


def _describe(experiment: Experiment) -> str:
    lines = [
        f"experiment [bold]{escape(experiment['id'])}[/]"
        + (f" ({escape(name)})" if (name := experiment.get("name")) else ""),
        f"status   {styled(experiment.get('status'))}   "
        f"queue {escape(str(experiment.get('queue')))}",
        f"created  {escape(str(experiment.get('created_at') or '-'))}",
    ]
    for key in ("started_at", "finished_at"):
        if experiment.get(key):
            lines.append(f"{key.removesuffix('_at'):<8} {escape(str(experiment.get(key)))}")
    if experiment.get("tags"):
        lines.append(f"tags     {escape(' '.join(experiment.get('tags') or []))}")
    if experiment.get("note"):
        lines.append(f"note     {escape(str(experiment.get('note')))}")
    if experiment.get("error"):
        lines.append(f"[red]error[/]    {escape(str(experiment['error']))}")
    return "\n".join(lines)


@app.command()
def status(
    experiment_id: ExperimentArgument,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Show an experiment and a table of its runs."""
    with _client(url) as client:
        experiment = client.get_experiment(references.experiment_id(client, experiment_id))
        runs = runs_of(client, experiment)
    if as_json:
        print_json({**experiment, "runs": runs})
        return
    console = out()
    console.print(_describe(experiment))
    console.print(_runs_table(runs))


@app.command()
def wait(
    experiment_id: ExperimentArgument,
    poll: Annotated[float, typer.Option("--poll", min=0.1, help="Seconds between polls.")] = 1.0,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="Give up after this many seconds.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Follow an experiment's runs with live progress bars until it ends.

    Exits with status 1 (printing the error) if the experiment failed or was cancelled.
    """
    with _client(url) as client:
        experiment_id = references.experiment_id(client, experiment_id)
        follow(client, experiment_id, as_json=as_json, poll=poll, timeout=timeout)


@app.command()
def tag(
    experiment_id: ExperimentArgument,
    tags: Annotated[
        list[str] | None,
        typer.Argument(metavar="[TAG]...", help="Tags to add.", show_default=False),
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="A tag to remove (repeat for more).")
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="Set the experiment's note ('' removes it).")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Add or remove an experiment's tags, set its note; print its tags."""
    with _client(url) as client:
        experiment = client.get_experiment(references.experiment_id(client, experiment_id))
        kept = set(experiment.get("tags") or []) - set(remove or [])
        updated = client.annotate(experiment["id"], tags=sorted(kept | set(tags or [])), note=note)
    if as_json:
        print_json(updated)
        return
    out().print(_describe(updated))


@app.command()
def download(
    experiment_id: ExperimentArgument,
    run: Annotated[int, typer.Option("--run", min=0, help="Run number.")],
    epoch: Annotated[int, typer.Option("--epoch", min=0, help="Epoch of the snapshot.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Where to save it (default: ./<id>-run<R>-epoch<E>.safetensors).",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Download one snapshot's safetensors file, verified against its sha256."""
    with _client(url) as client:
        experiment_id = references.experiment_id(client, experiment_id)
        target = output or Path(f"{experiment_id}-run{run}-epoch{epoch}.safetensors")
        path = client.download_snapshot(experiment_id, run, epoch, target)
    size = path.stat().st_size
    if as_json:
        print_json({"path": str(path), "size": size})
    else:
        out().print(f"saved {escape(str(path))} ({size:,} bytes, sha256 verified)")
