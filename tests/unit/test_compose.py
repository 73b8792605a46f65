"""docker-compose.yml is valid and wires the stack as the service and workers expect."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
APP_SERVICES = ["migrate", "api", "worker-gpu", "worker-cpu"]
EXPECTED_ENV = {
    "WEIGHTSPACE_DATABASE_URL": (
        "postgresql+psycopg://weightspace:weightspace@postgres:5432/weightspace"
    ),
    "WEIGHTSPACE_BROKER_URL": "redis://redis:6379/0",
    "WEIGHTSPACE_STORAGE_URL": "s3://weightspace-snapshots",
    "WEIGHTSPACE_S3_ENDPOINT_URL": "http://seaweedfs:8333",
    "WEIGHTSPACE_DEFAULT_QUEUE": "gpu",
    "WEIGHTSPACE_AUTH": "tokens",
    "WEIGHTSPACE_DATA_DIR": "/data",
}


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def _with_defaults(value: Any) -> Any:
    """Compose's ``${VAR:-default}`` interpolation as if no variable were set."""
    if not isinstance(value, str):
        return value
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())  # anchors and `<<` merges resolved


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(_with_defaults(v)) for k, v in env.items()}


def test_compose_config_is_valid() -> None:
    command = _compose_command()
    if command is None:
        # scripts/test.sh installs Debian's docker-compose, so CI always parses the file.
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed: scripts/setup.sh should have done it")
        pytest.skip("neither docker-compose nor the docker compose plugin is installed")
    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_required_services_exist(compose: dict[str, Any]) -> None:
    required = {"postgres", "redis", "seaweedfs", "migrate", "api", "worker-gpu", "flower"}
    assert required <= set(compose["services"])


def test_gpu_worker_reserves_one_nvidia_gpu(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker-gpu"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    command = worker["command"]
    assert command[:3] == ["python", "-m", "weightspace_worker"]
    assert command[command.index("--queues") + 1] == "gpu"
    assert command[command.index("--pool") + 1] == "solo"  # CUDA and fork do not mix


def test_api_and_workers_share_the_same_weightspace_environment(compose: dict[str, Any]) -> None:
    services = compose["services"]
    environments = {name: _environment(services[name]) for name in APP_SERVICES}
    api = environments["api"]
    for name, env in environments.items():
        assert env == api, f"{name} differs from api"
    for key, value in EXPECTED_ENV.items():
        assert api[key] == value, key
    assert {"WEIGHTSPACE_S3_ACCESS_KEY", "WEIGHTSPACE_S3_SECRET_KEY"} <= set(api)
    assert all(key.startswith("WEIGHTSPACE_") for key in api)


def test_startup_order_and_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["python", "-m", "weightspace_app.infra.migrate", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    api = services["api"]
    assert api["command"] == [
        "python",
        "-m",
        "weightspace_service",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--no-migrate",  # the migrate job is the one place that migrates
    ]
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert {"redis", "seaweedfs"} <= set(api["depends_on"])
    assert "/ready" in " ".join(api["healthcheck"]["test"])
    for name in ("worker-gpu", "worker-cpu"):
        assert services[name]["healthcheck"]["test"][-1] == "weightspace_worker.health"
        assert services[name]["image"].startswith("weightspace-worker:")
    assert services["api"]["image"] == services["migrate"]["image"]
    assert services["api"]["build"]["target"] == "api"
    for name in ("postgres", "redis", "seaweedfs"):
        assert services[name].get("healthcheck"), f"{name} has no healthcheck"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "8333" in str(services["seaweedfs"]["command"])
    flower = services["flower"]
    assert flower["ports"] == ["127.0.0.1:5555:5555"]  # not published beyond the host
    assert any(arg.startswith("--basic-auth=") for arg in flower["command"])
    assert "--broker=redis://redis:6379/0" in flower["command"]


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image!r}"


def test_the_images_are_built_in_stages_and_run_as_an_unprivileged_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim", dockerfile, re.MULTILINE)
    stages = re.findall(r"^FROM \S+ AS (\S+)", dockerfile, re.MULTILINE)
    assert stages == ["wheels", "base", "api", "worker"]
    for target in ("api", "worker"):
        section = dockerfile.split(f" AS {target}\n", 1)[1].split("\nFROM ", 1)[0]
        users = re.findall(r"^USER\s+(\S+)", section, re.MULTILINE)
        assert users and users[-1] not in ("root", "0"), target
        assert "HEALTHCHECK" in section, target
    api = dockerfile.split(" AS api\n", 1)[1].split("\nFROM ", 1)[0]
    assert "download.pytorch.org/whl/cpu" in api  # no CUDA in the API image
