"""The layering, checked on every module: one direction of imports, service and worker ->
application (use cases -> infrastructure) -> core, and the light client talks to the server only
over HTTP or by starting its processes.

Each rule names the packages a layer must not import (at module level or inside a function);
every ``.py`` file of the layer is read, so a new module is checked without being listed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = {
    "fastapi",
    "starlette",
    "uvicorn",
    "celery",
    "kombu",
    "sqlalchemy",
    "alembic",
    "boto3",
    "botocore",
    "httpx",
    "redis",
    "psycopg",
}
WEB = {"fastapi", "starlette", "uvicorn"}
SERVER = {"weightspace_service", "weightspace_worker", "weightspace_migrations"}
APP = {"weightspace_app"}
CLIENT = {"weightspace_client"}


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _core_files() -> list[Path]:
    return _files("weightspace")


# layer name -> (its files, the import roots or dotted prefixes it must not use)
RULES: dict[str, tuple[list[Path], set[str]]] = {
    "core imports no framework, application, server or client code": (
        _core_files(),
        FRAMEWORKS | APP | SERVER | CLIENT,
    ),
    "use cases import no web framework, service, worker or client": (
        _files("app/weightspace_app/usecases"),
        WEB | SERVER | CLIENT,
    ),
    "infrastructure imports no use case, web framework, service, worker or client": (
        [*_files("app/weightspace_app/infra"), ROOT / "app/weightspace_app/access.py"],
        {"weightspace_app.usecases"} | WEB | SERVER | CLIENT,
    ),
    "the service imports no worker, migration or client code": (
        _files("service/weightspace_service"),
        {"weightspace_worker", "weightspace_migrations"} | CLIENT,
    ),
    "the worker imports no service or client code": (
        _files("worker/weightspace_worker"),
        {"weightspace_service", "fastapi", "starlette"} | CLIENT,
    ),
    "migrations import no use case, service, worker or client code": (
        _files("migrations/weightspace_migrations"),
        {"weightspace_service", "weightspace_worker", "weightspace_app.usecases"} | CLIENT,
    ),
    "the client imports no core, application, server or framework code but httpx": (
        _files("client/weightspace_client"),
        (FRAMEWORKS - {"httpx"}) | {"weightspace"} | APP | SERVER,
    ),
}
# Known breaches, to be removed; each must still be a breach, so the list only shrinks. (None
# left: `weightspace up`, `api`, `worker`, `token` and `reproduce --embedded` start the server's
# entry points as processes.)
KNOWN: dict[str, set[str]] = {}


def _imports(path: Path) -> set[str]:
    """Every module name ``path`` imports, dotted, anywhere in the file (relative imports
    excluded: they stay inside the package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _breaches(path: Path, forbidden: set[str]) -> set[str]:
    return {
        name
        for name in _imports(path)
        if any(name == f or name.startswith(f"{f}.") for f in forbidden)
    }


@pytest.mark.parametrize("rule", sorted(RULES))
def test_layer_imports_only_downwards(rule: str) -> None:
    files, forbidden = RULES[rule]
    assert files, rule
    breaches = {}
    for path in files:
        where = str(path.relative_to(ROOT))
        found = _breaches(path, forbidden) - KNOWN.get(where, set())
        if found:
            breaches[where] = sorted(found)
    assert not breaches, f"{rule}: {breaches}"


def test_known_breaches_are_still_breaches() -> None:
    """When one is mended, take it off KNOWN."""
    for where, names in KNOWN.items():
        assert names <= _imports(ROOT / where), where


def test_the_scanner_sees_imports_inside_functions(tmp_path: Path) -> None:
    """A rule that cannot see a lazy import could not fail."""
    module = tmp_path / "lazy.py"
    module.write_text("from . import sibling\n\ndef f():\n    from celery import Celery\n")
    assert _breaches(module, FRAMEWORKS) == {"celery"}


def test_importing_every_core_module_loads_no_framework() -> None:
    modules = [
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in _core_files()
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(FRAMEWORKS)!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]", result.stdout


PACKAGES = {
    "weightspace": "weightspace",
    "weightspace_app": "app/weightspace_app",
    "weightspace_service": "service/weightspace_service",
    "weightspace_worker": "worker/weightspace_worker",
    "weightspace_migrations": "migrations/weightspace_migrations",
    "weightspace_client": "client/weightspace_client",
}
# Known circles, to be broken; each must still be a circle. (None left.)
KNOWN_CIRCLES: list[set[str]] = []


def _module_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports (anywhere in the file)."""
    files = {}
    for top, folder in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            files[".".join((top, *parts)).removesuffix(".__init__")] = path

    def resolve(name: str) -> str:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for module, path in files.items():
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}".rstrip(".")
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in node.names)
        graph[module] = {found for name in names if (found := resolve(name)) and found != module}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while (top := stack.pop()) != node:
                component.add(top)
            if component:
                circles.append(component | {node})

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_no_module_is_in_an_import_circle() -> None:
    circles = _circles(_module_graph())
    unknown = [sorted(c) for c in circles if c not in KNOWN_CIRCLES]
    assert not unknown, unknown
    assert all(known in circles for known in KNOWN_CIRCLES), "a known circle is gone: drop it"


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
