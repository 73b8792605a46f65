"""One run in memory: its model, optimizer and two generators (data order, dropout masks).

Shared by the two ways replicas train (:mod:`weightspace.training` one by one,
:mod:`weightspace.batched` as one stack); :meth:`Replica.state` and :meth:`Replica.restore`
turn it into a :class:`weightspace.snapshots.TrainState` and back, bitwise.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from weightspace.data import Dataset
from weightspace.models import (
    build_model,
    flat_parameters,
    load_flat_parameters,
    set_noise_generator,
)
from weightspace.objective import make_optimizer
from weightspace.snapshots import TrainState
from weightspace.spec import ExperimentSpec, RunPlan


def _optimizer_buffers(optimizer: torch.optim.Optimizer) -> dict[str, np.ndarray]:
    flat = {}
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                flat[f"{index}.{name}"] = value.detach().cpu().numpy().copy()
    return flat


def _load_optimizer_buffers(
    optimizer: torch.optim.Optimizer, flat: Mapping[str, np.ndarray]
) -> None:
    state_dict = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = torch.from_numpy(np.array(value))
    state_dict["state"] = state
    optimizer.load_state_dict(state_dict)


class Replica:
    """One run in memory: model, optimizer and its two generators."""

    def __init__(
        self,
        spec: ExperimentSpec,
        data: Dataset,
        device: torch.device,
        plan: RunPlan,
        init_seed: int,
        data_seed: int,
        dropout_seed: int,
    ) -> None:
        self.run = plan.run
        self.epoch = 0
        self.model = build_model(spec.model, data.input_shape, spec.dropout, seed=init_seed).to(
            device
        )
        self.optimizer = make_optimizer(spec, self.model.parameters())
        self.data_gen = torch.Generator().manual_seed(data_seed)
        self.noise_gen = torch.Generator(device=device).manual_seed(dropout_seed)
        set_noise_generator(self.model, self.noise_gen)

    def reseed(self, data_seed: int, dropout_seed: int) -> None:
        self.data_gen.manual_seed(data_seed)
        self.noise_gen.manual_seed(dropout_seed)

    def state(self) -> TrainState:
        return TrainState(
            run=self.run,
            epoch=self.epoch,
            params=flat_parameters(self.model).numpy(),
            optimizer=_optimizer_buffers(self.optimizer),
            rng={
                "data": self.data_gen.get_state().numpy().copy(),
                "noise": self.noise_gen.get_state().numpy().copy(),
            },
        )

    def restore(self, state: TrainState) -> None:
        load_flat_parameters(self.model, torch.from_numpy(np.array(state.params)))
        _load_optimizer_buffers(self.optimizer, state.optimizer)
        self.data_gen.set_state(torch.from_numpy(np.array(state.rng["data"])))
        self.noise_gen.set_state(torch.from_numpy(np.array(state.rng["noise"])))
        self.epoch = state.epoch
