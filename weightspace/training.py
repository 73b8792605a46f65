"""The trainer: replicas of one spec, trained epoch by epoch, captured at scheduled epochs.

The whole data set lives on the device and is shuffled by index permutation. Each run owns two
generators, seeded apart (see :func:`weightspace.spec.plan_runs`): ``data`` (CPU; permutations)
and ``noise`` (on the device; dropout masks). Together with the parameters and optimizer buffers
they form the run's :class:`TrainState`, so continuing from a saved state gives bitwise the same
trajectory as an uninterrupted run on the same device.

Replicas train one by one, or together as one stack (:mod:`weightspace.batched`): the same seeds,
draws, data order and optimizer, so the two agree to float rounding, and each is bitwise
deterministic and resumable on its own. The default is per device: batched on CUDA, where one
replica's small steps leave the GPU idle; one by one on the CPU, where measurement showed the
stacked (grouped) convolutions slower than separate ones (docs/benchmarks.md), with the replicas
of an epoch spread over a few threads (each operation on one intra-op thread, so the numbers do
not depend on the thread that computes them).

Training runs under :func:`weightspace.determinism.deterministic` (fixed thread count,
deterministic kernels), so the result does not depend on the process's thread settings; each
snapshot carries the :func:`weightspace.determinism.environment` it was computed in. Captures
are handed to the callback on a writer thread (:class:`weightspace.capture.CaptureWriter`).

The trainer hands snapshots and states to callbacks and knows nothing about where they go.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import nn

from weightspace import determinism
from weightspace.batched import ReplicaStack
from weightspace.capture import CaptureWriter
from weightspace.data import Dataset
from weightspace.models import (
    parameter_layout,
)
from weightspace.objective import cross_entropy, one_hot
from weightspace.replica import Replica
from weightspace.snapshots import Snapshot, TrainState
from weightspace.spec import ExperimentSpec, RunPlan, plan_runs

# Metrics are evaluated in chunks of this many examples: small on the CPU, where a chunk that
# fits the caches is 2.4x faster than 4,096 (measured on the 2-core machine), large on a GPU.
EVAL_BATCH = {"cpu": 256, "cuda": 4096}


def eval_batch(device: torch.device) -> int:
    return EVAL_BATCH.get(device.type, EVAL_BATCH["cpu"])


@dataclass(frozen=True)
class EpochProgress:
    """Reported after every epoch of every run (not only at snapshots)."""

    run: int
    epoch: int
    final_epoch: int
    train_loss: float  # mean minibatch loss over the epoch (dropout on)
    seconds: float


class Cancelled(Exception):
    """Raised out of :meth:`Trainer.train` when ``should_stop`` answers true."""


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int | None = None
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)``, dropout off."""
    batch = batch or eval_batch(x.device)
    was_training = model.training
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    with torch.no_grad():
        for i in range(0, len(y), batch):
            logits = model(x[i : i + batch])
            target = y[i : i + batch]
            loss += cross_entropy(logits, one_hot(target, logits.shape[-1])).sum().double()
            correct += (logits.argmax(1) == target).sum()
    model.train(was_training)
    return loss.item() / len(y), correct.item() / len(y)


class Trainer:
    """Trains the replicas of ``spec`` on ``data`` (moved to ``device``).

    ``batched`` chooses how replicas train (see the module docstring); ``None`` picks by device.
    ``workers`` bounds the threads that train one-by-one replicas side by side (default: the
    cores this process may use); it changes the speed, never the numbers.
    """

    def __init__(
        self,
        spec: ExperimentSpec,
        data: Dataset,
        device: str | torch.device = "cpu",
        *,
        batched: bool | None = None,
        workers: int | None = None,
    ) -> None:
        self.spec = spec
        self.device = torch.device(device)
        determinism.prepare_process()  # before this process's first cuBLAS handle
        self.data = data.to(self.device)
        self.plans = plan_runs(spec)
        self.batched = self.device.type == "cuda" if batched is None else batched
        # One-by-one replicas train side by side on this many threads, each operation on one
        # intra-op thread: a replica's numbers do not depend on which thread computes them.
        self.workers = max(1, min(workers or len(os.sched_getaffinity(0)), spec.replicas))
        self.eval_batch = eval_batch(self.device)
        self.environment = determinism.environment(self.device, replicas_batched=self.batched)

    def train(
        self,
        on_snapshot: Callable[[Snapshot, TrainState], None],
        *,
        resume: Mapping[int, TrainState] | None = None,
        runs: Iterable[int] | None = None,
        on_epoch: Callable[[EpochProgress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Train ``runs`` (default: all) to the final epoch, epoch by epoch across the replicas.

        ``resume`` maps a run to the state it continues from; the others start afresh. Each
        scheduled epoch calls ``on_snapshot(snapshot, state)`` (on the writer thread, in order;
        all of them have returned when ``train`` does); a resumed run's snapshot at its resume
        epoch is not captured again. ``on_epoch`` and ``should_stop`` run in the calling thread.
        """
        resume = dict(resume or {})
        wanted = sorted(set(runs) if runs is not None else {p.run for p in self.plans})
        with (
            determinism.deterministic(),
            CaptureWriter(on_snapshot) as writer,
            ThreadPoolExecutor(
                self.workers, thread_name_prefix="replica", initializer=determinism.pin_thread
            ) as pool,
        ):
            active = self._start([self.plans[r] for r in wanted], resume)
            fresh = [run for run in active if run.run not in resume]
            for capture in pool.map(self._capture, fresh):
                writer.put(*capture)
            stepper = self._stepper(active, pool)
            schedule = set(self.spec.snapshot_epochs())
            for epoch in range(self.spec.first_epoch + 1, self.spec.final_epoch + 1):
                due = [run for run in active if run.epoch < epoch]
                if not due:
                    continue
                writer.check()
                if should_stop is not None and should_stop():
                    raise Cancelled
                started = time.perf_counter()
                losses = stepper(due)
                seconds = (time.perf_counter() - started) / len(due)
                captures = list(pool.map(self._capture, due)) if epoch in schedule else []
                for i, (run, loss) in enumerate(zip(due, losses, strict=True)):
                    if on_epoch is not None:
                        on_epoch(
                            EpochProgress(run.run, run.epoch, self.spec.final_epoch, loss, seconds)
                        )
                    if captures:
                        writer.put(*captures[i])

    def _stepper(
        self, active: list[Replica], pool: ThreadPoolExecutor
    ) -> Callable[[list[Replica]], list[float]]:
        """One epoch of the given replicas: one by one (on the pool's threads) or as one stack."""
        if not self.batched:
            return lambda due: list(pool.map(self._train_epoch, due))
        stack = ReplicaStack(self.spec, self.data, self.plans, active)
        return stack.train_epoch

    def _start(self, plans: list[RunPlan], resume: Mapping[int, TrainState]) -> list[Replica]:
        runs = []
        fresh = [p for p in plans if p.run not in resume]
        base_state = self._pretrain(fresh[0]) if fresh and self.spec.pretrain_epochs else None
        for plan in plans:
            run = Replica(
                self.spec,
                self.data,
                self.device,
                plan,
                plan.init_seed,
                plan.data_seed,
                plan.dropout_seed,
            )
            if plan.run in resume:
                run.restore(resume[plan.run])
            elif base_state is not None:
                # A clone: the pretrained weights and optimizer buffers, its own seeds from here.
                run.restore(base_state)
                run.reseed(plan.data_seed, plan.dropout_seed)
            runs.append(run)
        return runs

    def _pretrain(self, plan: RunPlan) -> TrainState:
        assert plan.pretrain_seed is not None and plan.pretrain_dropout_seed is not None
        base = Replica(
            self.spec,
            self.data,
            self.device,
            plan,
            plan.init_seed,
            plan.pretrain_seed,
            plan.pretrain_dropout_seed,
        )
        for _ in range(self.spec.pretrain_epochs):
            self._train_epoch(base)
        return base.state()

    def _train_epoch(self, run: Replica) -> float:
        x, y = self.data.x_train, self.data.y_train
        batch = self.spec.batch_size
        order = torch.randperm(len(y), generator=run.data_gen).to(self.device)
        run.model.train()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for i in range(0, len(y), batch):
            index = order[i : i + batch]
            targets = one_hot(y[index], self.data.num_classes)
            loss = cross_entropy(run.model(x[index]), targets).mean()
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            run.optimizer.step()
            total += loss.detach().double() * len(index)
        run.epoch += 1
        return total.item() / len(y)

    def _capture(self, run: Replica) -> tuple[Snapshot, TrainState]:
        x, y, batch = self.data.x_train, self.data.y_train, self.eval_batch
        train_loss, train_acc = evaluate(run.model, x, y, batch)
        test_loss, test_acc = evaluate(run.model, self.data.x_test, self.data.y_test, batch)
        state = run.state()  # the parameters leave the device once, for snapshot and state
        snapshot = Snapshot(
            run=run.run,
            epoch=run.epoch,
            params=state.params,
            metrics={
                "train_loss": train_loss,
                "train_accuracy": train_acc,
                "test_loss": test_loss,
                "test_accuracy": test_acc,
            },
            layout=parameter_layout(run.model),
            environment=self.environment,
        )
        return snapshot, state
