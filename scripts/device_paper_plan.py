"""Helpers of scripts/device-paper.sh: the machine's environment, and the epochs that fit.

    python scripts/device_paper_plan.py environment          # JSON: torch, CUDA, GPU, settings
    python scripts/device_paper_plan.py plan --budget 450     # JSON: {"epochs": ..., ...}

``plan`` trains one epoch of the paper spec with one replica and with five (after a warm-up),
on the device the offline runner will use, and predicts the suite's training time per epoch:
experiment 1 is one replica, experiments 2-4 five each. It takes the paper's 200 epochs if
they fit ``TRAIN_SHARE`` of the budget left, else as many as fit (at least 2).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from weightspace import determinism
from weightspace.data import load_dataset
from weightspace.presets import load_preset
from weightspace.spec import ExperimentSpec
from weightspace.training import Trainer

PAPER_EPOCHS = 200
# Of the budget left after calibration, the share training may take: the rest is for the
# snapshots' analysis, the report (lines, barriers, figures) and packing.
TRAIN_SHARE = 0.55


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def environment() -> dict[str, object]:
    dev = device()
    env: dict[str, object] = dict(determinism.environment(dev, replicas_batched=dev.type == "cuda"))
    env.update(
        {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "tf32_env": os.environ.get("WEIGHTSPACE_TF32", ""),
        }
    )
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        env["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        env["gpu_multiprocessors"] = props.multi_processor_count
    return env


def _epoch_seconds(spec: ExperimentSpec, replicas: int, data_dir: Path | None) -> float:
    one = ExperimentSpec.model_validate(
        {**spec.model_dump(), "epochs": 1, "replicas": replicas, "snapshot_every": 1}
    )
    data = load_dataset(one.dataset, data_dir)
    trainer = Trainer(one, data, device())
    trainer.train(lambda *_: None)  # warm-up: kernels, cuDNN plans, allocator
    started = time.perf_counter()
    Trainer(one, data, device()).train(lambda *_: None)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


def plan(budget: float, data_dir: Path | None) -> dict[str, object]:
    started = time.perf_counter()
    spec = load_preset("paper", "mnist").experiments[1].spec
    one = _epoch_seconds(spec, 1, data_dir)
    five = _epoch_seconds(spec, 5, data_dir)
    per_epoch = one + 3 * five  # experiments 1 (one replica) and 2-4 (five each)
    left = budget - (time.perf_counter() - started)
    fits = int(left * TRAIN_SHARE / per_epoch)
    return {
        "epochs": max(2, min(PAPER_EPOCHS, fits)),
        "calibrated": True,
        "seconds_per_epoch_one_replica": round(one, 3),
        "seconds_per_epoch_five_replicas": round(five, 3),
        "predicted_training_seconds_200_epochs": round(PAPER_EPOCHS * per_epoch),
        "budget_left_seconds": round(left),
        "full_paper": fits >= PAPER_EPOCHS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["environment", "plan"])
    parser.add_argument("--budget", type=float, default=480)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    determinism.prepare_process()
    if args.what == "environment":
        print(json.dumps(environment(), indent=2))
    else:
        print(json.dumps(plan(args.budget, args.data_dir)))


if __name__ == "__main__":
    main()
