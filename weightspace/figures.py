"""The paper's figures, drawn with matplotlib's object API (no pyplot, so no global state).

Every function takes plain data (:class:`~weightspace.claims.ExperimentResult`,
:class:`~weightspace.claims.LineLoss`) and returns a :class:`matplotlib.figure.Figure`;
:func:`render` turns one into SVG or PNG bytes with the Agg/SVG backends. Axes say their units;
PCA axes say the share of variance their component explains.

Why one module of ~460 lines: one short function per figure of the report, all alike (plain
data in, a Figure out); splitting them would scatter the shared styling helpers.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from weightspace import nulls
from weightspace.analysis import PCAResult, pca, trajectory_metrics
from weightspace.claims import BarrierReport, ExperimentResult, LineLoss
from weightspace.claims.base import step_lengths

# Components shown in the spectra; the rest explain too little to read on the plot.
SPECTRUM_COMPONENTS = 20
# Walks simulated for the null drawn in the spectra (the claims use nulls.NULL_SAMPLES).
FIGURE_NULL_SAMPLES = 200
PNG_DPI = 120
# Beyond this many runs the distance heatmap's cells are too small for their values.
MAX_ANNOTATED_RUNS = 10
# Shares of variance below this are rounding error of a rank-deficient set, not components.
NUMERICAL_ZERO_SHARE = 1e-9

LOSS_LABEL = "cross-entropy loss (nats)"
DISTANCE_UNITS = "parameter units"
_START: dict[str, Any] = {
    "marker": "o",
    "s": 70,
    "facecolors": "white",
    "linewidths": 1.8,
    "zorder": 4,
}
_END: dict[str, Any] = {
    "marker": "*",
    "s": 180,
    "edgecolors": "black",
    "linewidths": 0.6,
    "zorder": 5,
}


class FigureUnavailable(ValueError):
    """The data are too few for the figure (e.g. PCA of fewer than two snapshots)."""


def render(figure: Figure, format: Literal["svg", "png"]) -> bytes:
    """The figure as SVG (text as paths, so self-contained) or PNG bytes, without timestamps."""
    buffer = io.BytesIO()
    if format == "svg":
        FigureCanvasSVG(figure)
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    elif format == "png":
        FigureCanvasAgg(figure)
        figure.savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
    else:
        raise ValueError(f"format must be 'svg' or 'png', got {format!r}")
    return buffer.getvalue()


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _run_colours(count: int) -> list[tuple[float, float, float, float]]:
    cmap: Colormap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(count)]


def _wrapped(text: str, width: int = 60) -> str:
    return textwrap.fill(text, width)


def _short(result: ExperimentResult) -> str:
    """The part of the title before the colon, e.g. 'Experiment 2'."""
    return result.title.split(":")[0]


def _pca_axis_label(result: PCAResult, component: int) -> str:
    if component >= len(result.explained_variance_ratio):
        return f"PC{component + 1} (no variance left)"
    return f"PC{component + 1} ({result.explained_variance_ratio[component]:.1%} of variance)"


def _pca_2d(result: ExperimentResult, indices: Sequence[int] | None = None) -> PCAResult:
    """PCA of the snapshots ``indices`` (all by default), two components where there are any."""
    sub = result.gram if indices is None else result.gram.subset(indices)
    if sub.n < 2:
        raise FigureUnavailable(f"{result.title}: PCA needs 2 or more snapshots, got {sub.n}")
    return pca(sub, min(2, sub.n - 1, sub.size))


def _xy(result: PCAResult) -> tuple[np.ndarray, np.ndarray]:
    x = result.coordinates[:, 0]
    y = result.coordinates[:, 1] if result.coordinates.shape[1] > 1 else np.zeros_like(x)
    return x, y


def trajectory_pca(result: ExperimentResult) -> Figure:
    """Fig. 1: the first run's trajectory in the plane of its two principal components."""
    run = next(iter(result.run_indices().values()))
    projected = _pca_2d(result, run)
    x, y = _xy(projected)
    epochs = np.asarray([result.epochs[i] for i in run])
    figure = _figure(7.5, 5.5)
    ax = figure.add_subplot()
    ax.plot(x, y, color="0.55", linewidth=0.8, zorder=1)
    points = ax.scatter(x, y, c=epochs, cmap="viridis", s=28, zorder=3)
    ax.scatter(x[0], y[0], edgecolors="black", label=f"start (epoch {epochs[0]})", **_START)
    ax.scatter(x[-1], y[-1], color="crimson", label=f"end (epoch {epochs[-1]})", **_END)
    figure.colorbar(points, ax=ax, label="epoch")
    ax.set_xlabel(_pca_axis_label(projected, 0))
    ax.set_ylabel(_pca_axis_label(projected, 1))
    ax.set_title(_wrapped(f"{result.title}: trajectory in its top two principal components"))
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return figure


def _joint_panel(ax: Axes, result: ExperimentResult) -> None:
    projected = _pca_2d(result)
    x, y = _xy(projected)
    runs = result.run_indices()
    for colour, (run, positions) in zip(_run_colours(len(runs)), runs.items(), strict=True):
        ax.plot(x[positions], y[positions], color=colour, linewidth=1.2, label=f"run {run}")
        ax.scatter(x[positions[0]], y[positions[0]], edgecolors=colour, **_START)
        ax.scatter(x[positions[-1]], y[positions[-1]], color=colour, **_END)
    handles, _ = ax.get_legend_handles_labels()
    handles += [
        Line2D(
            [], [], marker="o", linestyle="", markerfacecolor="white", color="black", label="start"
        ),
        Line2D([], [], marker="*", linestyle="", markersize=12, color="black", label="end"),
    ]
    ax.legend(handles=handles, loc="best", fontsize="small")
    ax.set_xlabel(_pca_axis_label(projected, 0))
    ax.set_ylabel(_pca_axis_label(projected, 1))
    ax.set_title(
        _wrapped(f"{result.title} (joint PCA of {len(runs)} runs, {result.gram.n} snapshots)", 55)
    )
    ax.grid(alpha=0.3)


def joint_pca(results: Sequence[ExperimentResult]) -> Figure:
    """Figs. 2 and 3: per experiment, one panel with the joint PCA of all its runs' snapshots."""
    if not results:
        raise FigureUnavailable("joint PCA needs at least one experiment")
    figure = _figure(5.75 * len(results), 5.5)
    for ax, result in zip(figure.subplots(1, len(results), squeeze=False)[0], results, strict=True):
        _joint_panel(ax, result)
    return figure


def random_walk_ratio(k: int) -> float:
    """Share of variance of component ``k`` (1-based) of an isotropic random walk, n -> infinity."""
    return 6 / (np.pi**2 * k**2)


def walk_null_of(result: ExperimentResult, samples: int = FIGURE_NULL_SAMPLES) -> nulls.WalkNull:
    """Random walks with the result's step lengths from its starting points (pooled like its runs)."""
    runs = list(result.run_indices().values())
    starts = [positions[0] for positions in runs]
    return nulls.walk_null(
        [step_lengths(result, positions).tolist() for positions in runs],
        result.gram.size,
        starts_dot=result.gram.subset(starts).dot() if len(starts) > 1 else None,
        samples=samples,
    )


def _resolved(values: np.ndarray) -> np.ndarray:
    """Shares of variance with the numerical noise of rank-deficient sets left out (as NaN).

    Snapshots that coincide (runs sharing an initialisation) leave components whose share is
    rounding error, orders of magnitude below the rest; on a log axis they would dwarf the plot.
    """
    return np.where(values > NUMERICAL_ZERO_SHARE, values, np.nan)


def spectra(results: Sequence[ExperimentResult]) -> Figure:
    """Explained-variance ratio per component of each experiment, beside its random-walk null.

    Each experiment's null is random walks with its own step lengths from its own starting points
    (pooled as its runs are), simulated in the model's dimension: the dotted line is their mean,
    the shaded band their central 95%.
    """
    figure = _figure(8.5, 6.2)
    ax = figure.add_subplot()
    shown = 0
    for colour, result in zip(_run_colours(len(results)), results, strict=True):
        if result.gram.n < 3:
            continue
        ratio = pca(result.gram).explained_variance_ratio[:SPECTRUM_COMPONENTS]
        k = np.arange(1, len(ratio) + 1)
        runs = len(result.run_indices())
        what = "trajectory" if runs == 1 else f"joint set of {runs} runs"
        label = f"{_short(result)} ({what}, {result.gram.n} snapshots)"
        ax.plot(k, _resolved(ratio), marker="o", markersize=4, color=colour, label=label)
        walk = walk_null_of(result).ratios[:, : len(ratio)]
        low, high = np.percentile(walk, nulls.BAND_PERCENTILES, axis=0)
        ax.fill_between(k, _resolved(low), _resolved(high), color=colour, alpha=0.15, linewidth=0)
        ax.plot(k, _resolved(walk.mean(axis=0)), color=colour, linestyle=":", linewidth=1.2)
        shown = max(shown, len(ratio))
    if shown == 0:
        raise FigureUnavailable("no experiment has 3 or more snapshots")
    k = np.arange(1, shown + 1)
    ax.plot(
        k,
        [random_walk_ratio(int(i)) for i in k],
        color="black",
        linestyle="--",
        label="random-walk limit 6 / (\u03c0\u00b2 k\u00b2)",
    )
    ax.plot([], [], color="0.4", linestyle=":", label="each experiment's random-walk null (mean)")
    ax.fill_between([], [], [], color="0.4", alpha=0.15, label="its 95% band")
    ax.set_yscale("log")
    ax.set_xlabel("principal component k")
    ax.set_ylabel("explained variance ratio (share of total variance)")
    ax.set_xticks(k if shown <= 20 else k[::2])
    ax.set_title(
        _wrapped(
            "Explained variance per principal component, against random walks with the same steps",
            70,
        )
    )
    figure.legend(fontsize="small", loc="outside lower center", ncols=2)
    ax.grid(alpha=0.3)
    return figure


def _heatmap_panel(ax: Axes, result: ExperimentResult) -> AxesImage:
    finals = result.final_indices()
    final = result.gram.subset(finals)
    distances = final.distances()
    norms = final.norms()
    runs = list(result.run_indices())
    image = ax.imshow(distances, cmap="magma", vmin=0.0)
    if len(runs) <= MAX_ANNOTATED_RUNS:
        fontsize = 10 if len(runs) <= 3 else 8 if len(runs) <= 6 else 6
        brightest = distances.max()
        for (i, j), value in np.ndenumerate(distances):
            colour = "black" if value > 0.6 * brightest else "white"
            ax.text(j, i, f"{value:.3g}", ha="center", va="center", color=colour, fontsize=fontsize)
    ticks = range(len(runs))
    ax.set_xticks(ticks, [f"run {r}" for r in runs], fontsize=8)
    ax.set_yticks(
        ticks, [f"run {r}\n|w|={n:.3g}" for r, n in zip(runs, norms, strict=True)], fontsize=8
    )
    epoch = result.epochs[finals[0]]
    ax.set_title(f"{_short(result)}, epoch {epoch}", fontsize=11)
    ax.set_xlabel("run")
    ax.set_ylabel("run, |w|")
    return image


def distance_heatmaps(results: Sequence[ExperimentResult]) -> Figure:
    """Experiments 2-4: pairwise distances of the final solutions, and each one's distance from 0."""
    if not results:
        raise FigureUnavailable("distance heatmaps need at least one experiment")
    figure = _figure(max(3.9 * len(results), 6.0), 3.9)
    axes = figure.subplots(1, len(results), squeeze=False)[0]
    for ax, result in zip(axes, results, strict=True):
        image = _heatmap_panel(ax, result)
        figure.colorbar(image, ax=ax, shrink=0.75, label=f"distance ({DISTANCE_UNITS})")
    figure.suptitle(
        f"Euclidean distances between the final solutions ({DISTANCE_UNITS});\n"
        "|w| = each solution's distance from the origin"
    )
    return figure


def dynamics(result: ExperimentResult) -> Figure:
    """Per run over epochs: losses, step length per epoch, distance from the origin and from the start."""
    figure = _figure(11.0, 8.0)
    (loss_ax, step_ax), (origin_ax, start_ax) = figure.subplots(2, 2)
    runs = result.run_indices()
    for colour, (run, positions) in zip(_run_colours(len(runs)), runs.items(), strict=True):
        epochs = np.asarray([result.epochs[i] for i in positions], dtype=float)
        metrics = [result.metrics[i] for i in positions]
        path = trajectory_metrics(result.gram, positions)
        label = f"run {run}"
        # Uploaded snapshots may come without losses: those points are left blank.
        loss_ax.plot(
            epochs, [m.get("train_loss", np.nan) for m in metrics], color=colour, label=label
        )
        loss_ax.plot(
            epochs, [m.get("test_loss", np.nan) for m in metrics], color=colour, linestyle="--"
        )
        if len(positions) > 1:
            per_epoch = path.step_length[1:] / np.diff(epochs)
            step_ax.plot(epochs[1:], per_epoch, color=colour, marker="o", markersize=3)
        origin_ax.plot(epochs, path.distance_from_origin, color=colour, marker="o", markersize=3)
        start_ax.plot(epochs, path.displacement, color=colour, marker="o", markersize=3)
    handles, _ = loss_ax.get_legend_handles_labels()
    handles += [
        Line2D([], [], color="black", label="train"),
        Line2D([], [], color="black", linestyle="--", label="test"),
    ]
    loss_ax.legend(handles=handles, fontsize="small", ncols=2 if len(runs) > 4 else 1)
    loss_ax.set_ylabel(LOSS_LABEL)
    loss_ax.set_title("train (solid) and test (dashed) loss")
    step_ax.set_ylabel(f"step length per epoch ({DISTANCE_UNITS} / epoch)")
    step_ax.set_title("step between consecutive snapshots, per epoch")
    origin_ax.set_ylabel(f"euclidean distance ({DISTANCE_UNITS})")
    origin_ax.set_title("distance from the origin |w|")
    start_ax.set_ylabel(f"euclidean distance ({DISTANCE_UNITS})")
    start_ax.set_title("distance from initialisation (the run's first snapshot)")
    for ax in (loss_ax, step_ax, origin_ax, start_ax):
        ax.grid(alpha=0.3)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(_wrapped(f"{result.title}: training dynamics", 100))
    return figure


def line_loss(line: LineLoss) -> Figure:
    """Train and test loss along the straight line ``(1 - a) * init + a * solution``."""
    if not line.alphas:
        raise FigureUnavailable("the line evaluation has no points")
    figure = _figure(7.5, 5.0)
    ax = figure.add_subplot()
    ax.plot(line.alphas, line.train_loss, marker="o", markersize=3, color="tab:blue", label="train")
    if line.test_loss:
        ax.plot(
            line.alphas, line.test_loss, marker="s", markersize=3, color="tab:orange", label="test"
        )
    ax.annotate(
        "initialisation",
        (line.alphas[0], line.train_loss[0]),
        textcoords="offset points",
        xytext=(8, 6),
        va="bottom",
    )
    ax.annotate(
        "solution",
        (line.alphas[-1], line.train_loss[-1]),
        textcoords="offset points",
        xytext=(-8, 10),
        ha="right",
    )
    ax.set_xlabel("interpolation coefficient a")
    ax.set_ylabel(LOSS_LABEL)
    ax.set_title("Loss along the straight line (1 - a) \u00b7 init + a \u00b7 solution")
    ax.set_xlim(-0.03, 1.03)
    ax.margins(y=0.1)  # room for the labels above the end points
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return figure


def barrier_lines(reports: Sequence[tuple[str, BarrierReport]]) -> Figure:
    """Claim 4: train loss along the lines between final solutions, and the barriers beside the
    same-run controls, per experiment."""
    if not reports:
        raise FigureUnavailable("no barriers were computed")
    figure = _figure(12.0, 5.0)
    lines_ax, barrier_ax = figure.subplots(1, 2)
    colours = _run_colours(len(reports))
    for position, (colour, (title, report)) in enumerate(zip(colours, reports, strict=True)):
        for item in report.lines:
            style = "-" if item.kind == "pair" else ":"
            lines_ax.plot(
                item.line.alphas, item.line.train_loss, color=colour, linestyle=style, alpha=0.7
            )
        pairs = [p.train_barrier for p in report.of_kind("pair")]
        controls = [c.train_barrier for c in report.of_kind("control")]
        barrier_ax.scatter(
            np.full(len(pairs), position - 0.12), pairs, color=colour, marker="o", zorder=3
        )
        barrier_ax.scatter(
            np.full(len(controls), position + 0.12), controls, color=colour, marker="x", zorder=3
        )
        if len(controls) >= 2:
            band = nulls.band(controls)
            barrier_ax.fill_between(
                [position - 0.3, position + 0.3], band.low, band.high, color=colour, alpha=0.15
            )
        lines_ax.plot([], [], color=colour, label=title)
    lines_ax.plot([], [], color="black", linestyle="-", label="between two runs' solutions")
    lines_ax.plot([], [], color="black", linestyle=":", label="control: within one run")
    lines_ax.set_xlabel("interpolation coefficient a")
    lines_ax.set_ylabel(f"train {LOSS_LABEL}")
    lines_ax.set_title("train loss along the lines")
    lines_ax.legend(fontsize="small")
    # "experiment 3 (shared-init)" on two lines: side by side, four long names overlap
    barrier_ax.set_xticks(
        range(len(reports)), [title.replace(" (", "\n(") for title, _ in reports], fontsize=8
    )
    barrier_ax.set_ylabel(f"train-loss barrier ({LOSS_LABEL.split(' (')[1][:-1]})")
    barrier_ax.set_xlabel("experiment")
    barrier_ax.set_yscale("symlog", linthresh=1e-3)
    # A barrier is never negative; above, room for the largest point on the log part
    highest = max((item.train_barrier for _, r in reports for item in r.lines), default=0.0)
    barrier_ax.set_ylim(0, max(2 * highest, 1e-2))
    barrier_ax.set_title("barriers: o between runs, x controls (band: their 95%)")
    for ax in (lines_ax, barrier_ax):
        ax.grid(alpha=0.3)
    figure.suptitle(
        "Loss barriers between final solutions (max of the loss above the straight interpolation)"
    )
    return figure


def gradient_norms(result: ExperimentResult) -> Figure:
    """Claim 1: the full-batch gradient norm at every snapshot of the first run, beside its
    sign-flip null band (what the norm is at a critical point)."""
    run = next(iter(result.run_indices().values()))
    records = [
        (result.epochs[i], gradient) for i in run if (gradient := result.gradient(i)) is not None
    ]
    if not records:
        raise FigureUnavailable(f"{result.title}: no gradient norms were recorded")
    epochs = np.array([e for e, _ in records], dtype=float)
    figure = _figure(7.5, 5.0)
    ax = figure.add_subplot()
    ax.plot(
        epochs,
        [g["norm_with_weight_decay"] for _, g in records],
        marker="o",
        markersize=3,
        label="with the weight-decay term",
    )
    ax.plot(
        epochs, [g["norm"] for _, g in records], marker="s", markersize=3, label="train loss only"
    )
    ax.fill_between(
        epochs,
        [g["null_band"][0] for _, g in records],
        [g["null_band"][1] for _, g in records],
        color="0.5",
        alpha=0.25,
        label="sign-flip null, 95% band (a critical point)",
    )
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("full-batch gradient norm (nats per parameter unit)")
    ax.set_title(_wrapped(f"{result.title}: full-batch gradient norm (train set, dropout off)", 70))
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure
