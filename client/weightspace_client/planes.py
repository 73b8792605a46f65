"""Landscape planes of models the service cannot build, evaluated here with your own model.

The service gives the plane (``GET /experiments/{id}/landscape/plane``: the final snapshot as
the centre, two directions from the PCA of the run's trajectory, filter-normalised as Li et al.
2018 with ``normalisation="filter"``, and the grid); :func:`evaluate` loads each grid point into
your model, computes the mean loss over your data and sends the grid back
(``PUT /experiments/{id}/landscape``). The service then stores, serves and draws it like a plane
it computed itself::

    from weightspace_client.client import WeightspaceClient
    from weightspace_client.planes import evaluate

    with WeightspaceClient() as ws:
        landscape = evaluate(ws, experiment_id, MyNet, train_loader, test_loader)
        svg = ws.landscape_svg(experiment_id)

PyTorch is imported only when :func:`evaluate` runs: the client installs without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from weightspace_client.client import WeightspaceClient
from weightspace_client.tensors import decode_safetensors
from weightspace_client.types import Landscape

BUFFER_PREFIX = "buffer:"


@dataclass(frozen=True)
class Plane:
    """A plane as given out by the service: grid point ``(alphas[i], betas[j])`` is the state
    dict of ``centre + alphas[i] * directions[0] + betas[j] * directions[1]``."""

    centre: Any  # torch tensor (P,)
    directions: Any  # torch tensor (2, P)
    alphas: list[float]
    betas: list[float]
    layout: dict[str, Any]  # "vector": [name, shape, dtype] in flat order; "buffers"; "tied"
    buffers: dict[str, Any]  # the final snapshot's tensors kept beside the vector

    @classmethod
    def from_file(cls, data: bytes) -> Plane:
        tensors, metadata = decode_safetensors(data)
        values = {name: _tensor(*value) for name, value in tensors.items()}
        return cls(
            centre=values["centre"],
            directions=values["directions"],
            alphas=json.loads(metadata["alphas"]),
            betas=json.loads(metadata["betas"]),
            layout=json.loads(metadata["layout"]),
            buffers={
                name.removeprefix(BUFFER_PREFIX): value
                for name, value in values.items()
                if name.startswith(BUFFER_PREFIX)
            },
        )

    def state_dict(self, alpha: float, beta: float) -> dict[str, Any]:
        """The state dict of grid point ``(alpha, beta)``, with its original names and dtypes."""
        import torch

        vector = self.centre + alpha * self.directions[0] + beta * self.directions[1]
        state, start = {}, 0
        for name, shape, dtype in self.layout["vector"]:
            count = _count(shape)
            piece = vector[start : start + count].reshape(shape)
            state[name] = piece.to(getattr(torch, dtype))
            start += count
        state.update(self.buffers)
        for alias, target in self.layout.get("tied", []):
            state[alias] = state[target]
        return state


def _count(shape: list[int]) -> int:
    count = 1
    for size in shape:
        count *= int(size)
    return count


def _tensor(dtype: str, shape: list[int], data: bytes) -> Any:
    import torch

    kind = getattr(torch, dtype)
    if not data:
        return torch.empty(shape, dtype=kind)
    return torch.frombuffer(bytearray(data), dtype=kind).reshape(shape)


def mean_loss(
    model: Any,
    loader: Iterable[Any],
    loss_fn: Callable[[Any, Any], Any],
    device: Any,
) -> tuple[float, int]:
    """Mean of ``loss_fn(model(x), y)`` (a batch's mean loss) over the batches ``(x, y)`` of
    ``loader``, weighted by batch size; and the number of examples."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            loss = loss_fn(model(x.to(device)), y.to(device))
            total += float(loss) * len(y)
            count += len(y)
    if count == 0:
        raise ValueError("the loader gave no examples")
    return total / count, count


def evaluate(
    ws: WeightspaceClient,
    experiment_id: str,
    model_fn: Callable[[], Any],
    loader: Iterable[Any],
    test_loader: Iterable[Any] | None = None,
    *,
    run: int = 0,
    resolution: int = 21,
    margin: float = 0.25,
    normalisation: str = "filter",
    loss_fn: Callable[[Any, Any], Any] | None = None,
    device: str = "cpu",
) -> Landscape:
    """Evaluate the landscape plane of ``run`` with your own model and send it to the service.

    Parameters
    ----------
    model_fn : callable returning a ``torch.nn.Module``
        Builds the model whose state dicts were uploaded; each grid point is loaded into it with
        ``load_state_dict`` and evaluated in ``eval()`` mode (dropout off).
    loader, test_loader : iterables of ``(inputs, targets)`` batches
        The losses average over every example of ``loader`` (``train_loss``) and, if given,
        of ``test_loader`` (``test_loss``).
    loss_fn : callable ``(outputs, targets) -> mean loss``, default cross-entropy
    run, resolution, margin, normalisation
        As for ``GET /experiments/{id}/landscape`` (``filter``: Li et al.'s filter-normalised
        directions).

    Returns the stored landscape (``evaluated_by: client``), as ``ws.landscape`` then gives it.
    """
    import torch
    from torch.nn import functional

    options: dict[str, Any] = {
        "run": run,
        "resolution": resolution,
        "margin": margin,
        "normalisation": normalisation,
    }
    plane = Plane.from_file(ws.landscape_plane(experiment_id, **options))
    loss = loss_fn or functional.cross_entropy
    model = model_fn().to(device)
    model.eval()
    sets = [loader] if test_loader is None else [loader, test_loader]
    grids: list[list[list[float]]] = [[] for _ in sets]
    examples = [0 for _ in sets]
    for beta in plane.betas:
        rows: list[list[float]] = [[] for _ in sets]
        for alpha in plane.alphas:
            model.load_state_dict(plane.state_dict(alpha, beta))
            for k, data in enumerate(sets):
                value, examples[k] = mean_loss(model, data, loss, torch.device(device))
                rows[k].append(value)
        for k, row in enumerate(rows):
            grids[k].append(row)
    losses: dict[str, Any] = {"train_loss": grids[0], "train_examples": examples[0]}
    if test_loader is not None:
        losses |= {"test_loss": grids[1], "test_examples": examples[1]}
    return ws.put_landscape(experiment_id, losses, **options)
