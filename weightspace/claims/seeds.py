"""The claims over K seeds: each statistic as a mean with a 95% interval, each verdict's stability."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from weightspace.claims.base import VERDICTS, Claim, Verdict

# Two-sided 97.5% quantiles of Student's t by degrees of freedom (1.96 beyond the table).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip
# On a tie the more cautious verdict wins.
_TIE_ORDER: tuple[Verdict, ...] = ("not supported", "not measured", "supported")


def interval(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Mean and the 95% t-interval of the mean (``None`` bounds for a single finite value)."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return float("nan"), None, None
    mean = float(finite.mean())
    if finite.size < 2:
        return mean, None, None
    quantile = _T975[finite.size - 2] if finite.size - 1 <= len(_T975) else 1.96
    half = quantile * float(finite.std(ddof=1)) / math.sqrt(finite.size)
    return mean, mean - half, mean + half


def majority(verdicts: Sequence[Verdict]) -> Verdict:
    counts = Counter(verdicts)
    return max(_TIE_ORDER, key=lambda v: (counts[v], -_TIE_ORDER.index(v)))


def _reference(tests: Sequence[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    kind = next(k for k in ("null", "control", "tolerance") if k in tests[0])
    refs = [t[kind] for t in tests if kind in t]
    return kind, {
        "description": refs[0]["description"],
        "band": [
            float(np.mean([r["band"][0] for r in refs])),
            float(np.mean([r["band"][1] for r in refs])),
        ],
        "bands": [r["band"] for r in refs],
        "mean": float(np.mean([r["mean"] for r in refs])),
        "samples": refs[0]["samples"],
    }


def _test_summary(name: str, tests: Sequence[dict[str, Any]]) -> dict[str, Any]:
    values = [t["value"] for t in tests]
    mean, low, high = interval(values)
    kind, reference = _reference(tests)
    bounds = [t["bound"] for t in tests if t.get("bound") is not None]
    effects = [t["effect"] for t in tests if t.get("effect")]
    effect: dict[str, Any] | None = None
    if effects:
        size, size_low, size_high = interval([e["value"] for e in effects])
        effect = {
            "value": size,
            # over 2+ seeds the t-interval of the mean; for one, the reference band's interval
            "interval": effects[0]["interval"] if size_low is None else [size_low, size_high],
            "values": [e["value"] for e in effects],
            "minimum": float(np.mean([e["minimum"] for e in effects])),
        }
    return {
        "name": name,
        "description": tests[0]["description"],
        "direction": tests[0]["direction"],
        "bound": float(np.mean(bounds)) if bounds else None,
        "effect": effect,
        "value": mean,
        "interval": None if low is None else [low, high],
        "values": values,
        kind: reference,
        "passed": sum(bool(t["passed"]) for t in tests),
        "seeds": len(tests),
    }


def _tests_over_seeds(claims: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Each test named in the seeds' ``claims[key]``, summarised over the seeds that have it."""
    names: list[str] = []
    for claim in claims:
        names += [t["name"] for t in claim.get(key, []) if t["name"] not in names]
    return [
        _test_summary(name, [t for c in claims for t in c.get(key, []) if t["name"] == name])
        for name in names
    ]


def summarise(per_seed: Sequence[Sequence[Claim]]) -> list[dict[str, Any]]:
    """One entry per claim (in the order of the first seed) over the K seeds' claims."""
    if not per_seed:
        return []
    summaries = []
    for position, first in enumerate(per_seed[0]):
        claims = [seed[position].to_dict() for seed in per_seed]
        verdicts = [c["verdict"] for c in claims]
        verdict = majority(verdicts)
        tests = _tests_over_seeds(claims, "tests")
        summary: dict[str, Any] = {
            "id": first.id,
            "paper": first.paper,
            "statement": first.statement,
            "rule": first.rule,
            "threshold": first.rule,
            "verdict": verdict,
            "stability": {
                "seeds": len(claims),
                "agree": sum(v == verdict for v in verdicts),
                "verdicts": {v: verdicts.count(v) for v in VERDICTS if v in verdicts},
            },
            "seed_verdicts": verdicts,
        }
        if tests:
            primary = next((t for t in tests if "tolerance" not in t), tests[0])
            kind = next(k for k in ("null", "control", "tolerance") if k in primary)
            summary.update(
                statistic=primary["name"],
                value=primary["value"],
                interval=primary["interval"],
                values=primary["values"],
            )
            summary[kind] = primary[kind]
        summary["tests"] = tests
        summary["beside"] = _tests_over_seeds(claims, "beside")
        summary["measured"] = claims[0]["measured"]
        summary["note"] = next((c["note"] for c in claims if c["note"]), "")
        summaries.append(summary)
    return summaries
