"""The presets that reproduce the paper: the ``presets`` command and its tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from weightspace_client.cli.app import JsonOption, UrlOption, app
from weightspace_client.cli.output import client as _client
from weightspace_client.cli.output import out, print_json
from weightspace_client.client import DEFAULT_URL
from weightspace_client.types import DatasetName, Preset


def _model_summary(model: Mapping[str, Any]) -> str:
    kind = str(model.get("kind") or "-")
    if kind == "cnn":
        channels = "-".join(str(c) for c in model.get("channels") or [])
        text = f"cnn {channels}"
        if model.get("kernel_size") is not None:
            text += f" k{model['kernel_size']}"
        if model.get("hidden") is not None:
            text += f", fc {model['hidden']}"
        return text
    if kind == "mlp":
        return f"mlp {'-'.join(str(h) for h in model.get('hidden') or [])}".rstrip()
    return kind


def _epochs_summary(spec: Mapping[str, Any]) -> str:
    epochs = str(spec.get("epochs", "-"))
    pretrain = spec.get("pretrain_epochs") or 0
    return f"{pretrain}+{epochs}" if pretrain else epochs


def _dataset_summary(preset: Preset) -> str:
    experiments = preset.get("experiments") or []
    spec: Mapping[str, Any] = (experiments[0].get("spec") or {}) if experiments else {}
    data: Mapping[str, Any] = spec.get("dataset") or {}
    text = str(preset.get("dataset") or data.get("name") or "-")
    if data.get("train_size"):
        text += f" ({data['train_size']:,} train)"
    return text


#: Below this many columns the titles leave the presets table for lines of their own.
_WIDE_PRESETS = 130


_PRESETS_CAPTION = "epochs N+M: N epochs of pretraining, then M"


def _print_presets(out: Console, found: Sequence[Preset]) -> None:
    """One table of every preset's experiments; on a narrow console, one per preset."""
    wide = out.width >= _WIDE_PRESETS
    numbers = ("replicas", "epochs", "snapshot every")

    def table(title: str | None) -> Table:
        grid = Table(title=title, title_justify="left")
        if wide:
            grid.add_column("preset", no_wrap=True)
            grid.add_column("dataset")
        grid.add_column("role", no_wrap=True)
        if wide:
            grid.add_column("title", ratio=1)
        for name in numbers:
            grid.add_column(name, justify="right", no_wrap=name != "snapshot every")
        grid.add_column("model")
        return grid

    def row(preset: Preset, first: bool, experiment: Mapping[str, Any]) -> list[str]:
        spec: Mapping[str, Any] = experiment.get("spec") or {}
        cells = [escape(experiment.get("role") or "-")]
        if wide:
            cells = [
                escape(preset["name"]) if first else "",
                escape(_dataset_summary(preset)) if first else "",
                *cells,
                escape(experiment.get("title") or "-"),
            ]
        return [
            *cells,
            str(spec.get("replicas", "-")),
            _epochs_summary(spec),
            str(spec.get("snapshot_every", "-")),
            escape(_model_summary(spec.get("model") or {})),
        ]

    pretrains = any(
        (e.get("spec") or {}).get("pretrain_epochs") for p in found for e in p["experiments"]
    )
    if wide:
        combined = table("presets (run one with `weightspace reproduce --preset NAME`)")
        for preset in found:
            for i, experiment in enumerate(preset.get("experiments") or []):
                combined.add_row(*row(preset, i == 0, experiment))
            combined.add_section()
        if pretrains:
            combined.caption = _PRESETS_CAPTION
        out.print(combined)
    for preset in found:
        if not wide:
            single = table(
                f"preset [bold]{escape(preset['name'])}[/] on {_dataset_summary(preset)}"
            )
            for experiment in preset.get("experiments") or []:
                single.add_row(*row(preset, False, experiment))
            out.print(single)
            for experiment in preset.get("experiments") or []:
                out.print(
                    f"  {escape(experiment.get('role') or '-')}: "
                    f"{escape(experiment.get('title') or '-')}"
                )
        if preset.get("description"):
            out.print(f"[bold]{escape(preset['name'])}[/]: {escape(preset['description'])}")
        if not wide:
            out.print()
    if pretrains and not wide:
        out.print(f"[dim]{_PRESETS_CAPTION}[/]")
    if not wide:
        out.print("Run one with `weightspace reproduce --preset NAME`.")


@app.command("presets")
def list_presets(
    dataset: Annotated[
        DatasetName | None,
        typer.Option(
            "--dataset",
            help="Show the specs on this data set (default: each preset's own).",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """List the presets that reproduce the paper, with their experiments."""
    with _client(url) as client:
        found = client.presets()
        if dataset is not None:
            found = [client.preset(p["name"], dataset=dataset) for p in found]
    if as_json:
        print_json(found)
        return
    _print_presets(out(), found)
