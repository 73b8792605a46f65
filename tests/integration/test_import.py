"""Your own checkpoints into the service: ``weightspace import`` of PyTorch Lightning and Hugging
Face Trainer checkpoint folders (tiny models trained here), resumed after an interruption, and
the Lightning and Trainer callbacks, all against a live API on PostgreSQL."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from tests.integration.serving import serving
from tests.integration.test_uploads import settings
from weightspace_client import WeightspaceClient
from weightspace_client.cli import app as cli
from weightspace_service.app import create_app

pytestmark = pytest.mark.integration


@pytest.fixture
def ws(tmp_path: Path, migrated_postgres_url: str) -> Iterator[WeightspaceClient]:
    app = create_app(settings(tmp_path, migrated_postgres_url))
    with serving(app) as url, WeightspaceClient(url, timeout=120) as client:
        yield client


def weightspace(ws: WeightspaceClient, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, [*args, "--url", ws.base_url, "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def steps(ws: WeightspaceClient, experiment_id: str, run: int) -> list[int]:
    return [s["epoch"] for s in ws.list_snapshots(experiment_id, run)]


# -- PyTorch Lightning ---------------------------------------------------------------------------


def lightning_fit(folder: Path | None, seed: int, callbacks: list[Any] | None = None) -> None:
    """Three epochs of a tiny classifier (4 steps each); a checkpoint per epoch in ``folder``."""
    pl = pytest.importorskip("lightning.pytorch")

    class Tiny(pl.LightningModule):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2)
            )

        def training_step(self, batch: Any, index: int) -> torch.Tensor:
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self.net(x), y)
            self.log("train/loss", loss, on_epoch=True)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(seed)
    model = Tiny()
    data = torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
    every = [] if folder is None else [pl.callbacks.ModelCheckpoint(folder, save_top_k=-1)]
    # Lightning's deterministic=True turns torch's deterministic algorithms on for the whole
    # process, from the Trainer's construction on, and leaves them on: put the process's setting
    # back, or later tests in this process see it changed.
    before = torch.are_deterministic_algorithms_enabled()
    trainer = pl.Trainer(
        max_epochs=3,
        callbacks=[*every, *(callbacks or [])],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        deterministic=True,
    )
    try:
        trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=8))
    finally:
        torch.use_deterministic_algorithms(before)


def test_import_of_lightning_runs_resumes_where_it_stopped(
    ws: WeightspaceClient, tmp_path: Path
) -> None:
    root = tmp_path / "lightning"
    for seed in (0, 1):
        lightning_fit(root / f"seed-{seed}" / "checkpoints", seed)
    files = sorted((root / "seed-1" / "checkpoints").iterdir())
    assert [f.name for f in files] == [
        "epoch=0-step=4.ckpt",
        "epoch=1-step=8.ckpt",
        "epoch=2-step=12.ckpt",
    ]
    # Interrupted: seed-1's last checkpoint not there yet, and the experiment left open.
    held_back = tmp_path / files[-1].name
    shutil.move(files[-1], held_back)
    first = weightspace(ws, "import", str(root), "--name", "tiny", "--no-complete")
    eid = first["experiment"]
    assert first["uploaded"] == 5 and first["status"] == "running"
    shutil.move(held_back, files[-1])
    again = weightspace(ws, "import", str(root), "--name", "tiny")
    assert again["experiment"] == eid, "the same command continues the open experiment"
    assert (again["uploaded"], again["already_there"], again["status"]) == (1, 5, "succeeded")
    assert steps(ws, eid, 0) == steps(ws, eid, 1) == [4, 8, 12]
    last = list(ws.list_snapshots(eid, 1))[-1]
    assert last["metrics"]["step"] == 12 and last["metrics"]["epoch"] == 2
    saved = torch.load(files[-1], weights_only=True)["state_dict"]
    got = load_file(ws.download_state_dict(eid, 1, 12, tmp_path / "back.safetensors"))
    assert set(got) == set(saved) and all(torch.equal(got[k], saved[k]) for k in saved)
    assert len(ws.pca(eid)["points"]) == 6


def test_the_lightning_callback_uploads_what_import_reads(
    ws: WeightspaceClient, tmp_path: Path
) -> None:
    pytest.importorskip("lightning")
    from weightspace_client.lightning import WeightspaceCallback

    experiment = ws.create_upload(name="callback", replicas=1)
    folder = tmp_path / "checkpoints"
    lightning_fit(folder, 0, [WeightspaceCallback(ws, experiment["id"], strip_prefix="net.")])
    ws.complete(experiment["id"])
    assert steps(ws, experiment["id"], 0) == [0, 4, 8, 12]
    final = list(ws.list_snapshots(experiment["id"], 0))[-1]["metrics"]
    assert final["step"] == 12 and final["epoch"] == 2 and "train.loss_epoch" in final
    imported = weightspace(ws, "import", str(folder), "--strip-prefix", "net.")["experiment"]
    ours = load_file(ws.download_state_dict(experiment["id"], 0, 12, tmp_path / "a.safetensors"))
    theirs = load_file(ws.download_state_dict(imported, 0, 12, tmp_path / "b.safetensors"))
    assert set(ours) == set(theirs) and "0.weight" in ours
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


# -- Hugging Face Trainer ------------------------------------------------------------------------


def trainer_fit(output: Path, callbacks: list[Any] | None = None) -> None:
    """Two epochs of a tiny BERT classifier built from a config (nothing downloaded), 8 steps,
    a checkpoint every 2 steps in ``output``."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
        num_labels=2,
    )
    model = transformers.BertForSequenceClassification(config)
    generator = torch.Generator().manual_seed(0)
    data = [
        {
            "input_ids": torch.randint(0, 50, (8,), generator=generator),
            "labels": torch.tensor(i % 2),
        }
        for i in range(16)
    ]
    args = transformers.TrainingArguments(
        output_dir=str(output),
        num_train_epochs=2,
        per_device_train_batch_size=4,
        save_strategy="steps",
        save_steps=2,
        logging_steps=2,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    transformers.Trainer(model=model, args=args, train_dataset=data, callbacks=callbacks).train()


def test_import_of_trainer_checkpoints_and_the_trainer_callback(
    ws: WeightspaceClient, tmp_path: Path
) -> None:
    pytest.importorskip("transformers")
    from weightspace_client.huggingface import WeightspaceCallback

    experiment = ws.create_upload(name="bert-callback", replicas=1)
    trainer_fit(tmp_path / "out", [WeightspaceCallback(ws, experiment["id"])])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"checkpoint-{n}" for n in (2, 4, 6, 8)
    ]
    imported = weightspace(ws, "import", str(tmp_path / "out"), "--name", "bert")
    eid = imported["experiment"]
    assert imported["status"] == "succeeded" and steps(ws, eid, 0) == [2, 4, 6, 8]
    metrics = list(ws.list_snapshots(eid, 0))[1]["metrics"]
    assert metrics["step"] == 4 and metrics["epoch"] == 1.0 and "loss" in metrics
    ws.complete(experiment["id"])
    assert steps(ws, experiment["id"], 0) == [0, 2, 4, 6, 8]
    assert list(ws.list_snapshots(experiment["id"], 0))[2]["metrics"] == metrics
    theirs = load_file(ws.download_state_dict(eid, 0, 8, tmp_path / "a.safetensors"))
    ours = load_file(ws.download_state_dict(experiment["id"], 0, 8, tmp_path / "b.safetensors"))
    assert set(theirs) <= set(ours)  # the Trainer's file keeps one name of tied weights
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert len(ws.pca(eid)["points"]) == 4


def test_import_says_what_is_wrong(ws: WeightspaceClient, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "one").mkdir()
    torch.save({"w": torch.zeros(3)}, tmp_path / "one" / "step-1.pt")
    for args, message in (
        ([str(tmp_path / "nowhere")], "does not exist"),
        ([str(tmp_path / "empty")], "found no checkpoint"),
        ([str(tmp_path), "--number-by", "epoch"], "step or position"),
        ([str(tmp_path / "one"), "--experiment", "no-such-name"], "no experiment has"),
    ):
        result = CliRunner().invoke(cli, ["import", *args, "--url", ws.base_url])
        assert result.exit_code != 0, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)
