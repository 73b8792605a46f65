"""The API's claims schema carries what the core's claims.json holds: each test's effect size
and the tests reported beside a verdict (a response model drops any field it does not name)."""

from __future__ import annotations

import uuid

import pytest

from weightspace.claims.base import Claim, Reference, Test
from weightspace.claims.seeds import summarise
from weightspace.nulls import Band
from weightspace_service.schemas import ClaimsOut


def _test(name: str, value: float) -> Test:
    walks = Reference("null", "random walks with the same steps", Band(0.70, 0.74, 0.72, 100))
    return Test(name, "share of variance", value, "above", walks, bound=None)


def test_claims_out_keeps_effects_and_the_tests_beside() -> None:
    per_seed = [
        [Claim("3", "paper", "statement", "rule", [_test("top2", v)], {}, "", [_test("top3", v)])]
        for v in (0.80, 0.82)
    ]
    document = ClaimsOut.model_validate(
        {"suite_id": str(uuid.uuid4()), "claims": summarise(per_seed)}
    )
    claim = document.claims[0]
    assert claim.verdict == "supported"
    effect = claim.tests[0].effect
    assert effect is not None and effect.value == pytest.approx(0.81 - 0.72)
    assert effect.interval[0] < effect.value < effect.interval[1]
    assert effect.minimum == pytest.approx(0.74 - 0.72)
    assert effect.values == pytest.approx([0.80 - 0.72, 0.82 - 0.72])
    assert [t.name for t in claim.beside] == ["top3"]
    assert claim.beside[0].effect is not None
