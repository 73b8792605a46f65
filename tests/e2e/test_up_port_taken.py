"""``weightspace up --port P`` with P taken by another server: a clear refusal, never "is up"."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from weightspace_app.infra.supervisor import port_is_free

from tests.e2e.test_embedded import weightspace_command

pytestmark = pytest.mark.integration


class _Healthy(http.server.BaseHTTPRequestHandler):
    """Another server that answers 200 to everything, /health included."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_a_taken_port_is_refused_before_anything_starts(other_server: int, tmp_path: Path) -> None:
    assert not port_is_free("127.0.0.1", other_server)
    done = subprocess.run(
        [weightspace_command(), "up", "--port", str(other_server), "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"port {other_server} on 127.0.0.1 is taken" in " ".join(output.split())
    assert "is up" not in output


def test_a_port_left_by_a_closed_server_is_free() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port)):
            assert not port_is_free("127.0.0.1", port)
    assert port_is_free("127.0.0.1", port)
