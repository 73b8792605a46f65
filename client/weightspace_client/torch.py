"""Upload snapshots from any PyTorch training loop.

::

    from weightspace_client.client import WeightspaceClient
    from weightspace_client.torch import SnapshotCallback

    ws = WeightspaceClient()
    experiment = ws.create_upload(name="my-resnet", replicas=1)
    snapshot = SnapshotCallback(ws, experiment["id"], model, run=0, every=5)
    snapshot(0)                          # the initialisation
    for epoch in range(1, epochs + 1):
        train_one_epoch(model)
        snapshot(epoch, metrics={"train_loss": loss})
    snapshot(epochs, force=True)         # the final epoch, whatever ``every`` says
    ws.complete(experiment["id"])

PyTorch is not imported by this module: the callback only calls ``model.state_dict()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from weightspace_client.client import WeightspaceClient
from weightspace_client.types import SnapshotInfo


class SnapshotCallback:
    """Upload ``model.state_dict()`` every ``every`` epochs (epoch 0 included).

    Parameters
    ----------
    client : WeightspaceClient
    experiment_id : str
        An uploaded experiment (``client.create_upload``).
    model : object with ``state_dict()``, or a callable returning a state dict
    run : int
        Which run of the experiment this loop trains.
    every : int
        Upload at epochs divisible by ``every``; ``force=True`` uploads any epoch.
    """

    def __init__(
        self,
        client: WeightspaceClient,
        experiment_id: str,
        model: Any,
        *,
        run: int = 0,
        every: int = 1,
    ) -> None:
        if every < 1:
            raise ValueError("every must be at least 1")
        self.client = client
        self.experiment_id = experiment_id
        self.run = int(run)
        self.every = int(every)
        self._state: Callable[[], Mapping[str, Any]] = (
            model.state_dict if hasattr(model, "state_dict") else model
        )
        self.uploaded: list[int] = []

    def __call__(
        self, epoch: int, *, metrics: Mapping[str, float] | None = None, force: bool = False
    ) -> SnapshotInfo | None:
        """Upload the model's state at ``epoch`` if it is due (or ``force``); return its info."""
        if not force and epoch % self.every != 0:
            return None
        if epoch in self.uploaded:
            return None
        info = self.client.upload(
            self.experiment_id, self.run, epoch, self._state(), metrics=metrics
        )
        self.uploaded.append(epoch)
        return info
