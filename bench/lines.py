"""Benchmark: the loss along a line (barriers, claim 2a) against the plain PyTorch loop.

One line of ``--points`` points between two initialisations of the quick preset's CNN, on the
quick preset's subsets of ``--dataset`` (train and test loss at every point, dropout off):

core       :func:`weightspace.landscape.loss_along_line`: the points spread over one thread per
           core, each on one intra-op thread with deterministic kernels, the core's CNN
           (channels-last, ReLU after pooling)
reference  the loop one writes by hand: the tutorial CNN (``bench/reference_net.py``: default
           memory order), ``torch.lerp`` the vector in, evaluate the train and test sets in
           batches of 256, torch's default intra-op threads

Each side runs ``--repeat`` times, alternating, in this process; the JSON line gives the best
time of each, their ratio (reference / core) and the largest difference between their losses.

Usage: ``python bench/lines.py [--dataset mnist] [--points 25] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from reference_net import tutorial_model

from weightspace import landscape
from weightspace.data import Dataset, load_dataset
from weightspace.models import build_model, flat_parameters
from weightspace.objective import cross_entropy, one_hot
from weightspace.presets import load_preset
from weightspace.spec import ExperimentSpec


def reference(
    spec: ExperimentSpec, data: Dataset, start: torch.Tensor, end: torch.Tensor, points: int
) -> tuple[list[float], list[float]]:
    model = tutorial_model(spec.model, data.input_shape, spec.dropout, seed=0).eval()
    train, test = [], []
    with torch.no_grad():
        for alpha in np.linspace(0.0, 1.0, points):
            torch.nn.utils.vector_to_parameters(
                torch.lerp(start, end, float(alpha)), model.parameters()
            )
            for x, y, out in (
                (data.x_train, data.y_train, train),
                (data.x_test, data.y_test, test),
            ):
                total = 0.0
                for i in range(0, len(y), 256):
                    logits = model(x[i : i + 256])
                    total += float(cross_entropy(logits, one_hot(y[i : i + 256], 10)).sum())
                out.append(total / len(y))
    return train, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--points", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spec = load_preset("quick", args.dataset).experiments[1].spec
    data = load_dataset(spec.dataset)
    start, end = (
        flat_parameters(build_model(spec.model, data.input_shape, 0.0, seed=s)) for s in (1, 2)
    )
    times: dict[str, list[float]] = {"core": [], "reference": []}
    for _ in range(args.repeat):
        began = time.perf_counter()
        line = landscape.loss_along_line(spec, data, start.numpy(), end.numpy(), points=args.points)
        times["core"].append(time.perf_counter() - began)
        began = time.perf_counter()
        train, test = reference(spec, data, start, end, args.points)
        times["reference"].append(time.perf_counter() - began)
    difference = max(
        float(np.max(np.abs(np.subtract(line.train_loss, train)))),
        float(np.max(np.abs(np.subtract(line.test_loss, test)))),
    )
    core, ref = min(times["core"]), min(times["reference"])
    images = args.points * (len(data.y_train) + len(data.y_test))
    print(
        json.dumps(
            {
                "bench": "lines",
                "dataset": args.dataset,
                "points": args.points,
                "images_evaluated": images,
                "cores": len(os.sched_getaffinity(0)),
                "torch_threads_default": torch.get_num_threads(),
                "core_s": round(core, 3),
                "reference_s": round(ref, 3),
                "speedup": round(ref / core, 2),
                "core_images_per_s": round(images / core),
                "max_abs_loss_difference": difference,
            }
        )
    )


if __name__ == "__main__":
    main()
