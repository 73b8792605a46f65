"""The figure of a landscape plane: train and test loss contours with the trajectory on them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

CONTOUR_LEVELS = 25


def landscape_plane(document: Mapping[str, Any]) -> Figure:
    """Two panels (train, test; one where ``test_loss`` is None, as a client may send) of
    log-loss contours over the plane of :meth:`weightspace.planes.LandscapePlane.to_dict` (plus
    ``run`` and ``epochs``), the run's projected trajectory drawn from its first snapshot to the
    final one at (0, 0)."""
    alphas, betas = np.asarray(document["alphas"]), np.asarray(document["betas"])
    path = np.asarray(document["trajectory"], dtype=np.float64).reshape(-1, 2)
    ratio = document["explained_variance_ratio"]
    normalised = document["normalisation"] == "filter"
    panels = [
        (n, k) for n, k in (("train", "train_loss"), ("test", "test_loss")) if document.get(k)
    ]
    figure = Figure(figsize=(5.5 * len(panels), 5.0), layout="constrained")
    for column, (name, key) in enumerate(panels):
        ax = figure.add_subplot(1, len(panels), column + 1)
        loss = np.log10(np.clip(np.asarray(document[key], dtype=np.float64), 1e-12, None))
        filled = ax.contourf(alphas, betas, loss, levels=CONTOUR_LEVELS, cmap="viridis")
        ax.contour(alphas, betas, loss, levels=CONTOUR_LEVELS, colors="k", linewidths=0.3)
        figure.colorbar(filled, ax=ax, label=f"log10 {name} loss (nats, dropout off)")
        ax.plot(path[:, 0], path[:, 1], color="tab:red", marker="o", markersize=3, lw=1.2)
        ax.plot(path[:1, 0], path[:1, 1], "o", color="white", mec="tab:red", label="first snapshot")
        ax.plot([0.0], [0.0], "*", color="tab:red", markersize=10, label="final snapshot")
        ax.set_xlabel(
            f"PC1 ({ratio[0]:.1%} of variance)" + (", filter-normalised" if normalised else "")
        )
        ax.set_ylabel(
            f"PC2 ({ratio[1]:.1%} of variance)" + (", filter-normalised" if normalised else "")
        )
        ax.set_title(
            f"{name} loss, run {document.get('run', 0)} "
            f"({document.get(f'{name}_examples', '?')} examples)"
        )
        ax.legend(fontsize="small", loc="upper right")
    return figure
