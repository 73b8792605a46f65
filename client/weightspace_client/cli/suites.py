"""Reproducing the paper: ``reproduce`` submits a preset's suite, follows it and shows its claims.

With ``--embedded`` it first starts the API and a worker (the server's supervisor, as a child
process: see :mod:`weightspace_client.cli.server`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

import weightspace_client.cli.output as output
from weightspace_client.cli.app import JsonOption, UrlOption, app, given
from weightspace_client.cli.output import VERDICT_STYLE, num, print_json
from weightspace_client.cli.output import client as _client
from weightspace_client.cli.progress import role_of, wait_suite_with_progress
from weightspace_client.cli.server import run_embedded
from weightspace_client.client import DEFAULT_URL
from weightspace_client.types import Claim, DatasetName, PresetName, QueueName, SuiteExperiment

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


def _figures(measured: Mapping[str, Any], limit: int = 4) -> list[str]:
    """The key numbers among ``measured`` (else its first few), as "name value" strings."""
    numbers = [
        (key, value)
        for key, value in measured.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    chosen = [item for item in numbers if item[0] in _KEY_FIGURES] or numbers[:limit]
    return [f"{key.replace('_', ' ')} {num(value, 3)}" for key, value in chosen]


def _key_figures(claim: Claim) -> list[str]:
    """A few of the claim's measured numbers, a line each (one per group of nested ones)."""
    measured: Mapping[str, Any] = claim.get("measured") or {}
    lines = _figures(measured)
    for key, value in measured.items():
        if isinstance(value, Mapping) and (figures := _figures(value)):
            lines.append(f"{key}: {', '.join(figures)}")
    return lines


def _test_line(test: Mapping[str, Any]) -> str:
    """``name mean [low, high] > null [a, b] (k/K)``: a statistic beside its band."""
    kind = next((k for k in ("null", "control", "tolerance") if test.get(k)), None)
    text = f"{str(test.get('name', '?')).replace('_', ' ')} {num(test.get('value'), 3)}"
    if test.get("interval"):
        low, high = test["interval"]
        text += f" [{num(low, 3)}, {num(high, 3)}]"
    if kind is not None:
        band = test[kind]["band"]
        side = ">" if test.get("direction") == "above" else "<"
        shown = (
            num(band[0], 3) if kind == "tolerance" else f"[{num(band[0], 3)}, {num(band[1], 3)}]"
        )
        text += f" {side} {kind} {shown}"
    if "passed" in test:
        text += f" ({test['passed']}/{test.get('seeds', '?')})"
    if effect := test.get("effect"):
        text += f"; effect {num(effect.get('value'), 3)} (>= {num(effect.get('minimum'), 3)})"
    return text


def _claims_table(claims: Sequence[Claim]) -> Table:
    table = Table(
        "#",
        "claim",
        "verdict",
        "statistic vs null or control",
        title="the paper's claims",
        show_lines=True,
    )
    for claim in claims:
        verdict = str(claim.get("verdict") or "-")
        style = VERDICT_STYLE.get(verdict)
        lines = [_test_line(t) for t in claim.get("tests") or []] or _key_figures(claim)
        # Tests reported beside the verdict (newer reports; not in the API's Claim type).
        beside: Sequence[Mapping[str, Any]] = dict[str, Any](claim).get("beside") or []
        lines += [f"beside: {_test_line(t)}" for t in beside]
        if claim.get("note") and (verdict == "not measured" or not lines):
            lines.append(str(claim["note"]))
        stability = claim.get("stability")
        agree = f"\n{stability['agree']}/{stability['seeds']} seeds" if stability else ""
        shown = f"[{style}]{escape(verdict)}[/]" if style else escape(verdict)
        table.add_row(
            str(claim.get("id", "-")),
            escape(str(claim.get("statement") or "-")),
            shown + escape(agree),
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
    seeds: int | None = None,
) -> int:
    """Submit the suite, follow it, fetch the report and show the claims; the exit status."""
    console, errors = output.out(), output.err()
    with _client(url) as client:
        suite = client.submit_suite(preset, dataset=dataset, queue=queue, seeds=seeds)
        suite_id = suite["id"]
        target = out if out is not None else Path(f"report-{suite['preset']}-{suite['dataset']}")
        report_url = f"{client.base_url}/suites/{suite_id}/report"
        if as_json:
            final = client.wait_suite(
                suite_id, poll=poll, timeout=timeout, on_update=lambda _: check(), check=False
            )
        else:
            queues = sorted({str(i["experiment"].get("queue")) for i in suite["experiments"]})
            console.print(
                f"submitted suite [bold]{escape(suite_id)}[/]: preset {escape(suite['preset'])} "
                f"on {escape(suite['dataset'])}, {len(suite['experiments'])} experiments "
                f"(queue {escape(', '.join(queues))})",
                soft_wrap=True,
            )
            final = wait_suite_with_progress(
                client, suite_id, poll=poll, timeout=timeout, check=check
            )
        report = final["report"]
        unfinished = [i for i in final["experiments"] if i["experiment"]["status"] != "succeeded"]
        for item in unfinished:
            experiment = item["experiment"]
            message = f"experiment {role_of(item)} ({experiment['id']}) {experiment['status']}"
            if experiment.get("error"):
                message += f": {experiment['error']}"
            errors.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)
        if report["status"] != "ready":
            if as_json:
                print_json({"suite": final, "claims": None, "report": None})
            message = f"the report of suite {suite_id} {report['status']}"
            if report.get("error"):
                message += f": {report['error']}"
            errors.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
            return 1
        files = client.download_report(suite_id, target)
        claims = client.claims(suite_id)["claims"]
    index = (target / "index.html").resolve()
    if as_json:
        print_json(
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
        return _unmeasured(claims, unfinished)
    console.print(
        f"saved the report ({len(files)} files) to {escape(str(target.resolve()))}",
        soft_wrap=True,
    )
    console.print(_claims_table(claims))
    console.print(f"report: {escape(str(index))}", soft_wrap=True)
    console.print(f"online: {escape(report_url)}", soft_wrap=True)
    if serve_again:
        console.print(f"        (while `{escape(serve_again)}` runs)", soft_wrap=True)
    return _unmeasured(claims, unfinished)


def _unmeasured(claims: Sequence[Claim], unfinished: Sequence[SuiteExperiment]) -> int:
    """The exit status: 1 (saying why) when experiments that did not succeed left claims
    "not measured"; 0 otherwise (a claim a finished suite cannot measure is a finding)."""
    missing = [str(c.get("id", "?")) for c in claims if c.get("verdict") == "not measured"]
    if not (missing and unfinished):
        return 0
    ended = ", ".join(f"{role_of(i)} {i['experiment']['status']}" for i in unfinished)
    output.error(
        f"claim{'s' if len(missing) > 1 else ''} {', '.join(missing)} not measured "
        f"because not every experiment succeeded ({ended})"
    )
    return 1


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
    ] = "quick",
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
    seeds: Annotated[
        int | None,
        typer.Option(
            "--seeds",
            min=1,
            max=10,
            help="Repeat the experiments with K sets of derived seeds; the report gives "
            "each statistic as a mean with a 95% interval and how many seeds agree "
            "(default: the preset's; quick: 3, paper: 1).",
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
    """Reproduce the paper: run a preset's experiments, then fetch its report and claims.

    Shows each experiment's progress, then waits while a worker builds the report.
    Saves the report (index.html, claims.json, figures) to --out and prints the claims table.
    Exits with status 1 (printing the error) if the report could not be built, or if
    experiments that failed or were cancelled left claims "not measured".
    With --embedded no server is needed: it runs one under --home while it works.
    """
    if embedded and given(ctx, "url"):
        raise typer.BadParameter(
            "--embedded runs its own server: leave --url out", ctx, None, "--url"
        )
    if not embedded:
        for name in ("home", "port"):
            if given(ctx, name):
                raise typer.BadParameter(
                    "only means something with --embedded", ctx, None, f"--{name}"
                )
    options: dict[str, Any] = {
        "preset": preset,
        "dataset": dataset,
        "out": out,
        "queue": queue,
        "seeds": seeds,
        "poll": poll,
        "timeout": timeout,
        "as_json": as_json,
    }
    if not embedded:
        raise typer.Exit(_reproduce(url, check=_no_check, **options))

    def work(service_url: str, check: Callable[[], None], serve_again: str) -> int:
        return _reproduce(service_url, check=check, serve_again=serve_again, **options)

    raise typer.Exit(run_embedded(port, home, quiet=as_json, work=work))


suites_app = typer.Typer(name="suites", help="Suites: the paper's experiments, submitted as one.")
app.add_typer(suites_app)


@suites_app.command("list")
def list_suites(
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 20,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """List suites, newest first, with their status and their report's (--json for more)."""
    with _client(url) as client:
        suites = list(islice(client.list_suites(limit=min(limit, 100)), limit))
    if as_json:
        print_json(suites)
        return
    if not suites:
        output.out().print("no suites")
        return
    table = Table(title="suites", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("id", no_wrap=True, min_width=max(len(s["id"]) for s in suites))
    for header in ("preset", "dataset", "seeds", "status", "report"):
        table.add_column(header, no_wrap=True)
    for suite in suites:
        table.add_row(
            escape(suite["id"]),
            escape(suite["preset"]),
            escape(suite["dataset"]),
            str(suite.get("seeds", 1)),
            output.styled(suite.get("status")),
            escape(suite["report"]["status"]),
        )
    output.out().print(table)
