"""Figures of analyses across experiments (``POST /analyses``), each snapshot named by its
experiment: the joint PCA (axes to scale), the distance matrix and the loss along barrier lines.

Plain data in (a label per snapshot: experiment name, run, epoch), a
:class:`matplotlib.figure.Figure` out; :func:`weightspace.figures.render` makes SVG of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from weightspace.figures import DISTANCE_UNITS, LOSS_LABEL, FigureUnavailable

#: Past this many snapshots the distance matrix names experiments, not every row.
MAX_ROW_LABELS = 40


@dataclass(frozen=True)
class Row:
    """One selected snapshot: its experiment's name, its run and epoch."""

    experiment: str
    run: int
    epoch: int

    def __str__(self) -> str:
        return f"{self.experiment} r{self.run} e{self.epoch}"


def _colours(names: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    cmap = colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(dict.fromkeys(names))}


def pca(rows: Sequence[Row], coordinates: np.ndarray, ratios: Sequence[float]) -> Figure:
    """PC2 against PC1, one path per run in epoch order (hollow: first snapshot; filled: last),
    one colour per experiment; both axes in the same parameter units (equal aspect)."""
    points = np.asarray(coordinates, dtype=np.float64)
    if len(rows) < 2 or points.ndim != 2 or points.shape[1] < 2:
        raise FigureUnavailable("a PCA figure needs two components of at least two snapshots")
    colours = _colours([r.experiment for r in rows])
    figure = Figure(figsize=(7.0, 6.0), layout="constrained")
    ax = figure.add_subplot()
    paths: dict[tuple[str, int], list[int]] = {}
    for index, row in enumerate(rows):
        paths.setdefault((row.experiment, row.run), []).append(index)
    labelled: set[str] = set()
    for (name, _run), indices in paths.items():
        indices.sort(key=lambda i: rows[i].epoch)
        xy = points[indices, :2]
        label = None if name in labelled else name
        labelled.add(name)
        ax.plot(xy[:, 0], xy[:, 1], "-", color=colours[name], lw=1.0, marker=".", label=label)
        ax.plot(*xy[0], "o", mfc="white", mec=colours[name])
        ax.plot(*xy[-1], "o", color=colours[name])
    ax.set_aspect("equal", adjustable="datalim")
    for axis, k in ((ax.set_xlabel, 0), (ax.set_ylabel, 1)):
        share = f" ({ratios[k]:.1%} of variance)" if k < len(ratios) else ""
        axis(f"PC{k + 1}{share}, {DISTANCE_UNITS}")
    ax.set_title("Joint PCA (hollow: first snapshot of a run; filled: last)")
    ax.legend(title="experiment", fontsize="small")
    ax.grid(alpha=0.3)
    return figure


def distances(rows: Sequence[Row], matrix: np.ndarray) -> Figure:
    """The matrix of distances between the snapshots, rows named (or, when many, the
    experiments' blocks marked)."""
    values = np.asarray(matrix, dtype=np.float64)
    if len(rows) < 2 or values.shape != (len(rows), len(rows)):
        raise FigureUnavailable("a distance matrix needs at least two snapshots")
    side = min(4.0 + 0.18 * len(rows), 12.0)
    figure = Figure(figsize=(side + 1.5, side), layout="constrained")
    ax = figure.add_subplot()
    image = ax.imshow(values, cmap="viridis", interpolation="nearest")
    figure.colorbar(image, ax=ax, label=f"Euclidean distance ({DISTANCE_UNITS})")
    if len(rows) <= MAX_ROW_LABELS:
        ticks = list(range(len(rows)))
        ax.set_xticks(ticks, [str(r) for r in rows], rotation=90, fontsize="x-small")
        ax.set_yticks(ticks, [str(r) for r in rows], fontsize="x-small")
    else:
        starts = [i for i, r in enumerate(rows) if i == 0 or rows[i - 1].experiment != r.experiment]
        for start in starts[1:]:
            ax.axhline(start - 0.5, color="white", lw=0.8)
            ax.axvline(start - 0.5, color="white", lw=0.8)
        ax.set_yticks(starts, [rows[i].experiment for i in starts], fontsize="small")
        ax.set_xticks([])
    ax.set_title("Distances between the selected snapshots")
    return figure


@dataclass(frozen=True)
class BarrierLine:
    """The loss along one straight line between two snapshots."""

    a: Row
    b: Row
    alphas: Sequence[float]
    test_loss: Sequence[float]
    control: bool = False


def barriers(lines: Sequence[BarrierLine]) -> Figure:
    """Test loss along each line, from its start (0) to its end (1); controls dashed."""
    if not lines:
        raise FigureUnavailable("there are no barrier lines to draw")
    figure = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = figure.add_subplot()
    cmap = colormaps["tab10"]
    for i, line in enumerate(lines):
        ax.plot(
            line.alphas,
            line.test_loss,
            "--" if line.control else "-",
            color=cmap(i % 10),
            label=f"{line.a} \u2192 {line.b}" + (" (control)" if line.control else ""),
        )
    ax.set_xlabel("position on the line (0: start, 1: end)")
    ax.set_ylabel(f"test {LOSS_LABEL}")
    ax.set_title("Loss along the straight lines between the selected snapshots")
    ax.legend(fontsize="x-small")
    ax.grid(alpha=0.3)
    return figure
