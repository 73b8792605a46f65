"""The networks, and the one fixed order in which their parameters form a flat vector.

``paper-cnn``: the paper gives only "a standard three layer convolutional neural network with
819557 parameters". Ours, on 28x28 inputs::

    conv 1->32, 5x5, pad 2, ReLU, max-pool 2x2      832 parameters
    conv 32->64, 5x5, pad 2, ReLU, max-pool 2x2    51,264
    fully connected 3136->244, ReLU, dropout      765,428
    fully connected 244->10 (softmax in the loss)    2,450
                                                  -------
                                                  819,974  (+0.05% of 819,557)

The flat parameter vector is the concatenation of ``model.named_parameters()`` in registration
order (see :func:`parameter_layout`): conv1.weight, conv1.bias, conv2.weight, ... each flattened
in row-major order of its logical shape, whatever the tensor's memory order. That is the order
snapshots store; analyses across experiments read vectors in the canonical order by name
(:mod:`weightspace.layouts`), and the names are those of the model's state dict.

The convolutional nets compute in channels-last memory order (their convolution weights are
stored so, and the first convolution's output is laid out so) and apply ReLU after max-pooling,
which gives the same values as before it on a quarter of the elements: on the CPU that makes
training 2.2x and evaluation 4x faster than the default order for these few-channel layers
(``docs/benchmarks.md``). :func:`load_flat_parameters` copies into the parameters in place, so
their memory order survives a load.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from weightspace.spec import CNNSpec, MLPSpec, ModelSpec, PaperCNNSpec

PAPER_CNN_HIDDEN = 244


class SeededDropout(nn.Module):
    """Inverted dropout whose masks come from an explicit generator, so runs are resumable.

    The trainer sets ``generator`` (one per run); its state is part of the run's resume state.
    A caller may pass the ``keep`` mask itself (the replica-batched trainer draws each replica's
    masks from that replica's generator, the same draws this module would make).
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if keep is None:
            keep = draw_mask(x.shape, self.p, self.generator, x.device)
        return x * keep / (1 - self.p)


def draw_mask(
    shape: Sequence[int], p: float, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """The keep mask of inverted dropout: one uniform draw per element from ``generator``."""
    return torch.rand(tuple(shape), generator=generator, device=device) >= p


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` laid out channels-last. With one input channel a convolution cannot tell the two
    orders apart and answers in the default one; this says which. By permutes rather than
    ``contiguous(memory_format=...)``, which ``torch.func.vmap`` does not support."""
    return x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)


def _max_pool(x: torch.Tensor) -> torch.Tensor:
    """2x2 max-pooling of a channels-last ``x``. With autograd, ``max_pool2d`` (its gradient goes
    to one element of a tie); without, the same values as two elementwise maxima over the
    channels-last layout, about 3x faster here than ``max_pool2d``, which also records indices."""
    if torch.is_grad_enabled():
        return F.max_pool2d(x, 2)
    n, c, h, w = x.shape
    rows = (
        x[:, :, : h - h % 2, : w - w % 2].permute(0, 2, 3, 1).reshape(n, h // 2, 2, w // 2, 2 * c)
    )
    # (n, h/2, w/2, 2c): each output position's two columns side by side, channels within
    pairs = torch.maximum(rows[:, :, 0], rows[:, :, 1])
    return torch.maximum(pairs[..., :c], pairs[..., c:]).permute(0, 3, 1, 2)


class ConvNet(nn.Module):
    """Two conv layers with ReLU and 2x2 max-pooling, one hidden fully connected layer."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        channels: tuple[int, int],
        kernel_size: int,
        hidden: int,
        dropout: float,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        c, h, w = input_shape
        self.conv1 = nn.Conv2d(c, channels[0], kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv2d(channels[0], channels[1], kernel_size, padding=kernel_size // 2)
        self.fc1 = nn.Linear(channels[1] * (h // 4) * (w // 4), hidden)
        self.dropout = SeededDropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

        self.to(memory_format=torch.channels_last)  # the 4-d weights; values unchanged

    def dropout_widths(self) -> list[int]:
        return [self.fc1.out_features]

    def forward(self, x: torch.Tensor, masks: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        # relu(max_pool(.)) == max_pool(relu(.)) exactly (ReLU is monotone), on 1/4 the elements
        x = F.relu(_max_pool(_channels_last(self.conv1(_channels_last(x)))))
        x = F.relu(_max_pool(self.conv2(x)))
        x = self.dropout(F.relu(self.fc1(x.flatten(1))), masks[0] if masks else None)
        logits: torch.Tensor = self.fc2(x)
        return logits


class MLP(nn.Module):
    """Fully connected ReLU layers, dropout after each hidden layer."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        hidden: list[int],
        dropout: float,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        sizes = [input_shape[0] * input_shape[1] * input_shape[2], *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.dropout = SeededDropout(dropout)
        self.out = nn.Linear(sizes[-1], num_classes)

    def dropout_widths(self) -> list[int]:
        return [layer.out_features for layer in self.hidden if isinstance(layer, nn.Linear)]

    def forward(self, x: torch.Tensor, masks: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        x = x.flatten(1)
        for i, layer in enumerate(self.hidden):
            x = self.dropout(F.relu(layer(x)), masks[i] if masks else None)
        logits: torch.Tensor = self.out(x)
        return logits


def build_model(
    spec: ModelSpec, input_shape: tuple[int, int, int], dropout: float, *, seed: int
) -> nn.Module:
    """Build a model on the CPU with initial weights drawn from ``seed`` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if isinstance(spec, PaperCNNSpec):
            return ConvNet(input_shape, (32, 64), 5, PAPER_CNN_HIDDEN, dropout)
        if isinstance(spec, CNNSpec):
            return ConvNet(
                input_shape,
                (spec.channels[0], spec.channels[1]),
                spec.kernel_size,
                spec.hidden,
                dropout,
            )
        if isinstance(spec, MLPSpec):
            return MLP(input_shape, list(spec.hidden), dropout)
    raise TypeError(f"unknown model spec {spec!r}")


def parameter_layout(model: nn.Module) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Names and shapes, in the order the flat vector concatenates them."""
    return tuple((name, tuple(p.shape)) for name, p in model.named_parameters())


def declared_layout(
    spec: ModelSpec, input_shape: tuple[int, int, int]
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """:func:`parameter_layout` of the model ``spec`` describes, built on PyTorch's meta device
    (no memory, no compute): the names and shapes a state dict of that architecture has."""
    with torch.device("meta"):
        return parameter_layout(build_model(spec, input_shape, 0.0, seed=0))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """The full parameter vector as one float32 CPU tensor (a copy)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).to("cpu", torch.float32)


def load_flat_parameters(model: nn.Module, vector: torch.Tensor) -> None:
    """Overwrite the model's parameters from a flat vector in :func:`parameter_layout` order."""
    expected = count_parameters(model)
    if vector.numel() != expected:
        raise ValueError(f"vector has {vector.numel()} values, the model {expected} parameters")
    with torch.no_grad():
        start = 0
        for p in model.parameters():  # in place: each parameter keeps its memory order
            p.copy_(vector[start : start + p.numel()].reshape(p.shape))
            start += p.numel()


def dropout_widths(model: nn.Module) -> list[int]:
    """Widths of the activations that dropout masks, in the order ``forward`` applies them.

    ``forward(x, masks)`` takes one ``(batch, width)`` keep mask per entry.
    """
    if isinstance(model, ConvNet | MLP):
        return model.dropout_widths()
    raise TypeError(f"unknown model {type(model).__name__}")


def set_noise_generator(model: nn.Module, generator: torch.Generator) -> None:
    for module in model.modules():
        if isinstance(module, SeededDropout):
            module.generator = generator
