"""The benchmarks' hand-written side of the model: the CNN as a PyTorch tutorial writes it.

Same layers, parameter names, registration order and initial values as
:class:`weightspace.models.ConvNet` (so a flat parameter vector loads into either), written the
usual way: default (NCHW) memory order, ReLU before max-pooling. What ``ConvNet`` does on top of
this (channels-last weights and activations, ReLU after pooling) is what the benchmarks measure
together with the rest of the core's path.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from weightspace.models import ConvNet, build_model, flat_parameters
from weightspace.spec import ModelSpec


class TutorialCNN(nn.Module):
    def __init__(self, like: ConvNet) -> None:
        super().__init__()
        self.conv1, self.conv2 = (
            nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, padding=c.padding)
            for c in (like.conv1, like.conv2)
        )
        self.fc1 = nn.Linear(like.fc1.in_features, like.fc1.out_features)
        self.dropout = nn.Dropout(like.dropout.p)
        self.fc2 = nn.Linear(like.fc2.in_features, like.fc2.out_features)
        nn.utils.vector_to_parameters(flat_parameters(like), self.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout(F.relu(self.fc1(x.flatten(1))))
        out: torch.Tensor = self.fc2(x)
        return out


def tutorial_model(
    spec: ModelSpec, input_shape: tuple[int, int, int], dropout: float, *, seed: int
) -> nn.Module:
    """The tutorial CNN with ``build_model``'s initial values (any other model: ``build_model``)."""
    model = build_model(spec, input_shape, dropout, seed=seed)
    return TutorialCNN(model) if isinstance(model, ConvNet) else model
