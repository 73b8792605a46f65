"""The trainer against a hand-written PyTorch loop doing the same work; prints one JSON line.

Both sides train the same spec (by default the quick preset's experiment 2: five replicas of the
small CNN, 20 epochs, train and test loss at every scheduled epoch) with the same model, optimizer
and data, each in its own child process after a warm-up epoch:

- trainer: ``weightspace.training.Trainer``, every capture encoded as a snapshot and a resume
  state (safetensors, as a store write would), on its writer thread;
- hand: the loop of a PyTorch tutorial: the tutorial CNN (``bench/reference_net.py``: the same
  layers and initial values in the default memory order), a ``DataLoader`` with ``shuffle=True`` over a
  ``TensorDataset``, one replica after another, ``nn.Module`` forward/backward/step, train and
  test loss evaluated with a ``DataLoader`` of 1,000 at the same epochs; torch's default threads.

A third child measures the cost of captures: the trainer with a snapshot every epoch against the
trainer with snapshots only at the start and the end. Images/s count training images
(replicas x epochs x training set); evaluation is part of the time. On CUDA (where present) the
same pair runs again on the GPU.

    python bench/training.py [--dataset mnist] [--epochs 4] [--repeat 1] [--batched auto|yes|no]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from reference_net import tutorial_model  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from weightspace.data import load_dataset  # noqa: E402
from weightspace.presets import load_preset  # noqa: E402
from weightspace.snapshots import Snapshot, TrainState, encode_snapshot, encode_state  # noqa: E402
from weightspace.spec import ExperimentSpec  # noqa: E402
from weightspace.training import Trainer, make_optimizer  # noqa: E402


def bench_spec(
    dataset: str | None, epochs: int | None, snapshot_every: int | None
) -> ExperimentSpec:
    spec = load_preset("quick", dataset).experiments[1].spec  # independent-inits: 5 replicas
    fields: dict[str, Any] = {}
    if epochs is not None:
        fields["epochs"] = epochs
    if snapshot_every is not None:
        fields["snapshot_every"] = snapshot_every
    return ExperimentSpec.model_validate({**spec.model_dump(), **fields})


def run_trainer(spec: ExperimentSpec, device: str, batched: bool | None) -> float:
    data = load_dataset(spec.dataset)
    encoded: list[int] = []

    def keep(snapshot: Snapshot, state: TrainState) -> None:
        encoded.append(
            len(encode_snapshot(snapshot, "0" * 32)) + len(encode_state(state, "0" * 32))
        )

    warm = ExperimentSpec.model_validate({**spec.model_dump(), "epochs": 1, "replicas": 1})
    Trainer(warm, data, device, batched=batched).train(keep)
    _sync(device)
    started = time.perf_counter()
    Trainer(spec, data, device, batched=batched).train(keep)
    _sync(device)
    return time.perf_counter() - started


def _hand_evaluate(model: torch.nn.Module, dataset: TensorDataset, device: str) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for xb, yb in DataLoader(dataset, batch_size=1000):
            xb, yb = xb.to(device), yb.to(device)
            total += F.cross_entropy(model(xb), yb, reduction="sum").item()
            count += len(yb)
    model.train()
    return total / count


def run_hand(spec: ExperimentSpec, device: str) -> float:
    data = load_dataset(spec.dataset)
    train_set = TensorDataset(data.x_train, data.y_train)
    test_set = TensorDataset(data.x_test, data.y_test)
    schedule = set(spec.snapshot_epochs())
    log: list[tuple[int, int, float, float]] = []

    def replica(seed: int, epochs: int) -> None:
        torch.manual_seed(seed)
        model = tutorial_model(spec.model, data.input_shape, spec.dropout, seed=seed).to(device)
        optimizer = make_optimizer(spec, model.parameters())
        loader = DataLoader(train_set, batch_size=spec.batch_size, shuffle=True)
        for epoch in range(epochs + 1):
            if epoch > 0:
                for xb, yb in loader:
                    xb, yb = xb.to(device), yb.to(device)
                    loss = F.cross_entropy(model(xb), yb)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
            if epoch in schedule or epoch == epochs:
                train_loss = _hand_evaluate(model, train_set, device)
                log.append((seed, epoch, train_loss, _hand_evaluate(model, test_set, device)))

    replica(spec.replicas, 1)  # warm-up (a seed none of the timed replicas uses)
    _sync(device)
    started = time.perf_counter()
    for seed in range(spec.replicas):
        replica(seed, spec.final_epoch)
    _sync(device)
    return time.perf_counter() - started


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def child(args: argparse.Namespace) -> None:
    spec = bench_spec(args.dataset, args.epochs, args.snapshot_every)
    batched = {"auto": None, "yes": True, "no": False}[args.batched]
    seconds = (
        run_hand(spec, args.device)
        if args.side == "hand"
        else run_trainer(spec, args.device, batched)
    )
    images = spec.replicas * spec.epochs * len(load_dataset(spec.dataset).y_train)
    print(json.dumps({"seconds": seconds, "images_per_s": images / seconds}))


def _in_child(args: argparse.Namespace, side: str, device: str, **extra: Any) -> dict[str, float]:
    command = [sys.executable, __file__, "--side", side, "--device", device]
    command += ["--batched", args.batched]
    if args.dataset:
        command += ["--dataset", args.dataset]
    if args.epochs is not None:
        command += ["--epochs", str(args.epochs)]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", help="default: the quick preset's own")
    parser.add_argument("--epochs", type=int, help="default: the preset's 20")
    parser.add_argument("--batched", choices=["auto", "yes", "no"], default="auto")
    parser.add_argument("--repeat", type=int, default=1, help="pairs per device (medians)")
    parser.add_argument("--side", choices=["trainer", "hand"], help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--snapshot-every", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        child(args)
        return
    spec = bench_spec(args.dataset, args.epochs, None)
    result: dict[str, Any] = {
        "spec": f"quick/independent-inits on {spec.dataset.name}: {spec.replicas} replicas x "
        f"{spec.epochs} epochs, snapshot every {spec.snapshot_every}",
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "default_threads": torch.get_num_threads(),
    }
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        ratios, trainer, hand = [], [], []
        for _ in range(args.repeat):
            t = _in_child(args, "trainer", device)["images_per_s"]
            h = _in_child(args, "hand", device)["images_per_s"]
            trainer.append(t)
            hand.append(h)
            ratios.append(t / h)
        every = _in_child(args, "trainer", device, snapshot_every=1)["images_per_s"]
        ends = _in_child(args, "trainer", device, snapshot_every=spec.epochs)["images_per_s"]
        result[device] = {
            "trainer_images_per_s": round(_median(trainer)),
            "hand_images_per_s": round(_median(hand)),
            "ratio": round(_median(ratios), 3),
            "ratios": [round(r, 3) for r in ratios],
            "capture_every_epoch_images_per_s": round(every),
            "capture_only_ends_images_per_s": round(ends),
            "capture_overhead_every_epoch": round(ends / every - 1, 3),
        }
    print(json.dumps(result))


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


if __name__ == "__main__":
    main()
