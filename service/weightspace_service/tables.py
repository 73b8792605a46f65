"""Analysis answers as CSV (``?format=csv``): one row per point or per pair of runs.

Numbers are written as Python's shortest round-tripping ``repr``, so a CSV value parses back to
exactly the float of the JSON answer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from fastapi import Query
from fastapi.responses import Response

from weightspace_service.schemas import DistancesOut, PCAOut

CSV = "text/csv"
Format = Literal["json", "csv"]
FormatQuery = Query(
    description="`csv` answers `text/csv` (a header row, then one row per point or pair) "
    "instead of JSON."
)


def csv_response(description: str, example: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI entry of a route's 200 that may also answer CSV."""
    return {
        200: {
            "description": description,
            "content": {CSV: {"schema": {"type": "string"}, "example": example}},
        }
    }


def render_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return Response(out.getvalue(), media_type=f"{CSV}; charset=utf-8")


def pca_csv(pca: PCAOut) -> Response:
    """``run,epoch,pc1..pcK``: one row per snapshot, as ``points``."""
    header = ["run", "epoch", *(f"pc{i + 1}" for i in range(pca.components))]
    return render_csv(header, ([p.run, p.epoch, *map(repr, p.coordinates)] for p in pca.points))


PCA_EXAMPLE = "run,epoch,pc1,pc2\n0,0,-12.5,0.75\n0,1,3.25,-1.5\n"


def distances_csv(result: DistancesOut) -> Response:
    """``epoch,run_a,run_b,distance,cosine_similarity``: one row per ordered pair of runs."""
    header = ["epoch", "run_a", "run_b", "distance", "cosine_similarity"]
    rows = (
        [result.epoch, a, b, repr(result.distances[i][j]), repr(result.cosine_similarity[i][j])]
        for i, a in enumerate(result.runs)
        for j, b in enumerate(result.runs)
    )
    return render_csv(header, rows)


DISTANCES_EXAMPLE = (
    "epoch,run_a,run_b,distance,cosine_similarity\n"
    "20,0,0,0.0,1.0\n20,0,1,14.25,0.5\n20,1,0,14.25,0.5\n20,1,1,0.0,1.0\n"
)
