"""Limits on what one submission and one owner may ask of the service (settings in
``weightspace_app.infra.settings``; the README's "Limits" table lists them).

- Per experiment (422, naming the spec field): the compute budget replicas x epochs x training
  examples, the parameter count and data-set sizes (the spec itself caps the number of
  snapshots: ``weightspace.spec.MAX_SNAPSHOTS``).
- Per owner (429): experiments queued or running at once, and bytes of stored snapshots
  (trained and uploaded; an upload is refused if it would pass the quota).
- Per token (429 with ``Retry-After``): submissions per window, counted in the database
  (table ``rate_windows``), so that the limit holds across every API process.

Owner quotas and the rate apply with ``WEIGHTSPACE_AUTH=tokens``; the per-experiment limits
always.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from weightspace.data import DATASETS
from weightspace.spec import ExperimentSpec
from weightspace.vocabulary import ACTIVE
from weightspace_app.access import Principal
from weightspace_app.infra.db import Experiment, RateWindow, SnapshotRecord
from weightspace_app.infra.settings import Settings

FLOAT_BYTES = 4  # snapshots store float32 parameter vectors


class OverBudget(ValueError):
    """A spec asks for more than one experiment may (HTTP 422, naming ``field``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class QuotaExceeded(RuntimeError):
    """The owner or token is over a quota (HTTP 429; ``retry_after`` seconds if it passes)."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parameter_count(spec: ExperimentSpec) -> int:
    """The model's parameters, counted on PyTorch's meta device (no memory, no compute)."""
    import torch

    from weightspace.models import build_model, count_parameters

    with torch.device("meta"):
        model = build_model(
            spec.model, DATASETS[spec.dataset.name].input_shape, spec.dropout, seed=0
        )
    return count_parameters(model)


@dataclass(frozen=True)
class Cost:
    example_epochs: int
    parameters: int
    snapshots: int

    @property
    def bytes(self) -> int:
        return self.snapshots * self.parameters * FLOAT_BYTES


def check_spec(spec: ExperimentSpec, settings: Settings) -> Cost:
    """Refuse a spec over the per-experiment limits; return what it will cost."""
    train, test = DATASETS[spec.dataset.name].examples
    for field, wanted, available in (
        ("train_size", spec.dataset.train_size, train),
        ("test_size", spec.dataset.test_size, test),
    ):
        if wanted is not None and wanted > available:
            raise OverBudget(
                f"dataset.{field}",
                f"{spec.dataset.name} has {available} {field.split('_')[0]} examples, not {wanted}",
            )
    examples = spec.dataset.train_size or train
    example_epochs = spec.replicas * spec.final_epoch * examples
    if example_epochs > settings.max_example_epochs:
        raise OverBudget(
            "epochs",
            f"replicas x epochs x training examples = {spec.replicas} x {spec.final_epoch} x "
            f"{examples} = {example_epochs:,} exceeds WEIGHTSPACE_MAX_EXAMPLE_EPOCHS "
            f"({settings.max_example_epochs:,})",
        )
    snapshots = spec.replicas * len(spec.snapshot_epochs())  # capped by the spec itself
    parameters = parameter_count(spec)
    if parameters > settings.max_parameters:
        raise OverBudget(
            "model",
            f"the model has {parameters:,} parameters, over WEIGHTSPACE_MAX_PARAMETERS "
            f"({settings.max_parameters:,})",
        )
    return Cost(example_epochs, parameters, snapshots)


def check_owner(
    session: Session, principal: Principal, settings: Settings, new: Sequence[Cost]
) -> None:
    """Refuse if the owner would have too many experiments in flight or too many bytes stored."""
    active = session.scalar(
        select(func.count())
        .select_from(Experiment)
        .where(Experiment.owner == principal.id, Experiment.status.in_(ACTIVE))
    )
    if (active or 0) + len(new) > settings.max_active_experiments:
        raise QuotaExceeded(
            f"{active} experiments of {principal.id} are queued or running; "
            f"WEIGHTSPACE_MAX_ACTIVE_EXPERIMENTS allows {settings.max_active_experiments} "
            "(wait for some to end, or cancel them)"
        )
    _check_bytes(session, principal, settings, sum(c.bytes for c in new), "about ")


def stored_bytes(session: Session, owner: str) -> int:
    """Bytes of the owner's stored snapshots, trained and uploaded alike."""
    stored = session.scalar(
        select(func.coalesce(func.sum(SnapshotRecord.size), 0))
        .join(Experiment, Experiment.id == SnapshotRecord.experiment_id)
        .where(Experiment.owner == owner)
    )
    return int(stored or 0)


def _check_bytes(
    session: Session, principal: Principal, settings: Settings, wanted: int, about: str = ""
) -> None:
    stored = stored_bytes(session, principal.id)
    if stored + wanted > settings.max_stored_bytes:
        raise QuotaExceeded(
            f"{principal.id} stores {stored:,} bytes of snapshots and this needs {about}"
            f"{wanted:,} more; WEIGHTSPACE_MAX_STORED_BYTES allows {settings.max_stored_bytes:,} "
            "(delete experiments to make room)"
        )


def admit_upload(session: Session, principal: Principal, settings: Settings, wanted: int) -> None:
    """An uploaded snapshot of ``wanted`` bytes (net of the one it replaces) must fit in the
    owner's stored bytes (429); with ``auth='tokens'``, as every owner quota."""
    if settings.auth == "tokens" and wanted > 0:
        _check_bytes(session, principal, settings, wanted)


def _upsert(session: Session) -> type[postgresql.Insert] | type[sqlite.Insert]:
    return postgresql.Insert if session.bind.dialect.name == "postgresql" else sqlite.Insert  # type: ignore[union-attr]


def check_rate(
    session: Session, principal: Principal, settings: Settings, *, now: float | None = None
) -> None:
    """Count one submission for the caller's token in the current window; 429 past the limit.

    One atomic upsert per submission (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``), so
    concurrent API processes share the count; windows older than the current one are deleted.
    """
    subject = f"token:{principal.token}" if principal.token else f"owner:{principal.id}"
    now = time.time() if now is None else now
    size = settings.submit_rate_window
    window = int(now // size * size)
    insert = _upsert(session)(RateWindow).values(subject=subject, window=window, count=1)
    statement = insert.on_conflict_do_update(
        index_elements=[RateWindow.subject, RateWindow.window],
        set_={"count": RateWindow.count + 1},
    ).returning(RateWindow.count)
    count = int(session.execute(statement).scalar_one())
    session.execute(
        delete(RateWindow).where(RateWindow.subject == subject, RateWindow.window < window)
    )
    session.commit()
    if count > settings.submit_rate:
        retry_after = max(1, math.ceil(window + size - now))
        raise QuotaExceeded(
            f"more than {settings.submit_rate} submissions in {size} s "
            f"(WEIGHTSPACE_SUBMIT_RATE); retry in {retry_after} s",
            retry_after=retry_after,
        )


def admit(
    session: Session, principal: Principal, settings: Settings, specs: Sequence[ExperimentSpec]
) -> None:
    """Every check a submission of ``specs`` passes before anything is written. Quotas and
    the rate are per owner and token: they apply with ``auth='tokens'`` (with ``none`` there is
    one anonymous user, on a loopback interface)."""
    costs = [check_spec(spec, settings) for spec in specs]
    if settings.auth == "tokens":
        check_rate(session, principal, settings)
        check_owner(session, principal, settings, costs)


def admit_retry(session: Session, principal: Principal, settings: Settings, count: int) -> None:
    """A retry queues ``count`` experiments again: it counts as a submission and against the
    experiments in flight (their stored bytes are already counted)."""
    if settings.auth == "tokens":
        check_rate(session, principal, settings)
        check_owner(session, principal, settings, [Cost(0, 0, 0)] * count)
