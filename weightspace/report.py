"""The reproduction report: the claims' verdicts against their nulls and the paper's figures.

:func:`render_report` turns a :class:`~weightspace.reproduction.Reproduction` into the report
folder as ``{name: bytes}`` (``index.html``, ``claims.json`` and every figure as SVG and PNG),
with relative links only, so the same files can be served by the API and written to disk by
:func:`write_report`. The HTML needs nothing from the network. The claims table gives each
statistic as the mean over the K seeds with its 95% interval, beside the band of its null or
control, and each verdict with how many seeds agree; the figures show the first seed.

Why one module of ~540 lines: the HTML page, its claims table and the figure list are one
template read top to bottom; the statistics live in weightspace.claims and the drawing in
weightspace.figures.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from weightspace import figures
from weightspace.claims import BarrierReport, ExperimentResult, LineLoss
from weightspace.reproduction import Reproduction
from weightspace.vocabulary import EXPERIMENT_NUMBERS, ROLES

FIGURE_NAMES = (
    "fig1-trajectory-pca",
    "fig2-joint-pca",
    "fig3-clones-pca",
    "spectra",
    "distances",
    "line-loss",
    "gradient-norms",
    "barriers",
    *(f"dynamics-{role}" for role in ROLES),
)
FIGURE_FORMATS = ("svg", "png")
REPORT_FILES_PATTERN = re.compile(r"[a-z0-9-]+\.(?:svg|png|html|json)")
# Lists longer than this are shortened in the claims table (claims.json has them whole).
MAX_LIST_ITEMS = 6
PANELS = {
    "independent-inits": "experiment 2, each run from its own initialisation",
    "shared-init": "experiment 3, all runs from one initialisation, each with its own data order "
    "(dropout masks shared)",
    "shared-init-masks": "experiment 3b, all runs from one initialisation, each with its own data "
    "order and its own dropout masks",
}
SIDES: dict[int, tuple[str, ...]] = {
    1: ("Shown",),
    2: ("Left", "Right"),
    3: ("Left", "Middle", "Right"),
}
VERDICT_CLASSES = {
    "supported": "supported",
    "not supported": "not-supported",
    "not measured": "not-measured",
}


def is_report_file(name: str) -> bool:
    """Whether ``name`` may be a file of a report folder (also guards against path traversal)."""
    return REPORT_FILES_PATTERN.fullmatch(name) is not None


@dataclass(frozen=True)
class _Figure:
    name: str
    title: str
    caption: str
    build: Callable[[], Figure] | None  # None: not drawn, ``missing`` says why
    missing: str = ""


def _present(
    results: Mapping[str, ExperimentResult | None], roles: Sequence[str]
) -> list[ExperimentResult]:
    return [r for role in roles if (r := results.get(role)) is not None]


def _absent(results: Mapping[str, ExperimentResult | None], roles: Sequence[str]) -> list[str]:
    return [role for role in roles if results.get(role) is None]


def _plan(
    results: Mapping[str, ExperimentResult | None],
    line: LineLoss | None,
    barriers: Mapping[str, BarrierReport | None],
) -> list[_Figure]:
    trajectory = results.get("trajectory")
    pair = _present(results, tuple(PANELS))
    clones = results.get("pretrained-clones")
    everything = _present(results, ROLES)
    solutions = _present(results, ROLES[1:])
    reports = [
        (f"experiment {EXPERIMENT_NUMBERS[role]} ({role})", report)
        for role, report in barriers.items()
        if report is not None
    ]

    described = [PANELS[role] for role in PANELS if results.get(role) is not None]
    sides = SIDES.get(len(described), ("Shown",))
    panels = " ".join(f"{side}: {text}." for side, text in zip(sides, described, strict=False))

    def unless(missing: Sequence[str], caption: str) -> str:
        if not missing:
            return caption
        return f"{caption} Not shown (experiment missing): {', '.join(missing)}."

    plan = [
        _Figure(
            "fig1-trajectory-pca",
            "Fig. 1: experiment 1's trajectory in PCA space",
            "The snapshots of one training run projected on the top two principal components of "
            "the trajectory; colour is the epoch, the circle marks the initialisation and the star "
            "the last snapshot.",
            partial(figures.trajectory_pca, trajectory) if trajectory is not None else None,
            "experiment 1 (trajectory) did not finish",
        ),
        _Figure(
            "fig2-joint-pca",
            "Fig. 2: runs from different and from identical initialisations, joint PCA",
            unless(
                _absent(results, tuple(PANELS)),
                panels
                + " Each panel is one PCA of all that experiment's snapshots; circles mark starts, "
                "stars the last snapshots.",
            ),
            partial(figures.joint_pca, pair) if pair else None,
            "experiments 2, 3 and 3b did not finish",
        ),
        _Figure(
            "fig3-clones-pca",
            "Fig. 3: clones of one pretrained model, joint PCA",
            "Experiment 4: one model pretrained, then cloned, each clone trained on its own data "
            "order; one PCA of all the clones' snapshots.",
            partial(figures.joint_pca, [clones]) if clones is not None else None,
            "experiment 4 (pretrained clones) did not finish",
        ),
        _Figure(
            "spectra",
            "Variance explained per principal component",
            "Share of the variance explained by each principal component of every experiment's "
            "snapshot set (log scale). Dotted, with its shaded 95% band: that experiment's null, "
            "random walks with its own step lengths in random directions from its own starting "
            "points, pooled as its runs are (simulated in the model's dimension). Dashed: the "
            "n \u2192 \u221e limit 6/(\u03c0\u00b2k\u00b2) of one walk.",
            partial(figures.spectra, everything) if everything else None,
            "no experiment finished",
        ),
        _Figure(
            "distances",
            "Distances between the final solutions",
            unless(
                _absent(results, ROLES[1:]),
                "For experiments 2, 3, 3b and 4: euclidean distance between every pair of final "
                "solutions, and each solution's distance from the origin |w| beside its run.",
            ),
            partial(figures.distance_heatmaps, solutions) if solutions else None,
            "experiments 2, 3, 3b and 4 did not finish",
        ),
        _Figure(
            "line-loss",
            "Loss along the straight line from initialisation to solution",
            "Train and test loss of experiment 1's model at (1 \u2212 a)\u00b7init + a\u00b7solution "
            "(claim 2a); a monotone decrease means no barrier lies on the straight path "
            "(Goodfellow et al., 2014).",
            partial(figures.line_loss, line) if line is not None else None,
            "the line evaluation is missing",
        ),
        _Figure(
            "gradient-norms",
            "Full-batch gradient norm along experiment 1's trajectory",
            "Claim 1: the norm of the full-batch gradient (train set, dropout off) at every "
            "snapshot, of the train loss and of the objective SGD minimises (with the weight-decay "
            "term), beside the sign-flip null: the norms the gradient has when its expectation is "
            "zero, i.e. at a critical point.",
            partial(figures.gradient_norms, trajectory) if trajectory is not None else None,
            "experiment 1 (trajectory) did not finish",
        ),
        _Figure(
            "barriers",
            "Loss barriers between final solutions",
            "Claim 4: left, the train loss along the straight line between every two runs' final "
            "solutions (solid) and along each control line, between a run's own last two "
            "snapshots at about the same loss (dotted); right, each line's barrier "
            "(the largest excess of the loss over the straight interpolation of its end losses), "
            "with the controls' 95% band shaded.",
            partial(figures.barrier_lines, reports) if reports else None,
            "no barriers were computed (experiments 2-4 did not finish)",
        ),
    ]
    for role in ROLES:
        number = EXPERIMENT_NUMBERS[role]
        result = results.get(role)
        plan.append(
            _Figure(
                f"dynamics-{role}",
                f"Training dynamics of experiment {number} ({role})",
                "Per run: train and test loss; the distance between consecutive snapshots divided "
                "by the epochs between them; the distance from the origin; and the distance from "
                "the run's first snapshot (for clones, the pretrained model).",
                partial(figures.dynamics, result) if result is not None else None,
                f"experiment {number} ({role}) did not finish",
            )
        )
    return plan


# --------------------------------------------------------------------------- claims table


def _json_safe(value: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, non-finite floats (invalid JSON) as null."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "n/a"
    return str(value)


def _measured_html(measured: Mapping[str, Any]) -> str:
    if not measured:
        return "\u2014"
    items = []
    for key, value in measured.items():
        label = html.escape(str(key).replace("_", " "))
        if isinstance(value, Mapping):
            body = _measured_html(value)
        elif isinstance(value, list | tuple):
            shown = ", ".join(_number(v) for v in value[:MAX_LIST_ITEMS])
            more = f", \u2026 ({len(value)} values)" if len(value) > MAX_LIST_ITEMS else ""
            body = f'<span class="num list">[{html.escape(shown + more)}]</span>'
        else:
            body = f'<span class="num">{html.escape(_number(value))}</span>'
        items.append(f'<li><span class="key">{label}</span> {body}</li>')
    return f'<ul class="measured">{"".join(items)}</ul>'


def _interval(test: Mapping[str, Any]) -> str:
    text = _number(test.get("value"))
    if test.get("interval"):
        low, high = test["interval"]
        text += f" [{_number(low)}, {_number(high)}]"
    return text


def _reference_of(test: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    kind = next(k for k in ("null", "control", "tolerance") if k in test)
    return kind, test[kind]


def _tests_html(tests: Sequence[Mapping[str, Any]]) -> str:
    items = []
    for test in tests:
        kind, reference = _reference_of(test)
        low, high = reference["band"]
        side = ">" if test["direction"] == "above" else "<"
        band = f"{_number(low)}" if kind == "tolerance" else f"[{_number(low)}, {_number(high)}]"
        at_most = "\u2265" if test["direction"] == "above" else "\u2264"
        bound = f", and {at_most} {_number(test['bound'])}" if test.get("bound") is not None else ""
        passed = f"{test['passed']}/{test['seeds']} seeds" if "seeds" in test else ""
        items.append(
            f'<li class="test"><span class="key">{html.escape(test["description"])}</span><br>'
            f'<span class="num">{html.escape(_interval(test))}</span> {side} '
            f'<span class="ref {kind}">{kind} {html.escape(band)}</span>'
            f'{html.escape(bound)} <span class="passed">({html.escape(passed)} beyond)</span>'
            f"{_effect_html(test.get('effect'), kind)}"
            f'<div class="how">{html.escape(str(reference["description"]))}</div></li>'
        )
    return f'<ul class="tests">{"".join(items)}</ul>'


def _effect_html(effect: Mapping[str, Any] | None, kind: str) -> str:
    """The effect size beside the least one that passes (see ``Test.effect``)."""
    if not effect:
        return ""
    text = f"effect {_interval(effect)} beyond the {kind}'s mean, at least {_number(effect['minimum'])} needed"
    return f'<div class="effect num">{html.escape(text)}</div>'


def _claims_html(claims: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for claim in claims:
        statement = (
            f'<div class="paper">\u201c{html.escape(claim["paper"])}\u201d</div>'
            f'<div class="ours">{html.escape(claim["statement"])}</div>'
        )
        if claim.get("note"):
            statement += f'<div class="note">{html.escape(claim["note"])}</div>'
        verdict = html.escape(claim["verdict"])
        stability = claim["stability"]
        agree = f"{stability['agree']} of {stability['seeds']} seed{'s' if stability['seeds'] != 1 else ''} agree"
        measured = _tests_html(claim["tests"]) if claim["tests"] else "\u2014"
        if claim.get("beside"):
            measured += (
                f'<div class="beside">beside, not deciding:</div>{_tests_html(claim["beside"])}'
            )
        extra = _measured_html(_json_safe(claim.get("measured") or {}))
        rows.append(
            f'<tr id="claim-{html.escape(claim["id"])}"><td class="id">{html.escape(claim["id"])}</td>'
            f"<td>{statement}</td><td>{measured}<details><summary>more figures (seed 1)</summary>"
            f"{extra}</details></td>"
            f'<td class="threshold">{html.escape(claim["rule"])}</td>'
            f'<td><span class="verdict {VERDICT_CLASSES.get(claim["verdict"], "")}">{verdict}</span>'
            f'<div class="stability">{html.escape(agree)}</div></td></tr>'
        )
    return (
        '<table class="claims"><colgroup><col class="c-id"><col class="c-claim"><col class="c-measured">'
        '<col class="c-threshold"><col class="c-verdict"></colgroup>'
        "<thead><tr><th>#</th><th>claim (the paper's words, then what is measured)</th>"
        "<th>statistic: mean [95% interval over seeds] vs null or control band</th>"
        "<th>rule</th><th>verdict</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


# --------------------------------------------------------------------------- page

_STYLE = """
:root { color-scheme: light; --fg: #1d2125; --muted: #5c6670; --line: #d5dbe1; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); margin: 0 auto; max-width: 1180px; padding: 24px 28px 64px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.3em; margin: 40px 0 12px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.subtitle { color: var(--muted); margin: 0 0 20px; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid var(--line); padding: 6px 10px; text-align: left; vertical-align: top; }
th { background: #f3f5f7; font-weight: 600; }
table.meta { width: auto; min-width: 50%; }
table.meta th { width: 11em; }
table.claims td.id { font-weight: 600; text-align: center; }
table.claims { table-layout: fixed; }
table.claims col.c-id { width: 2.6em; }
table.claims col.c-claim { width: 24%; }
table.claims col.c-measured { width: 36%; }
table.claims col.c-verdict { width: 10.5em; }
table.claims td.threshold { color: var(--muted); font-size: 0.92em; }
table.claims td { overflow-wrap: anywhere; }
.note { color: var(--muted); font-style: italic; margin-top: 4px; }
.paper { font-style: italic; margin-bottom: 4px; }
.ours { color: var(--muted); font-size: 0.92em; }
ul.tests { list-style: none; margin: 0; padding: 0; font-size: 0.92em; }
ul.tests li { margin-bottom: 6px; }
.how { color: var(--muted); font-size: 0.88em; }
.effect { font-size: 0.88em; white-space: normal; }
.beside { color: var(--muted); font-size: 0.88em; margin-top: 6px; font-style: italic; }
.ref.null, .ref.control, .ref.tolerance { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
.stability { color: var(--muted); font-size: 0.85em; margin-top: 4px; }
ul.measured { list-style: none; margin: 0; padding: 0; font-size: 0.92em; }
ul.measured ul.measured { padding-left: 1em; border-left: 2px solid var(--line); margin: 2px 0 4px; }
ul.measured .key { color: var(--muted); }
.num { font-family: ui-monospace, "DejaVu Sans Mono", monospace; white-space: nowrap; }
.num.list { white-space: normal; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: 600;
           white-space: nowrap; }
.verdict.supported { background: #d9f2df; color: #135d25; }
.verdict.not-supported { background: #fbe0e0; color: #8f1d1d; }
.verdict.not-measured { background: #eceff2; color: #4d5661; }
.summary { margin: 8px 0 14px; }
figure { margin: 0 0 36px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line);
             background: white; }
figcaption { color: var(--muted); margin-top: 6px; max-width: 60em; }
figcaption strong { color: var(--fg); }
.missing { color: #8f1d1d; }
details { margin: 6px 0; border: 1px solid var(--line); border-radius: 4px; padding: 6px 10px; }
summary { cursor: pointer; font-weight: 600; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; font-size: 0.88em; margin: 8px 0 0; }
"""

# Records whether every image loaded, for people and for the browser test.
IMAGE_CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (img) { return !(img.complete && img.naturalWidth > 0); })
    .map(function (img) { return img.getAttribute("src"); });
  document.body.dataset.images = broken.length
    ? "broken: " + broken.join(",")
    : "ok " + images.length + "/" + images.length;
});
"""


def _meta_html(meta: Mapping[str, str]) -> str:
    if not meta:
        return "<p>No details recorded.</p>"
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in meta.items()
    )
    return f'<table class="meta"><tbody>{rows}</tbody></table>'


def _figure_html(figure: _Figure) -> str:
    title = html.escape(figure.title)
    if figure.build is None:
        return (
            f'<figure id="{figure.name}"><figcaption><strong>{title}</strong>: '
            f'<span class="missing">not drawn, {html.escape(figure.missing)}.</span>'
            "</figcaption></figure>"
        )
    return (
        f'<figure id="{figure.name}"><img src="{figure.name}.svg" alt="{title}">'
        f"<figcaption><strong>{title}.</strong> {html.escape(figure.caption)} "
        f'<a href="{figure.name}.png">PNG</a> \u00b7 <a href="{figure.name}.svg">SVG</a>'
        "</figcaption></figure>"
    )


def _specs_html(results: Mapping[str, ExperimentResult | None]) -> str:
    blocks = []
    for role in ROLES:
        number = EXPERIMENT_NUMBERS[role]
        result = results.get(role)
        if result is None:
            blocks.append(
                f"<details><summary>Experiment {number} ({html.escape(role)}): "
                "did not finish</summary></details>"
            )
            continue
        spec = json.dumps(result.spec.model_dump(mode="json"), indent=2)
        runs = len(result.run_indices())
        blocks.append(
            f"<details><summary>{html.escape(result.title)}</summary>"
            f"<p>{runs} run{'s' if runs != 1 else ''}, {result.gram.n} snapshots, "
            f"{result.gram.size:,} parameters each.</p>"
            f"<pre>{html.escape(spec)}</pre></details>"
        )
    return "".join(blocks)


def _page(
    claims: Sequence[Mapping[str, Any]],
    plan: Sequence[_Figure],
    results: Mapping[str, ExperimentResult | None],
    meta: Mapping[str, str],
) -> str:
    counts = {v: sum(c["verdict"] == v for c in claims) for v in VERDICT_CLASSES}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    title = "Stuck in a What? Adventures in Weight Space: reproduction report"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p class="subtitle">Lipton (2016): training trajectories of neural networks seen through snapshots
of their full parameter vectors. Distances are euclidean, in the units of the parameters.</p>
<h2 id="setup">Setup</h2>
{_meta_html(meta)}
<h2 id="claims">Claims</h2>
<p class="summary">{len(claims)} claims: {html.escape(summary)}. A claim is supported only when its
statistic lies beyond the 95% band of its null model or control, in the direction the paper
claims; the verdict shown is the majority over the seeds. Every figure in this table, and each
seed's own claims, are in <a href="claims.json">claims.json</a>.</p>
{_claims_html(claims)}
<h2 id="figures">Figures</h2>
{"".join(_figure_html(f) for f in plan)}
<h2 id="specs">Experiment specs</h2>
{_specs_html(results)}
<script>{IMAGE_CHECK_SCRIPT}</script>
</body>
</html>
"""


def render_report(reproduction: Reproduction) -> dict[str, bytes]:
    """The report folder's files by name: ``index.html``, ``claims.json`` and each figure's SVG and PNG.

    The figures show the first replicate; an experiment that did not finish (``None``) leaves its
    figures out, and the HTML says so.
    """
    first = reproduction.first
    plan = _plan(first.results, first.line, first.barriers)
    files: dict[str, bytes] = {}
    for position, entry in enumerate(plan):
        if entry.build is None:
            continue
        try:
            figure = entry.build()
        except figures.FigureUnavailable as exc:
            plan[position] = _Figure(entry.name, entry.title, entry.caption, None, str(exc))
            continue
        for fmt in FIGURE_FORMATS:
            files[f"{entry.name}.{fmt}"] = figures.render(figure, fmt)  # type: ignore[arg-type]
    document = _json_safe(reproduction.claims_document())
    files["claims.json"] = json.dumps(document, indent=2, allow_nan=False).encode()
    page = _page(document["claims"], plan, first.results, reproduction.meta)
    files["index.html"] = page.encode()
    return files


def write_report(files: Mapping[str, bytes], directory: str | os.PathLike[str]) -> list[Path]:
    """Write the report's files into ``directory`` (created if needed), each atomically."""
    target = Path(directory)
    bad = sorted(name for name in files if not is_report_file(name))
    if bad:
        raise ValueError(f"not report file names: {', '.join(bad)}")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in sorted(files.items()):
        path = target / name
        partial = target / f".{name}.partial"
        partial.write_bytes(data)
        os.replace(partial, path)
        written.append(path)
    return written
