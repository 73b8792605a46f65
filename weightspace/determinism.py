"""Bitwise-reproducible training: the trainer's own thread count, deterministic kernels, TF32 policy.

Results must not depend on ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` or the machine's core count,
so the trainer runs its tensor operations on :data:`TRAIN_THREADS` intra-op threads whatever the
process was started with (:func:`deterministic`, which restores the process's settings after);
speed comes from training
replicas together, not from splitting one small operation across threads.

:func:`prepare_process` sets ``CUBLAS_WORKSPACE_CONFIG`` (cuBLAS reads it when its first handle is
created: the worker and the offline runner call it at start, the trainer again before it touches
the device); :func:`deterministic` turns on deterministic algorithms,
cuDNN's deterministic mode without autotuning, and an explicit TF32 policy: off (exact float32
matrix products) unless ``WEIGHTSPACE_TF32=1``. ``WEIGHTSPACE_DETERMINISM=warn`` downgrades an
operation without a deterministic kernel from an error to a warning (recorded with the run).

:func:`environment` is what is recorded with every run: torch version, device, CPU instruction
set, thread count and these settings. Bitwise equality is promised for the same environment;
another CPU instruction set or GPU may round differently.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

TRAIN_THREADS = 1
CUBLAS_WORKSPACE_CONFIG = ":4096:8"


def tf32_enabled() -> bool:
    return os.environ.get("WEIGHTSPACE_TF32", "0").strip().lower() in {"1", "true", "yes", "on"}


def strictness() -> str:
    """``error`` (default): a nondeterministic kernel raises; ``warn``: it warns."""
    value = os.environ.get("WEIGHTSPACE_DETERMINISM", "error").strip().lower()
    if value not in {"error", "warn"}:
        raise ValueError(f"WEIGHTSPACE_DETERMINISM must be 'error' or 'warn', not {value!r}")
    return value


def prepare_process() -> None:
    """Set ``CUBLAS_WORKSPACE_CONFIG`` unless given; call before the process first uses cuBLAS."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)


@contextmanager
def deterministic(threads: int = TRAIN_THREADS) -> Iterator[None]:
    """Run the block on ``threads`` intra-op threads with deterministic kernels and the TF32
    policy; restore the process's own settings afterwards."""
    prepare_process()
    before = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    )
    tf32 = tf32_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=strictness() == "warn")
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1], warn_only=before[2])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[3:5]
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before[5:7]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({platform.processor() or platform.machine()})"


def environment(device: torch.device, *, replicas_batched: bool) -> dict[str, str]:
    """What a run's numbers depend on beyond its spec; stored with every snapshot and run."""
    env = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": device_name(device),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": str(TRAIN_THREADS),
        "deterministic": strictness(),
        "replicas": "batched" if replicas_batched else "one by one",
    }
    if device.type == "cuda":
        env["cuda"] = str(torch.version.cuda)
        env["cudnn"] = str(torch.backends.cudnn.version())  # type: ignore[no-untyped-call]
        env["cublas_workspace_config"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG", "")
        env["tf32"] = "on" if tf32_enabled() else "off"
    return env
