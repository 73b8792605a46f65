"""Lifecycle commands: cancel, retry and delete an experiment (or a suite, with --suite); and
``token``, which runs the server's token command line (server-side, like ``up``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

import weightspace_client.references as references
from weightspace_client.cli.app import SERVER_PANEL, JsonOption, UrlOption, app
from weightspace_client.cli.output import client as _client
from weightspace_client.cli.output import out, print_json
from weightspace_client.cli.server import TOKENS, run_server_module
from weightspace_client.client import DEFAULT_URL

IdArgument = Annotated[
    str,
    typer.Argument(
        metavar="ID", help="Experiment id, id prefix or name (suite id or prefix with --suite)."
    ),
]
SuiteOption = Annotated[bool, typer.Option("--suite", help="ID is a suite: act on all of it.")]


def _report(what: str, item: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(item)
        return
    status = item.get("status")
    out().print(f"{what} [bold]{escape(str(item.get('id')))}[/]: {escape(str(status))}")


@app.command()
def cancel(
    item_id: IdArgument,
    suite: SuiteOption = False,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Cancel a queued or running experiment (a running one stops within seconds; its snapshots
    are kept)."""
    with _client(url) as client:
        item_id = references.resolve(client, item_id, suite=suite)
        item = client.cancel_suite(item_id) if suite else client.cancel(item_id)
    _report("cancelled" if not suite else "suite", dict(item), as_json)


@app.command()
def retry(
    item_id: IdArgument,
    suite: SuiteOption = False,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Queue a failed or cancelled experiment again; it continues from its last stored state."""
    with _client(url) as client:
        item_id = references.resolve(client, item_id, suite=suite)
        item = client.retry_suite(item_id) if suite else client.retry(item_id)
    _report("queued again", dict(item), as_json)


@app.command()
def delete(
    item_id: IdArgument,
    suite: SuiteOption = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Delete an experiment (or a suite) and every snapshot it stored. Not while it runs."""
    kind = "suite" if suite else "experiment"
    with _client(url) as client:
        item_id = references.resolve(client, item_id, suite=suite)
        if not yes:
            typer.confirm(f"Delete {kind} {item_id} and all its snapshots?", abort=True)
        if suite:
            client.delete_suite(item_id)
        else:
            client.delete(item_id)
    out().print(f"deleted {kind} [bold]{escape(item_id)}[/]")


@app.command(
    rich_help_panel=SERVER_PANEL,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def token(ctx: typer.Context) -> None:
    """Manage API tokens on the server's database: create --owner NAME [--admin], list, revoke ID.

    Runs on the server (WEIGHTSPACE_DATABASE_URL), as `python -m weightspace_app.usecases.tokens`;
    a new token is printed once.
    """
    raise typer.Exit(run_server_module(TOKENS, ctx.args))
