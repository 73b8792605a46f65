"""Upload snapshots from a PyTorch Lightning ``Trainer``: a callback beside ``SnapshotCallback``.

::

    from lightning.pytorch import Trainer
    from weightspace_client.client import WeightspaceClient
    from weightspace_client.lightning import WeightspaceCallback

    with WeightspaceClient() as ws:
        experiment = ws.create_upload(name="my-lightning-model", replicas=1)
        trainer = Trainer(max_epochs=10, callbacks=[WeightspaceCallback(ws, experiment["id"])])
        trainer.fit(model, data)
        ws.complete(experiment["id"])

Snapshots are numbered by the trainer's ``global_step`` (0: the weights before training), as
``weightspace import`` numbers Lightning's ``epoch=E-step=S.ckpt`` files, so the two agree; each
carries ``step``, ``epoch`` (Lightning's, as its checkpoints record it) and the logged
``callback_metrics`` (names with ``/`` get ``.``). Tensor names are ``LightningModule``'s own
(``strip_prefix`` removes one, as ``import --strip-prefix`` does).

Needs ``lightning`` (2.x); the rest of the client does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:
    raise ImportError(
        "weightspace_client.lightning needs PyTorch Lightning: pip install lightning"
    ) from None

from weightspace_client.checkpoints import is_metric, metric_name
from weightspace_client.client import WeightspaceClient

#: At most this many metrics go with a snapshot (the API's limit).
MAX_METRICS = 64


class WeightspaceCallback(Callback):  # type: ignore[misc,unused-ignore]  # untyped without it
    """Upload ``pl_module.state_dict()`` before training and after every ``every`` epochs.

    Parameters
    ----------
    client : WeightspaceClient
    experiment_id : str
        An uploaded experiment (``client.create_upload``), still open.
    run : int
        Which run of the experiment this trainer trains.
    every : int
        Upload after epochs 1 * every, 2 * every, ... and after the last one.
    initial : bool
        Also upload the weights before training (snapshot 0).
    strip_prefix : str, optional
        Removed from the front of each tensor name.
    """

    def __init__(
        self,
        client: WeightspaceClient,
        experiment_id: str,
        *,
        run: int = 0,
        every: int = 1,
        initial: bool = True,
        strip_prefix: str | None = None,
    ) -> None:
        if every < 1:
            raise ValueError("every must be at least 1")
        self.client = client
        self.experiment_id = experiment_id
        self.run = int(run)
        self.every = int(every)
        self.initial = initial
        self.strip_prefix = strip_prefix
        #: The steps uploaded so far.
        self.uploaded: list[int] = []

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self.initial and trainer.global_step == 0:
            self._upload(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        done = trainer.current_epoch + 1
        last = trainer.max_epochs is not None and done >= trainer.max_epochs
        if done % self.every == 0 or last or trainer.should_stop:
            self._upload(trainer, pl_module)

    def _upload(self, trainer: Any, pl_module: Any) -> None:
        step = int(trainer.global_step)
        if not trainer.is_global_zero or step in self.uploaded:
            return
        state = pl_module.state_dict()
        if self.strip_prefix:
            state = {k.removeprefix(self.strip_prefix): v for k, v in state.items()}
        metrics = {
            **_numbers(trainer.callback_metrics),
            "step": step,
            "epoch": trainer.current_epoch,
        }
        self.client.upload(self.experiment_id, self.run, step, state, metrics=metrics)
        self.uploaded.append(step)


def _numbers(logged: Mapping[str, Any]) -> dict[str, float]:
    """The logged metrics that are one finite number each, under names the API takes."""
    numbers: dict[str, float] = {}
    for name, value in logged.items():
        if hasattr(value, "numel"):
            if value.numel() != 1:
                continue
            value = value.item()
        if is_metric(value) and len(numbers) < MAX_METRICS - 2:  # room for step and epoch
            numbers[metric_name(name)] = float(value)
    return numbers
