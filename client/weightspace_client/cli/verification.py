"""The verify command: a worker replays training and compares the stored snapshots bit for bit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from weightspace_client import references
from weightspace_client.cli.app import JsonOption, UrlOption, app
from weightspace_client.cli.output import client as _client
from weightspace_client.cli.output import num, out, print_json
from weightspace_client.client import DEFAULT_URL

#: The exit status when a stored snapshot is not reproduced (as ``cmp`` and ``diff`` answer).
DIFFERS = 1


@app.command()
def verify(
    experiment_id: Annotated[
        str, typer.Argument(metavar="ID", help="Experiment: an id, a unique id prefix or a name.")
    ],
    run: Annotated[
        int | None, typer.Option("--run", min=0, help="Replay only this run (default: all).")
    ] = None,
    epoch: Annotated[
        int | None,
        typer.Option(
            "--epoch", min=0, help="Replay up to this snapshot epoch (default: the final one)."
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", min=0.0, help="Seconds to wait for the worker (default: no limit)."
        ),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Replay the experiment's training on a worker and compare every stored snapshot on the
    way bit for bit: prints `identical`, or the first differing snapshot with the largest
    difference and both environments (exit status 1). Replays start from each run's initial
    state, so this costs what training to --epoch cost."""
    with _client(url) as client:
        experiment_id = references.experiment_id(client, experiment_id)
        result = client.verify(experiment_id, run=run, epoch=epoch, timeout=timeout)
    if as_json:
        print_json(result)
    else:
        _print(result)
    if result.get("verdict") != "identical":
        raise typer.Exit(DIFFERS)


def _print(result: Mapping[str, Any]) -> None:
    console = out()
    compared = len(result["compared"])
    runs = ", ".join(map(str, result["runs"]))
    difference = result["difference"]
    if difference is None:
        console.print(
            f"[green]identical[/]: {compared} snapshots of run(s) {runs} reproduced bit for bit "
            f"up to epoch {result['until_epoch']}"
        )
        console.print(f"environment: {escape(_environment(result['environment']))}")
        return
    console.print(
        f"[red]differs[/] at run {difference['run']}, epoch {difference['epoch']} "
        f"({difference['reason']}): {escape(difference['detail'])}"
    )
    if difference["max_abs_difference"] is not None:
        console.print(f"largest difference: {num(difference['max_abs_difference'])}")
    for name, values in difference["metrics"].items():
        console.print(
            f"{escape(name)}: stored {num(values['stored'], 17)}, "
            f"replayed {num(values['replayed'], 17)}"
        )
    console.print(f"{compared} snapshots before it were reproduced bit for bit")
    stored, replay = difference["stored_environment"], difference["replay_environment"]
    if stored:
        console.print(_environments(stored, replay))
    else:  # the file could not be read, nor what it was computed with
        console.print(f"replay environment: {escape(_environment(replay))}")


def _environment(environment: Mapping[str, str]) -> str:
    return ", ".join(f"{name} {value}" for name, value in environment.items())


def _environments(stored: Mapping[str, str], replay: Mapping[str, str]) -> Table:
    """Both environments side by side, the entries that differ in yellow."""
    table = Table("", "stored", "replay", title="environments")
    for name in sorted(set(stored) | set(replay)):
        a, b = stored.get(name, "-"), replay.get(name, "-")
        style = None if a == b else "yellow"
        table.add_row(escape(name), escape(a), escape(b), style=style)
    return table
