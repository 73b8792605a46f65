"""Upload snapshots from a Hugging Face ``transformers.Trainer``: a ``TrainerCallback``.

::

    from transformers import Trainer
    from weightspace_client.client import WeightspaceClient
    from weightspace_client.huggingface import WeightspaceCallback

    with WeightspaceClient() as ws:
        experiment = ws.create_upload(name="my-bert", replicas=1)
        trainer = Trainer(model=model, args=args, train_dataset=data,
                          callbacks=[WeightspaceCallback(ws, experiment["id"])])
        trainer.train()
        ws.complete(experiment["id"])

A snapshot is uploaded before training (step 0) and whenever the Trainer saves a checkpoint
(``save_strategy``, ``save_steps``), numbered by ``global_step`` and carrying the same metrics
that ``weightspace import`` reads from that ``checkpoint-N/trainer_state.json``: ``step``,
``epoch`` and what was logged at that step. The tensors are ``model.state_dict()`` (tied
weights under each of their names, where the Trainer's ``model.safetensors`` keeps one).

Needs ``transformers``; the rest of the client does not.
"""

from __future__ import annotations

from typing import Any

try:
    from transformers import TrainerCallback
except ImportError:
    raise ImportError(
        "weightspace_client.huggingface needs transformers: pip install transformers"
    ) from None

from weightspace_client.checkpoints import trainer_state_metrics
from weightspace_client.client import WeightspaceClient


class WeightspaceCallback(TrainerCallback):  # type: ignore[misc,unused-ignore]  # untyped without it
    """Upload the model's state dict at step 0 and at every checkpoint the Trainer saves.

    Parameters
    ----------
    client : WeightspaceClient
    experiment_id : str
        An uploaded experiment (``client.create_upload``), still open.
    run : int
        Which run of the experiment this Trainer trains.
    initial : bool
        Also upload the weights before training (snapshot 0).
    """

    def __init__(
        self, client: WeightspaceClient, experiment_id: str, *, run: int = 0, initial: bool = True
    ) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.run = int(run)
        self.initial = initial
        #: The steps uploaded so far.
        self.uploaded: list[int] = []

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.initial and state.global_step == 0:
            self._upload(state, kwargs.get("model"))

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._upload(state, kwargs.get("model"))

    def _upload(self, state: Any, model: Any) -> None:
        step = int(state.global_step)
        if model is None or not state.is_world_process_zero or step in self.uploaded:
            return
        metrics = trainer_state_metrics(
            {"global_step": step, "epoch": state.epoch or 0, "log_history": state.log_history}
        )
        self.client.upload(self.experiment_id, self.run, step, model.state_dict(), metrics=metrics)
        self.uploaded.append(step)
