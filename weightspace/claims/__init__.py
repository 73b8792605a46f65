"""The paper's claims, each a statistic beside a null model or control that it must reject.

One module per family: :mod:`.dynamics` (claim 1), :mod:`.paths` (2a, 2b, 3), :mod:`.solutions`
(4, 5); :mod:`.base` holds the vocabulary and :mod:`.seeds` the summary over K seeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from weightspace.claims.base import (
    VERDICTS,
    BarrierReport,
    Claim,
    ExperimentResult,
    LineBetween,
    LineLoss,
    Reference,
    Test,
    Verdict,
    barrier,
    relative_rise,
)
from weightspace.claims.dynamics import claim_flat_regions, late_window
from weightspace.claims.paths import (
    claim_few_components,
    claim_line_monotone,
    claim_path_not_straight,
    joint_spectrum,
)
from weightspace.claims.seeds import interval, majority, summarise
from weightspace.claims.solutions import claim_different_basins, claim_equidistant

CLAIM_IDS = ("1", "2a", "2b", "3", "4", "5")

__all__ = [
    "CLAIM_IDS",
    "VERDICTS",
    "BarrierReport",
    "Claim",
    "ExperimentResult",
    "LineBetween",
    "LineLoss",
    "Reference",
    "Test",
    "Verdict",
    "barrier",
    "claim_different_basins",
    "claim_equidistant",
    "claim_few_components",
    "claim_flat_regions",
    "claim_line_monotone",
    "claim_path_not_straight",
    "evaluate_claims",
    "interval",
    "joint_spectrum",
    "late_window",
    "majority",
    "relative_rise",
    "summarise",
]


def evaluate_claims(
    results: Mapping[str, ExperimentResult | None],
    line: LineLoss | None,
    barriers: Mapping[str, BarrierReport | None] | None = None,
    controls: Mapping[str, Mapping[str, Any]] | None = None,
    late_chord: LineLoss | None = None,
) -> list[Claim]:
    """Every claim from the experiments (keyed by preset role), experiment 1's line from
    initialisation to solution and its late chord, the barriers of experiments 2-4 (keyed by
    role) and the untrained-initialisation controls."""
    barriers = barriers or {}
    trajectory = results.get("trajectory")
    others = [r for role, r in results.items() if role != "trajectory" and r is not None]
    return [
        claim_flat_regions(trajectory, late_chord),
        claim_line_monotone(line, barriers.get("independent-inits")),
        claim_path_not_straight(trajectory),
        claim_few_components(trajectory, others),
        claim_different_basins(barriers, results),
        claim_equidistant(results, controls),
    ]
