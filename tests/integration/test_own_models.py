"""Your own models beside the service's: uploads joined with trained runs (one canonical layout),
landscape planes of uploads that declare a model the service knows, and of architectures it
cannot build, evaluated by the client; through the API and a real worker process."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from torch import nn

from tests.integration import test_landscape_jobs
from weightspace.data import load_dataset
from weightspace.spec import DatasetSpec
from weightspace_client import ApiError, WeightspaceClient
from weightspace_client.planes import evaluate

pytestmark = [pytest.mark.integration, pytest.mark.slow]
home, ws = test_landscape_jobs.home, test_landscape_jobs.ws  # a worker process beside the API
until_ready = test_landscape_jobs.until_ready

DIGITS = {"name": "digits", "train_size": 200, "test_size": 100}
MLP = {"kind": "mlp", "hidden": [8]}
SPEC = {
    "dataset": DIGITS,
    "model": MLP,
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
    "epochs": 3,
    "batch_size": 32,
}


class PlainMLP(nn.Module):
    """The service's ``mlp`` (hidden [8] on 8x8 digits) in plain torch.nn: ``hidden.<i>`` and
    ``out``, as the README says."""

    def __init__(self, sizes: tuple[int, ...] = (64, 8)) -> None:
        super().__init__()
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.out = nn.Linear(sizes[-1], 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.hidden:
            x = torch.relu(layer(x))
        out: torch.Tensor = self.out(x)
        return out


class Unknown(nn.Module):
    """An architecture the service cannot build (its own module names)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 6), nn.Tanh())
        self.head = nn.Linear(6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.encoder(x))
        return out


def _digits() -> list[tuple[torch.Tensor, torch.Tensor]]:
    data = load_dataset(DatasetSpec(name="digits", train_size=200, test_size=100))
    return [(data.x_train[i : i + 50], data.y_train[i : i + 50]) for i in range(0, 200, 50)]


def _train_and_upload(
    ws: WeightspaceClient, experiment_id: str, model: nn.Module, epochs: int = 3
) -> list[np.ndarray]:
    """Train ``model`` on digits with plain SGD, uploading its state dict at every epoch;
    return the uploaded state dicts' vectors in canonical (sorted-name) order."""
    torch.manual_seed(0)
    batches = _digits()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    vectors = []
    for epoch in range(epochs + 1):
        if epoch:
            for x, y in batches:
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()  # type: ignore[no-untyped-call]
                optimizer.step()
        state = model.state_dict()
        ws.upload(experiment_id, 0, epoch, model, metrics={"train_loss": 0.1, "lr": 0.1})
        vectors.append(
            np.concatenate([state[n].detach().double().reshape(-1).numpy() for n in sorted(state)])
        )
    ws.complete(experiment_id)
    return vectors


def _trained_vectors(ws: WeightspaceClient, experiment_id: str) -> list[np.ndarray]:
    """A trained run's snapshots in canonical order, through the state-dict download."""
    from safetensors.numpy import load

    vectors = []
    for snapshot in ws.list_snapshots(experiment_id, 0):
        response = ws.http.get(
            f"/experiments/{experiment_id}/runs/0/snapshots/{snapshot['epoch']}",
            params={"format": "state_dict"},
        )
        state = load(response.content)
        vectors.append(np.concatenate([state[n].astype(np.float64).ravel() for n in sorted(state)]))
    return vectors


def test_an_upload_of_the_mlp_joins_a_trained_run(ws: WeightspaceClient) -> None:
    trained = ws.submit(SPEC)["id"]
    uploaded = ws.create_upload(name="plain torch mlp")["id"]
    ours = _train_and_upload(ws, uploaded, PlainMLP())
    assert ws.wait(trained, poll=0.5, timeout=180)["status"] == "succeeded"

    selection: list[dict[str, Any]] = [
        {"experiment": uploaded},
        {"experiment": trained, "runs": [0]},
    ]
    result = ws.analyse("pca", selection, components=3, poll=0.2, timeout=120)
    union = np.stack([*ours, *_trained_vectors(ws, trained)])
    reference = PCA(n_components=3, svd_solver="full").fit(union)
    theirs = reference.transform(union)
    pca = result["pca"]
    assert pca is not None
    got = np.asarray(pca["coordinates"])
    flips = np.sign(np.sum(got * theirs, axis=0))
    difference = np.abs(got - theirs * flips).max()
    scale = np.abs(theirs).max()
    print(f"joint PCA vs scikit-learn: max |difference| {difference:.3g} (scale {scale:.3g})")
    assert difference <= 1e-9 * scale
    np.testing.assert_allclose(pca["explained_variance"], reference.explained_variance_, rtol=1e-9)

    other = ws.create_upload()["id"]
    _train_and_upload(ws, other, PlainMLP((64, 7)), epochs=2)
    with pytest.raises(ApiError) as refused:
        ws.analyse("pca", [{"experiment": trained}, {"experiment": other}], poll=0.2)
    assert refused.value.status == 422
    assert "'hidden.0.bias' has shape [7], expected [8]" in str(refused.value)


def test_an_upload_declaring_the_mlp_gets_planes_from_the_service(
    ws: WeightspaceClient,
) -> None:
    eid = ws.create_upload(model=MLP, dataset=DIGITS)["id"]
    _train_and_upload(ws, eid, PlainMLP())
    path = f"/experiments/{eid}/landscape?resolution=5"
    plane = until_ready(ws.http, path, ws.http.get(path))
    assert plane.status_code == 200, plane.text
    body = plane.json()
    assert body["evaluated_by"] == "service" and np.shape(body["train_loss"]) == (5, 5)
    assert body["train_examples"] == 200 and body["test_examples"] == 100

    wrong = ws.create_upload(model=MLP, dataset=DIGITS)["id"]
    with pytest.raises(ApiError) as refused:
        ws.upload(wrong, 0, 0, Unknown())
    assert refused.value.status == 422 and "tensor 'encoder.1.bias'" in str(refused.value)


def test_a_plane_of_an_unknown_architecture_is_evaluated_by_the_client(
    ws: WeightspaceClient,
) -> None:
    eid = ws.create_upload()["id"]
    _train_and_upload(ws, eid, Unknown())
    refused = ws.http.get(f"/experiments/{eid}/landscape")
    assert refused.status_code == 409
    assert refused.json()["title"] == "Not available for this experiment"
    assert "landscape/plane" in refused.json()["detail"]

    batches = _digits()
    landscape = evaluate(ws, eid, Unknown, batches, batches[:1], resolution=5)
    assert landscape["evaluated_by"] == "client" and landscape["train_examples"] == 200
    assert landscape["test_examples"] == 50 and np.asarray(landscape["test_loss"]).shape == (5, 5)
    served = ws.landscape(eid, resolution=5, normalisation="filter")
    assert served == landscape
    # The centre is the final snapshot: its loss is the trained model's.
    model = Unknown()
    torch.manual_seed(0)
    final = ws.http.get(f"/experiments/{eid}/runs/0/snapshots/3", params={"format": "state_dict"})
    from safetensors.torch import load

    model.load_state_dict(load(final.content))
    with torch.no_grad():
        loss = np.mean([nn.functional.cross_entropy(model(x), y).item() for x, y in batches])
    assert landscape["train_loss"][2][2] == pytest.approx(loss, rel=1e-5)
    # Uploaded metrics are shown: the run's train loss, and custom ones on the page.
    assert ws.list_runs(eid)[0]["train_loss"] == 0.1
    page = ws.http.get(f"/ui/experiments/{eid}").text
    assert "<th>Train loss</th><th>Lr</th>" in page and "<td>0.1</td><td>0.1</td>" in page
    svg = ws.landscape_svg(eid, resolution=5, normalisation="filter")
    assert svg is not None and b"<svg" in svg

    bad = ws.http.put(
        f"/experiments/{eid}/landscape",
        params={"resolution": 5, "normalisation": "filter"},
        json={"train_loss": [[1.0] * 4] * 5, "train_examples": 10},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("train_loss")


def test_buffers_and_tied_weights(ws: WeightspaceClient) -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.norm = nn.BatchNorm1d(4)
            self.decode = nn.Linear(4, 10)
            self.decode.weight = self.embed.weight

    model = Tied()
    both = ws.create_upload()["id"]
    info = ws.upload(both, 0, 0, model)
    # embed 40 + decode.bias 10 + BatchNorm weight, bias, running mean and variance 4 each.
    assert info["parameters"] == 66
    only = ws.create_upload(include="parameters")["id"]
    assert ws.upload(only, 0, 0, model)["parameters"] == 58
    assert ws.get_experiment(only)["spec"]["include"] == "parameters"
    back = ws.http.get(f"/experiments/{only}/runs/0/snapshots/0", params={"format": "state_dict"})
    from safetensors.torch import load

    state = load(back.content)
    assert set(state) == set(model.state_dict())
    assert torch.equal(state["decode.weight"], state["embed.weight"])
