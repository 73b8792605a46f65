"""What training minimises and how: the loss and the optimizer, shared by every way of training."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.nn import functional as F

from weightspace.spec import ExperimentSpec


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy of ``logits`` against one-hot ``targets`` (see :func:`one_hot`).

    Written as log-softmax times one-hot so that forward and backward are elementwise operations
    and reductions only: deterministic on every device, where CUDA's ``nll_loss`` is listed among
    the operations without a deterministic kernel.
    """
    return -(F.log_softmax(logits, dim=-1) * targets).sum(-1)


def one_hot(y: torch.Tensor, classes: int) -> torch.Tensor:
    return F.one_hot(y, classes).to(torch.float32)


def make_optimizer(spec: ExperimentSpec, params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
    opt = spec.optimizer
    if opt.name == "sgd":
        return torch.optim.SGD(
            params,
            lr=opt.lr,
            momentum=opt.momentum,
            nesterov=opt.nesterov,
            weight_decay=opt.weight_decay,
        )
    return torch.optim.Adam(
        params,
        lr=opt.lr,
        betas=(opt.betas[0], opt.betas[1]),
        weight_decay=opt.weight_decay,
    )
