"""Write client/weightspace_client/types.py from openapi/openapi.json (the standard library only).

    python scripts/client_types.py          # regenerate it
    python scripts/client_types.py --check  # exit 1 if the committed file differs

Run it after ``python scripts/openapi.py`` (which rewrites the document);
tests/unit/test_client_types.py fails when the committed file is not what this prints.

What it writes: one TypedDict per response schema the client reads (``TYPED``: schema -> the
client's name), ``NotRequired`` for the keys a schema does not require, ``X | None`` for
nullable ones, ``list``/``dict`` for arrays and maps, and ``Literal`` for enums; the enums the
client names itself (its CLI's choices among them) are aliases (``ENUMS``). Every schema is
either typed or excused (``UNTYPED``, with the reason): a new one stops the generator until it
is placed. The output is formatted as ``ruff format`` would, and passes ``mypy --strict``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "openapi" / "openapi.json"
TARGET = ROOT / "client" / "weightspace_client" / "types.py"
LINE = 100  # ruff's line length (pyproject.toml)

#: The schemas the client reads, and the names of their TypedDicts, in the module's order.
TYPED: dict[str, str] = {
    "FieldError": "FieldError",
    "Problem": "Problem",
    "Metrics": "Metrics",
    "Seeds": "Seeds",
    "RunOut": "Run",
    "ExperimentLinks": "ExperimentLinks",
    "DamagedSnapshotOut": "DamagedSnapshot",
    "ExperimentOut": "Experiment",
    "ExperimentPage": "ExperimentPage",
    "SnapshotOut": "SnapshotInfo",
    "PCAPoint": "PCAPoint",
    "PCAOut": "PCA",
    "DistancesOut": "Distances",
    "GradientOut": "Gradient",
    "TrajectoryPoint": "TrajectoryPoint",
    "RunTrajectory": "RunTrajectory",
    "TrajectoryOut": "Trajectory",
    "GramPending": "GramPending",
    "Health": "Health",
    "Readiness": "Readiness",
    "PresetExperimentOut": "PresetExperiment",
    "PresetOut": "Preset",
    "PresetList": "PresetList",
    "SuiteExperiment": "SuiteExperiment",
    "SuiteReport": "SuiteReport",
    "SuiteOut": "Suite",
    "SuitePage": "SuitePage",
    "ReferenceOut": "ClaimReference",
    "EffectOut": "ClaimEffect",
    "ClaimTestOut": "ClaimTest",
    "Stability": "ClaimStability",
    "ClaimOut": "Claim",
    "ClaimsOut": "Claims",
    "JointSnapshot": "JointSnapshot",
    "JointPCA": "JointPCA",
    "JointDistances": "JointDistances",
    "JointEnd": "JointEnd",
    "JointLineLoss": "JointLineLoss",
    "JointBarrierLine": "JointBarrierLine",
    "JointBarriers": "JointBarriers",
    "AnalysisOut": "Analysis",
    "LandscapeOut": "Landscape",
    "LandscapePending": "LandscapePending",
    "SnapshotRef": "SnapshotRef",
    "LineOut": "Line",
    "BarrierLineOut": "BarrierLine",
    "BarriersOut": "Barriers",
    "BarriersPending": "BarriersPending",
    "MetricValues": "MetricValues",
    "DifferenceOut": "Difference",
    "VerificationOut": "Verification",
    "VerificationPending": "VerificationPending",
    "WorkerOut": "Worker",
    "WorkerList": "WorkerList",
}

#: Schemas with no TypedDict, and why (a field that refers to one is a ``dict[str, Any]``).
UNTYPED: dict[str, str] = {
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

#: Enums the client names (the CLI's choices are among them): name -> where the document
#: states it, ``Schema.property`` or ``operation_id(parameter)``. A field whose enum has
#: exactly these values, in this order, is annotated with the name.
ENUMS: dict[str, str] = {
    "Status": "ExperimentOut.status",
    "ReportStatus": "SuiteReport.status",
    "Verdict": "ClaimOut.verdict",
    "Role": "PresetExperimentOut.role",
    "PresetName": "SuiteIn.preset",
    "DatasetName": "DatasetSpec.name",
    "QueueName": "create_experiment(queue)",
    "AnalysisKind": "AnalysisIn.kind",
    "Normalisation": "LandscapeOut.normalisation",
}

HEADER = '''\
"""Typed shapes of the service's JSON documents, as plain dicts (no pydantic on the client side).

Generated from openapi/openapi.json by scripts/client_types.py: do not edit it by hand. After
the document changes (``python scripts/openapi.py``), regenerate it with
``python scripts/client_types.py``; tests/unit/test_client_types.py fails while it drifts.

Keys marked ``NotRequired`` may be absent; every other key is present, possibly ``null``.
Timestamps are ISO 8601 strings and ids are UUID strings.

Why one file of ~870 lines: it mirrors the document's schemas one for one, and nobody edits it.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict
'''

_PRIMITIVES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`(])")
_ABBREVIATIONS = ("e.g.", "i.e.", "et al.", "etc.", "cf.", "vs.")


class GeneratorError(Exception):
    """The document holds something this generator does not place or cannot express."""


def _schemas(document: Mapping[str, Any]) -> Mapping[str, Any]:
    schemas: Mapping[str, Any] = document["components"]["schemas"]
    return schemas


def _literal(values: list[Any]) -> str:
    return "Literal[" + ", ".join(json.dumps(v) for v in values) + "]"


def locate_enum(document: Mapping[str, Any], where: str) -> list[Any]:
    """The values of the enum at ``where`` (``Schema.property`` or ``operation_id(parameter)``)."""
    if match := re.fullmatch(r"(\w+)\((\w+)\)", where):
        operation_id, name = match.groups()
        for operations in document["paths"].values():
            for operation in operations.values():
                if operation.get("operationId") != operation_id:
                    continue
                for parameter in operation.get("parameters", ()):
                    if parameter["name"] == name:
                        return _enum_values(parameter["schema"], where)
        raise GeneratorError(f"{where}: no such operation parameter")
    schema, _, name = where.partition(".")
    try:
        return _enum_values(_schemas(document)[schema]["properties"][name], where)
    except KeyError:
        raise GeneratorError(f"{where}: no such schema property") from None


def _enum_values(schema: Mapping[str, Any], where: str) -> list[Any]:
    if "enum" in schema:
        return list(schema["enum"])
    for part in schema.get("anyOf", ()):  # an optional enum: the enum or null
        if "enum" in part:
            return list(part["enum"])
    raise GeneratorError(f"{where} is not an enum")


class Writer:
    """Annotations for the schemas of one document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.schemas = _schemas(document)
        unplaced = set(self.schemas) - set(TYPED) - set(UNTYPED)
        if unplaced:
            raise GeneratorError(
                f"schemas neither in TYPED nor in UNTYPED: {sorted(unplaced)} "
                "(scripts/client_types.py)"
            )
        stale = (set(TYPED) | set(UNTYPED)) - set(self.schemas)
        if stale:
            raise GeneratorError(f"TYPED or UNTYPED names schemas that are gone: {sorted(stale)}")
        self.enums = {name: locate_enum(document, where) for name, where in ENUMS.items()}

    def annotation(self, schema: Mapping[str, Any]) -> str:
        """The Python annotation of a JSON Schema (a union's members in the schema's order)."""
        members: list[str] = []
        for member in self._members(schema):
            if member not in members:
                members.append(member)
        if "None" in members:  # null last: ``X | None``
            members.remove("None")
            members.append("None")
        return " | ".join(members)

    def _members(self, schema: Mapping[str, Any]) -> list[str]:
        if "$ref" in schema:
            name = schema["$ref"].removeprefix("#/components/schemas/")
            return [TYPED.get(name, "dict[str, Any]")]
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return [m for part in schema[key] for m in self._members(part)]
        if len(schema.get("allOf", ())) == 1:
            return self._members(schema["allOf"][0])
        if "const" in schema:
            return [_literal([schema["const"]])]
        if "enum" in schema:
            values = list(schema["enum"])
            named = [name for name, known in self.enums.items() if known == values]
            return [named[0] if named else _literal(values)]
        kind = schema.get("type")
        if kind is None:
            return ["Any"]
        if kind == "null":
            return ["None"]
        if kind in _PRIMITIVES:
            return [_PRIMITIVES[kind]]
        if kind == "array":
            return [f"list[{self.annotation(schema.get('items', {}))}]"]
        if kind == "object" and "properties" not in schema:
            values = schema.get("additionalProperties", True)
            value = self.annotation(values) if isinstance(values, dict) else "Any"
            return [f"dict[str, {value}]"]
        raise GeneratorError(f"no annotation for {dict(schema)} (name the object in components)")


def _alias(name: str, values: list[Any]) -> list[str]:
    """``name = Literal[...]``, split over lines as ruff format splits it when it is too long."""
    line = f"{name} = {_literal(values)}"
    if len(line) <= LINE:
        return [line]
    inner = ", ".join(json.dumps(v) for v in values)
    if len(inner) + 4 <= LINE:
        return [f"{name} = Literal[", f"    {inner}", "]"]
    return [f"{name} = Literal[", *(f"    {json.dumps(v)}," for v in values), "]"]


def _short(description: str) -> str:
    """A description's first sentence, on one line."""
    first = " ".join(description.split("\n\n")[0].split())
    for end in _SENTENCE_END.finditer(first):
        if not first[: end.start()].endswith(_ABBREVIATIONS):
            return first[: end.start()]
    return first


def _comment(text: str, indent: str) -> list[str]:
    return textwrap.wrap(
        text,
        LINE - len(indent) - 2,
        initial_indent="",
        break_long_words=False,
        break_on_hyphens=False,
    )


def _docstring(description: str, indent: str) -> list[str]:
    """A class docstring of a schema's description (its first paragraph, reflowed)."""
    text = " ".join(description.split("\n\n")[0].split()).replace("\\", "\\\\")
    if '"""' in text:
        raise GeneratorError(f"a description holds triple quotes: {text!r}")
    if text.endswith('"'):
        text += " "
    if len(indent) + len(text) + 6 <= LINE:
        return [f'{indent}"""{text}"""']
    lines = textwrap.wrap(text, LINE - len(indent), break_long_words=False)
    lines[0] = '"""' + lines[0]
    if len(indent) + len(lines[0]) > LINE:  # the quotes pushed it over: wrap narrower
        lines = textwrap.wrap(text, LINE - len(indent) - 3, break_long_words=False)
        lines[0] = '"""' + lines[0]
    return [f"{indent}{line}" for line in lines] + [f'{indent}"""']


def _typed_dict(writer: Writer, schema_name: str, name: str) -> list[str]:
    schema = writer.schemas[schema_name]
    properties: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    lines = [f"class {name}(TypedDict):"]
    if description := schema.get("description"):
        lines += _docstring(description, "    ")
        lines.append("")
    elif not properties:
        lines.append("    pass")
    for key in sorted(properties):
        if not key.isidentifier():
            raise GeneratorError(f"{schema_name}.{key}: not a Python identifier")
        field = properties[key]
        annotation = writer.annotation(field)
        if key not in required:
            annotation = f"NotRequired[{annotation}]"
        if description := field.get("description"):
            lines += [f"    # {line}" for line in _comment(_short(description), "    ")]
        lines.append(f"    {key}: {annotation}")
    return lines


def render(document: Mapping[str, Any]) -> str:
    """The text of types.py for ``document``."""
    writer = Writer(document)
    blocks = []
    aliases = ["# -- enums the client names (its CLI's choices among them) " + "-" * 36]
    for name, where in ENUMS.items():
        aliases.append(f"#: ``{where}`` in openapi/openapi.json.")
        aliases += _alias(name, writer.enums[name])
    blocks.append("\n".join(aliases))
    for schema_name, name in TYPED.items():
        blocks.append("\n".join(_typed_dict(writer, schema_name, name)))
    mapping = ["#: The schema (``components.schemas``) each TypedDict above mirrors."]
    mapping.append("OPENAPI_SCHEMAS: dict[str, str] = {")
    mapping += [f'    "{name}": "{schema_name}",' for schema_name, name in TYPED.items()]
    mapping.append("}")
    blocks.append("\n".join(mapping))
    # One blank line after the imports (as ruff's isort wants before a statement), two between
    # the classes.
    text = HEADER + "\n" + "\n\n\n".join(block.rstrip("\n") for block in blocks) + "\n"
    long = [line for line in text.splitlines() if len(line) > LINE]
    if long:
        raise GeneratorError(f"lines over {LINE} characters (name the enum in ENUMS?): {long}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the committed file differs; write nothing"
    )
    args = parser.parse_args(argv)
    text = render(json.loads(DOCUMENT.read_text()))
    relative = TARGET.relative_to(ROOT)
    if args.check:
        if TARGET.read_text() != text:
            print(f"{relative} drifted from openapi/openapi.json: run scripts/client_types.py")
            return 1
        print(f"{relative} is up to date")
        return 0
    TARGET.write_text(text)
    print(f"wrote {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
