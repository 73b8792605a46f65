"""Use case for an experiment's figures: the snapshots' Gram matrix, drawn by the core as SVG.

The Gram matrix comes from the :class:`~weightspace_app.usecases.analyses.Analyzer` (shared with the
analysis endpoints, so a page that shows four figures computes it once); the drawing runs in the
analyzer's bounded pool, and the SVG is kept in memory for as long as the snapshots stay the same.

While an experiment runs, its figures show the epochs every run has reached; a failed experiment
has none (409 naming the cause), nor has one with too few snapshots for the figure (409 saying so).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import cast

from weightspace import experiment_figures
from weightspace.claims import ExperimentResult
from weightspace.figures import FigureUnavailable
from weightspace.spec import ExperimentSpec
from weightspace.vocabulary import FIGURE_NAMES, FigureName
from weightspace_app.access import Conflict
from weightspace_app.infra.gram_store import DamagedSnapshot, SnapshotRef, fingerprint
from weightspace_app.usecases.analyses import Analyzer, Inputs, Snapshots, check_epoch, require

# Rendered figures kept in memory (each some 50-300 kB of SVG).
FIGURE_CACHE_ENTRIES = 64


def shown(inputs: Inputs) -> list[SnapshotRef]:
    """The snapshots the figures show: all of a finished experiment's; while it runs, those up to
    the latest epoch every run has reached. Raises Conflict when there is nothing to draw."""
    if inputs.status == "failed":
        raise inputs.unavailable("it failed")
    if not inputs.records:
        raise inputs.unavailable("no snapshots have been captured yet")
    if inputs.complete:
        return list(inputs.records)
    common = check_epoch(inputs, None)
    return [r for r in inputs.records if r.epoch <= common]


def result_of(snapshots: Snapshots, chosen: list[SnapshotRef]) -> ExperimentResult:
    """The chosen snapshots as the core's result (Gram rows in their order; no I/O)."""
    require(snapshots, chosen)
    inputs = snapshots.inputs
    return ExperimentResult(
        role="",
        title=f"experiment {inputs.experiment_id.hex[:8]}",
        # The figures read no field of the spec, so an upload's serves as well as a training's.
        spec=cast(ExperimentSpec, inputs.spec),
        runs=[r.run for r in chosen],
        epochs=[r.epoch for r in chosen],
        metrics=[r.metrics for r in chosen],
        gram=snapshots.gram.subset([snapshots.position(r) for r in chosen]),
        gradients=[r.gradient for r in chosen],
    )


def _draw(snapshots: Snapshots, chosen: list[SnapshotRef], name: FigureName) -> bytes:
    result = result_of(snapshots, chosen)
    if name == "spectrum" and all(len(p) < 2 for p in result.run_indices().values()):
        raise FigureUnavailable("the spectrum's null needs a run with two or more snapshots")
    return experiment_figures.svg(name, result)


class FigureMaker:
    """Draws experiments' figures in the analyzer's pool, keeping the latest ones in memory."""

    def __init__(self, analyzer: Analyzer, *, entries: int = FIGURE_CACHE_ENTRIES) -> None:
        self.analyzer = analyzer
        self.entries = entries
        self._lock = threading.Lock()
        self._memory: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()

    def svg(self, inputs: Inputs, name: FigureName) -> bytes:
        """Figure ``name`` of the experiment as SVG (blocks: call it from a worker thread)."""
        chosen = shown(inputs)
        key = (inputs.experiment_id.hex, fingerprint(chosen), name)
        with self._lock:
            if (hit := self._memory.get(key)) is not None:
                self._memory.move_to_end(key)
                return hit
        snapshots = self.analyzer.snapshots(inputs).result()
        try:
            data = self.analyzer.submit(_draw, snapshots, chosen, name).result()
        except FigureUnavailable as error:
            raise inputs.unavailable(str(error)) from None
        with self._lock:
            self._memory[key] = data
            while len(self._memory) > self.entries:
                self._memory.popitem(last=False)
        return data

    def availability(self, inputs: Inputs) -> dict[FigureName, str | None]:
        """Per figure, ``None`` if it can be drawn (it is, and kept for the request that will
        follow), else why not: so that a page links only figures that load."""
        found: dict[FigureName, str | None] = {}
        for name in FIGURE_NAMES:
            try:
                self.svg(inputs, name)
                found[name] = None
            except (Conflict, DamagedSnapshot) as error:
                found[name] = str(error)
        return found
