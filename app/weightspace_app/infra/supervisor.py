"""The server processes, supervised: the API and a worker as child processes, stopped together.

``python -m weightspace_app.infra.supervisor up|api|worker`` (:func:`main`) runs
``python -m weightspace_service`` and ``python -m weightspace_worker`` as children. ``weightspace
up``, ``api`` and ``worker`` run this command line in their place, and ``reproduce --embedded``
starts it as a child (``up --events``: it reports on stdout as JSON lines): the light client
starts the server's processes but imports no server code. It lives with the server, in
``weightspace_app``, what the API and the worker share, rather than in either of them, since it
runs both. It needs nothing but the standard library, so it loads neither the web framework nor
the queue; the children find those in the interpreter that runs us.

Failures worth telling the user are :class:`SupervisorError` (a plain-text message and the exit
status it calls for); :func:`main` prints them.

Why one module of ~600 lines: starting, watching, restarting and stopping the children is one
state machine around the signal handlers, and its command line prints that machine's states;
its parts are not useful apart.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

#: Override the server modules ``up``/``api``/``worker`` run (for tests and custom deployments).
SERVICE_MODULE_ENV = "WEIGHTSPACE_SERVICE_MODULE"
WORKER_MODULE_ENV = "WEIGHTSPACE_WORKER_MODULE"
DEFAULT_SERVICE_MODULE = "weightspace_service"
DEFAULT_WORKER_MODULE = "weightspace_worker"
#: What the default modules need besides themselves: the ``[server]`` extra's import names.
SERVER_IMPORTS = ("fastapi", "uvicorn", "pydantic_settings", "sqlalchemy", "alembic", "celery")
HEALTH_TIMEOUT_S = 60.0
#: After SIGTERM a worker trains to its next snapshot or epoch boundary, then hands its runs
#: back (see weightspace_app.usecases.execution.STOPPING): it is killed only after this long.
STOP_GRACE_S = 60.0
#: Most times a minute a dead restartable child (the worker) is replaced before we give up.
MAX_RESTARTS = 5


class SupervisorError(Exception):
    """A failure to report to the user: ``str(error)`` is the message, ``code`` the exit status."""

    #: Whether installing the server package (``weightspace[server]``) is the remedy.
    missing_server = False

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class MissingModules(SupervisorError):
    """The interpreter that would run the server processes cannot import them."""

    missing_server = True


class Interrupted(Exception):
    """Ctrl-C, SIGTERM or SIGHUP reached us while we ran the embedded service."""


def service_module() -> str:
    return os.environ.get(SERVICE_MODULE_ENV) or DEFAULT_SERVICE_MODULE


def worker_module() -> str:
    return os.environ.get(WORKER_MODULE_ENV) or DEFAULT_WORKER_MODULE


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


def require_modules(*modules: str) -> None:
    """Raise :class:`MissingModules` unless ``python -m <module>`` can find every module.

    The default server modules also need the ``[server]`` extra's packages, checked with them.
    """
    needed = list(modules)
    if any(m in (DEFAULT_SERVICE_MODULE, DEFAULT_WORKER_MODULE) for m in modules):
        needed += SERVER_IMPORTS
    result = subprocess.run(
        [sys.executable, "-c", _FIND_MODULES, *needed],
        capture_output=True,
        text=True,
        check=False,
    )
    missing = result.stdout.split() if result.returncode == 0 else needed
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        raise MissingModules(
            f"{sys.executable} cannot import {names}: the weightspace server is not installed "
            "in this environment."
        )


def worker_argv(queues: str, pool: str, concurrency: int, loglevel: str) -> list[str]:
    return [
        sys.executable, "-m", worker_module(),
        "--queues", queues,
        "--pool", pool,
        "--concurrency", str(concurrency),
        "--loglevel", loglevel,
    ]  # fmt: skip


def service_argv(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", service_module(), "--host", host, "--port", str(port)]


def local_url(host: str, port: int) -> str:
    """A URL that reaches a server listening on ``host`` from this machine."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on ``host``:``port`` (bound as the server will bind it, with
    ``SO_REUSEADDR``, so connections closing from a previous run do not count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path | None = None  # where its stdout and stderr go, if not to ours
    argv: Sequence[str] = ()
    restart: bool = False  # replaced when it dies (a worker: its runs resume elsewhere)
    restarts: list[float] = field(default_factory=list)  # when it was replaced

    @property
    def exit_code(self) -> int:
        """The status to exit with because this child ended: its own, or 1 (killed, or 0)."""
        code = self.process.returncode
        return code if code and code > 0 else 1

    def describe_exit(self) -> str:
        """How it ended, and the end of its log if it has one."""
        code = self.process.returncode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        message = f"the {self.name} process {how}; stopping"
        if self.log is not None:
            message += f"\nthe end of its log, {self.log}:\n{tail(self.log)}"
        return message


class ChildDied(SupervisorError):
    """A supervised process ended while we needed it."""

    def __init__(self, child: Child) -> None:
        super().__init__(child.describe_exit(), child.exit_code)
        self.child = child


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_bytes()[-32_768:].decode("utf-8", "replace")
    except OSError as error:
        return f"(cannot read it: {error})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


@dataclass
class Supervisor:
    """Children in their own process groups, stopped together (SIGTERM, then SIGKILL).

    Each child gets its own session so a terminal's Ctrl-C reaches only us; we then stop the
    children's whole groups (Celery's pool processes included). A second Ctrl-C kills at once.
    """

    env: Mapping[str, str]
    grace: float = STOP_GRACE_S
    warn: Callable[[str], None] = _warn
    children: list[Child] = field(default_factory=list)
    signals: int = 0

    def start(
        self, name: str, argv: Sequence[str], log: Path | None = None, *, restart: bool = False
    ) -> Child:
        """Start ``argv``; its output goes to ours, or is appended to ``log`` if given. With
        ``restart``, a child that dies is replaced (at most ``MAX_RESTARTS`` a minute)."""
        child = Child(name, self._spawn(argv, log), log, tuple(argv), restart)
        self.children.append(child)
        return child

    def _spawn(self, argv: Sequence[str], log: Path | None) -> subprocess.Popen[bytes]:
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
        return process

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

    def exited(self) -> Child | None:
        """A child that ended and is not replaced (a restartable one is restarted here)."""
        for child in self.children:
            if child.process.poll() is None:
                continue
            now = time.monotonic()
            recent = [t for t in child.restarts if now - t < 60]
            if not child.restart or len(recent) >= MAX_RESTARTS or self.signals:
                return child
            self.warn(f"{child.describe_exit().split(';')[0]}; starting a new one")
            child.restarts = [*recent, now]
            child.process = self._spawn(child.argv, child.log)
        return None

    def wait_any(self) -> Child | None:
        """Block until a child exits (returned) or we are signalled (``None``)."""
        while not self.signals:
            child = self.exited()
            if child is not None:
                return child
            time.sleep(0.1)
        return None

    def _signal_groups(self, sig: int, children: Sequence[Child]) -> None:
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
            self.warn(f"killing {names} (still running after SIGTERM)")
            self._signal_groups(signal.SIGKILL, stubborn)
        for child in running:
            child.process.wait()


def run_single(name: str, argv: Sequence[str]) -> int:
    """Run one child until it exits (its status) or we are signalled (stop it, 0)."""
    supervisor = Supervisor(os.environ)
    with supervisor.handling_signals():
        try:
            child = supervisor.start(name, argv)
            if supervisor.wait_any() is None:
                return 0  # signalled: the finally clause stops the child
            return child.process.returncode if child.process.returncode >= 0 else 1
        finally:
            supervisor.stop()


def serve_api(host: str, port: int) -> int:
    """Run the API (``python -m weightspace_service``) until it exits or we are signalled."""
    require_modules(service_module())
    return run_single("api", service_argv(host, port))


def serve_worker(queues: str, pool: str, concurrency: int, loglevel: str) -> int:
    """Run a worker (``python -m weightspace_worker``) until it exits or we are signalled."""
    require_modules(worker_module())
    return run_single("worker", worker_argv(queues, pool, concurrency, loglevel))


#: No proxy from the environment for a health check of our own child on this machine.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=2.0) as response:
            return 200 <= int(response.status) < 300
    except (OSError, ValueError):  # URLError and HTTPError are OSErrors
        return False


def wait_healthy(supervisor: Supervisor, child: Child, url: str, timeout: float) -> str:
    """Poll ``url/health`` until 2xx: ``"ok"``, else ``"exited"``, ``"signal"`` or ``"timeout"``."""
    deadline = time.monotonic() + timeout
    while True:
        if supervisor.signals:
            return "signal"
        if child.process.poll() is not None:
            return "exited"
        if _answers(f"{url}/health"):  # ours only while our child lives (it bound the port)
            return "ok" if child.process.poll() is None else "exited"
        if time.monotonic() >= deadline:
            return "timeout"
        time.sleep(0.25)


@dataclass
class Embedded:
    """A running embedded service: its URL, home and processes."""

    url: str
    home: Path
    supervisor: Supervisor

    def check(self) -> None:
        """Raise :class:`Interrupted` if we were signalled, :class:`ChildDied` if one died."""
        if self.supervisor.signals:
            raise Interrupted
        child = self.supervisor.exited()
        if child is not None:
            raise ChildDied(child)


@contextlib.contextmanager
def embedded_service(
    host: str,
    port: int,
    home: Path,
    concurrency: int,
    *,
    logs: Path | None = None,
    warn: Callable[[str], None] = _warn,
) -> Iterator[Embedded]:
    """Start the API (once healthy) and a worker under ``home``; stop both on leaving.

    The children's output goes to ours, or to ``logs/api.log`` and ``logs/worker.log``. While
    inside, Ctrl-C, SIGTERM and SIGHUP only count (see :meth:`Embedded.check`); a signal while
    the API starts raises :class:`Interrupted`; an API that exits raises :class:`ChildDied`,
    one that never answers :class:`SupervisorError`; missing server modules raise it at once.
    """
    require_modules(service_module(), worker_module())
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WEIGHTSPACE_HOME": str(home)}
    if logs is not None:
        env["PYTHONUNBUFFERED"] = "1"  # a log file is block-buffered: keep a crash's last words
    url = local_url(host, port)
    if port and not port_is_free(host, port):  # else /health would reach the other server
        raise SupervisorError(
            f"port {port} on {host} is taken by another process: stop it, or choose another "
            "port with --port"
        )
    # Solo runs one training in the worker's main thread; threads (not prefork) for more,
    # since CUDA cannot be re-initialised in forked children.
    pool = "solo" if concurrency == 1 else "threads"
    supervisor = Supervisor(env, warn=warn)
    with supervisor.handling_signals():
        try:
            api_log = None if logs is None else logs / "api.log"
            api_child = supervisor.start("api", service_argv(host, port), log=api_log)
            state = wait_healthy(supervisor, api_child, url, HEALTH_TIMEOUT_S)
            if state == "signal":
                raise Interrupted
            if state == "exited":
                raise ChildDied(api_child)
            if state == "timeout":
                raise SupervisorError(
                    f"the API did not answer {url}/health within {HEALTH_TIMEOUT_S:.0f} s; stopping"
                )
            supervisor.start(
                "worker",
                worker_argv("cpu,gpu", pool, concurrency, "info"),
                log=None if logs is None else logs / "worker.log",
                restart=True,  # a dead worker is replaced; the reaper re-enqueues its work
            )
            yield Embedded(url, home, supervisor)
        finally:
            supervisor.stop()


# -- the command line ------------------------------------------------------------------------

#: How to get the server where its modules cannot be imported (the client says the same where
#: this module itself is missing).
INSTALL_SERVER = (
    "Install it with `pip install 'weightspace[server]'` "
    "(from a checkout: `pip install -e '.[server]'` at the repository root)."
)


class Reporter:
    """What the command line tells its user, as text on stderr."""

    def warning(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr, flush=True)

    def error(self, failure: SupervisorError) -> None:
        message = f"{failure}\n{INSTALL_SERVER}" if failure.missing_server else str(failure)
        print(f"error: {message}", file=sys.stderr, flush=True)

    def up(self, service: Embedded) -> None:
        print(
            f"weightspace is up at {service.url} (home {service.home})\n"
            "Use it from another shell with:\n"
            f"  export WEIGHTSPACE_URL={service.url}\n"
            f"  export WEIGHTSPACE_HOME={service.home}   # for server-side tools\n"
            "Press Ctrl-C to stop.",
            file=sys.stderr,
            flush=True,
        )

    def stopping(self) -> None:
        print("stopping ...", file=sys.stderr, flush=True)


class EventReporter(Reporter):
    """The same, as one JSON object a line on stdout, for a program that started us (``up
    --events``): ``{"event": "ready", "url", "home"}`` once the service answers and the worker
    runs; ``{"event": "warning", "message"}``; ``{"event": "error", "message", "code",
    "missing_server"}`` before exiting non-zero."""

    def _emit(self, event: str, **fields: object) -> None:
        with contextlib.suppress(OSError):  # whoever reads is gone: we stop all the same
            print(json.dumps({"event": event, **fields}), flush=True)

    def warning(self, message: str) -> None:
        self._emit("warning", message=message)

    def error(self, failure: SupervisorError) -> None:
        self._emit(
            "error", message=str(failure), code=failure.code, missing_server=failure.missing_server
        )

    def up(self, service: Embedded) -> None:
        self._emit("ready", url=service.url, home=str(service.home))

    def stopping(self) -> None:
        pass


def _stop_with_parent(interval: float = 0.5) -> None:
    """Stop as on SIGTERM when the program that started us dies, even by SIGKILL (we are then
    re-parented), so that its service does not outlive it."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _up(args: argparse.Namespace) -> int:
    """Run the API and a worker until one dies (its status) or we are signalled (0)."""
    report = EventReporter() if args.events else Reporter()
    if args.events:
        _stop_with_parent()
    try:
        with embedded_service(
            args.host,
            args.port,
            args.home,
            args.workers_concurrency,
            logs=args.logs,
            warn=report.warning,
        ) as service:
            report.up(service)
            exited = service.supervisor.wait_any()
            if exited is not None:
                died = ChildDied(exited)
                report.error(died)  # before stopping the other, which may take a while
                return died.code
            report.stopping()
    except Interrupted:
        return 0
    except SupervisorError as failure:
        report.error(failure)
        return failure.code
    return 0


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0 to 65535)")
    return port


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} is not at least 1")
    return number


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m weightspace_app.infra.supervisor",
        description="Run the weightspace server's processes (what `weightspace up`, `api` and "
        "`worker` run).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="the API and a worker (queues cpu,gpu), embedded mode")
    up.add_argument("--host", default="127.0.0.1", help="interface the API listens on")
    up.add_argument("--port", type=_port, default=8000, help="API port")
    up.add_argument("--home", type=Path, default=Path("./var"), help="WEIGHTSPACE_HOME")
    up.add_argument("--workers-concurrency", type=_positive, default=1, help="trainings at once")
    up.add_argument(
        "--logs",
        type=Path,
        help="append the children's output to LOGS/api.log and LOGS/worker.log, not ours",
    )
    up.add_argument(
        "--events",
        action="store_true",
        help="report as JSON lines on stdout, and stop when the program that started us dies",
    )
    api = commands.add_parser("api", help="the API server alone")
    api.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    api.add_argument("--port", type=_port, default=8000, help="port to listen on")
    worker = commands.add_parser("worker", help="a Celery worker alone")
    worker.add_argument("--queues", default="cpu,gpu", help="comma-separated queues to consume")
    worker.add_argument("--pool", default="solo", help="Celery pool: solo, threads or prefork")
    worker.add_argument("--concurrency", type=_positive, default=1, help="pool size")
    worker.add_argument("--loglevel", default="info", help="log level")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; the exit status (0 when stopped by a signal)."""
    args = parser().parse_args(argv)
    if args.command == "up":
        return _up(args)
    try:
        if args.command == "api":
            return serve_api(args.host, args.port)
        return serve_worker(args.queues, args.pool, args.concurrency, args.loglevel)
    except SupervisorError as failure:
        Reporter().error(failure)
        return failure.code


if __name__ == "__main__":
    sys.exit(main())
