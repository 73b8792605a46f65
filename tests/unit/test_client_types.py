"""weightspace_client.types is generated from the OpenAPI document, and the CLI's choices are its.

- The committed types.py is what scripts/client_types.py writes from the committed
  ``openapi/openapi.json`` (the app's: test_openapi_drift.py checks that).
- Every schema is typed or excused, and each TypedDict agrees with its schema: field names,
  which are required, every field's type (primitives, null, arrays, maps, nested TypedDicts
  against the schemas they map to, literals against enums). This checks the generator itself.
- Every option of the CLI with fixed choices offers exactly the values of the API's enum it
  mirrors.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
import typing
from collections.abc import Iterator, Mapping
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
import typer.main

ROOT = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("weightspace_client") is None:  # not pip-installed: use the source
    sys.path.insert(0, str(ROOT / "client"))

from weightspace_client import types as client_types  # noqa: E402
from weightspace_client.cli import app  # noqa: E402


def _load_generator() -> types.ModuleType:
    """scripts/client_types.py (a script, not a package: loaded from its path)."""
    spec = importlib.util.spec_from_file_location("client_types_generator", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DOCUMENT = ROOT / "openapi" / "openapi.json"
GENERATOR = ROOT / "scripts" / "client_types.py"
generator = _load_generator()

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
    assert not set(generator.UNTYPED) & set(mapping.values())
    missing = schemas - set(mapping.values()) - set(generator.UNTYPED)
    assert not missing, f"schemas with no TypedDict in weightspace_client.types: {missing}"


@pytest.mark.parametrize(
    ("typed_name", "schema_name"), sorted(client_types.OPENAPI_SCHEMAS.items())
)
def test_typed_dict_agrees_with_its_schema(typed_name: str, schema_name: str) -> None:
    problems = drift(_typed_dicts()[typed_name], schema_name, _document())
    assert not problems, f"{typed_name} vs {schema_name}:\n" + "\n".join(problems)


# -- generated, and not drifted ----------------------------------------------------------


def test_committed_types_are_generated_from_the_committed_document() -> None:
    committed = (ROOT / "client" / "weightspace_client" / "types.py").read_text()
    assert committed == generator.render(_document()), (
        "client/weightspace_client/types.py drifted from openapi/openapi.json: "
        "run `python scripts/client_types.py`"
    )


def test_the_generator_checks_without_writing(capsys: pytest.CaptureFixture[str]) -> None:
    assert generator.main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_a_new_schema_must_be_typed_or_excused() -> None:
    document = _document()
    document["components"]["schemas"]["NewOut"] = {"type": "object", "properties": {}}
    with pytest.raises(generator.GeneratorError, match="NewOut"):
        generator.render(document)


def test_a_changed_schema_changes_the_output() -> None:
    document = _document()
    document["components"]["schemas"]["RunOut"]["properties"]["attempts"] = {"type": "integer"}
    document["components"]["schemas"]["SuiteIn"]["properties"]["preset"]["enum"].append("huge")
    text = generator.render(document)
    assert "    attempts: NotRequired[int]\n" in text
    assert 'PresetName = Literal["quick", "paper", "huge"]\n' in text


# -- the CLI's choices are the API's enums ---------------------------------------------------

#: Every option or argument of the CLI with fixed choices -> the enum of the API it offers
#: (``Schema.property`` or ``operation_id(parameter)`` of openapi/openapi.json).
CLI_CHOICES = {
    ("submit", "queue"): "create_experiment(queue)",
    ("list", "status"): "list_experiments(status)",
    ("analyse", "kind"): "AnalysisIn.kind",
    ("landscape", "normalisation"): "get_landscape(normalisation)",
    ("presets", "dataset"): "get_preset(dataset)",
    ("reproduce", "preset"): "SuiteIn.preset",
    ("reproduce", "dataset"): "SuiteIn.dataset",
    ("reproduce", "queue"): "create_suite(queue)",
}


def _cli_choices() -> Iterator[tuple[tuple[str, str], list[Any]]]:
    """(command, parameter) -> its choices, for every parameter of the CLI that has them."""

    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, str], list[Any]]]:
        if hasattr(command, "commands"):  # a group (Typer may bundle its own click: no isinstance)
            for name, sub in command.commands.items():
                yield from walk(sub, (*path, name))
            return
        for param in command.params:
            if hasattr(param.type, "choices"):
                yield (" ".join(path), str(param.name)), list(param.type.choices)

    yield from walk(typer.main.get_command(app), ())


def test_every_cli_choice_is_listed() -> None:
    assert {key for key, _ in _cli_choices()} == set(CLI_CHOICES)


@pytest.mark.parametrize(("command", "where"), sorted(CLI_CHOICES.items()))
def test_cli_choices_are_the_api_enum(command: tuple[str, str], where: str) -> None:
    offered = dict(_cli_choices())[command]
    assert offered == generator.locate_enum(_document(), where), command


def test_the_named_enums_are_the_documents() -> None:
    for name, where in generator.ENUMS.items():
        literal = getattr(client_types, name)
        assert list(get_args(literal)) == generator.locate_enum(_document(), where), name


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
