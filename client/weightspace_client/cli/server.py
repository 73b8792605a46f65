"""Server commands: ``up``, ``api`` and ``worker`` run the server's processes on this machine.

The process supervisor is server code, :mod:`weightspace_app.infra.supervisor` in the
``weightspace`` package. It is imported only when one of these commands (or ``reproduce
--embedded``) runs, so the light client installs and imports without the server; where the
server is not installed, these commands say how to install it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.markup import escape

from weightspace_client.cli.app import SERVER_PANEL, app
from weightspace_client.cli.output import err, error
from weightspace_client.client import URL_ENV

if TYPE_CHECKING:
    from weightspace_app.infra.supervisor import SupervisorError

#: How to get the server where ``weightspace_app.infra.supervisor`` cannot be imported.
INSTALL_SERVER = (
    "Install it with `pip install 'weightspace[server]'` "
    "(from a checkout: `pip install -e '.[server]'` at the repository root)."
)

#: ``work(url, check, serve_again)`` of :func:`run_embedded`: ``check()`` raises if the service
#: stopped or we were signalled; ``serve_again`` is the command that would serve the same home.
Work = Callable[[str, Callable[[], None], str], int]


def _no_server(failure: ImportError) -> NoReturn:
    error(
        f"this command runs the weightspace server, which is not installed for {sys.executable} "
        f"({failure}).\n{INSTALL_SERVER}"
    )
    raise typer.Exit(1)


def _report(failure: SupervisorError) -> int:
    """Print the failure (with how to install the server if that is the remedy); its status."""
    error(f"{failure}\n{INSTALL_SERVER}" if failure.missing_server else str(failure))
    return failure.code


def _fail(failure: SupervisorError) -> NoReturn:
    raise typer.Exit(_report(failure))


def _warn(message: str) -> None:
    err().print(f"[yellow]warning:[/] {escape(message)}")


def run_embedded(port: int | None, home: Path, *, quiet: bool, work: Work) -> int:
    """Run ``work`` against an API and a worker started under ``home``; the exit status.

    Their output goes to ``home/logs``; both are stopped at the end, on Ctrl-C or SIGTERM (130),
    or when either dies (1).
    """
    try:
        from weightspace_app.infra import supervisor
    except ImportError as failure:
        _no_server(failure)
    host = "127.0.0.1"
    chosen = port or supervisor.free_port(host)
    console = err()
    logs = home.expanduser().resolve() / "logs"
    if not quiet:
        console.print(
            f"starting the embedded service on {escape(supervisor.local_url(host, chosen))} "
            f"(home {escape(str(home.expanduser().resolve()))}; logs in {escape(str(logs))})",
            soft_wrap=True,
        )
    try:
        with supervisor.embedded_service(host, chosen, home, 1, logs=logs, warn=_warn) as service:
            serve_again = f"weightspace up --home {service.home} --port {chosen}"
            code = work(service.url, service.check, serve_again)
            if not quiet:
                console.print("stopping the embedded service ...")
    except supervisor.Interrupted:
        console.print("[yellow]interrupted[/]: the embedded service is stopped")
        return 130
    except supervisor.ChildDied as died:
        _report(died)
        return 1
    except supervisor.SupervisorError as failure:
        return _report(failure)
    return code


@app.command(rich_help_panel=SERVER_PANEL)
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
    try:
        from weightspace_app.infra import supervisor
    except ImportError as failure:
        _no_server(failure)
    console = err()
    try:
        with supervisor.embedded_service(
            host, port, home, workers_concurrency, warn=_warn
        ) as service:
            console.print(
                f"[green]weightspace is up[/] at [bold]{escape(service.url)}[/] "
                f"(home {escape(str(service.home))})\n"
                "Use it from another shell with:\n"
                f"  export {URL_ENV}={escape(service.url)}\n"
                f"  export WEIGHTSPACE_HOME={escape(str(service.home))}   # for server-side tools\n"
                "Press Ctrl-C to stop."
            )
            exited = service.supervisor.wait_any()
            if exited is not None:
                _fail(supervisor.ChildDied(exited))
            console.print("stopping ...")
    except supervisor.Interrupted:
        return
    except supervisor.SupervisorError as failure:
        _fail(failure)


@app.command(rich_help_panel=SERVER_PANEL)
def api(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")
    ] = 8000,
) -> None:
    """Run the API server (`python -m weightspace_service`: migrates the database, then serves)."""
    try:
        from weightspace_app.infra import supervisor
    except ImportError as failure:
        _no_server(failure)
    try:
        code = supervisor.serve_api(host, port)
    except supervisor.SupervisorError as failure:
        _fail(failure)
    raise typer.Exit(code)


@app.command(rich_help_panel=SERVER_PANEL)
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
    try:
        from weightspace_app.infra import supervisor
    except ImportError as failure:
        _no_server(failure)
    try:
        code = supervisor.serve_worker(queues, pool, concurrency, loglevel)
    except supervisor.SupervisorError as failure:
        _fail(failure)
    raise typer.Exit(code)
