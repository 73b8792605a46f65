"""Find and read training checkpoints on disk, for ``weightspace import``.

A checkpoint is one of:

- a ``.safetensors`` file (read as it is: no PyTorch needed);
- a ``.pt``, ``.pth`` or ``.bin`` file holding a state dict (or ``{"state_dict": ...}``,
  ``{"model_state_dict": ...}``, ``{"model": ...}``);
- a PyTorch Lightning ``.ckpt`` file (its ``state_dict``, ``epoch`` and ``global_step``);
- a Hugging Face ``Trainer`` folder ``checkpoint-N/`` (its ``model.safetensors`` or
  ``pytorch_model.bin``, and ``trainer_state.json``: step, epoch and the numbers logged at N).

Everything but ``.safetensors`` is read with ``torch.load(weights_only=True)`` (tensors and
plain containers only, never arbitrary pickled objects); PyTorch is imported only then.

Each checkpoint has a number, the snapshot's ``epoch`` in the API: the step in its name
(``checkpoint-N``, Lightning's ``step=N``, else the last number in the file name), or with
``by="position"`` its place in that order (0, 1, ...). Files without a number beside numbered
ones (Lightning's ``last.ckpt``, a copy of the latest) are left out and reported.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard

from weightspace_client.errors import WeightspaceError
from weightspace_client.tensors import encode_safetensors

#: File suffixes that hold one checkpoint each.
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
SUFFIXES = (".safetensors", *TORCH_SUFFIXES)
#: What a Hugging Face Trainer checkpoint folder holds its weights in, by preference.
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
HF_STATE = "trainer_state.json"
#: Keys under which a saved dict keeps the model's state dict, in the order they are tried.
STATE_KEYS = ("state_dict", "model_state_dict", "model")

NumberBy = Literal["step", "position"]
_STEP = re.compile(r"(?:^|[-_=])step[=_-]?(\d+)", re.IGNORECASE)
_CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


class CheckpointError(WeightspaceError):
    """A checkpoint that cannot be read, or a folder that holds none."""


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint on disk and the snapshot number it takes."""

    path: Path
    number: int

    @property
    def hugging_face(self) -> bool:
        return self.path.is_dir()


@dataclass
class RunCheckpoints:
    """One run: its folder, its checkpoints in order and the files left out (with why)."""

    folder: Path
    checkpoints: list[Checkpoint]
    skipped: list[str] = field(default_factory=list)


def _is_hf_folder(path: Path) -> bool:
    return path.is_dir() and (bool(_CHECKPOINT_DIR.match(path.name)) or (path / HF_STATE).is_file())


def _candidates(folder: Path, *, recursive: bool) -> Iterator[Path]:
    """Checkpoint files and Trainer folders under ``folder`` (a Trainer folder's own files,
    optimizer.pt and the like, are never candidates)."""
    for entry in sorted(folder.iterdir()):
        if _is_hf_folder(entry):
            yield entry
        elif entry.is_dir():
            if recursive:
                yield from _candidates(entry, recursive=True)
        elif entry.suffix.lower() in SUFFIXES and entry.is_file():
            yield entry


def _name_number(path: Path) -> int | None:
    if match := _CHECKPOINT_DIR.match(path.name):
        return int(match.group(1))
    stem = path.name if path.is_dir() else path.stem
    if match := _STEP.search(stem):
        return int(match.group(1))
    if match := _LAST_NUMBER.search(stem):
        return int(match.group(1))
    return None


def _natural(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def order(folder: Path, paths: Sequence[Path], by: NumberBy = "step") -> RunCheckpoints:
    """Number and order the checkpoints ``paths`` of one run (see the module's docstring)."""
    numbers = {path: _name_number(path) for path in paths}
    run = RunCheckpoints(folder, [])
    numbered = [p for p in paths if numbers[p] is not None]
    if numbered and len(numbered) < len(paths):
        run.skipped = [
            f"{p.relative_to(folder)}: no step in its name beside numbered checkpoints"
            for p in paths
            if numbers[p] is None
        ]
        paths = numbered
    if by == "position" or not numbered:
        ordered = sorted(paths, key=lambda p: (numbers[p] or 0, _natural(p)))
        run.checkpoints = [Checkpoint(p, i) for i, p in enumerate(ordered)]
        return run
    ordered = sorted(paths, key=lambda p: (numbers[p], _natural(p)))
    seen: dict[int, Path] = {}
    for path in ordered:
        number = numbers[path]
        assert number is not None
        if number in seen:
            raise CheckpointError(
                f"{seen[number]} and {path} both have step {number} in their names; "
                "import them with --number-by position, or from separate folders"
            )
        seen[number] = path
        run.checkpoints.append(Checkpoint(path, number))
    return run


def find_runs(
    root: Path, *, runs_glob: str | None = None, by: NumberBy = "step"
) -> list[RunCheckpoints]:
    """The runs under ``root``, each with its checkpoints in order.

    ``root`` is one run when it is a checkpoint itself or directly holds checkpoints; else each
    sub-folder holding checkpoints (at any depth) is a run, in name order. ``runs_glob``
    chooses the run folders instead: those under ``root`` whose path relative to it matches.
    """
    if not root.exists():
        raise CheckpointError(f"{root} does not exist")
    if root.is_file() or _is_hf_folder(root):
        if root.is_file() and root.suffix.lower() not in SUFFIXES:
            raise CheckpointError(f"{root} is not a checkpoint ({', '.join(SUFFIXES)})")
        return [order(root.parent, [root], by)]
    if runs_glob is not None:
        folders = sorted(
            (p for p in root.glob(runs_glob) if p.is_dir()),
            key=lambda p: _natural(p.relative_to(root)),
        )
        if not folders:
            raise CheckpointError(f"no folder under {root} matches {runs_glob!r}")
    elif list(_candidates(root, recursive=False)):
        folders = [root]
    else:
        folders = [p for p in sorted(root.iterdir(), key=_natural) if p.is_dir()]
    runs = []
    for folder in folders:
        paths = list(_candidates(folder, recursive=folder != root))
        if paths:
            runs.append(order(folder, paths, by))
    if not runs:
        raise CheckpointError(
            f"found no checkpoint under {root} (files ending in {', '.join(SUFFIXES)}, or "
            "Hugging Face Trainer folders checkpoint-N)"
        )
    return runs


def needs_torch(checkpoint: Checkpoint) -> bool:
    """Whether reading ``checkpoint`` takes PyTorch (anything but safetensors weights)."""
    path = checkpoint.path
    if checkpoint.hugging_face:
        return not (path / HF_WEIGHTS[0]).is_file()
    return path.suffix.lower() != ".safetensors"


def check_readable(runs: Sequence[RunCheckpoints]) -> None:
    """Raise :class:`CheckpointError` now, before anything is uploaded, if a checkpoint needs
    PyTorch and it is not installed."""
    torch_files = [c.path for run in runs for c in run.checkpoints if needs_torch(c)]
    if torch_files and importlib.util.find_spec("torch") is None:
        raise CheckpointError(
            f"reading {torch_files[0].name} (and {len(torch_files) - 1} more) needs PyTorch, "
            "which the light client does not install: `pip install torch` beside it "
            "(.safetensors files need nothing more)"
        )


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What is uploaded for one checkpoint: a safetensors file's bytes and its metrics."""

    body: bytes
    metrics: dict[str, float]


def read(checkpoint: Checkpoint, *, strip_prefix: str | None = None) -> Snapshot:
    """The checkpoint as safetensors bytes, its names without ``strip_prefix``, and the numbers
    it records (``step``, ``epoch``; for a Trainer folder also what was logged at its step)."""
    path = checkpoint.path
    metrics: dict[str, float] = {}
    if checkpoint.hugging_face:
        metrics = trainer_metrics(path / HF_STATE)
        weights = [path / name for name in HF_WEIGHTS if (path / name).is_file()]
        if not weights:
            raise CheckpointError(
                f"{path} holds neither {' nor '.join(HF_WEIGHTS)} (sharded weights are not read; "
                "save with a larger max_shard_size)"
            )
        path = weights[0]
    if path.suffix.lower() == ".safetensors":
        body = path.read_bytes()
        if strip_prefix:
            body = rename_safetensors(body, lambda name: name.removeprefix(strip_prefix), path)
        return Snapshot(body, metrics)
    saved = _torch_load(path)
    state, recorded = _state_dict(saved, path)
    if strip_prefix:
        stripped = {name.removeprefix(strip_prefix): value for name, value in state.items()}
        if len(stripped) < len(state):
            raise CheckpointError(f"{path}: tensor names repeat once {strip_prefix!r} is removed")
        state = stripped
    return Snapshot(encode_safetensors(state), {**recorded, **metrics})


def _torch_load(path: Path) -> Any:
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"reading {path.suffix} checkpoints needs PyTorch, which the light client does not "
            "install: `pip install torch` beside it (.safetensors files need nothing more)"
        ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds (UnpicklingError, RuntimeError, ...)
        raise CheckpointError(
            f"cannot read {path} as a PyTorch checkpoint with weights_only=True: {error}"
        ) from None


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "dtype")


def _state_dict(saved: Any, path: Path) -> tuple[dict[str, Any], dict[str, float]]:
    """(state dict, recorded step and epoch) of what ``torch.load`` gave for ``path``."""
    if not isinstance(saved, Mapping):
        raise CheckpointError(f"{path} holds a {type(saved).__name__}, not a state dict")
    recorded: dict[str, float] = {}
    for source, name in (("global_step", "step"), ("step", "step"), ("epoch", "epoch")):
        value = saved.get(source)
        if is_metric(value) and name not in recorded:
            recorded[name] = float(value)
    state: Any = saved
    for key in STATE_KEYS:
        if isinstance(saved.get(key), Mapping):
            state = saved[key]
            break
    tensors = {str(name): value for name, value in state.items() if _is_tensor(value)}
    if not tensors:
        raise CheckpointError(
            f"{path} holds no tensors (its keys: {', '.join(map(str, list(saved)[:10]))})"
        )
    return tensors, recorded


def trainer_metrics(path: Path) -> dict[str, float]:
    """:func:`trainer_state_metrics` of a Trainer's ``trainer_state.json`` ({} without one)."""
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"cannot read {path}: {error}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return trainer_state_metrics(state)


def trainer_state_metrics(state: Mapping[str, Any]) -> dict[str, float]:
    """``step`` and ``epoch`` of a Trainer's state (``global_step``, ``epoch``, ``log_history``
    as ``trainer_state.json`` holds them), and the numbers logged at that step, under metric
    names the API takes (``loss``: the mean training loss since the previous log, not the loss
    of the weights saved; ``eval_loss``, ``learning_rate``, ...)."""
    metrics: dict[str, float] = {}
    step = state.get("global_step")
    for entry in state.get("log_history") or []:
        if isinstance(entry, Mapping) and entry.get("step") == step:
            metrics.update({metric_name(k): float(v) for k, v in entry.items() if is_metric(v)})
    for source, name in (("global_step", "step"), ("epoch", "epoch")):
        if is_metric(state.get(source)):
            metrics[name] = float(state[source])
    return metrics


def metric_name(name: str) -> str:
    """``name`` as the API takes a metric's name (letters, digits, ``_ . -``; ``/`` -> ``.``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", str(name).replace("/", "."))[:64]
    return cleaned if re.match(r"^[A-Za-z_]", cleaned) else f"_{cleaned}"[:64]


def is_metric(value: Any) -> TypeGuard[int | float]:
    """A finite int or float (not a bool): what the API takes as a metric."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def rename_safetensors(data: bytes, rename: Callable[[str], str], path: Path) -> bytes:
    """The safetensors file ``data`` with each tensor name passed through ``rename`` (the
    tensor bytes are not touched)."""
    if len(data) < 8:
        raise CheckpointError(f"{path} is not a safetensors file")
    (length,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + length])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path} is not a safetensors file") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is not a safetensors file")
    renamed = {k if k == "__metadata__" else rename(k): v for k, v in header.items()}
    if len(renamed) < len(header):
        raise CheckpointError(f"{path}: tensor names repeat once renamed")
    text = json.dumps(renamed, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + length :]
