"""The Typer application every command module adds its commands to, and the options they share."""

from __future__ import annotations

from typing import Annotated

import typer

from weightspace_client._version import __version__
from weightspace_client.client import URL_ENV

app = typer.Typer(
    name="weightspace",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold a token
)

#: The help panel of ``up``, ``api`` and ``worker``.
SERVER_PANEL = "Server processes"

UrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        envvar=URL_ENV,
        help=f"Root URL of the weightspace API (env {URL_ENV}).",
        show_envvar=False,
    ),
]
#: An experiment as people name it: its id, a unique prefix of it, or its name
#: (:mod:`weightspace_client.references`).
ExperimentArgument = Annotated[
    str,
    typer.Argument(metavar="ID", help="Experiment id, a unique prefix of it, or its name."),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the raw JSON instead of human-readable tables.")
]

# Options with fixed choices are annotated with the Literals of weightspace_client.types, which
# are generated from the API's OpenAPI document: Typer (0.19+) offers a Literal's values as the
# choices, so the document states them once (tests/unit/test_client_types.py checks each one).


def given(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was given on the command line (not by default or env)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


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
