"""Idempotent submissions: the same ``Idempotency-Key`` and request within 24 hours create one
resource, however many times and however concurrently they arrive.

The key's row is inserted in the same transaction as the resource, under the primary key
(owner, key): of concurrent requests exactly one commits; the database makes the others wait for
it and then refuses them (a unique violation), and they answer with the winner's resource. No
lock in Python, so this holds across API processes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from weightspace_app.access import Conflict, Principal
from weightspace_app.infra import outbox
from weightspace_app.infra.db import Experiment, IdempotencyKey, Suite, utcnow

TTL = timedelta(hours=24)
Created = TypeVar("Created", Experiment, Suite)


class KeyReused(ValueError):
    """The key was used for a different request (HTTP 422 naming the header)."""


def fingerprint(payload: object) -> str:
    """sha256 of the request's canonical JSON (key order and spacing do not matter)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _replay(
    session: Session, principal: Principal, key: str, digest: str, kind: type[Created]
) -> Created | None:
    row = session.get(IdempotencyKey, (principal.id, key))
    if row is None:
        return None
    if row.created_at < utcnow() - TTL:  # expired: the key is free again
        session.delete(row)
        session.commit()
        return None
    if row.fingerprint != digest:
        raise KeyReused(
            "this Idempotency-Key was used within 24 hours for a different request; "
            "use a new key for a new request"
        )
    item_id = row.experiment_id if kind is Experiment else row.suite_id
    item = session.get(kind, item_id) if item_id is not None else None
    if item is None:  # the key was a different kind's (its fingerprint matched: impossible)
        raise KeyReused("this Idempotency-Key belongs to another kind of request")
    return item


def create_once(
    session: Session,
    principal: Principal,
    key: str | None,
    payload: object,
    kind: type[Created],
    build: Callable[[], Created],
    admit: Callable[[], None] = lambda: None,
) -> tuple[Created, bool]:
    """Insert what ``build`` returns and commit, unless ``key`` already created it; returns the
    resource and whether it is new (the caller enqueues only then). ``admit`` (limits and
    quotas) runs for new requests only: a replay costs nothing."""
    if key is None:
        admit()
        item = build()
        session.add(item)
        outbox.add_trainings(session, item)  # its tasks commit with it
        session.commit()
        return item, True
    digest = fingerprint([kind.__tablename__, payload])
    existing = _replay(session, principal, key, digest, kind)
    if existing is not None:
        return existing, False
    admit()
    probe = build()
    session.add(probe)
    outbox.add_trainings(session, probe)  # its tasks commit with it (flushed: rows first)
    session.add(
        IdempotencyKey(
            owner=principal.id,
            key=key,
            fingerprint=digest,
            experiment_id=probe.id if isinstance(probe, Experiment) else None,
            suite_id=probe.id if isinstance(probe, Suite) else None,
            created_at=utcnow(),
        )
    )
    try:
        session.commit()
    except IntegrityError:  # a concurrent request with this key committed first
        session.rollback()
        existing = _replay(session, principal, key, digest, kind)
        if existing is None:
            raise Conflict(
                "a concurrent request with this Idempotency-Key did not complete; retry"
            ) from None
        return existing, False
    return probe, True
