"""Figures and the report folder, from a tiny but real reproduction trained on ``digits``."""

from __future__ import annotations

import dataclasses
import json
import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from tests.reproduction import Reproduction, build_reproduction
from weightspace import figures
from weightspace.claims import CLAIM_IDS
from weightspace.data import load_dataset
from weightspace.report import (
    FIGURE_NAMES,
    is_report_file,
    render_report,
    write_report,
)
from weightspace.reproduction import assemble, evaluate_replicate
from weightspace.vocabulary import ROLES

HOSTILE = "<script>alert('x')</script> & \"quoted\""
VERDICTS = {"supported", "not supported", "not measured"}


@pytest.fixture(scope="module")
def reproduction() -> Reproduction:
    return build_reproduction()


@pytest.fixture(scope="module")
def meta(reproduction: Reproduction) -> dict[str, str]:
    return {**reproduction.meta, "note": HOSTILE}


@pytest.fixture(scope="module")
def files(reproduction: Reproduction, meta: dict[str, str]) -> dict[str, bytes]:
    return render_report(dataclasses.replace(reproduction.core, meta=meta))


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _leaves(value: object) -> Iterator[object]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def test_report_has_every_figure_in_both_formats(files: dict[str, bytes]) -> None:
    expected = {"index.html", "claims.json"} | {
        f"{name}.{fmt}" for name in FIGURE_NAMES for fmt in ("svg", "png")
    }
    assert set(files) == expected
    assert all(is_report_file(name) for name in files)


def test_figures_are_valid_png_and_svg(files: dict[str, bytes]) -> None:
    for name in FIGURE_NAMES:
        width, height = _png_size(files[f"{name}.png"])
        assert width >= 400 and height >= 300, name
        root = ET.fromstring(files[f"{name}.svg"])
        assert root.tag == "{http://www.w3.org/2000/svg}svg", name
        assert float(root.attrib["width"].removesuffix("pt")) > 0


def test_claims_json_has_five_claims_with_numbers(
    files: dict[str, bytes], reproduction: Reproduction, meta: dict[str, str]
) -> None:
    document = json.loads(files["claims.json"])
    assert document["meta"] == meta
    claims = document["claims"]
    assert [c["id"] for c in claims] == list(CLAIM_IDS)
    assert all(c["verdict"] in VERDICTS for c in claims)
    # The tiny reproduction has enough snapshots and runs for every claim to be measured.
    assert all(c["verdict"] != "not measured" for c in claims)
    for claim in claims:
        leaves = list(_leaves(claim["measured"]))
        assert leaves, claim["id"]
        assert all(v is None or isinstance(v, int | float | str) for v in leaves)
        # Each claim's null or control sits beside its measurement, with its band; claim 5's
        # "roughly the same" is a stated tolerance, with chance (a control) reported beside.
        reference = claim.get("null") or claim.get("control")
        if claim["id"] == "5":
            reference = claim["tolerance"]
            assert all("control" in t for t in claim["beside"])
        assert reference is not None and len(reference["band"]) == 2, claim["id"]
        assert all("effect" in t and "minimum" in t["effect"] for t in claim["tests"])
        assert isinstance(claim["value"], float) and claim["stability"]["seeds"] == 1
    expected = [c.to_dict() for c in reproduction.core.first.claims]
    assert [c["verdict"] for c in claims] == [c["verdict"] for c in expected]
    assert document["seeds"][0]["claims"][0]["id"] == "1"


def test_html_escapes_text_and_links_only_to_its_own_files(files: dict[str, bytes]) -> None:
    page = files["index.html"].decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sources == [f"{name}.svg" for name in FIGURE_NAMES]
    links = re.findall(r'href="([^"]+)"', page)
    assert links and all(link in files for link in links), links
    assert "http://" not in page and "https://" not in page
    assert page.count("<script>") == 1 and "document.body.dataset.images" in page
    assert page.count("<details>") == len(ROLES) + len(CLAIM_IDS)  # the specs, each claim's figures


def test_claims_table_shows_the_claims_numbers(
    files: dict[str, bytes], reproduction: Reproduction
) -> None:
    page = files["index.html"].decode()
    claims = reproduction.core.first.claims
    assert f"{claims[3].tests[0].value:.4g}" in page  # claim 3's top-2 share
    band = claims[3].tests[0].reference.band
    assert f"[{band.low:.4g}, {band.high:.4g}]" in page
    for claim in claims:
        assert f'<tr id="claim-{claim.id}">' in page
        assert f">{claim.verdict}</span>" in page


def test_missing_experiments_are_skipped_and_said_so(reproduction: Reproduction) -> None:
    results = {
        "trajectory": reproduction.results["trajectory"],
        "independent-inits": None,
        "shared-init": None,
        "shared-init-masks": None,
        "pretrained-clones": None,
    }
    data = load_dataset(reproduction.results["trajectory"].spec.dataset)
    replicate = evaluate_replicate(0, results, lambda _spec: data)
    files = render_report(assemble([replicate], {}))
    drawn = {
        "fig1-trajectory-pca", "spectra", "dynamics-trajectory", "line-loss", "gradient-norms",
    }  # fmt: skip
    assert {name.rsplit(".", 1)[0] for name in files} - {"index", "claims"} == drawn
    page = files["index.html"].decode()
    assert page.count("not drawn") == len(FIGURE_NAMES) - len(drawn)
    verdicts = {c["id"]: c["verdict"] for c in json.loads(files["claims.json"])["claims"]}
    assert verdicts["4"] == verdicts["5"] == "not measured"
    assert verdicts["2a"] != "not measured"


def test_write_report_writes_files_and_refuses_other_names(
    tmp_path: Path, files: dict[str, bytes]
) -> None:
    written = write_report(files, tmp_path / "report")
    assert sorted(p.name for p in written) == sorted(files)
    assert (tmp_path / "report" / "index.html").read_bytes() == files["index.html"]
    assert not list((tmp_path / "report").glob(".*"))
    for bad in ("../index.html", "a/b.svg", "Index.html", "x.js", ".svg"):
        assert not is_report_file(bad)
        with pytest.raises(ValueError):
            write_report({bad: b""}, tmp_path / "other")


def _assert_labelled(figure: Figure) -> None:
    for ax in figure.axes:
        if hasattr(ax, "_colorbar"):
            assert ax.get_ylabel() or ax.get_xlabel()
            continue
        assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()


def test_every_axis_is_labelled_and_pca_axes_give_the_variance(
    reproduction: Reproduction,
) -> None:
    results = reproduction.results
    built = [
        figures.trajectory_pca(results["trajectory"]),
        figures.joint_pca([results["independent-inits"], results["shared-init"]]),
        figures.spectra(list(results.values())),
        figures.distance_heatmaps([results["shared-init"], results["pretrained-clones"]]),
        figures.dynamics(results["independent-inits"]),
        figures.line_loss(reproduction.line),
        figures.gradient_norms(results["trajectory"]),
        figures.barrier_lines(
            [(role, r) for role, r in reproduction.core.first.barriers.items() if r is not None]
        ),
    ]
    for figure in built:
        _assert_labelled(figure)
    pca_label = re.compile(r"PC[12] \(\d+\.\d% of variance\)")
    for figure in built[:2]:
        for ax in figure.axes:
            if not hasattr(ax, "_colorbar"):
                assert pca_label.fullmatch(ax.get_xlabel()) and pca_label.fullmatch(ax.get_ylabel())
    legend = built[1].axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()][:3] == ["run 0", "run 1", "run 2"]


def test_the_spectra_null_is_seeded_and_close_to_the_formula(reproduction: Reproduction) -> None:
    trajectory = reproduction.results["trajectory"]
    first = figures.walk_null_of(trajectory).ratios
    assert np.array_equal(first, figures.walk_null_of(trajectory).ratios)
    assert first.shape == (figures.FIGURE_NULL_SAMPLES, trajectory.gram.n)
    assert first.sum(axis=1) == pytest.approx(1.0)
    mean = first.mean(axis=0)
    assert np.all(np.diff(mean) <= 0)
    assert 0.45 < mean[0] < 0.95  # 6 / pi^2 = 0.61 for many equal steps
