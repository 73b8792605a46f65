"""constraints.txt pins a version inside every range pyproject.toml asks for, and only those."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
OWN = {"weightspace", "weightspace-client"}


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_every_direct_requirement_is_pinned_within_its_range() -> None:
    pins = _pins()
    for path in (ROOT / "pyproject.toml", ROOT / "client" / "pyproject.toml"):
        project = tomllib.loads(path.read_text())["project"]
        requirements = list(project["dependencies"])
        for extra in project.get("optional-dependencies", {}).values():
            requirements += extra
        for text in requirements:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            if name in OWN:
                continue
            assert name in pins, f"{requirement} ({path.name}) has no pin in constraints.txt"
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"constraints.txt pins {name}=={pins[name]} outside {requirement}"
            )


def test_the_project_itself_pip_and_setuptools_are_not_pinned() -> None:
    assert not set(_pins()) & {*OWN, "pip", "setuptools"}
