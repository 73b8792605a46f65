"""The client's hand-written TypedDicts agree with the OpenAPI document's schemas.

Each TypedDict in ``weightspace_client.types`` names its schema in ``OPENAPI_SCHEMAS``; for each
pair the field names, which fields are required and every field's type (primitives, null,
arrays, maps, nested TypedDicts against the schemas they map to, literals against enums) must
agree. The committed ``openapi/openapi.json`` is the app's (test_openapi_drift.py checks that).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import (
    Any,
    Literal,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

import pytest

ROOT = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("weightspace_client") is None:  # not pip-installed: use the source
    sys.path.insert(0, str(ROOT / "client"))

from weightspace_client import types as client_types  # noqa: E402

DOCUMENT = ROOT / "openapi" / "openapi.json"
#: Schemas with no TypedDict, and why.
UNTYPED = {
    "ExperimentSpec": "requests: the client sends the user's spec file as it is",
    "DatasetSpec": "part of ExperimentSpec",
    "OptimizerSpec": "part of ExperimentSpec",
    "MLPSpec": "part of ExperimentSpec",
    "CNNSpec": "part of ExperimentSpec",
    "PaperCNNSpec": "part of ExperimentSpec",
    "SuiteIn": "requests: built from submit_suite's arguments",
    "UploadSpec": "requests: built from create_upload's arguments",
    "AnalysisIn": "requests: built from analyse's arguments",
    "SelectionIn": "part of AnalysisIn",
    "VerifyIn": "requests: built from verify's arguments",
    "ExperimentPatch": "requests: built from annotate's arguments",
    "LandscapeEvaluation": "requests: built by planes.evaluate (put_landscape's losses)",
    "RunPage": "the client follows the pages and yields their items (Run)",
    "SnapshotPage": "the client follows the pages and yields their items (SnapshotInfo)",
}

# A type, reduced to what JSON Schema can say: ("string",), ("integer",), ("number",),
# ("boolean",), ("null",), ("any",), ("enum", values), ("array", items), ("map", values)
# and ("object", schema name); a union is a frozenset of them.
Shape = tuple[Any, ...]
Shapes = frozenset[Shape]
_PRIMITIVES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_VALUE_TYPES: dict[str, type] = {"string": str, "integer": int, "boolean": bool}


def hint_shapes(hint: Any, schemas: Mapping[str, str]) -> Shapes:
    """The shapes of a TypedDict field's annotation (``schemas``: TypedDict -> schema name)."""
    origin = get_origin(hint)
    if hint is Any:
        return frozenset({("any",)})
    if hint is None or hint is type(None):
        return frozenset({("null",)})
    if origin in (Union, types.UnionType):
        return frozenset().union(*(hint_shapes(arg, schemas) for arg in get_args(hint)))
    if origin is Literal:
        return frozenset({("enum", frozenset(get_args(hint)))})
    if origin is list:
        return frozenset({("array", hint_shapes(get_args(hint)[0], schemas))})
    if origin is dict:
        return frozenset({("map", hint_shapes(get_args(hint)[1], schemas))})
    if is_typeddict(hint):
        return frozenset({("object", schemas.get(hint.__name__, f"<unmapped {hint.__name__}>"))})
    if hint in _PRIMITIVES:
        return frozenset({(_PRIMITIVES[hint],)})
    raise AssertionError(f"no JSON shape for the annotation {hint!r}")


def schema_shapes(schema: Mapping[str, Any], components: Mapping[str, Any]) -> Shapes:
    """The shapes a JSON Schema (of the OpenAPI document's ``components``) allows."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        target = components[name]
        if "properties" in target or target.get("type") == "object":
            return frozenset({("object", name)})
        return schema_shapes(target, components)  # an enum, or another named non-object
    for key in ("anyOf", "oneOf"):
        if key in schema:
            parts = (schema_shapes(part, components) for part in schema[key])
            return frozenset().union(*parts)
    if len(schema.get("allOf", ())) == 1:
        return schema_shapes(schema["allOf"][0], components)
    if "const" in schema:
        return frozenset({("enum", frozenset({schema["const"]}))})
    if "enum" in schema:
        return frozenset({("enum", frozenset(schema["enum"]))})
    kind = schema.get("type")
    if kind is None:
        return frozenset({("any",)})
    if isinstance(kind, list):
        return frozenset().union(*(schema_shapes({**schema, "type": k}, components) for k in kind))
    if kind == "array":
        return frozenset({("array", schema_shapes(schema.get("items", {}), components))})
    if kind == "object":
        values = schema.get("additionalProperties", {})
        return frozenset(
            {("map", schema_shapes(values if isinstance(values, dict) else {}, components))}
        )
    return frozenset({(kind,)})


def _agrees(client: Shape, server: Shape) -> bool:
    if client == ("any",) or server == ("any",) or client == server:
        return True
    if client[0] == server[0] == "array" or client[0] == server[0] == "map":
        return shapes_agree(client[1], server[1])
    if client[0] == "map" and server[0] == "object":
        return bool(client[1] == frozenset({("any",)}))  # dict[str, Any]: a loose view of an object
    # A literal where the schema only says the primitive type, or the other way round: the
    # primitive types agree (the values, where both sides list them, must be the same).
    if client[0] == "enum" and server[0] in _VALUE_TYPES:
        return all(type(value) is _VALUE_TYPES[server[0]] for value in client[1])
    if server[0] == "enum" and client[0] in _VALUE_TYPES:
        return all(type(value) is _VALUE_TYPES[client[0]] for value in server[1])
    return False


def shapes_agree(client: Shapes, server: Shapes) -> bool:
    """Every alternative on each side has one on the other that it agrees with."""
    return all(any(_agrees(c, s) for s in server) for c in client) and all(
        any(_agrees(c, s) for c in client) for s in server
    )


def _required(typed: type, key: str) -> bool:
    """Whether the TypedDict requires ``key``.

    From the annotation, not ``__required_keys__``: under ``from __future__ import
    annotations`` Python 3.11 cannot see ``NotRequired`` in a string annotation there.
    """
    hint = get_type_hints(typed, vars(client_types), include_extras=True)[key]
    if get_origin(hint) is NotRequired:
        return False
    return get_origin(hint) is Required or bool(typed.__total__)  # type: ignore[attr-defined]


def drift(typed: type, schema_name: str, document: Mapping[str, Any]) -> list[str]:
    """How the TypedDict ``typed`` and the schema ``schema_name`` disagree (empty: they agree)."""
    components = document["components"]["schemas"]
    schema = components[schema_name]
    properties: Mapping[str, Any] = schema.get("properties", {})
    hints = get_type_hints(typed, vars(client_types))
    problems = []
    for name in sorted(set(hints) - set(properties)):
        problems.append(f"{name}: in the TypedDict, not in the schema")
    for name in sorted(set(properties) - set(hints)):
        problems.append(f"{name}: in the schema, not in the TypedDict")
    required = set(schema.get("required", ()))
    for name in sorted(set(hints) & set(properties)):
        if _required(typed, name) != (name in required):
            should = "required" if name in required else "NotRequired"
            problems.append(f"{name}: the schema makes it {should}")
        client = hint_shapes(hints[name], client_types.OPENAPI_SCHEMAS)
        server = schema_shapes(properties[name], components)
        if not shapes_agree(client, server):
            problems.append(f"{name}: {hints[name]!r} but the schema says {properties[name]}")
    return problems


def _document() -> dict[str, Any]:
    return typing.cast(dict[str, Any], json.loads(DOCUMENT.read_text()))


def _typed_dicts() -> dict[str, type]:
    return {
        name: value
        for name, value in vars(client_types).items()
        if is_typeddict(value) and value.__module__ == client_types.__name__
    }


def test_every_typed_dict_names_its_schema_and_every_schema_is_typed_or_excused() -> None:
    schemas = set(_document()["components"]["schemas"])
    mapping = client_types.OPENAPI_SCHEMAS
    assert set(mapping) == set(_typed_dicts()), "OPENAPI_SCHEMAS must list every TypedDict"
    assert set(mapping.values()) <= schemas, set(mapping.values()) - schemas
    assert len(set(mapping.values())) == len(mapping), "two TypedDicts mirror one schema"
    assert not set(UNTYPED) & set(mapping.values())
    missing = schemas - set(mapping.values()) - set(UNTYPED)
    assert not missing, f"schemas with no TypedDict in weightspace_client.types: {missing}"


@pytest.mark.parametrize(
    ("typed_name", "schema_name"), sorted(client_types.OPENAPI_SCHEMAS.items())
)
def test_typed_dict_agrees_with_its_schema(typed_name: str, schema_name: str) -> None:
    problems = drift(_typed_dicts()[typed_name], schema_name, _document())
    assert not problems, f"{typed_name} vs {schema_name}:\n" + "\n".join(problems)


# -- the check itself fails on drift --------------------------------------------------------


def _drifted(edit: Any) -> list[str]:
    """What ``edit`` of the RunOut schema adds to the drift the check reports for Run."""
    document = _document()
    before = drift(client_types.Run, "RunOut", document)
    edit(document["components"]["schemas"]["RunOut"])
    return [p for p in drift(client_types.Run, "RunOut", document) if p not in before]


def test_the_check_sees_a_field_added_or_removed() -> None:
    assert _drifted(lambda s: s["properties"].update(attempts={"type": "integer"})) == [
        "attempts: in the schema, not in the TypedDict"
    ]
    assert _drifted(lambda s: s["properties"].pop("seeds")) == [
        "seeds: in the TypedDict, not in the schema"
    ]


def test_the_check_sees_required_flip() -> None:
    assert _drifted(lambda s: s["required"].remove("final_epoch")) == [
        "final_epoch: the schema makes it NotRequired"
    ]


@pytest.mark.parametrize(
    ("field", "schema"),
    [
        pytest.param("final_epoch", {"type": "string"}, id="primitive"),
        pytest.param("final_epoch", {"type": "number"}, id="integer-vs-number"),
        pytest.param("run", {"anyOf": [{"type": "integer"}, {"type": "null"}]}, id="null"),
        pytest.param("epoch", {"type": "integer"}, id="not-null"),
        pytest.param("status", {"type": "string", "enum": ["queued", "done"]}, id="enum"),
        pytest.param("seeds", {"$ref": "#/components/schemas/Metrics"}, id="nested"),
    ],
)
def test_the_check_sees_a_type_change(field: str, schema: dict[str, Any]) -> None:
    problems = _drifted(lambda s: s["properties"].__setitem__(field, schema))
    assert [p.split(":")[0] for p in problems] == [field]
