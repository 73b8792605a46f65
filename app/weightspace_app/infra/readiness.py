"""Readiness checks run concurrently, under one overall deadline, and cached briefly.

A dependency that hangs (a black-holed broker) costs its check the deadline, not the caller
minutes; while its previous probe still hangs, no new one is started for it, so probes never
pile up. Results are cached for ``ttl`` seconds and concurrent callers share one round.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from weightspace.snapshots import ObjectStore
from weightspace_app.infra.faults import describe

OK = "ok"


def free_bytes(store: ObjectStore) -> int | None:
    """Free space where the store writes, if it is a local directory (S3: not known)."""
    root = getattr(store, "root", None)
    return shutil.disk_usage(Path(root)).free if root is not None else None


def space_check(store: ObjectStore, minimum: int) -> Callable[[], str]:
    def check() -> str:
        free = free_bytes(store)
        if free is None:
            return OK
        if free < minimum:
            raise OSError(f"the snapshot store is full: {free} bytes free, below {minimum}")
        return f"{OK} ({free} bytes free)"

    return check


class Probe:
    def __init__(
        self,
        checks: Mapping[str, Callable[[], object]],
        *,
        deadline: float = 3.0,
        ttl: float = 1.5,
    ) -> None:
        self.checks = dict(checks)
        self.deadline, self.ttl = deadline, ttl
        self._pool = ThreadPoolExecutor(max(1, 2 * len(checks)), thread_name_prefix="ready")
        self._running: dict[str, Future[object]] = {}
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, str]] | None = None

    def results(self) -> dict[str, str]:
        """``ok`` (or ``ok (detail)``), or the error, per check."""
        with self._lock:  # one round at a time; callers meanwhile get its answer
            if self._cached is not None and time.monotonic() - self._cached[0] < self.ttl:
                return dict(self._cached[1])
            for name, check in self.checks.items():
                if name not in self._running or self._running[name].done():
                    self._running[name] = self._pool.submit(check)
            wait(list(self._running.values()), timeout=self.deadline)
            out = {name: self._outcome(future) for name, future in self._running.items()}
            self._cached = (time.monotonic(), out)
            return dict(out)

    def _outcome(self, future: Future[object]) -> str:
        if not future.done():
            return f"TimeoutError: no answer within {self.deadline:g} s"
        error = future.exception()
        if error is not None:
            return describe(error)[:500]
        result = future.result()
        return result if isinstance(result, str) else OK

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def is_ok(value: str) -> bool:
    return value == OK or value.startswith(f"{OK} (")
