"""The Gram matrix sharded over parameters: contiguous shards, partial Grams, and their sum.

Every entry of the reference-based Gram (:class:`weightspace.analysis.Gram`) is a sum over
parameters, so the Gram of the whole vectors is the sum of the Grams of their slices
``[start, stop)``: each slice can be read and multiplied on its own (another process, another
machine) and the partial matrices added afterwards. :func:`combine` adds them in the order of
the shards, so the float64 result does not depend on which partial arrived first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from weightspace.analysis import Gram


def split(size: int, per_shard: int) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` ranges of at most ``per_shard`` elements covering
    ``[0, size)``, in order.

    >>> split(10, 4)
    [(0, 4), (4, 8), (8, 10)]
    """
    if size < 1 or per_shard < 1:
        raise ValueError("size and per_shard must be positive")
    return [(start, min(start + per_shard, size)) for start in range(0, size, per_shard)]


def combine(partials: Sequence[Gram]) -> Gram:
    """The Gram of the whole vectors from the partial Grams of consecutive shards, summed in
    the order given (all with the same snapshots in the same rows, the same reference).

    Parameters
    ----------
    partials : sequence of Gram, each with ``matrix`` of shape (n + 1, n + 1)
        ``partials[s]`` computed on shard ``s`` (``size`` its number of parameters).

    Returns
    -------
    Gram
        With ``size`` the sum of the shards' sizes.
    """
    if not partials:
        raise ValueError("combine needs at least one partial Gram")
    shape = partials[0].matrix.shape
    if any(p.matrix.shape != shape for p in partials):
        raise ValueError("partial Grams differ in shape")
    total = np.zeros(shape, dtype=np.float64)
    for partial in partials:
        total += partial.matrix
    return Gram(matrix=total, size=sum(p.size for p in partials))
