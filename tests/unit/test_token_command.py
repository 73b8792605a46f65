"""``weightspace token`` manages tokens on the server's database without loading torch or Celery
(it used to reach Principal through the module that re-exports the trainer)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from weightspace_app.infra.migrate import upgrade

# Runs the command in-process and reports which heavy packages it loaded.
CHILD = """
import sys
from weightspace_client.cli import app
try:
    app(["token", *sys.argv[1:]], prog_name="weightspace")
except SystemExit as done:
    code = done.code
print("exit", code)
print("loaded", sorted({"torch", "celery", "numpy"} & set(sys.modules)))
"""


def _token(home: Path, *args: str) -> list[str]:
    env = {**os.environ, "WEIGHTSPACE_HOME": str(home)}
    env.pop("WEIGHTSPACE_DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()


def test_token_create_and_list_load_neither_torch_nor_celery(tmp_path: Path) -> None:
    upgrade(f"sqlite:///{tmp_path / 'weightspace.db'}")
    created = _token(tmp_path, "create", "--owner", "ada")
    assert created[-2:] == ["exit 0", "loaded []"], created
    listed = _token(tmp_path, "list")
    assert listed[-2:] == ["exit 0", "loaded []"], listed
    assert any("ada" in line for line in listed[:-2]), listed
