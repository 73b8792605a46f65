"""Experiments and suites named the way people type them: a full id, a prefix of one, or a name.

A full id is taken as it is (no request). Anything else is matched against the caller's
experiments (or suites): an id that starts with it (case-insensitive), or a name equal to it.
One match is the answer; none, or more than one, is an :class:`AmbiguousReference` that lists
the candidates.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from weightspace_client.client import WeightspaceClient
from weightspace_client.errors import WeightspaceError

#: How many candidates an ambiguous reference lists at most.
SHOWN = 10


class AmbiguousReference(WeightspaceError):
    """A reference that matches no experiment (suite), or several."""

    def __init__(self, kind: str, reference: str, candidates: list[Mapping[str, Any]]) -> None:
        self.candidates = candidates
        if not candidates:
            message = f"no {kind} has an id starting with, or the name, {reference!r}"
        else:
            lines = [
                f"  {c['id']}" + (f"  {c['name']}" if c.get("name") else "")
                for c in candidates[:SHOWN]
            ]
            if len(candidates) > SHOWN:
                lines.append(f"  ... and {len(candidates) - SHOWN} more")
            message = f"{reference!r} matches {len(candidates)} {kind}s:\n" + "\n".join(lines)
        super().__init__(message)


def is_full_id(reference: str) -> bool:
    try:
        uuid.UUID(reference)
    except ValueError:
        return False
    return True


def match(kind: str, reference: str, items: Iterable[Mapping[str, Any]]) -> str:
    """The id of the one item of ``items`` that ``reference`` names (see the module)."""
    if is_full_id(reference):
        return reference
    prefix = reference.strip().lower()
    if not prefix:
        raise AmbiguousReference(kind, reference, [])
    by_name = []
    by_prefix = []
    for item in items:
        if item.get("name") == reference:
            by_name.append(item)
        elif str(item["id"]).lower().startswith(prefix):
            by_prefix.append(item)
    found = by_name or by_prefix  # an exact name wins over an id that happens to start with it
    if len(found) != 1:
        raise AmbiguousReference(kind, reference, found)
    return str(found[0]["id"])


def experiment_id(client: WeightspaceClient, reference: str) -> str:
    """The id of the experiment ``reference`` names (a full id, a unique prefix, or a name)."""
    if is_full_id(reference):
        return reference
    return match("experiment", reference, client.list_experiments(limit=100))


def suite_id(client: WeightspaceClient, reference: str) -> str:
    """The id of the suite ``reference`` names (a full id or a unique prefix)."""
    if is_full_id(reference):
        return reference
    return match("suite", reference, client.list_suites(limit=100))


def resolve(client: WeightspaceClient, reference: str, *, suite: bool = False) -> str:
    """:func:`suite_id` if ``suite``, else :func:`experiment_id`."""
    return suite_id(client, reference) if suite else experiment_id(client, reference)
