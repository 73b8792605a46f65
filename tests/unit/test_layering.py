"""The domain core imports no web, queue, database or object-storage code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = [
    "spec",
    "data",
    "models",
    "training",
    "snapshots",
    "analysis",
    "claims",
    "nulls",
    "landscape",
    "reproduction",
    "figures",
    "report",
    "offline",
]
FORBIDDEN = {
    "fastapi",
    "starlette",
    "celery",
    "kombu",
    "sqlalchemy",
    "alembic",
    "boto3",
    "botocore",
    "httpx",
    "redis",
    "psycopg",
    "weightspace_service",
    "weightspace_worker",
    "weightspace_migrations",
}
PACKAGE = Path(__file__).resolve().parents[2] / "weightspace"


def _sources(name: str) -> list[Path]:
    """The module's file, or every file of the package of that name."""
    package = PACKAGE / name
    return sorted(package.glob("*.py")) if package.is_dir() else [PACKAGE / f"{name}.py"]


def test_core_modules_import_nothing_forbidden() -> None:
    for name, path in ((n, p) for n in CORE for p in _sources(n)):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
                assert not (node.module or "").startswith("weightspace.adapters"), name
            else:
                continue
            assert not roots & FORBIDDEN, f"{path} imports {roots & FORBIDDEN}"


def test_importing_the_core_loads_no_framework() -> None:
    code = (
        "import sys\n"
        + "".join(f"import weightspace.{name}\n" for name in CORE)
        + f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(FORBIDDEN)!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
