"""The ``weightspace`` command line: experiments, the paper's reproduction and the server processes.

Client commands talk HTTP through :class:`~weightspace_client.WeightspaceClient`. The server
commands (``up``, ``api``, ``worker``) run ``python -m weightspace_service`` and ``python -m weightspace_worker`` as child
processes of the current interpreter, so this package never imports the server code.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import httpx
import typer
import yaml
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressBar,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from weightspace_client import __version__
from weightspace_client.client import (
    DEFAULT_URL,
    URL_ENV,
    ApiError,
    WeightspaceClient,
    WeightspaceError,
)
from weightspace_client.types import (
    REPORT_TERMINAL_STATUSES,
    TERMINAL_STATUSES,
    Claim,
    Experiment,
    Preset,
    Run,
    Suite,
)

#: Override the server modules ``up``/``api``/``worker`` run (for tests and custom deployments).
SERVICE_MODULE_ENV = "WEIGHTSPACE_SERVICE_MODULE"
WORKER_MODULE_ENV = "WEIGHTSPACE_WORKER_MODULE"
HEALTH_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
#: Largest page asked of the list endpoint; ``list --limit`` above it takes several pages.
MAX_PAGE = 100

app = typer.Typer(
    name="weightspace",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold a token
)

_SERVER = "Server processes"

UrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        envvar=URL_ENV,
        help=f"Root URL of the weightspace API (env {URL_ENV}).",
        show_envvar=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the raw JSON instead of human-readable tables.")
]

_STATUS_STYLE = {
    "queued": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
}
_VERDICT_STYLE = {"supported": "green", "not supported": "red", "not measured": "yellow"}


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


def _styled(status: str | None) -> str:
    status = status or "-"
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else escape(status)


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    try:
        return f"{float(value):.{digits}g}"
    except (TypeError, ValueError):
        return escape(str(value))


def _percent(value: Any) -> str:
    if value is None:
        return "-"
    try:
        return f"{100 * float(value):.2f}%"
    except (TypeError, ValueError):
        return escape(str(value))


@contextlib.contextmanager
def _client(url: str) -> Iterator[WeightspaceClient]:
    """A client for ``url``; API and connection errors become a message and exit status 1."""
    try:
        with WeightspaceClient(url) as client:
            yield client
    except ApiError as error:
        _err().print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(1) from None
    except httpx.TransportError as error:
        _err().print(
            f"[red]error:[/] cannot reach the weightspace API at {escape(url)}: "
            f"{escape(str(error) or type(error).__name__)}\n"
            f"Is it running? Start one with `weightspace up`, or pass --url / set {URL_ENV}."
        )
        raise typer.Exit(1) from None
    except (WeightspaceError, TimeoutError) as error:
        _err().print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(1) from None


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


def _note_incomplete(result: Mapping[str, Any]) -> None:
    if result.get("complete") is False:
        _err().print(
            "[yellow]note:[/] the experiment has not finished; this covers the snapshots so far"
        )


def _int_list(text: str | None, option: str) -> list[int] | None:
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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"weightspace-client {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Train neural networks, keep their weight snapshots and analyse their trajectories.

    Client commands reach the API at --url (env WEIGHTSPACE_URL, default http://127.0.0.1:8000)
    and send env WEIGHTSPACE_TOKEN as a bearer token when it is set.
    """


# -- client commands ---------------------------------------------------------------------


@app.command()
def submit(
    spec: Annotated[
        Path,
        typer.Argument(help="Experiment spec file (.json, .yaml or .yml).", show_default=False),
    ],
    queue: Annotated[
        str | None,
        typer.Option("--queue", help="Queue to train on: cpu or gpu (default: the service's)."),
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
            _print_json(experiment)
            return
        if not as_json:
            _out().print(
                f"submitted experiment [bold]{escape(experiment['id'])}[/] "
                f"({_styled(experiment.get('status'))}, "
                f"queue {escape(str(experiment.get('queue')))})"
            )
        if wait:
            _follow(client, experiment["id"], as_json=as_json, poll=1.0, timeout=None)


@app.command("list")
def list_experiments(
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help="Only experiments in this state (queued, running, succeeded, ...)."
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 20,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """List experiments, newest first."""
    with _client(url) as client:
        experiments = list(
            islice(client.list_experiments(status=status, limit=min(limit, MAX_PAGE)), limit)
        )
    if as_json:
        _print_json(experiments)
        return
    table = Table(title="experiments")
    # Ids are what people copy from this table: never cut them.
    table.add_column(
        "id", no_wrap=True, min_width=max((len(e["id"]) for e in experiments), default=2)
    )
    table.add_column("name")
    table.add_column("status", no_wrap=True, min_width=9)
    table.add_column("queue", no_wrap=True)
    table.add_column("created", overflow="fold")
    for experiment in experiments:
        table.add_row(
            escape(experiment["id"]),
            escape(experiment.get("name") or "-"),
            _styled(experiment.get("status")),
            escape(str(experiment.get("queue") or "-")),
            escape(str(experiment.get("created_at") or "-")),
        )
    _out().print(table if experiments else "no experiments")


def _runs_of(client: WeightspaceClient, experiment: Experiment) -> list[Run]:
    runs = experiment.get("runs")
    return runs if runs is not None else client.list_runs(experiment["id"])


def _runs_table(runs: Sequence[Run]) -> Table:
    table = Table("run", "status", "epoch/final", "train loss", "test acc")
    for run in runs:
        metrics: Mapping[str, Any] = run.get("metrics") or {}
        epoch = run.get("epoch")
        table.add_row(
            str(run["run"]),
            _styled(run.get("status")),
            f"{'-' if epoch is None else epoch}/{run.get('final_epoch', '-')}",
            _num(run.get("train_loss")),
            _percent(metrics.get("test_accuracy")),
        )
    return table


def _describe(experiment: Experiment) -> str:
    lines = [
        f"experiment [bold]{escape(experiment['id'])}[/]"
        + (f" ({escape(name)})" if (name := experiment.get("name")) else ""),
        f"status   {_styled(experiment.get('status'))}   "
        f"queue {escape(str(experiment.get('queue')))}",
        f"created  {escape(str(experiment.get('created_at') or '-'))}",
    ]
    for key in ("started_at", "finished_at"):
        if experiment.get(key):
            lines.append(f"{key.removesuffix('_at'):<8} {escape(str(experiment.get(key)))}")
    if experiment.get("error"):
        lines.append(f"[red]error[/]    {escape(str(experiment['error']))}")
    return "\n".join(lines)


@app.command()
def status(
    experiment_id: Annotated[str, typer.Argument(metavar="ID", help="Experiment id.")],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Show an experiment and a table of its runs."""
    with _client(url) as client:
        experiment = client.get_experiment(experiment_id)
        runs = _runs_of(client, experiment)
    if as_json:
        _print_json({**experiment, "runs": runs})
        return
    out = _out()
    out.print(_describe(experiment))
    out.print(_runs_table(runs))


def _follow(
    client: WeightspaceClient,
    experiment_id: str,
    *,
    as_json: bool,
    poll: float,
    timeout: float | None,
) -> None:
    """Wait for the end (live progress unless ``as_json``); exit 1 unless it succeeded."""
    if as_json:
        final = client.wait(experiment_id, poll=poll, timeout=timeout)
        _print_json(final)
    else:
        final = _wait_with_progress(client, experiment_id, poll=poll, timeout=timeout)
    if final["status"] != "succeeded":
        message = f"experiment {final['id']} {final['status']}"
        if final.get("error"):
            message += f": {final['error']}"
        _err().print(f"[red]error:[/] {escape(message)}")
        raise typer.Exit(1)
    if not as_json:
        _out().print(f"experiment [bold]{escape(final['id'])}[/] {_styled('succeeded')}")


def _wait_with_progress(
    client: WeightspaceClient, experiment_id: str, *, poll: float, timeout: float | None
) -> Experiment:
    progress = Progress(
        TextColumn("run {task.fields[run]:>3}"),
        BarColumn(),
        TextColumn("epoch {task.completed:>4.0f}/{task.total:.0f}"),
        TextColumn("loss {task.fields[loss]:>8}"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=_out(),
    )
    tasks: dict[int, Any] = {}

    def update(experiment: Experiment) -> None:
        for run in _runs_of(client, experiment):
            completed = run.get("epoch") or 0
            total = run.get("final_epoch") or 0
            loss = _num(run.get("train_loss"))
            status = _styled(run.get("status"))
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
                f"experiment {escape(experiment_id)}: {_styled(experiment['status'])}"
            )

    with progress:
        return client.wait(experiment_id, poll=poll, timeout=timeout, on_update=update)


@app.command()
def wait(
    experiment_id: Annotated[str, typer.Argument(metavar="ID", help="Experiment id.")],
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
        _follow(client, experiment_id, as_json=as_json, poll=poll, timeout=timeout)


@app.command()
def pca(
    experiment_id: Annotated[str, typer.Argument(metavar="ID", help="Experiment id.")],
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
) -> None:
    """PCA of the snapshots: explained variance and each snapshot's coordinates."""
    run_list = _int_list(runs, "--runs")
    epoch_list = _int_list(epochs, "--epochs")
    with _client(url) as client:
        result = client.pca(experiment_id, components=components, runs=run_list, epochs=epoch_list)
    if as_json:
        _print_json(result)
        return
    out = _out()
    ratios = result.get("explained_variance_ratio") or []
    cumulative = result.get("cumulative_variance_ratio") or []
    variance = Table(
        "component", "explained variance ratio", "cumulative", title="explained variance"
    )
    for i, ratio in enumerate(ratios):
        total = cumulative[i] if i < len(cumulative) else None
        variance.add_row(f"PC{i + 1}", _percent(ratio), _percent(total))
    out.print(variance)
    points = Table("run", "epoch", *(f"PC{i + 1}" for i in range(len(ratios))), title="points")
    for point in result.get("points") or []:
        coordinates = point.get("coordinates") or []
        points.add_row(
            str(point.get("run")), str(point.get("epoch")), *(_num(c) for c in coordinates)
        )
    out.print(points)
    _note_incomplete(result)


@app.command()
def distances(
    experiment_id: Annotated[str, typer.Argument(metavar="ID", help="Experiment id.")],
    epoch: Annotated[
        int | None,
        typer.Option("--epoch", min=0, help="Epoch to compare at (default: the final one)."),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Euclidean distances between the runs, and of each run from the origin and its init."""
    with _client(url) as client:
        result = client.distances(experiment_id, epoch=epoch)
    if as_json:
        _print_json(result)
        return
    out = _out()
    runs = result.get("runs") or []
    matrix = Table(
        "run", *(str(r) for r in runs), title=f"distances at epoch {result.get('epoch')}"
    )
    for run, row in zip(runs, result.get("distances") or [], strict=False):
        matrix.add_row(str(run), *(_num(d) for d in row))
    out.print(matrix)
    origin = result.get("distance_from_origin") or []
    init = result.get("distance_from_init") or []
    norms = Table("run", "from origin", "from init")
    for i, run in enumerate(runs):
        norms.add_row(
            str(run),
            _num(origin[i] if i < len(origin) else None),
            _num(init[i] if i < len(init) else None),
        )
    out.print(norms)
    _note_incomplete(result)


@app.command()
def trajectory(
    experiment_id: Annotated[str, typer.Argument(metavar="ID", help="Experiment id.")],
    points: Annotated[
        bool, typer.Option("--points", help="Also a table per run with every snapshot.")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Path metrics of each run: path length, displacement from init, straightness."""
    with _client(url) as client:
        result = client.trajectory(experiment_id)
    if as_json:
        _print_json(result)
        return
    out = _out()
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
            _num(last.get("path_length")),
            _num(last.get("displacement")),
            _num(last.get("straightness"), 3),
            _num(last.get("distance_from_origin")),
            _percent((last.get("metrics") or {}).get("test_accuracy")),
        )
    out.print(summary)
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
            )
            for point in run.get("points") or []:
                metrics = point.get("metrics") or {}
                table.add_row(
                    str(point.get("epoch")),
                    _num(metrics.get("train_loss")),
                    _percent(metrics.get("test_accuracy")),
                    _num(point.get("step_length")),
                    _num(point.get("path_length")),
                    _num(point.get("displacement")),
                    _num(point.get("distance_from_origin")),
                    _num(point.get("straightness"), 3),
                )
            out.print(table)
    _note_incomplete(result)


@app.command()
def download(
    experiment_id: Annotated[str, typer.Argument(metavar="ID", help="Experiment id.")],
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
    target = output or Path(f"{experiment_id}-run{run}-epoch{epoch}.safetensors")
    with _client(url) as client:
        path = client.download_snapshot(experiment_id, run, epoch, target)
    size = path.stat().st_size
    if as_json:
        _print_json({"path": str(path), "size": size})
    else:
        _out().print(f"saved {escape(str(path))} ({size:,} bytes, sha256 verified)")


# -- reproducing the paper ---------------------------------------------------------------

_ROLES = ("trajectory", "independent-inits", "shared-init", "pretrained-clones")


# Enums, not Literal or click types, for the choices: every Typer since 0.12 takes them.
class PresetName(StrEnum):
    quick = "quick"
    paper = "paper"


class DatasetName(StrEnum):
    mnist = "mnist"
    fashion_mnist = "fashion-mnist"
    digits = "digits"


class QueueName(StrEnum):
    cpu = "cpu"
    gpu = "gpu"


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was given on the command line (not by default or env)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


#: Measured figures worth a glance in the claims table (the rest are in claims.json).
_KEY_FIGURES = (
    "loss_change_ratio",
    "step_ratio",
    "max_relative_rise",
    "straightness",
    "top2",
    "top10",
    "ratio",
    "cv_pairwise_distance",
    "cv_norm",
)


def _model_summary(model: Mapping[str, Any]) -> str:
    kind = str(model.get("kind") or "-")
    if kind == "cnn":
        channels = "-".join(str(c) for c in model.get("channels") or [])
        text = f"cnn {channels}"
        if model.get("kernel_size") is not None:
            text += f" k{model['kernel_size']}"
        if model.get("hidden") is not None:
            text += f", fc {model['hidden']}"
        return text
    if kind == "mlp":
        return f"mlp {'-'.join(str(h) for h in model.get('hidden') or [])}".rstrip()
    return kind


def _epochs_summary(spec: Mapping[str, Any]) -> str:
    epochs = str(spec.get("epochs", "-"))
    pretrain = spec.get("pretrain_epochs") or 0
    return f"{pretrain}+{epochs}" if pretrain else epochs


def _dataset_summary(preset: Preset) -> str:
    experiments = preset.get("experiments") or []
    spec: Mapping[str, Any] = (experiments[0].get("spec") or {}) if experiments else {}
    data: Mapping[str, Any] = spec.get("dataset") or {}
    text = str(preset.get("dataset") or data.get("name") or "-")
    if data.get("train_size"):
        text += f" ({data['train_size']:,} train)"
    return text


#: Below this many columns the titles leave the presets table for lines of their own.
_WIDE_PRESETS = 130
_PRESETS_CAPTION = "epochs N+M: N epochs of pretraining, then M"


def _print_presets(out: Console, found: Sequence[Preset]) -> None:
    """One table of every preset's experiments; on a narrow console, one per preset."""
    wide = out.width >= _WIDE_PRESETS
    numbers = ("replicas", "epochs", "snapshot every")

    def table(title: str | None) -> Table:
        grid = Table(title=title, title_justify="left")
        if wide:
            grid.add_column("preset", no_wrap=True)
            grid.add_column("dataset")
        grid.add_column("role", no_wrap=True)
        if wide:
            grid.add_column("title", ratio=1)
        for name in numbers:
            grid.add_column(name, justify="right", no_wrap=name != "snapshot every")
        grid.add_column("model")
        return grid

    def row(preset: Preset, first: bool, experiment: Mapping[str, Any]) -> list[str]:
        spec: Mapping[str, Any] = experiment.get("spec") or {}
        cells = [escape(experiment.get("role") or "-")]
        if wide:
            cells = [
                escape(preset["name"]) if first else "",
                escape(_dataset_summary(preset)) if first else "",
                *cells,
                escape(experiment.get("title") or "-"),
            ]
        return [
            *cells,
            str(spec.get("replicas", "-")),
            _epochs_summary(spec),
            str(spec.get("snapshot_every", "-")),
            escape(_model_summary(spec.get("model") or {})),
        ]

    pretrains = any(
        (e.get("spec") or {}).get("pretrain_epochs") for p in found for e in p["experiments"]
    )
    if wide:
        combined = table("presets (run one with `weightspace reproduce --preset NAME`)")
        for preset in found:
            for i, experiment in enumerate(preset.get("experiments") or []):
                combined.add_row(*row(preset, i == 0, experiment))
            combined.add_section()
        if pretrains:
            combined.caption = _PRESETS_CAPTION
        out.print(combined)
    for preset in found:
        if not wide:
            single = table(
                f"preset [bold]{escape(preset['name'])}[/] on {_dataset_summary(preset)}"
            )
            for experiment in preset.get("experiments") or []:
                single.add_row(*row(preset, False, experiment))
            out.print(single)
            for experiment in preset.get("experiments") or []:
                out.print(
                    f"  {escape(experiment.get('role') or '-')}: "
                    f"{escape(experiment.get('title') or '-')}"
                )
        if preset.get("description"):
            out.print(f"[bold]{escape(preset['name'])}[/]: {escape(preset['description'])}")
        if not wide:
            out.print()
    if pretrains and not wide:
        out.print(f"[dim]{_PRESETS_CAPTION}[/]")
    if not wide:
        out.print("Run one with `weightspace reproduce --preset NAME`.")


@app.command("presets")
def list_presets(
    dataset: Annotated[
        DatasetName | None,
        typer.Option(
            "--dataset",
            help="Show the specs on this data set (default: each preset's own).",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """List the presets that reproduce the paper, with their four experiments."""
    with _client(url) as client:
        found = client.presets()
        if dataset is not None:
            found = [client.preset(p["name"], dataset=dataset.value) for p in found]
    if as_json:
        _print_json(found)
        return
    _print_presets(_out(), found)


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


def _experiment_progress(experiment: Experiment) -> tuple[int, int, str]:
    """(epochs done, epochs in all, "runs 2/5  loss 0.31") over the experiment's runs."""
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
        detail += f"  loss {_num(sum(losses) / len(losses), 2)}"
    return done, total, detail


def _role_of(item: Mapping[str, Any]) -> str:
    experiment = item.get("experiment") or {}
    return str(item.get("role") or experiment.get("role") or experiment.get("name") or "?")


def _wait_suite_with_progress(
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
        console=_out(),
    )
    tasks: dict[str, Any] = {}
    report_task: list[Any] = []
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
                _ROLES.index(_role_of(item)) if _role_of(item) in _ROLES else len(_ROLES),
                _role_of(item),
            ),
        )
        for item in items:
            experiment = item["experiment"]
            status = experiment.get("status") or "queued"
            done, total, detail = _experiment_progress(experiment)
            fields: dict[str, Any] = {
                "epochs": f"{done:>3}/{total} epochs",
                # The mark in front says running (a spinner) and succeeded; the rest in words.
                "detail": escape(detail)
                + ("" if status in ("running", "succeeded") else f"  {_styled(status)}"),
                "state": status,
            }
            key = experiment["id"]
            if key not in tasks:
                tasks[key] = progress.add_task(
                    escape(f"{_role_of(item):<17}"),
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
        return client.wait_suite(suite_id, poll=poll, timeout=timeout, on_update=update)


def _figures(measured: Mapping[str, Any], limit: int = 4) -> list[str]:
    """The key numbers among ``measured`` (else its first few), as "name value" strings."""
    numbers = [
        (key, value)
        for key, value in measured.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    chosen = [item for item in numbers if item[0] in _KEY_FIGURES] or numbers[:limit]
    return [f"{key.replace('_', ' ')} {_num(value, 3)}" for key, value in chosen]


def _key_figures(claim: Claim) -> list[str]:
    """A few of the claim's measured numbers, a line each (one per group of nested ones)."""
    measured: Mapping[str, Any] = claim.get("measured") or {}
    lines = _figures(measured)
    for key, value in measured.items():
        if isinstance(value, Mapping) and (figures := _figures(value)):
            lines.append(f"{key}: {', '.join(figures)}")
    return lines


def _claims_table(claims: Sequence[Claim]) -> Table:
    table = Table("#", "claim", "verdict", "measured", title="the paper's claims", show_lines=True)
    for claim in claims:
        verdict = str(claim.get("verdict") or "-")
        style = _VERDICT_STYLE.get(verdict)
        lines = _key_figures(claim)
        if claim.get("note") and (verdict == "not measured" or not lines):
            lines.append(str(claim["note"]))
        table.add_row(
            str(claim.get("id", "-")),
            escape(str(claim.get("statement") or "-")),
            f"[{style}]{escape(verdict)}[/]" if style else escape(verdict),
            escape("\n".join(lines) or "-"),
        )
    return table


def _reproduce(
    url: str,
    *,
    preset: str,
    dataset: str | None,
    out: Path | None,
    queue: str | None,
    poll: float,
    timeout: float | None,
    as_json: bool,
    check: Callable[[], None],
    serve_again: str | None = None,
) -> int:
    """Submit the suite, follow it, fetch the report and show the claims; the exit status."""
    console, err = _out(), _err()
    with _client(url) as client:
        suite = client.submit_suite(preset, dataset=dataset, queue=queue)
        suite_id = suite["id"]
        target = out if out is not None else Path(f"report-{suite['preset']}-{suite['dataset']}")
        report_url = f"{client.base_url}/suites/{suite_id}/report"
        if as_json:
            final = client.wait_suite(
                suite_id, poll=poll, timeout=timeout, on_update=lambda _: check()
            )
        else:
            queues = sorted({str(i["experiment"].get("queue")) for i in suite["experiments"]})
            console.print(
                f"submitted suite [bold]{escape(suite_id)}[/]: preset {escape(suite['preset'])} "
                f"on {escape(suite['dataset'])}, {len(suite['experiments'])} experiments "
                f"(queue {escape(', '.join(queues))})",
                soft_wrap=True,
            )
            final = _wait_suite_with_progress(
                client, suite_id, poll=poll, timeout=timeout, check=check
            )
        report = final["report"]
        unfinished = [i for i in final["experiments"] if i["experiment"]["status"] != "succeeded"]
        for item in unfinished:
            experiment = item["experiment"]
            message = f"experiment {_role_of(item)} ({experiment['id']}) {experiment['status']}"
            if experiment.get("error"):
                message += f": {experiment['error']}"
            err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)
        if report["status"] != "ready":
            if as_json:
                _print_json({"suite": final, "claims": None, "report": None})
            message = f"the report of suite {suite_id} {report['status']}"
            if report.get("error"):
                message += f": {report['error']}"
            err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
            return 1
        files = client.download_report(suite_id, target)
        claims = client.claims(suite_id)["claims"]
    index = (target / "index.html").resolve()
    if as_json:
        _print_json(
            {
                "suite": final,
                "claims": claims,
                "report": {
                    "directory": str(target.resolve()),
                    "index": str(index),
                    "files": [str(path) for path in files],
                    "url": report_url,
                },
            }
        )
        return 0
    console.print(
        f"saved the report ({len(files)} files) to {escape(str(target.resolve()))}",
        soft_wrap=True,
    )
    console.print(_claims_table(claims))
    console.print(f"report: {escape(str(index))}", soft_wrap=True)
    console.print(f"online: {escape(report_url)}", soft_wrap=True)
    if serve_again:
        console.print(f"        (while `{escape(serve_again)}` runs)", soft_wrap=True)
    return 0


def _no_check() -> None:
    pass


@app.command()
def reproduce(
    ctx: typer.Context,
    preset: Annotated[
        PresetName,
        typer.Option(
            "--preset", help="quick: minutes on a CPU; paper: the paper's scale, for a GPU."
        ),
    ] = PresetName.quick,
    dataset: Annotated[
        DatasetName | None,
        typer.Option(
            "--dataset",
            help="Data set (default: the preset's; quick: fashion-mnist, paper: mnist).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder to save the report in (default: ./report-<preset>-<dataset>).",
            show_default=False,
        ),
    ] = None,
    queue: Annotated[
        QueueName | None,
        typer.Option(
            "--queue",
            help="Queue to train on (default: the service's).",
            show_default=False,
        ),
    ] = None,
    poll: Annotated[float, typer.Option("--poll", min=0.1, help="Seconds between polls.")] = 1.0,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0, help="Give up after this many seconds (default: never)."),
    ] = None,
    embedded: Annotated[
        bool,
        typer.Option(
            "--embedded",
            help="Start the API and a worker under --home first (no server needed), "
            "and stop them at the end.",
        ),
    ] = False,
    home: Annotated[
        Path,
        typer.Option(
            "--home", help="With --embedded: WEIGHTSPACE_HOME (database, broker, snapshots)."
        ),
    ] = Path("./var"),
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            min=1,
            max=65535,
            help="With --embedded: the API's port (default: a free one).",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Reproduce the paper: run a preset's four experiments, then fetch its report and claims.

    Shows each experiment's progress, then waits while a worker builds the report.
    Saves the report (index.html, claims.json, figures) to --out and prints the claims table.
    Exits with status 1 (printing the error) if the report could not be built.
    With --embedded no server is needed: it runs one under --home while it works.
    """
    if embedded and _given(ctx, "url"):
        raise typer.BadParameter(
            "--embedded runs its own server: leave --url out", ctx, None, "--url"
        )
    if not embedded:
        for name in ("home", "port"):
            if _given(ctx, name):
                raise typer.BadParameter(
                    "only means something with --embedded", ctx, None, f"--{name}"
                )
    options: dict[str, Any] = {
        "preset": preset.value,
        "dataset": None if dataset is None else dataset.value,
        "out": out,
        "queue": None if queue is None else queue.value,
        "poll": poll,
        "timeout": timeout,
        "as_json": as_json,
    }
    if not embedded:
        raise typer.Exit(_reproduce(url, check=_no_check, **options))
    host = "127.0.0.1"
    chosen = port or _free_port(host)
    err = _err()
    logs = home.expanduser().resolve() / "logs"
    if not as_json:
        err.print(
            f"starting the embedded service on {escape(_local_url(host, chosen))} "
            f"(home {escape(str(home.expanduser().resolve()))}; logs in {escape(str(logs))})",
            soft_wrap=True,
        )
    try:
        with _embedded_service(host, chosen, home, 1, logs=logs) as service:
            serve_again = f"weightspace up --home {service.home} --port {chosen}"
            code = _reproduce(service.url, check=service.check, serve_again=serve_again, **options)
            if not as_json:
                err.print("stopping the embedded service ...")
    except _Interrupted:
        err.print("[yellow]interrupted[/]: the embedded service is stopped")
        raise typer.Exit(130) from None
    except _ChildDied as died:
        _report_exit(died.child)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


# -- server commands ---------------------------------------------------------------------


def _service_module() -> str:
    return os.environ.get(SERVICE_MODULE_ENV) or "weightspace_service"


def _worker_module() -> str:
    return os.environ.get(WORKER_MODULE_ENV) or "weightspace_worker"


# Run by sys.executable, whose sys.path (cwd first, as for -m) is what matters, not ours.
_FIND_MODULES = """\
import importlib.util, sys
missing = []
for name in sys.argv[1:]:
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        missing.append(name)
print(" ".join(missing))
"""


def _require_modules(*modules: str) -> None:
    """Exit with a clear message unless ``python -m <module>`` can find every module."""
    result = subprocess.run(
        [sys.executable, "-c", _FIND_MODULES, *modules],
        capture_output=True,
        text=True,
        check=False,
    )
    missing = result.stdout.split() if result.returncode == 0 else list(modules)
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        _err().print(
            f"[red]error:[/] {escape(sys.executable)} cannot import {escape(names)}: "
            "the weightspace server package is not installed in this environment.\n"
            "Install it from the repository root with `pip install -e .` "
            "(or run this command from the repository root)."
        )
        raise typer.Exit(1)


def _worker_argv(queues: str, pool: str, concurrency: int, loglevel: str) -> list[str]:
    return [
        sys.executable, "-m", _worker_module(),
        "--queues", queues,
        "--pool", pool,
        "--concurrency", str(concurrency),
        "--loglevel", loglevel,
    ]  # fmt: skip


def _service_argv(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", _service_module(), "--host", host, "--port", str(port)]


def _local_url(host: str, port: int) -> str:
    """A URL that reaches a server listening on ``host`` from this machine."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path | None = None  # where its stdout and stderr go, if not to ours


@dataclass
class _Supervisor:
    """Children in their own process groups, stopped together (SIGTERM, then SIGKILL).

    Each child gets its own session so a terminal's Ctrl-C reaches only us; we then stop the
    children's whole groups (Celery's pool processes included). A second Ctrl-C kills at once.
    """

    env: Mapping[str, str]
    grace: float = STOP_GRACE_S
    children: list[_Child] = field(default_factory=list)
    signals: int = 0

    def start(self, name: str, argv: Sequence[str], log: Path | None = None) -> _Child:
        """Start ``argv``; its output goes to ours, or is appended to ``log`` if given."""
        if log is None:
            process = subprocess.Popen(list(argv), env=dict(self.env), start_new_session=True)
        else:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("ab") as out:
                process = subprocess.Popen(
                    list(argv),
                    env=dict(self.env),
                    start_new_session=True,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
        child = _Child(name, process, log)
        self.children.append(child)
        return child

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1

    @contextlib.contextmanager
    def handling_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {s: signal.signal(s, self._on_signal) for s in handled}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def exited(self) -> _Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def wait_any(self) -> _Child | None:
        """Block until a child exits (returned) or we are signalled (``None``)."""
        while not self.signals:
            child = self.exited()
            if child is not None:
                return child
            time.sleep(0.1)
        return None

    def _signal_groups(self, sig: int, children: Sequence[_Child]) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.process.pid, sig)

    def stop(self) -> None:
        """SIGTERM every running child's group; SIGKILL what is left after ``grace`` seconds."""
        running = [c for c in self.children if c.process.poll() is None]
        if not running:
            return
        self._signal_groups(signal.SIGTERM, running)
        signals_before = self.signals
        deadline = time.monotonic() + self.grace
        while any(c.process.poll() is None for c in running):
            if time.monotonic() >= deadline or self.signals > signals_before:
                break
            time.sleep(0.05)
        stubborn = [c for c in running if c.process.poll() is None]
        if stubborn:
            names = ", ".join(c.name for c in stubborn)
            _err().print(f"[yellow]killing {escape(names)}[/] (still running after SIGTERM)")
            self._signal_groups(signal.SIGKILL, stubborn)
        for child in running:
            child.process.wait()


def _exit_code(child: _Child) -> int:
    code = child.process.returncode
    return code if code and code > 0 else 1


def _report_exit(child: _Child) -> None:
    code = child.process.returncode
    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
    err = _err()
    err.print(f"[red]error:[/] the {escape(child.name)} process {how}; stopping")
    if child.log is not None:
        err.print(f"the end of its log, {escape(str(child.log))}:")
        err.print(escape(_tail(child.log)), soft_wrap=True)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_bytes()[-32_768:].decode("utf-8", "replace")
    except OSError as error:
        return f"(cannot read it: {error})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _run_single(name: str, argv: Sequence[str]) -> int:
    """Run one child until it exits (its status) or we are signalled (stop it, 0)."""
    supervisor = _Supervisor(os.environ)
    with supervisor.handling_signals():
        try:
            child = supervisor.start(name, argv)
            if supervisor.wait_any() is None:
                return 0  # signalled: the finally clause stops the child
            return child.process.returncode if child.process.returncode >= 0 else 1
        finally:
            supervisor.stop()


def _wait_healthy(supervisor: _Supervisor, child: _Child, url: str, timeout: float) -> str:
    """Poll ``url/health`` until 2xx: ``"ok"``, else ``"exited"``, ``"signal"`` or ``"timeout"``."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as http:
        while True:
            if supervisor.signals:
                return "signal"
            if child.process.poll() is not None:
                return "exited"
            with contextlib.suppress(httpx.HTTPError):
                if http.get(f"{url}/health").is_success:
                    return "ok"
            if time.monotonic() >= deadline:
                return "timeout"
            time.sleep(0.25)


class _Interrupted(Exception):
    """Ctrl-C, SIGTERM or SIGHUP reached us while we ran the embedded service."""


class _ChildDied(Exception):
    """A process of the embedded service ended while we needed it."""

    def __init__(self, child: _Child) -> None:
        super().__init__(child.name)
        self.child = child


@dataclass
class _Embedded:
    """A running embedded service: its URL, home and processes."""

    url: str
    home: Path
    supervisor: _Supervisor

    def check(self) -> None:
        """Raise :class:`_Interrupted` if we were signalled, :class:`_ChildDied` if one died."""
        if self.supervisor.signals:
            raise _Interrupted
        child = self.supervisor.exited()
        if child is not None:
            raise _ChildDied(child)


@contextlib.contextmanager
def _embedded_service(
    host: str, port: int, home: Path, concurrency: int, *, logs: Path | None = None
) -> Iterator[_Embedded]:
    """Start the API (once healthy) and a worker under ``home``; stop both on leaving.

    The children's output goes to ours, or to ``logs/api.log`` and ``logs/worker.log``. While
    inside, Ctrl-C, SIGTERM and SIGHUP only count (see :meth:`_Embedded.check`); a signal while
    the API starts raises :class:`_Interrupted`, and an API that exits or never answers is
    reported and exits 1.
    """
    service, worker = _service_module(), _worker_module()
    _require_modules(service, worker)
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WEIGHTSPACE_HOME": str(home)}
    if logs is not None:
        env["PYTHONUNBUFFERED"] = "1"  # a log file is block-buffered: keep a crash's last words
    url = _local_url(host, port)
    # Solo runs one training in the worker's main thread; threads (not prefork) for more,
    # since CUDA cannot be re-initialised in forked children.
    pool = "solo" if concurrency == 1 else "threads"
    supervisor = _Supervisor(env)
    with supervisor.handling_signals():
        try:
            api_log = None if logs is None else logs / "api.log"
            api_child = supervisor.start("api", _service_argv(host, port), log=api_log)
            state = _wait_healthy(supervisor, api_child, url, HEALTH_TIMEOUT_S)
            if state == "signal":
                raise _Interrupted
            if state == "exited":
                _report_exit(api_child)
                raise typer.Exit(_exit_code(api_child))
            if state == "timeout":
                _err().print(
                    f"[red]error:[/] the API did not answer {escape(url)}/health within "
                    f"{HEALTH_TIMEOUT_S:.0f} s; stopping"
                )
                raise typer.Exit(1)
            supervisor.start(
                "worker",
                _worker_argv("cpu,gpu", pool, concurrency, "info"),
                log=None if logs is None else logs / "worker.log",
            )
            yield _Embedded(url, home, supervisor)
        finally:
            supervisor.stop()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@app.command(rich_help_panel=_SERVER)
def up(
    host: Annotated[
        str, typer.Option("--host", help="Interface the API listens on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="API port.")] = 8000,
    home: Annotated[
        Path, typer.Option("--home", help="WEIGHTSPACE_HOME: database, broker and snapshots.")
    ] = Path("./var"),
    workers_concurrency: Annotated[
        int, typer.Option("--workers-concurrency", min=1, help="Trainings the worker runs at once.")
    ] = 1,
) -> None:
    """Run the API and a worker (queues cpu,gpu) together, in embedded mode under --home.

    Ctrl-C or SIGTERM stops both; if either dies, the other is stopped and this exits non-zero.
    """
    err = _err()
    try:
        with _embedded_service(host, port, home, workers_concurrency) as service:
            err.print(
                f"[green]weightspace is up[/] at [bold]{escape(service.url)}[/] "
                f"(home {escape(str(service.home))})\n"
                "Use it from another shell with:\n"
                f"  export {URL_ENV}={escape(service.url)}\n"
                f"  export WEIGHTSPACE_HOME={escape(str(service.home))}   # for server-side tools\n"
                "Press Ctrl-C to stop."
            )
            exited = service.supervisor.wait_any()
            if exited is not None:
                _report_exit(exited)
                raise typer.Exit(_exit_code(exited))
            err.print("stopping ...")
    except _Interrupted:
        return


@app.command(rich_help_panel=_SERVER)
def api(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")
    ] = 8000,
) -> None:
    """Run the API server (`python -m weightspace_service`: migrates the database, then serves)."""
    _require_modules(_service_module())
    raise typer.Exit(_run_single("api", _service_argv(host, port)))


@app.command(rich_help_panel=_SERVER)
def worker(
    queues: Annotated[
        str, typer.Option("--queues", help="Comma-separated queues to consume.")
    ] = "cpu,gpu",
    pool: Annotated[
        str, typer.Option("--pool", help="Celery pool: solo, threads or prefork.")
    ] = "solo",
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Pool size.")] = 1,
    loglevel: Annotated[str, typer.Option("--loglevel", help="Log level.")] = "info",
) -> None:
    """Run a Celery worker that trains experiments (`python -m weightspace_worker`)."""
    _require_modules(_worker_module())
    raise typer.Exit(_run_single("worker", _worker_argv(queues, pool, concurrency, loglevel)))
