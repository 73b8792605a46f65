"""Bitwise-reproducible training: the trainer's own thread count, deterministic kernels, TF32 policy.

Results must not depend on ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` or the machine's core count.
Three things see to it:

- the inputs: images are standardised with statistics computed exactly from the integer pixels
  (:mod:`weightspace.data`), not by a float reduction whose bits follow the thread count;
- the operations: the trainer runs them on :data:`TRAIN_THREADS` intra-op threads whatever the
  process was started with (:func:`deterministic`), in every thread that computes for it
  (:func:`pin_thread` as a pool's initializer: OpenMP's count is a per-thread setting); speed
  comes from training replicas side by side, not from splitting one small operation;
- the kernels: :func:`deterministic` turns on deterministic algorithms, cuDNN's deterministic
  mode without autotuning, and an explicit TF32 policy: off (exact float32 matrix products)
  unless ``WEIGHTSPACE_TF32=1``. ``WEIGHTSPACE_DETERMINISM=warn`` downgrades an operation
  without a deterministic kernel from an error to a warning (recorded with the run).

:func:`prepare_process` sets ``CUBLAS_WORKSPACE_CONFIG`` (cuBLAS reads it when its first handle is
created: the worker and the offline runner call it at start, the trainer again before it touches
the device).

:func:`environment` is what is recorded with every run: torch version, device, CPU instruction
set, thread count and these settings. Bitwise equality is promised for the same torch version,
device and CPU instruction set (``cpu_capability``), whatever the thread variables and core
count; another instruction set or GPU may round differently (``weightspace verify`` replays a
stored step to check).
"""

from __future__ import annotations

import os
import platform
import threading
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


_lock = threading.Lock()
_holders = 0
_saved: tuple[int, bool, bool, bool, bool, bool, bool] = (
    1,
    False,
    False,
    False,
    False,
    False,
    False,
)


def pin_thread(threads: int = TRAIN_THREADS) -> None:
    """Give the calling thread ``threads`` intra-op threads. Whether a count set in one thread
    reaches another depends on OpenMP's per-thread state (measured: sometimes it does, sometimes
    not), so every thread that computes for a deterministic block sets it itself: the block's
    own thread on entry, the threads it starts as a pool's ``initializer``."""
    torch.set_num_threads(threads)


def _enter() -> None:
    global _holders, _saved
    with _lock:
        if _holders == 0:
            _saved = (
                torch.get_num_threads(),
                torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.deterministic,
                torch.backends.cudnn.benchmark,
                torch.backends.cuda.matmul.allow_tf32,
                torch.backends.cudnn.allow_tf32,
            )
            tf32 = tf32_enabled()
            torch.use_deterministic_algorithms(True, warn_only=strictness() == "warn")
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
        _holders += 1


def _leave() -> None:
    global _holders
    with _lock:
        _holders -= 1
        if _holders == 0:
            threads, algorithms, warn_only, cudnn, benchmark, matmul, conv = _saved
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(algorithms, warn_only=warn_only)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn, benchmark
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, conv


@contextmanager
def deterministic(threads: int = TRAIN_THREADS) -> Iterator[None]:
    """Run the block on ``threads`` intra-op threads with deterministic kernels and the TF32
    policy; restore the process's settings when the last such block ends.

    Blocks may overlap on several threads (a worker's jobs, the API's analysis pool) and the
    settings reach across threads (the kernel flags always, the thread count often): the first
    block to enter saves them and the last to leave restores them, so no block changes them
    under another's feet. Threads that the block starts call :func:`pin_thread`.
    """
    prepare_process()
    _enter()
    pin_thread(threads)
    try:
        yield
    finally:
        _leave()


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
