"""``weightspace token`` manages tokens on the server's database by running the server's command
line (``python -m weightspace_app.usecases.tokens``) as a child: the client process loads no
server code, and neither process loads torch or Celery."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from weightspace_app.infra.migrate import upgrade

HEAVY = {"torch", "celery", "numpy"}
SERVER = {"weightspace_app", "sqlalchemy"}
# Runs the command line in this process and reports which heavy or server packages it loaded.
CHILD = f"""
import sys
from weightspace_client.cli import app
try:
    app(["token", *sys.argv[1:]], prog_name="weightspace")
except SystemExit as done:
    code = done.code
print("exit", code)
print("loaded", sorted(set({sorted(HEAVY | SERVER)!r}) & {{m.split(".")[0] for m in sys.modules}}))
"""


def _token(home: Path, *args: str) -> tuple[list[str], set[str]]:
    """The command's stdout lines, and every module imported by it or by its children."""
    env = {**os.environ, "WEIGHTSPACE_HOME": str(home), "PYTHONPROFILEIMPORTTIME": "1"}
    env.pop("WEIGHTSPACE_DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True, check=True
    )
    imported = {
        line.rpartition("|")[2].strip()
        for line in out.stderr.splitlines()
        if line.startswith("import time:")
    }
    return out.stdout.strip().splitlines(), imported


def test_token_create_and_list_load_no_server_code_in_the_client_and_no_torch_at_all(
    tmp_path: Path,
) -> None:
    upgrade(f"sqlite:///{tmp_path / 'weightspace.db'}")
    created, imported = _token(tmp_path, "create", "--owner", "ada")
    assert created[-2:] == ["exit 0", "loaded []"], created
    assert created[0].startswith("ws_"), created  # the secret, printed by the child
    # The child ran the server's code (its imports are profiled too), and loaded no trainer.
    assert {"weightspace_app.infra.db", "sqlalchemy"} <= imported
    assert not {name.split(".")[0] for name in imported} & HEAVY, sorted(imported)

    listed, imported = _token(tmp_path, "list")
    assert listed[-2:] == ["exit 0", "loaded []"], listed
    assert any("ada" in line for line in listed[:-2]), listed
    assert "weightspace_app.infra.db" in imported
    assert not {name.split(".")[0] for name in imported} & HEAVY, sorted(imported)


def test_token_exits_with_the_server_command_status(tmp_path: Path) -> None:
    upgrade(f"sqlite:///{tmp_path / 'weightspace.db'}")
    missing = "00000000-0000-0000-0000-000000000000"
    env = {**os.environ, "WEIGHTSPACE_HOME": str(tmp_path)}
    env.pop("WEIGHTSPACE_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "weightspace_client", "token", "revoke", missing],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert f"token {missing} not found" in result.stderr
