"""Server commands: ``up``, ``api`` and ``worker`` run the server's processes on this machine.

The client imports no server code: these commands run the server's own command line,
``python -m weightspace_app.infra.supervisor up|api|worker``, in their place (``exec``: signals
and the exit status are the supervisor's); ``reproduce --embedded`` starts it as a child
(:func:`run_embedded`) and ``token`` runs ``python -m weightspace_app.usecases.tokens``
(:func:`run_server_module`). Where the server is not installed (``weightspace_app`` cannot be
found, which is checked without importing it), these commands say how to install it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Annotated, Any, NoReturn

import typer
from rich.markup import escape

from weightspace_client.cli.app import SERVER_PANEL, app
from weightspace_client.cli.output import err, error

#: The server's package, and its command lines the client runs.
SERVER_PACKAGE = "weightspace_app"
SUPERVISOR = "weightspace_app.infra.supervisor"
TOKENS = "weightspace_app.usecases.tokens"

#: How to get the server where ``weightspace_app`` cannot be found (the supervisor says the same
#: where the modules it runs are missing).
INSTALL_SERVER = (
    "Install it with `pip install 'weightspace[server]'` "
    "(from a checkout: `pip install -e '.[server]'` at the repository root)."
)

#: ``work(url, check, serve_again)`` of :func:`run_embedded`: ``check()`` raises if the service
#: stopped or we were signalled; ``serve_again`` is the command that would serve the same home.
Work = Callable[[str, Callable[[], None], str], int]


def require_server() -> None:
    """Exit 1, saying how to install it, unless the server package can be found (not imported:
    the light client loads no server code)."""
    try:
        found = importlib.util.find_spec(SERVER_PACKAGE) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        error(
            "this command runs the weightspace server, which is not installed for "
            f"{sys.executable} (no module named '{SERVER_PACKAGE}').\n{INSTALL_SERVER}"
        )
        raise typer.Exit(1)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def exec_server_module(module: str, args: Sequence[str]) -> NoReturn:
    """Become ``python -m module args``: its signals, its output, its exit status."""
    require_server()
    _flush()
    os.execv(sys.executable, [sys.executable, "-m", module, *args])


def _status(code: int) -> int:
    """A child's exit status as a shell reports it (128 + N when signal N ended it)."""
    return 128 - code if code < 0 else code


def run_server_module(module: str, args: Sequence[str]) -> int:
    """Run ``python -m module args`` to its end; its exit status. SIGTERM and SIGHUP are passed
    on to it (Ctrl-C reaches it from the terminal by itself): 130 if interrupted."""
    require_server()
    _flush()
    process = subprocess.Popen([sys.executable, "-m", module, *args])

    def forward(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)

    forwarded = (signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, forward) for s in forwarded}
    try:
        try:
            return _status(process.wait())
        except KeyboardInterrupt:
            process.wait()
            return 130
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# -- reproduce --embedded: the supervisor as a child -----------------------------------------


class _Interrupted(Exception):
    """Ctrl-C, SIGTERM or SIGHUP reached us while the embedded service ran."""


class _Ended(Exception):
    """The embedded service stopped, or never started (it said why)."""


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _warn(message: str) -> None:
    err().print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


class _EmbeddedService:
    """``python -m weightspace_app.infra.supervisor up --events`` as our child, in its own
    session: a terminal's Ctrl-C reaches only us, and we stop it (SIGTERM) once; each further
    signal is passed on, and makes it kill what is still running at once.

    Its stdout carries its events (JSON lines: ready, warning, error), read by a thread that
    prints the warnings and errors; its stderr is ours.
    """

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self.signals = 0
        self.url: str | None = None
        self.ready = threading.Event()
        self.failed = threading.Event()
        self.stopping = False
        self.process: subprocess.Popen[str] | None = None
        self.reader: threading.Thread | None = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        if self.stopping and self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                event: dict[str, Any] = json.loads(line)
            except ValueError:
                err().print(escape(line.rstrip("\n")), soft_wrap=True)
                continue
            kind = event.get("event")
            if kind == "ready":
                self.url = str(event["url"])
                self.ready.set()
            elif kind == "warning":
                _warn(str(event.get("message")))
            elif kind == "error":
                self.failed.set()
                message = str(event.get("message"))
                error(f"{message}\n{INSTALL_SERVER}" if event.get("missing_server") else message)

    @contextlib.contextmanager
    def running(self) -> Iterator[_EmbeddedService]:
        """Start it; on leaving, stop it and wait for it (and for its last words)."""
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {s: signal.signal(s, self._on_signal) for s in handled}
        try:
            _flush()
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            assert self.process.stdout is not None
            self.reader = threading.Thread(
                target=self._read, args=(self.process.stdout,), daemon=True
            )
            self.reader.start()
            yield self
        finally:
            if self.process is not None:
                if self.process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        self.process.send_signal(signal.SIGTERM)
                self.stopping = True  # from now on, a signal is passed on
                self.process.wait()
            if self.reader is not None:
                self.reader.join()
            for s, handler in previous.items():
                signal.signal(s, handler)

    def wait_ready(self) -> str:
        """The service's URL once it answers; :class:`_Interrupted` or :class:`_Ended` if not."""
        while not self.ready.wait(0.1):
            self.check()
        assert self.url is not None
        return self.url

    def check(self) -> None:
        """Raise :class:`_Interrupted` if we were signalled, :class:`_Ended` if it stopped."""
        if self.signals:
            raise _Interrupted
        if self.failed.is_set() or self.process is None or self.process.poll() is not None:
            raise _Ended


def run_embedded(port: int | None, home: Path, *, quiet: bool, work: Work) -> int:
    """Run ``work`` against an API and a worker started under ``home``; the exit status.

    Their output goes to ``home/logs``; both are stopped at the end, on Ctrl-C or SIGTERM (130),
    or when either dies (1).
    """
    require_server()
    host = "127.0.0.1"
    chosen = port or _free_port(host)
    home = home.expanduser().resolve()
    logs = home / "logs"
    console = err()
    if not quiet:
        console.print(
            f"starting the embedded service on http://{host}:{chosen} "
            f"(home {escape(str(home))}; logs in {escape(str(logs))})",
            soft_wrap=True,
        )
    service = _EmbeddedService(
        [
            sys.executable,
            "-m",
            SUPERVISOR,
            "up",
            f"--host={host}",
            f"--port={chosen}",
            f"--home={home}",
            f"--logs={logs}",
            "--events",
        ],
    )
    try:
        with service.running():
            url = service.wait_ready()
            serve_again = f"weightspace up --home {home} --port {chosen}"
            code = work(url, service.check, serve_again)
            if not quiet:
                console.print("stopping the embedded service ...")
    except _Interrupted:
        console.print("[yellow]interrupted[/]: the embedded service is stopped")
        return 130
    except _Ended:
        return 1
    return code


# -- the commands ----------------------------------------------------------------------------


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
    exec_server_module(
        SUPERVISOR,
        [
            "up",
            f"--host={host}",
            f"--port={port}",
            f"--home={home}",
            f"--workers-concurrency={workers_concurrency}",
        ],
    )


@app.command(rich_help_panel=SERVER_PANEL)
def api(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")
    ] = 8000,
) -> None:
    """Run the API server (`python -m weightspace_service`: migrates the database, then serves)."""
    exec_server_module(SUPERVISOR, ["api", f"--host={host}", f"--port={port}"])


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
    exec_server_module(
        SUPERVISOR,
        [
            "worker",
            f"--queues={queues}",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
        ],
    )
