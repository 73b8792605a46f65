"""Captures leave the training loop: the snapshot callback runs on a writer thread.

Encoding a snapshot and writing it (and its resume state) to a store takes as long as a few
training steps; :class:`CaptureWriter` lets training go on meanwhile. The queue is bounded (a slow
store holds training back rather than filling memory), the callback sees the captures in order
and one at a time, and its first error is raised in the training thread at the next capture, at
the next epoch or when the block ends; captures after a failed one are dropped, never written out
of order. When training raises (a crash, a cancellation), the captures already queued are still
written before the error propagates; a process killed outright loses only queued captures, whose
resume states were not stored either, so a resumed run continues from the last state that was.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType

from weightspace.snapshots import Snapshot, TrainState

Capture = tuple[Snapshot, TrainState]
QUEUE_DEPTH = 4


class CaptureWriter:
    """Calls ``on_snapshot`` for each :meth:`put` capture on a background thread, in order."""

    def __init__(
        self, on_snapshot: Callable[[Snapshot, TrainState], None], depth: int = QUEUE_DEPTH
    ) -> None:
        self._on_snapshot = on_snapshot
        self._queue: queue.Queue[Capture | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="capture-writer", daemon=True)

    def __enter__(self) -> CaptureWriter:
        self._thread.start()
        return self

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so that put() never blocks on a dead writer
            try:
                self._on_snapshot(*item)
            except BaseException as error:  # handed to the training thread
                self._error = error

    def check(self) -> None:
        """Raise the writer's error, if it has failed."""
        if self._error is not None:
            raise self._error

    def put(self, snapshot: Snapshot, state: TrainState) -> None:
        self.check()
        self._queue.put((snapshot, state))

    def close(self) -> None:
        """Write everything queued, stop the thread, raise the writer's error if any."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self.check()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except BaseException as writer_error:
            # Both failed: the store error is the one to act on; keep the other as context.
            raise writer_error from exc
