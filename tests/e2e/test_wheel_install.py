"""The wheels install anywhere: ``weightspace up`` runs from a fresh venv outside the checkout.

Builds the wheels of ``weightspace`` and ``weightspace-client`` from a copy of the checkout's
files, installs them with pip (no index: only the two wheels and what is already installed)
into a new venv in a temporary folder, and runs ``weightspace up`` there, from a working
directory outside the checkout and without PYTHONPATH: the API migrates its database with the
scripts in the wheel and ``/ready`` says ready.

The heavy dependencies (torch and the rest) are not copied: the new venv sees this
interpreter's site-packages through a ``.pth`` file naming a folder of links to them, which
leaves out this checkout's own packages (their editable installs and dist-info), so pip and
the running service can only find the copies the wheels installed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.scenario import free_port, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 600
INSTALL_TIMEOUT_S = 600
READY_TIMEOUT_S = 180
#: What belongs to this project in a site-packages folder (packages, dist-info, editable hooks).
OWN_PREFIXES = ("weightspace", "__editable__")


def _clean_env(**extra: str) -> dict[str, str]:
    """Our environment without what would point Python or the service back at the checkout."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in dropped and not k.startswith(("WEIGHTSPACE_", "PIP_"))
    }
    # No pip configuration file either: its find-links or index would widen what pip sees.
    return {**env, "PIP_CONFIG_FILE": os.devnull, **extra}


def _run(argv: list[str | Path], *, timeout: float, cwd: Path) -> str:
    result = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, (
        f"{argv} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout


def _copy_sources(target: Path) -> Path:
    """The checkout's files as a fresh clone (plus uncommitted changes) would have them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # deleted in the working tree: not part of it
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two wheels, built without network from a copy of the checkout."""
    assert importlib.util.find_spec("build"), "the `build` package is missing: pip install build"
    tmp = tmp_path_factory.mktemp("wheels")
    sources, dist = _copy_sources(tmp / "src"), tmp / "dist"
    for project in (sources, sources / "client"):
        _run(
            [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, project],
            timeout=BUILD_TIMEOUT_S,
            cwd=tmp,
        )
    found = {path.name.split("-")[0]: path for path in dist.glob("*.whl")}
    assert set(found) == {"weightspace", "weightspace_client"}, found
    return found


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_server_wheel_ships_migrations_and_presets(wheels: dict[str, Path]) -> None:
    names = _names(wheels["weightspace"])
    migrations = REPO / "migrations" / "weightspace_migrations"
    versions = sorted(migrations.glob("versions/*.py"))
    assert versions
    for script in versions:
        assert f"weightspace_migrations/versions/{script.name}" in names
    assert {"weightspace_migrations/env.py", "weightspace_migrations/script.py.mako"} <= names
    presets = sorted((REPO / "weightspace" / "presets").glob("*.json"))
    assert presets
    for preset in presets:
        assert f"weightspace/presets/{preset.name}" in names
    for package in ("weightspace", "weightspace_app", "weightspace_service", "weightspace_worker"):
        assert f"{package}/__init__.py" in names
    assert "weightspace_app/infra/supervisor.py" in names
    assert not any(name.startswith("weightspace/adapters") for name in names)
    assert not any(name.startswith("weightspace_client/") for name in names)


def test_the_client_wheel_is_the_light_client_with_the_command(wheels: dict[str, Path]) -> None:
    wheel = wheels["weightspace_client"]
    names = _names(wheel)
    assert {"weightspace_client/cli/__init__.py", "weightspace_client/py.typed"} <= names
    assert all(name.startswith("weightspace_client") for name in names), names
    with zipfile.ZipFile(wheel) as archive:
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = archive.read(entry_points).decode()
    assert "weightspace = weightspace_client.cli:app" in text


def _shared_dependencies(folder: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """A folder of links to this interpreter's installed packages, less this project's own and
    those whose names start with one of ``leave_out`` (lower case)."""
    folder.mkdir()
    paths = sysconfig.get_paths()
    for site in dict.fromkeys(Path(paths[key]) for key in ("purelib", "platlib")):
        for entry in site.iterdir():
            if entry.name.startswith(OWN_PREFIXES) or entry.suffix == ".pth":
                continue
            if entry.name.lower().startswith(leave_out):
                continue
            if not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
    return folder


def _venv(
    wheels: dict[str, Path], tmp: Path, requirements: list[str], leave_out: tuple[str, ...] = ()
) -> Path:
    """A fresh venv in ``tmp`` with ``requirements`` installed from the wheels: its folder."""
    root = tmp / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    python = root / "bin" / "python"
    purelib = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        timeout=60,
        cwd=tmp,
    ).strip()
    shared = _shared_dependencies(tmp / "shared-site-packages", leave_out)
    (Path(purelib) / "shared-dependencies.pth").write_text(f"{shared}\n")
    dist = wheels["weightspace"].parent
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-index",
         "--find-links", dist, *requirements],
        timeout=INSTALL_TIMEOUT_S,
        cwd=tmp,
    )  # fmt: skip
    return root


@pytest.fixture(scope="module")
def installed(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the checkout with both wheels installed: its folder."""
    tmp = tmp_path_factory.mktemp("venv")
    return _venv(wheels, tmp, ["weightspace[server]", "weightspace-client"])


#: Distributions of the server extra and the client (lower-case name prefixes, as folders in
#: site-packages are named), left out of the core-only venv.
SERVER_DISTRIBUTIONS = (
    "fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "celery", "kombu",
    "billiard", "redis", "boto3", "botocore", "s3transfer", "pydantic_settings", "httpx",
)  # fmt: skip


def test_the_core_installs_and_imports_without_the_server(
    wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``pip install weightspace`` (no extra) in a venv without SQLAlchemy, Celery or FastAPI:
    every module of the core imports, and none of the server's libraries can be found."""
    tmp = tmp_path_factory.mktemp("core-venv")
    root = _venv(wheels, tmp, ["weightspace"], leave_out=SERVER_DISTRIBUTIONS)
    code = (
        "import importlib, importlib.util, pkgutil, sys\n"
        "import weightspace, weightspace.analysis, weightspace.training\n"
        f"absent = [n for n in {SERVER_DISTRIBUTIONS!r} if importlib.util.find_spec(n)]\n"
        "assert not absent, absent\n"
        "names = [m.name for m in pkgutil.walk_packages(weightspace.__path__, 'weightspace.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names), weightspace.__file__)"
    )
    count, location = _run([root / "bin" / "python", "-c", code], timeout=300, cwd=tmp).split()
    assert int(count) >= 30, count
    assert Path(location).is_relative_to(root)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, object]:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last: object = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"`weightspace up` exited:\n{log.read_text()[-4000:]}")
        try:
            response = httpx.get(f"{url}/ready", timeout=5)
            last = response.json()
            if response.status_code == 200 and last["status"] == "ready":
                return dict(last)
        except (httpx.HTTPError, ValueError) as error:
            last = error
        time.sleep(0.5)
    raise AssertionError(f"not ready: {last}\n{log.read_text()[-4000:]}")


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A working directory outside the checkout."""
    assert not tmp_path.resolve().is_relative_to(REPO)
    yield tmp_path


def test_weightspace_up_runs_from_the_installed_wheels(installed: Path, outside: Path) -> None:
    python, command = installed / "bin" / "python", installed / "bin" / "weightspace"
    assert command.is_file(), "the wheel installed no `weightspace` command"
    code = (
        "import weightspace, weightspace_client, weightspace_migrations, weightspace_service, "
        "weightspace_worker\n"
        "for m in (weightspace, weightspace_client, weightspace_migrations, weightspace_service, "
        "weightspace_worker): print(m.__file__)"
    )
    for found in _run([python, "-c", code], timeout=120, cwd=outside).split():
        assert Path(found).is_relative_to(installed), f"{found} is not the installed copy"
        assert not Path(found).resolve().is_relative_to(REPO)

    port, home, log = free_port(), outside / "home", outside / "up.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [command, "up", "--home", home, "--port", str(port)],
            cwd=outside,
            env=_clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        readiness = _wait_ready(f"http://127.0.0.1:{port}", process, log)
        checks = readiness["checks"]
        assert {k: checks[k] for k in ("database", "broker", "store")} == dict.fromkeys(
            ("database", "broker", "store"), "ok"
        )
        assert checks["store_space"].startswith("ok")
        with sqlite3.connect(home / "weightspace.db") as database:
            [(revision,)] = database.execute("SELECT version_num FROM alembic_version")
        heads = [p.name for p in (REPO / "migrations/weightspace_migrations/versions").glob("*.py")]
        assert any(f"_{revision}_" in name for name in heads), revision
        process.send_signal(signal.SIGTERM)  # as Ctrl-C would: `up` stops the API and worker
        assert process.wait(timeout=60) == 0, log.read_text()[-4000:]
    finally:
        stop(process)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
