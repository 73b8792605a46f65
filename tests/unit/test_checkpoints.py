"""Finding, ordering and reading checkpoints for ``weightspace import`` (no service)."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

from weightspace_client import checkpoints
from weightspace_client.checkpoints import CheckpointError, find_runs, read


def _state(value: float) -> dict[str, torch.Tensor]:
    return {"net.0.weight": torch.full((2, 3), value), "net.0.bias": torch.zeros(2)}


def _names(run: checkpoints.RunCheckpoints) -> list[tuple[str, int]]:
    return [(c.path.name, c.number) for c in run.checkpoints]


def test_lightning_files_order_by_step_and_last_ckpt_is_left_out(tmp_path: Path) -> None:
    for name in ("epoch=10-step=110.ckpt", "epoch=2-step=30.ckpt", "epoch=0-step=10.ckpt"):
        torch.save({"state_dict": _state(1.0), "epoch": 0, "global_step": 10}, tmp_path / name)
    torch.save({"state_dict": _state(1.0)}, tmp_path / "last.ckpt")
    (run,) = find_runs(tmp_path)
    assert _names(run) == [
        ("epoch=0-step=10.ckpt", 10),
        ("epoch=2-step=30.ckpt", 30),
        ("epoch=10-step=110.ckpt", 110),
    ]
    assert run.skipped and "last.ckpt" in run.skipped[0]
    (by_position,) = find_runs(tmp_path, by="position")
    assert [c.number for c in by_position.checkpoints] == [0, 1, 2]


def test_runs_are_sub_folders_or_a_glob_and_trainer_files_are_not_checkpoints(
    tmp_path: Path,
) -> None:
    for run in ("seed-1", "seed-0"):
        for step in (4, 2):
            folder = tmp_path / run / "out" / f"checkpoint-{step}"
            folder.mkdir(parents=True)
            save_file(_state(float(step)), str(folder / "model.safetensors"))
            torch.save({}, folder / "optimizer.pt")
            (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (tmp_path / "notes").mkdir()
    runs = find_runs(tmp_path)
    assert [r.folder.name for r in runs] == ["seed-0", "seed-1"]
    assert [_names(r) for r in runs] == [[("checkpoint-2", 2), ("checkpoint-4", 4)]] * 2
    assert [r.folder.name for r in find_runs(tmp_path, runs_glob="seed-1")] == ["seed-1"]
    with pytest.raises(CheckpointError, match="no folder"):
        find_runs(tmp_path, runs_glob="run-*")
    with pytest.raises(CheckpointError, match="found no checkpoint"):
        find_runs(tmp_path / "notes")


def test_two_files_with_one_step_are_refused(tmp_path: Path) -> None:
    save_file(_state(0.0), str(tmp_path / "a-step-5.safetensors"))
    save_file(_state(0.0), str(tmp_path / "b-step-5.safetensors"))
    with pytest.raises(CheckpointError, match="both have step 5"):
        find_runs(tmp_path)


def test_reading_keeps_or_strips_names_and_records_step_and_epoch(tmp_path: Path) -> None:
    saved = {"state_dict": {f"model.{k}": v for k, v in _state(2.0).items()}}
    torch.save({**saved, "epoch": 3, "global_step": 40}, tmp_path / "epoch=3-step=40.ckpt")
    save_file(_state(2.0), str(tmp_path / "plain-7.safetensors"), metadata={"format": "pt"})
    plain, lightning = find_runs(tmp_path)[0].checkpoints  # steps 7, then 40
    snapshot = read(lightning)
    assert snapshot.metrics == {"step": 40.0, "epoch": 3.0}
    assert set(load_safetensors(snapshot.body)) == {"model.net.0.weight", "model.net.0.bias"}
    stripped = load_safetensors(read(lightning, strip_prefix="model.").body)
    assert torch.equal(stripped["net.0.weight"], torch.full((2, 3), 2.0))
    renamed = load_safetensors(read(plain, strip_prefix="net.").body)
    assert set(renamed) == {"0.weight", "0.bias"}
    assert torch.equal(renamed["0.weight"], torch.full((2, 3), 2.0))


def test_trainer_folder_metrics_are_those_logged_at_its_step(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint-4"
    folder.mkdir()
    torch.save(_state(1.0), folder / "pytorch_model.bin")
    state = {
        "global_step": 4,
        "epoch": 1.0,
        "log_history": [
            {"step": 2, "loss": 0.9},
            {"step": 4, "loss": 0.7, "eval/accuracy": 0.5, "grad_norm": float("nan")},
        ],
    }
    (folder / "trainer_state.json").write_text(json.dumps(state))
    (checkpoint,) = find_runs(folder)[0].checkpoints
    assert read(checkpoint).metrics == {"step": 4, "epoch": 1.0, "loss": 0.7, "eval.accuracy": 0.5}


def test_a_sharded_trainer_folder_and_a_pickle_say_what_is_wrong(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint-1"
    folder.mkdir()
    (folder / "model.safetensors.index.json").write_text("{}")
    with pytest.raises(CheckpointError, match="sharded"):
        read(find_runs(folder)[0].checkpoints[0])
    (tmp_path / "x-3.pt").write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match="weights_only"):
        read(checkpoints.Checkpoint(tmp_path / "x-3.pt", 3))


def test_without_torch_safetensors_still_import_and_others_say_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_file(_state(1.0), str(tmp_path / "a-1.safetensors"))
    torch.save(_state(1.0), tmp_path / "a-2.pt")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    first, second = find_runs(tmp_path)[0].checkpoints
    assert read(first).body == (tmp_path / "a-1.safetensors").read_bytes()
    with pytest.raises(CheckpointError, match="needs PyTorch"):
        read(second)


def test_a_damaged_safetensors_header_is_refused_when_renaming(tmp_path: Path) -> None:
    path = tmp_path / "bad-1.safetensors"
    path.write_bytes(struct.pack("<Q", 4) + b"[1]x")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        read(checkpoints.Checkpoint(path, 1), strip_prefix="a")


def test_without_torch_the_whole_folder_is_refused_before_any_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_file(_state(1.0), str(tmp_path / "a-1.safetensors"))
    torch.save(_state(1.0), tmp_path / "a-2.pt")
    runs = find_runs(tmp_path)
    checkpoints.check_readable(runs)  # torch is here
    monkeypatch.setattr(checkpoints.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CheckpointError, match=r"a-2\.pt \(and 0 more\) needs PyTorch"):
        checkpoints.check_readable(runs)
    checkpoints.check_readable(find_runs(tmp_path / "a-1.safetensors"))
