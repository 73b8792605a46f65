"""Client-side logic of weightspace-client that needs no server: imports, errors, settings, CLI.

API behaviour is tested against the real service elsewhere; ``httpx.MockTransport`` appears here
only for the download's checksum checks and for following ``next_cursor``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

CLIENT_DIR = Path(__file__).resolve().parents[2] / "client"
if importlib.util.find_spec("weightspace_client") is None:  # not pip-installed: use the source
    sys.path.insert(0, str(CLIENT_DIR))

from weightspace_client import (  # noqa: E402
    ApiError,
    ChecksumError,
    WeightspaceClient,
    WeightspaceError,
)
from weightspace_client.cli import app  # noqa: E402
from weightspace_client.client import resolve_base_url  # noqa: E402

EXPERIMENT = "0b7e5f3c-3f4e-4b8e-9a51-6a3cc1f1d2a7"
SUITE = "5d0c3e2a-8f7b-4c1e-9a0d-2b6f4e8a1c93"
CLIENT_COMMANDS = [
    "submit", "list", "status", "wait", "pca", "distances", "trajectory", "landscape", "verify",
    "download", "presets", "reproduce",
]  # fmt: skip
SERVER_COMMANDS = ["up", "api", "worker"]


def _child_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python that must import weightspace_client from anywhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIGHTSPACE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CLIENT_DIR), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _flat(text: str) -> str:
    """Rich's boxes and line wrapping removed, whitespace collapsed."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.fixture(autouse=True)
def _no_weightspace_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("WEIGHTSPACE_"):
            monkeypatch.delenv(name)


# -- the package stays light -------------------------------------------------------------


def test_importing_the_client_pulls_in_no_server_or_numeric_packages() -> None:
    code = textwrap.dedent(
        """
        import json, sys
        import weightspace_client, weightspace_client.cli, weightspace_client.types
        heavy = ["torch", "numpy", "pydantic", "fastapi", "celery", "sqlalchemy", "weightspace"]
        print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_child_env(),
        cwd=CLIENT_DIR,  # not the repository root, whose packages must not be needed
        check=True,
    )
    assert json.loads(result.stdout) == []


# -- errors, base URL, token -------------------------------------------------------------


def test_api_error_shows_title_detail_and_field_errors() -> None:
    error = ApiError(
        422,
        {
            "type": "about:blank",
            "title": "Unprocessable Content",
            "status": 422,
            "detail": "The experiment spec is invalid.",
            "errors": [
                {"field": "spec.epochs", "message": "Input should be greater than or equal to 1"},
                {"field": ["spec", "model", "kind"], "message": "Field required"},
            ],
        },
    )
    assert str(error) == (
        "422 Unprocessable Content: The experiment spec is invalid.\n"
        "  - spec.epochs: Input should be greater than or equal to 1\n"
        "  - spec.model.kind: Field required"
    )
    assert error.status == 422
    assert error.title == "Unprocessable Content"
    assert len(error.errors) == 2


def test_api_error_does_not_repeat_field_errors_already_joined_in_the_detail() -> None:
    error = ApiError(
        422,
        {
            "title": "Invalid request",
            "status": 422,
            "detail": "epochs: Input should be greater than or equal to 1",
            "errors": [
                {"field": "epochs", "message": "Input should be greater than or equal to 1"}
            ],
        },
    )
    assert (
        str(error) == "422 Invalid request\n  - epochs: Input should be greater than or equal to 1"
    )


def test_api_error_without_a_problem_document_falls_back_to_the_status() -> None:
    assert str(ApiError(404, {})) == "404 Not Found"
    assert str(ApiError(503, {"title": "Service Unavailable", "detail": ""})) == (
        "503 Service Unavailable"
    )
    response = httpx.Response(502, text="<html>bad gateway</html>")
    error = ApiError.from_response(response)
    assert error.status == 502
    assert str(error) == "502 Bad Gateway: <html>bad gateway</html>"


def test_base_url_comes_from_the_argument_then_the_environment_then_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve_base_url() == "http://127.0.0.1:8000"
    monkeypatch.setenv("WEIGHTSPACE_URL", "http://ws.example:9000/api/")
    assert resolve_base_url() == "http://ws.example:9000/api"
    assert resolve_base_url("http://other:1") == "http://other:1"
    with WeightspaceClient() as client:
        assert client.base_url == "http://ws.example:9000/api"
        assert str(client.http.base_url) == "http://ws.example:9000/api/"


def test_bearer_token_from_the_argument_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with WeightspaceClient() as client:
        assert "Authorization" not in client.http.headers
    with WeightspaceClient(token="s3cret") as client:
        assert client.http.headers["Authorization"] == "Bearer s3cret"
    monkeypatch.setenv("WEIGHTSPACE_TOKEN", "from-env")
    with WeightspaceClient() as client:
        assert client.http.headers["Authorization"] == "Bearer from-env"
    with WeightspaceClient(token="explicit") as client:
        assert client.http.headers["Authorization"] == "Bearer explicit"


# -- download verification (MockTransport: mismatch paths only) ----------------------------

GOOD = b"snapshot bytes" * 1000
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


def _snapshot_transport(*, body: bytes, header: str | None, listed_sha: str) -> httpx.MockTransport:
    listing = {
        "items": [
            {
                "run": 1,
                "epoch": 5,
                "size": len(body),
                "sha256": listed_sha,
                "parameters": 10,
                "metrics": {},
            }
        ],
        "next_cursor": None,
    }

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == f"/experiments/{EXPERIMENT}/runs/1/snapshots":
            return httpx.Response(200, json=listing)
        if path.startswith(f"/experiments/{EXPERIMENT}/runs/1/snapshots/5"):
            headers = {} if header is None else {"X-Checksum-Sha256": header}
            return httpx.Response(200, content=body, headers=headers)
        return httpx.Response(404, json={"title": "Not Found"})

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("body", "header", "listed_sha", "message"),
    [
        pytest.param(GOOD[:-1] + b"!", GOOD_SHA, GOOD_SHA, "X-Checksum-Sha256", id="corrupt-bytes"),
        pytest.param(GOOD, GOOD_SHA, "0" * 64, "listed", id="listing-disagrees"),
        pytest.param(GOOD, None, GOOD_SHA, "no X-Checksum-Sha256", id="no-header"),
    ],
)
def test_download_refuses_bytes_that_do_not_match_and_leaves_nothing_behind(
    tmp_path: Path, body: bytes, header: str | None, listed_sha: str, message: str
) -> None:
    target = tmp_path / "snap.safetensors"
    target.write_bytes(b"an older file")
    transport = _snapshot_transport(body=body, header=header, listed_sha=listed_sha)
    with (
        WeightspaceClient("http://ws.test", transport=transport) as client,
        pytest.raises(ChecksumError, match=message),
    ):
        client.download_snapshot(EXPERIMENT, 1, 5, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap.safetensors"]
    assert target.read_bytes() == b"an older file"


# -- report download: file names come from the server (MockTransport) ---------------------


def _report_transport(files: list[str], served: dict[str, bytes]) -> httpx.MockTransport:
    suite = {
        "id": SUITE,
        "preset": "quick",
        "dataset": "digits",
        "status": "succeeded",
        "created_at": "2026-01-01T00:00:00Z",
        "experiments": [],
        "report": {"status": "ready", "error": None, "url": None, "files": files},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == f"/suites/{SUITE}":
            return httpx.Response(200, json=suite)
        name = path.removeprefix(f"/suites/{SUITE}/report/")
        if name in served:
            return httpx.Response(200, content=served[name])
        return httpx.Response(404, json={"title": "Not Found"})

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("name", ["../escape.html", "sub/dir.svg", ".hidden", "..", ""])
def test_download_report_refuses_file_names_that_leave_the_folder(
    tmp_path: Path, name: str
) -> None:
    target = tmp_path / "report"
    transport = _report_transport(["index.html", name], {"index.html": b"<html>"})
    with (
        WeightspaceClient("http://ws.test", transport=transport) as client,
        pytest.raises(WeightspaceError, match="report file named"),
    ):
        client.download_report(SUITE, target)
    assert not target.exists()  # checked before anything is written
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_download_report_leaves_no_partial_file_when_a_file_fails(tmp_path: Path) -> None:
    target = tmp_path / "report"
    target.mkdir()
    (target / "claims.json").write_text("from an earlier run")
    transport = _report_transport(
        ["index.html", "claims.json"], {"index.html": b"<html>"}
    )  # claims.json: 404
    with (
        WeightspaceClient("http://ws.test", transport=transport) as client,
        pytest.raises(ApiError),
    ):
        client.download_report(SUITE, target)
    assert sorted(p.name for p in target.iterdir()) == ["claims.json", "index.html"]
    assert (target / "claims.json").read_text() == "from an earlier run"


# -- pagination (MockTransport) ------------------------------------------------------------


def test_list_experiments_follows_next_cursor_lazily() -> None:
    pages = {
        None: {"items": [{"id": "a"}, {"id": "b"}], "next_cursor": "c1"},
        "c1": {"items": [{"id": "c"}], "next_cursor": "c2"},
        "c2": {"items": [{"id": "d"}], "next_cursor": None},
    }
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/experiments"
        params = dict(request.url.params)
        seen.append(params)
        return httpx.Response(200, json=pages[params.get("cursor")])

    transport = httpx.MockTransport(handler)
    with WeightspaceClient("http://ws.test", transport=transport) as client:
        experiments = client.list_experiments(status="running", limit=2)
        assert next(experiments)["id"] == "a"
        assert len(seen) == 1  # later pages only when the iterator gets there
        assert [e["id"] for e in experiments] == ["b", "c", "d"]
    assert seen == [
        {"limit": "2", "status": "running"},
        {"limit": "2", "status": "running", "cursor": "c1"},
        {"limit": "2", "status": "running", "cursor": "c2"},
    ]


# -- CLI without a server ------------------------------------------------------------------

runner = CliRunner()


@pytest.mark.parametrize("command", CLIENT_COMMANDS + SERVER_COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    if command in CLIENT_COMMANDS:
        assert "--url" in result.output
        assert "--json" in result.output


def test_top_level_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in CLIENT_COMMANDS + SERVER_COMMANDS:
        assert command in result.output


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        pytest.param("missing.yaml", None, "does not exist", id="missing"),
        pytest.param("bad.yaml", "dataset: {name: digits\nepochs: [1", "not valid YAML", id="yaml"),
        pytest.param("bad.json", '{"epochs": 3,}', "not valid JSON", id="json"),
        pytest.param("list.yml", "- 1\n- 2\n", "must hold a mapping", id="not-a-mapping"),
        pytest.param("empty.yml", "", "it is empty", id="empty"),
        pytest.param("spec.toml", "epochs = 3", "must be a .json, .yaml or .yml", id="suffix"),
    ],
)
def test_submit_rejects_unusable_spec_files_before_any_request(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    spec = tmp_path / name
    if content is not None:
        spec.write_text(content)
    # An unroutable URL: reaching the network would fail differently (exit 1).
    result = runner.invoke(app, ["submit", str(spec), "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2, result.output
    assert message in _flat(result.output)


def test_comma_separated_lists_are_checked_before_any_request() -> None:
    result = runner.invoke(app, ["pca", EXPERIMENT, "--runs", "0,x", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "comma-separated integers" in _flat(result.output)


def test_reproduce_help_names_its_options() -> None:
    result = runner.invoke(app, ["reproduce", "--help"])
    assert result.exit_code == 0, result.output
    for option in (
        "--preset", "--dataset", "--out", "--queue", "--timeout", "--embedded", "--home", "--port",
    ):  # fmt: skip
        assert option in result.output
    for choice in ("quick", "paper", "mnist", "fashion-mnist", "digits"):
        assert choice in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(["--preset", "huge"], "'huge' is not one of", id="preset"),
        pytest.param(["--dataset", "cifar10"], "'cifar10' is not one of", id="dataset"),
        pytest.param(["--queue", "tpu"], "'tpu' is not one of", id="queue"),
        pytest.param(["--timeout", "-1"], "--timeout", id="timeout"),
        pytest.param(["--home", "elsewhere"], "only means something with --embedded", id="home"),
        pytest.param(["--port", "8001"], "only means something with --embedded", id="port"),
        pytest.param(["--port", "70000", "--embedded"], "--port", id="port-range"),
        pytest.param(["--embedded", "--url", "http://x:1"], "leave --url out", id="embedded-url"),
    ],
)
def test_reproduce_checks_its_arguments_before_any_request_or_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arguments: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)  # a default --home or --out would show up here
    url = [] if "--embedded" in arguments else ["--url", "http://127.0.0.1:9"]
    result = runner.invoke(app, ["reproduce", *url, *arguments])
    assert result.exit_code == 2, result.output
    assert message in _flat(result.output)
    assert list(tmp_path.iterdir()) == []


def test_reproduce_ignores_the_url_environment_variable_when_embedded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a --url on the command line conflicts with --embedded; the variable is moot."""
    monkeypatch.setenv("WEIGHTSPACE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WEIGHTSPACE_SERVICE_MODULE", "weightspace_no_such_service")
    result = runner.invoke(app, ["reproduce", "--embedded", "--home", str(tmp_path / "home")])
    assert result.exit_code == 1, result.output
    assert "weightspace_no_such_service" in _flat(result.output)


def test_presets_checks_the_dataset_before_any_request() -> None:
    result = runner.invoke(app, ["presets", "--dataset", "cifar10", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "'cifar10' is not one of" in _flat(result.output)


# -- server commands: supervision with stand-in modules ------------------------------------

FAKE_SERVICE = """
import argparse, http.server, os, signal, sys
parser = argparse.ArgumentParser()
parser.add_argument("--host"); parser.add_argument("--port", type=int)
args = parser.parse_args()
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *a):
        pass
server = http.server.HTTPServer((args.host, args.port), Health)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
open(os.environ["FAKE_DIR"] + "/service.pid", "w").write(str(os.getpid()))
server.serve_forever()
"""

FAKE_WORKER = """
import json, os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
report = {"pid": os.getpid(), "argv": sys.argv[1:], "home": os.environ.get("WEIGHTSPACE_HOME")}
path = os.environ["FAKE_DIR"] + "/worker.json"
open(path + ".tmp", "w").write(json.dumps(report)); os.replace(path + ".tmp", path)
while True:
    time.sleep(1)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.fixture
def fake_up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """``weightspace up`` running stand-in service and worker modules, once both have started."""
    for module, source in (("fakeservice", FAKE_SERVICE), ("fakeworker", FAKE_WORKER)):
        (tmp_path / module).mkdir()
        (tmp_path / module / "__main__.py").write_text(source)
    env = _child_env(
        WEIGHTSPACE_SERVICE_MODULE="fakeservice",
        WEIGHTSPACE_WORKER_MODULE="fakeworker",
        FAKE_DIR=str(tmp_path),
    )
    port = _free_port()
    up = subprocess.Popen(
        [sys.executable, "-m", "weightspace_client", "up", "--port", str(port), "--home", "home"],
        cwd=tmp_path,  # `python -m fakeservice` finds the stand-ins in the working directory
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(lambda: (tmp_path / "worker.json").exists() or up.poll() is not None)
        assert up.poll() is None, up.communicate()[0]
        yield up, tmp_path
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def _children(directory: Path) -> tuple[int, dict]:
    service_pid = int((directory / "service.pid").read_text())
    worker = json.loads((directory / "worker.json").read_text())
    return service_pid, worker


def test_up_starts_service_then_worker_and_stops_both_on_sigterm(
    fake_up: tuple[subprocess.Popen[str], Path],
) -> None:
    up, directory = fake_up
    service_pid, worker = _children(directory)
    assert worker["argv"] == [
        "--queues", "cpu,gpu", "--pool", "solo", "--concurrency", "1", "--loglevel", "info",
    ]  # fmt: skip
    assert worker["home"] == str(directory / "home")
    assert (directory / "home").is_dir()
    up.send_signal(signal.SIGTERM)
    output, _ = up.communicate(timeout=20)
    assert up.returncode == 0, output
    assert "WEIGHTSPACE_URL=http://127.0.0.1:" in output
    assert not _alive(service_pid)
    assert not _alive(worker["pid"])


def test_up_replaces_a_dead_worker_and_gives_up_on_a_crash_loop(
    fake_up: tuple[subprocess.Popen[str], Path],
) -> None:
    up, directory = fake_up
    service_pid, worker = _children(directory)
    os.kill(worker["pid"], signal.SIGKILL)
    _wait_for(lambda: _children(directory)[1]["pid"] != worker["pid"])
    assert up.poll() is None and _alive(service_pid)  # a new worker, the service unchanged
    for _ in range(6):  # dying again and again within a minute: a crash loop, not a blip
        pid = _children(directory)[1]["pid"]
        if up.poll() is not None:
            break
        os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: up.poll() is not None or _children(directory)[1]["pid"] != pid)  # noqa: B023
    output, _ = up.communicate(timeout=20)
    assert up.returncode != 0
    assert "worker process was killed" in _flat(output)
    assert not _alive(service_pid)


# Runs run_embedded (what `reproduce --embedded` does) with a work that waits for a file: "ok"
# returns 7, "kill-api" kills the service first; the work calls check() as reproduce does.
EMBEDDED = """
import os, signal, sys, time
from pathlib import Path
import httpx
from weightspace_client.cli.server import run_embedded
directory = Path(os.environ["FAKE_DIR"])
def work(url, check, serve_again):
    assert httpx.get(url + "/health").status_code == 200
    (directory / "url").write_text(url + " " + serve_again)
    while not (directory / "go").exists():
        check()
        time.sleep(0.05)
    if (directory / "go").read_text() == "kill-api":
        os.kill(int((directory / "service.pid").read_text()), signal.SIGKILL)
        while True:
            check()
            time.sleep(0.05)
    return 7
sys.exit(run_embedded(None, Path("home"), quiet=False, work=work))
"""


@pytest.fixture
def fake_embedded(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A program running ``run_embedded`` over the stand-ins, once its work has begun."""
    for module, source in (("fakeservice", FAKE_SERVICE), ("fakeworker", FAKE_WORKER)):
        (tmp_path / module).mkdir()
        (tmp_path / module / "__main__.py").write_text(source)
    env = _child_env(
        WEIGHTSPACE_SERVICE_MODULE="fakeservice",
        WEIGHTSPACE_WORKER_MODULE="fakeworker",
        FAKE_DIR=str(tmp_path),
    )
    program = subprocess.Popen(
        [sys.executable, "-c", EMBEDDED],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(lambda: (tmp_path / "url").exists() or program.poll() is not None)
        assert program.poll() is None, program.communicate()[0]
        _wait_for(lambda: (tmp_path / "worker.json").exists())
        yield program, tmp_path
    finally:
        if program.poll() is None:
            program.kill()
            program.wait()


def test_run_embedded_starts_the_supervisor_as_a_child_and_stops_it_after_the_work(
    fake_embedded: tuple[subprocess.Popen[str], Path],
) -> None:
    program, directory = fake_embedded
    service_pid, worker = _children(directory)
    url, serve_again = (directory / "url").read_text().split(" ", 1)
    assert url.startswith("http://127.0.0.1:")
    assert serve_again == f"weightspace up --home {directory / 'home'} --port {url.rsplit(':')[-1]}"
    assert worker["home"] == str(directory / "home")
    (directory / "go").write_text("ok")
    output, _ = program.communicate(timeout=30)
    assert program.returncode == 7, output
    flat = _flat(output)
    assert f"starting the embedded service on {url}" in flat
    assert f"logs in {directory / 'home' / 'logs'}" in flat
    assert "stopping the embedded service" in flat
    assert not _alive(service_pid)
    assert not _alive(worker["pid"])
    assert (directory / "home" / "logs" / "worker.log").is_file()


def test_run_embedded_stops_everything_on_sigterm_with_status_130(
    fake_embedded: tuple[subprocess.Popen[str], Path],
) -> None:
    program, directory = fake_embedded
    service_pid, worker = _children(directory)
    program.send_signal(signal.SIGTERM)
    output, _ = program.communicate(timeout=30)
    assert program.returncode == 130, output
    assert "interrupted: the embedded service is stopped" in _flat(output)
    assert not _alive(service_pid)
    assert not _alive(worker["pid"])


def test_run_embedded_leaves_no_process_behind_when_it_is_killed(
    fake_embedded: tuple[subprocess.Popen[str], Path],
) -> None:
    """SIGKILL gives the client no chance to stop its supervisor: the supervisor sees its parent
    gone and stops the service and the worker itself."""
    program, directory = fake_embedded
    service_pid, worker = _children(directory)
    program.kill()
    program.wait()
    _wait_for(lambda: not _alive(service_pid) and not _alive(worker["pid"]), timeout=30)


def test_run_embedded_says_why_when_the_api_dies_and_exits_1(
    fake_embedded: tuple[subprocess.Popen[str], Path],
) -> None:
    program, directory = fake_embedded
    _, worker = _children(directory)
    (directory / "go").write_text("kill-api")
    output, _ = program.communicate(timeout=30)
    assert program.returncode == 1, output
    assert "error: the api process was killed by signal 9; stopping" in _flat(output)
    assert not _alive(worker["pid"])


def test_server_commands_explain_how_to_install_a_missing_server_package(tmp_path: Path) -> None:
    env = _child_env(WEIGHTSPACE_SERVICE_MODULE="weightspace_no_such_service")
    for command in (
        ["up", "--home", str(tmp_path / "home")],
        ["api"],
        ["reproduce", "--embedded", "--home", str(tmp_path / "home")],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "weightspace_client", *command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1
        message = _flat(result.stderr)
        assert "weightspace_no_such_service" in message
        assert "pip install 'weightspace[server]'" in message
    assert not (tmp_path / "home").exists()  # nothing was started


# Runs the command line where the server package cannot be found (as after `pip install
# ./client` alone): the server commands look for it (without importing it) before starting it.
WITHOUT_SERVER = """
import sys
sys.modules["weightspace"] = None  # any `import weightspace...` now raises ImportError
sys.modules["weightspace_app"] = None  # and find_spec("weightspace_app") answers None
from weightspace_client.cli import app
app(sys.argv[1:], prog_name="weightspace")
"""


@pytest.mark.parametrize(
    "command",
    [["up", "--home", "home"], ["api"], ["worker"], ["reproduce", "--embedded", "--home", "home"]],
    ids=["up", "api", "worker", "reproduce"],
)
def test_server_commands_without_the_server_package_say_how_to_install_it(
    tmp_path: Path, command: list[str]
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SERVER, *command],
        cwd=tmp_path,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    message = _flat(result.stderr)
    assert "weightspace server, which is not installed" in message
    assert "pip install 'weightspace[server]'" in message
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home").exists()


def test_the_client_commands_work_without_the_server_package() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SERVER, "list", "--url", "http://127.0.0.1:9"],
        env=_child_env(),
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "cannot reach the weightspace API at http://127.0.0.1:9" in _flat(result.stderr)


def test_reproduce_fails_when_failed_experiments_left_claims_not_measured(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from weightspace_client.cli.suites import _unmeasured

    measured = {"id": "1", "verdict": "supported"}
    unmeasured = {"id": "4", "verdict": "not measured", "note": "experiment 3 did not succeed"}
    failed = {"role": "exp3", "experiment": {"id": EXPERIMENT, "status": "failed"}}
    assert _unmeasured([measured, unmeasured], [failed]) == 1  # type: ignore[list-item]
    message = _flat(capsys.readouterr().err)
    assert "claim 4 not measured" in message and "exp3 failed" in message
    # Without failures, a claim the suite cannot measure is a finding, not an error.
    assert _unmeasured([measured, unmeasured], []) == 0  # type: ignore[list-item]
    assert _unmeasured([measured], [failed]) == 0  # type: ignore[list-item]
