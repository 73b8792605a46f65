"""The loss landscape around snapshots: losses along straight lines, barriers, gradient norms.

Every evaluation is full-batch with dropout off. :func:`loss_along_line` gives the train and test
loss at evenly spaced points between two parameter vectors; :func:`barriers` draws those lines
between every two final solutions of an experiment (and the same-run controls of claim 4);
:func:`gradient_norms` gives the full-batch gradient norm at a snapshot, with and without the
weight-decay term, beside its sign-flip null; :func:`init_spread` the control of claim 5.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from weightspace import nulls
from weightspace.claims.base import BarrierReport, ExperimentResult, LineBetween, LineLoss
from weightspace.data import Dataset
from weightspace.determinism import deterministic, pin_thread
from weightspace.models import build_model, flat_parameters, load_flat_parameters
from weightspace.objective import cross_entropy, one_hot
from weightspace.spec import ExperimentSpec, ModelSpec, derive_seed
from weightspace.training import evaluate

LINE_POINTS = 25
GRADIENT_CHUNKS = 16
GRADIENT_BATCH = 1024
INIT_CONTROL_SETS = 100


def _model(spec: ExperimentSpec, data: Dataset, device: str | torch.device) -> nn.Module:
    model = build_model(spec.model, data.input_shape, spec.dropout, seed=0).to(device)
    model.eval()
    return model


def _threads(tasks: int) -> int:
    """Threads to spread ``tasks`` independent evaluations over: one per usable core."""
    return max(1, min(tasks, len(os.sched_getaffinity(0))))


def _load(model: nn.Module, params: np.ndarray | torch.Tensor) -> None:
    vector = params if isinstance(params, torch.Tensor) else torch.from_numpy(np.asarray(params))
    load_flat_parameters(model, vector.to(torch.float32))


Losses = tuple[float, float]  # train and test loss at one parameter vector, dropout off


def _losses_at(
    spec: ExperimentSpec,
    data: Dataset,
    count: int,
    vector: Callable[[int], np.ndarray | torch.Tensor],
    device: str | torch.device,
) -> list[Losses]:
    """Train and test loss at the parameter vectors ``vector(0) ... vector(count - 1)``.

    The vectors are spread over one thread per core, each evaluated on one intra-op thread with
    deterministic kernels: the numbers do not depend on the machine's core or thread count.
    """
    on = data.to(device)
    threads = _threads(count) if torch.device(device).type == "cpu" else 1

    def losses(share: range) -> list[Losses]:
        model = _model(spec, data, device)
        found = []
        for k in share:
            _load(model, vector(k))
            train = evaluate(model, on.x_train, on.y_train)[0]
            found.append((train, evaluate(model, on.x_test, on.y_test)[0]))
        return found

    shares = [range(t, count, threads) for t in range(threads)]
    pool = ThreadPoolExecutor(threads, thread_name_prefix="line", initializer=pin_thread)
    with deterministic(), pool:
        computed = list(pool.map(losses, shares))
    found: dict[int, Losses] = {}
    for share, values in zip(shares, computed, strict=True):
        found.update(zip(share, values, strict=True))
    return [found[k] for k in range(count)]


def loss_along_line(
    spec: ExperimentSpec,
    data: Dataset,
    start: np.ndarray,
    end: np.ndarray,
    *,
    points: int = LINE_POINTS,
    device: str | torch.device = "cpu",
    ends: tuple[Losses, Losses] | None = None,
) -> LineLoss:
    """Train and test loss (dropout off) at ``points`` evenly spaced ``(1 - a) * start + a * end``.

    ``ends``: the losses at ``start`` and ``end`` when the caller has them (``torch.lerp`` gives
    the ends exactly, so they are the same numbers); only the points between are evaluated then.
    """
    if points < 2:
        raise ValueError("a line needs at least 2 points")
    a_start = torch.from_numpy(np.asarray(start, dtype=np.float32))
    a_end = torch.from_numpy(np.asarray(end, dtype=np.float32))
    alphas = np.linspace(0.0, 1.0, points).tolist()
    todo = alphas if ends is None else alphas[1:-1]
    values = _losses_at(
        spec, data, len(todo), lambda k: torch.lerp(a_start, a_end, todo[k]), device
    )
    if ends is not None:
        values = [ends[0], *values, ends[1]]
    return LineLoss(alphas, [v[0] for v in values], [v[1] for v in values])


def _predictions(
    spec: ExperimentSpec, data: Dataset, params: np.ndarray, device: str | torch.device
) -> torch.Tensor:
    """The classes that the model with parameters ``params`` predicts on the test set."""
    model = _model(spec, data, device)
    x = data.x_test.to(device)
    with deterministic(), torch.no_grad():
        _load(model, params)
        return torch.cat(
            [model(x[i : i + GRADIENT_BATCH]).argmax(1) for i in range(0, len(x), GRADIENT_BATCH)]
        )


def _disagreement(first: torch.Tensor, second: torch.Tensor) -> float:
    return float((first != second).double().mean().item())


def disagreement(
    spec: ExperimentSpec,
    data: Dataset,
    a: np.ndarray,
    b: np.ndarray,
    device: str | torch.device = "cpu",
) -> float:
    """Share of test examples that the models with parameters ``a`` and ``b`` classify differently."""
    return _disagreement(_predictions(spec, data, a, device), _predictions(spec, data, b, device))


def barriers(
    result: ExperimentResult,
    data: Dataset,
    *,
    points: int = LINE_POINTS,
    device: str | torch.device = "cpu",
) -> BarrierReport:
    """Lines between every two runs' final solutions, and per run the control line between its
    own last two snapshots: two points at about the same loss that SGD connects, the noise
    floor of a barrier (see claim 4).

    Each snapshot at an end of some line is evaluated once (losses and test predictions): a
    final solution ends four lines of five runs, and its control.
    """
    if result.vector is None:
        raise ValueError("barriers need the snapshots' parameter vectors (result.vector)")
    read: Callable[[int], np.ndarray] = result.vector
    distances = result.gram.distances()
    runs = result.run_indices()
    finals = {run: positions[-1] for run, positions in runs.items()}
    pairs = [("pair", finals[r], finals[s]) for r, s in itertools.combinations(sorted(finals), 2)]
    controls = [
        ("control", positions[-2], positions[-1])
        for positions in runs.values()
        if len(positions) >= 2
    ]
    lines = pairs + controls
    ends = sorted({i for _, i, j in lines} | {j for _, i, j in lines})
    vectors = {i: read(i) for i in ends}
    end_losses = dict(
        zip(
            ends,
            _losses_at(result.spec, data, len(ends), lambda k: vectors[ends[k]], device),
            strict=True,
        )
    )
    predicted = {i: _predictions(result.spec, data, vectors[i], device) for i in ends}
    return BarrierReport(
        [
            LineBetween(
                kind,  # type: ignore[arg-type]
                (result.runs[i], result.epochs[i]),
                (result.runs[j], result.epochs[j]),
                float(distances[i, j]),
                loss_along_line(
                    result.spec,
                    data,
                    vectors[i],
                    vectors[j],
                    points=points,
                    device=device,
                    ends=(end_losses[i], end_losses[j]),
                ),
                _disagreement(predicted[i], predicted[j]),
            )
            for kind, i, j in lines
        ]
    )


@dataclass(frozen=True)
class GradientNorms:
    """Full-batch gradient norms at one snapshot (train set, dropout off) and their null."""

    norm: float  # of the mean train loss
    norm_with_weight_decay: float  # of the mean train loss + weight_decay / 2 * |w|^2
    null: nulls.Band  # sign-flip null of norm_with_weight_decay
    null_without_weight_decay: nulls.Band
    chunks: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "norm": self.norm,
            "norm_with_weight_decay": self.norm_with_weight_decay,
            "null_band": [self.null.low, self.null.high],
            "null_mean": self.null.mean,
            "null_samples": self.null.samples,
            "null_band_without_weight_decay": [
                self.null_without_weight_decay.low,
                self.null_without_weight_decay.high,
            ],
            "chunks": self.chunks,
        }


def _chunk_gradients(
    spec: ExperimentSpec,
    data: Dataset,
    params: np.ndarray,
    device: str | torch.device,
    chunks: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed gradients (float64, one row per chunk, on the CPU) of ``chunks`` interleaved
    chunks of the train set, and the chunks' sizes."""
    model = _model(spec, data, device)
    _load(model, params)
    weights = [p for p in model.parameters()]
    x, y = data.x_train.to(device), data.y_train.to(device)
    count = len(y)
    chunks = max(2, min(chunks, count))
    sums = []
    sizes = []
    for c in range(chunks):
        index = torch.arange(c, count, chunks, device=x.device)
        total = torch.zeros(sum(p.numel() for p in weights), dtype=torch.float64, device=x.device)
        for i in range(0, len(index), GRADIENT_BATCH):
            part = index[i : i + GRADIENT_BATCH]
            # The trainer's loss: deterministic on CUDA too (captures run in deterministic mode).
            logits = model(x[part])
            loss = cross_entropy(logits, one_hot(y[part], logits.shape[-1])).sum()
            grads = torch.autograd.grad(loss, weights)
            total += torch.cat([g.reshape(-1) for g in grads]).double()
        sums.append(total.cpu())
        sizes.append(len(index))
    return torch.stack(sums), torch.tensor(sizes, dtype=torch.float64)


def gradient_norms(
    spec: ExperimentSpec,
    data: Dataset,
    params: np.ndarray,
    *,
    device: str | torch.device = "cpu",
    chunks: int = GRADIENT_CHUNKS,
) -> GradientNorms:
    """The full-batch gradient at ``params`` from ``chunks`` interleaved chunks of the train set.

    Each chunk's summed gradient is kept (float64), so the sign-flip null of the norm comes from
    their Gram matrix (:func:`weightspace.nulls.sign_flip_band`). Computed like training, on one
    intra-op thread with deterministic kernels, the Gram and norms too (a BLAS product on the
    process's threads would round by the thread count): the same bits whatever the settings.
    """
    with deterministic():
        data_part, sizes = _chunk_gradients(spec, data, params, device, chunks)
        weights = torch.from_numpy(np.asarray(params, dtype=np.float64))
        with_decay = data_part + torch.outer(sizes, spec.optimizer.weight_decay * weights)
        dot, dot_decay = data_part @ data_part.T, with_decay @ with_decay.T
        norm = torch.linalg.vector_norm(data_part.sum(0)).item()
        norm_decay = torch.linalg.vector_norm(with_decay.sum(0)).item()
    count = int(sizes.sum().item())
    return GradientNorms(
        norm=norm / count,
        norm_with_weight_decay=norm_decay / count,
        null=nulls.sign_flip_band(dot_decay.numpy(), count),
        null_without_weight_decay=nulls.sign_flip_band(dot.numpy(), count),
        chunks=len(sizes),
    )


def init_spread(
    model: ModelSpec,
    input_shape: tuple[int, int, int],
    replicas: int,
    *,
    sets: int = INIT_CONTROL_SETS,
) -> dict[str, np.ndarray]:
    """Claim 5's control: CVs of pairwise distances and norms of ``sets`` sets of ``replicas``
    untrained initialisations of ``model`` (seeds derived from "init-control")."""
    cv_pairs, cv_norms = [], []
    for s in range(sets):
        vectors = np.stack(
            [
                flat_parameters(
                    build_model(model, input_shape, 0.0, seed=derive_seed(s, "init-control", r))
                )
                .double()
                .numpy()
                for r in range(replicas)
            ]
        )
        dot = vectors @ vectors.T
        cv_pairs.append(nulls.coefficient_of_variation(nulls.pairwise(dot)))
        cv_norms.append(nulls.coefficient_of_variation(np.sqrt(np.diag(dot))))
    return {"cv_pairwise_distance": np.asarray(cv_pairs), "cv_norm": np.asarray(cv_norms)}
