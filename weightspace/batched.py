"""Replica-batched training: the replicas of an experiment take each step together.

One stack holds a slot per run of the spec (slot = run index): parameters and optimizer buffers
are stacked along a leading axis, and one ``torch.func.vmap`` of ``grad_and_value`` over
``functional_call`` computes every replica's gradient in one pass (convolutions become grouped
convolutions, linear layers batched products). Each replica keeps everything that makes it
itself:

- its data order: ``randperm`` from its own ``data`` generator, as when trained alone;
- its dropout masks: drawn from its own ``noise`` generator, layer by layer, the same draws
  :class:`weightspace.models.SeededDropout` would make, and passed to the model;
- its optimizer state: the optimizers are elementwise (SGD, Adam), so one optimizer over the
  stacked tensors updates each slot exactly as its own optimizer would.

Initialisation, pretraining and cloning happen in :class:`weightspace.training.Trainer` as for
one-by-one training; the stack loads the due replicas at the start of an epoch and writes them
back at its end, so captures and resume states are the same objects either way.

The stack always computes every slot, whatever subset of runs is due: a slot whose run is not due
(finished, or resumed at a later epoch) computes a copy of the first due replica and its result is
dropped. The shapes of every operation are therefore the same in a resumed run as in an
uninterrupted one, which keeps resumption bitwise exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.func import functional_call, grad_and_value, vmap

from weightspace.data import Dataset
from weightspace.models import draw_mask, dropout_widths
from weightspace.objective import cross_entropy, make_optimizer, one_hot
from weightspace.replica import Replica
from weightspace.spec import ExperimentSpec, RunPlan


class ReplicaStack:
    """Stacked parameters and optimizer state for the runs of one spec; trains due replicas."""

    def __init__(
        self,
        spec: ExperimentSpec,
        data: Dataset,
        plans: Sequence[RunPlan],
        replicas: Sequence[Replica],
    ) -> None:
        self.spec = spec
        self.data = data
        self.slots = len(plans)
        self.template = replicas[0].model
        self.names = [name for name, _ in self.template.named_parameters()]
        self.params = [
            torch.zeros((self.slots, *p.shape), dtype=p.dtype, device=p.device)
            for p in self.template.parameters()
        ]
        self.optimizer = make_optimizer(spec, self.params)
        self.widths = dropout_widths(self.template) if spec.dropout > 0 else []
        self._step = vmap(grad_and_value(self._loss))

    def _loss(
        self,
        params: dict[str, torch.Tensor],
        x: torch.Tensor,
        targets: torch.Tensor,
        masks: list[torch.Tensor],
    ) -> torch.Tensor:
        logits = functional_call(self.template, params, (x,), {"masks": masks})
        return cross_entropy(logits, targets).mean()

    # ------------------------------------------------------------------ in and out of the stack

    def _by_slot(self, due: Sequence[Replica]) -> list[Replica]:
        """The replica each slot computes: its own run if due, else the first due one's copy."""
        own = {replica.run: replica for replica in due}
        return [own.get(slot, due[0]) for slot in range(self.slots)]

    def _load(self, by_slot: Sequence[Replica]) -> None:
        with torch.no_grad():
            for slot, replica in enumerate(by_slot):
                for stacked, p in zip(self.params, replica.model.parameters(), strict=True):
                    stacked[slot].copy_(p)
        self.optimizer.state.clear()
        for i, stacked in enumerate(self.params):
            states = [_param_state(r, i) for r in by_slot]
            if not states[0]:
                continue  # no step taken yet: the first step creates the buffers
            self.optimizer.state[stacked] = {
                name: _stack_buffer(name, [s[name] for s in states]) for name in states[0]
            }

    def _write_back(self, due: Sequence[Replica]) -> None:
        with torch.no_grad():
            for replica in due:
                slot = replica.run
                params = list(replica.model.parameters())
                for stacked, p in zip(self.params, params, strict=True):
                    p.copy_(stacked[slot])
                    state = self.optimizer.state.get(stacked, {})
                    replica.optimizer.state[p] = {
                        name: _slot_buffer(name, value, slot) for name, value in state.items()
                    }

    # ------------------------------------------------------------------ one epoch

    def _masks(self, by_slot: Sequence[Replica], due: Sequence[Replica], batch: int) -> list[Any]:
        """Per dropout layer, the (slots, batch, width) keep masks; fillers reuse a due one's."""
        if not self.widths:
            return []
        device = self.params[0].device
        drawn = {
            r.run: [
                draw_mask((batch, w), self.spec.dropout, r.noise_gen, device) for w in self.widths
            ]
            for r in due
        }
        return [
            torch.stack([drawn[r.run][layer] for r in by_slot]) for layer in range(len(self.widths))
        ]

    def train_epoch(self, due: Sequence[Replica]) -> list[float]:
        """One epoch of every due replica; returns their mean minibatch losses."""
        by_slot = self._by_slot(due)
        self._load(by_slot)
        self.template.train()
        x, y = self.data.x_train, self.data.y_train
        device = self.params[0].device
        orders = {r.run: torch.randperm(len(y), generator=r.data_gen) for r in due}
        order = torch.stack([orders[r.run] for r in by_slot]).to(device)
        totals = torch.zeros(self.slots, dtype=torch.float64, device=device)
        batch = self.spec.batch_size
        for i in range(0, len(y), batch):
            index = order[:, i : i + batch]
            masks = self._masks(by_slot, due, index.shape[1])
            params = dict(zip(self.names, self.params, strict=True))
            targets = one_hot(y[index], self.data.num_classes)
            grads, losses = self._step(params, x[index], targets, masks)
            for stacked, name in zip(self.params, self.names, strict=True):
                stacked.grad = grads[name]
            self.optimizer.step()
            totals += losses.detach().double() * index.shape[1]
        for stacked in self.params:
            stacked.grad = None
        self._write_back(due)
        for replica in due:
            replica.epoch += 1
        return [float(totals[r.run]) / len(y) for r in due]


def _param_state(replica: Replica, index: int) -> dict[str, Any]:
    p = list(replica.model.parameters())[index]
    return dict(replica.optimizer.state.get(p, {}))


# Optimizer state entries that are one value for the whole parameter (Adam's step count): the
# same in every slot, since the replicas of a stack have taken the same number of steps.
_SHARED_STATE = {"step"}


def _stack_buffer(name: str, values: list[Any]) -> Any:
    first = values[0]
    if name in _SHARED_STATE or not isinstance(first, torch.Tensor):
        return first.clone() if isinstance(first, torch.Tensor) else first
    return torch.stack(values)


def _slot_buffer(name: str, value: Any, slot: int) -> Any:
    if name in _SHARED_STATE or not isinstance(value, torch.Tensor):
        return value.clone() if isinstance(value, torch.Tensor) else value
    return value[slot].clone()
