"""The canonical order of a parameter vector (tensors sorted by name) and the way to it.

Every snapshot records the order its vector is stored in (the ``layout`` metadata: ``[name,
shape]`` pairs, see :mod:`weightspace.snapshots`): a trained snapshot its model's registration
order (:func:`weightspace.models.parameter_layout`), an uploaded one the sorted tensor names
(:mod:`weightspace.imports`), or its declared model's order. The names are those of the model's
state dict (``hidden.0.weight``, ``out.bias``), so a state dict of the same architecture, however
it was built, names the same tensors.

The **canonical order** is by name (Python's ``sorted``). Stored vectors keep the order they were
written in, so stores written by earlier releases keep working unchanged:

- analyses of one experiment read its vectors as stored: every snapshot of an experiment has the
  same order, and a common permutation of the coordinates changes no Gram matrix, PCA score or
  distance;
- analyses across experiments compare layouts by name and shape (:func:`difference`) and read
  every vector in canonical order (:func:`canonical_pieces`), so that trained and uploaded
  snapshots of one architecture are analysed coordinate by coordinate;
- a vector goes into a model by name (:func:`reorder`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Pairs = Sequence[tuple[str, Sequence[int]]]


def _size(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def canonical(layout: Pairs) -> list[tuple[str, tuple[int, ...]]]:
    """``layout``'s ``(name, shape)`` pairs in canonical order."""
    return sorted((str(name), tuple(int(d) for d in shape)) for name, shape in layout)


def _spans(layout: Pairs) -> dict[str, tuple[int, int]]:
    """Each tensor's ``[start, stop)`` element range in a vector stored in ``layout`` order."""
    spans, start = {}, 0
    for name, shape in layout:
        spans[str(name)] = (start, start + _size(shape))
        start += _size(shape)
    return spans


def canonical_pieces(layout: Pairs) -> tuple[tuple[int, int], ...] | None:
    """The element ranges of a vector stored in ``layout`` order, listed in canonical order
    (read one after the other, they give the canonical vector); ``None`` if the stored order is
    already canonical. Empty tensors are left out."""
    names = [str(name) for name, _ in layout]
    if names == sorted(names):
        return None
    spans = _spans(layout)
    return tuple(spans[name] for name in sorted(names) if spans[name][0] != spans[name][1])


def difference(expected: Pairs, found: Pairs) -> str | None:
    """How ``found`` differs from ``expected`` by name and shape, naming the first tensor (in
    canonical order) that differs; ``None`` when they hold the same tensors."""
    mine, theirs = dict(canonical(expected)), dict(canonical(found))
    for name in sorted(mine.keys() | theirs.keys()):
        if name not in theirs:
            return f"tensor {name!r} {list(mine[name])} is missing"
        if name not in mine:
            return f"tensor {name!r} {list(theirs[name])} is not expected"
        if mine[name] != theirs[name]:
            return f"tensor {name!r} has shape {list(theirs[name])}, expected {list(mine[name])}"
    return None


def reorder(vector: np.ndarray, source: Pairs, target: Pairs) -> np.ndarray:
    """``vector`` (stored in ``source`` order) in ``target`` order, tensor by tensor by name
    (``vector`` itself when the orders agree); ``ValueError`` naming the first tensor if the two
    layouts differ."""
    if (why := difference(target, source)) is not None:
        raise ValueError(f"the layouts differ: {why}")
    if [str(name) for name, _ in source] == [str(name) for name, _ in target]:
        return vector
    spans = _spans(source)
    return np.concatenate([vector[slice(*spans[str(name)])] for name, _ in target])
