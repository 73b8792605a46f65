"""The web pages under ``/ui``, server-rendered from the API's own schemas.

Everything a user typed (names, specs, errors) is escaped with :func:`html.escape`; the pages
load nothing from another host (no CDN, no web fonts) and carry two inline scripts: the report's
check that marks on ``<body data-images>`` whether every image loaded, and a count of errors
(scripts, failed loads) on ``<body data-errors>``. Figures are ``<img>``
elements pointing at ``/experiments/{id}/figures/{name}.svg`` and the suite report's files, so
the pages show exactly what the API serves.

Why one module of ~420 lines: the pages share one layout, one escaping rule and one table
helper; each page is a short function over them, and split apart each would import the rest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from weightspace.experiment_figures import FIGURES
from weightspace.report import IMAGE_CHECK_SCRIPT
from weightspace.vocabulary import REPORT_TERMINAL, TERMINAL, FigureName
from weightspace_service.schemas import ExperimentOut, RunOut, SuiteOut

# Pages of unfinished experiments and suites reload themselves this often (seconds).
REFRESH_S = 10
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 72rem; padding: 0 1rem;
       color: #1d1d1f; line-height: 1.45; }
nav { display: flex; gap: 1.2rem; align-items: baseline; border-bottom: 1px solid #ddd;
      padding-bottom: .5rem; margin-bottom: 1rem; }
nav .brand { font-weight: 700; }
nav form { margin-left: auto; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.2rem; font-size: .92rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e4e4e4;
         vertical-align: top; }
th { background: #f6f6f6; }
.status { padding: .05rem .45rem; border-radius: .6rem; font-size: .85rem; background: #eee; }
.status.succeeded, .status.ready, .verdict.supported { background: #d8f3dc; }
.status.failed, .verdict.not-supported { background: #ffd6d6; }
.status.running, .status.building { background: #dbe9ff; }
.status.cancelled, .verdict.not-measured { background: #eee; }
.verdict { padding: .05rem .45rem; border-radius: .6rem; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
.missing, .error { color: #9b1c1c; }
.muted { color: #666; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; font-size: .85rem; }
progress { width: 8rem; }
"""
# Counts the page's script errors and resources that failed to load, on <body data-errors>
# (beside the report's <body data-images>), for readers and the browser tests.
_ERROR_CHECK = """
var pageErrors = [];
window.addEventListener("error", function (event) {
  var target = event.target || {};
  pageErrors.push(String(event.message || target.src || target.href || "error"));
}, true);
window.addEventListener("load", function () {
  document.body.dataset.errors = String(pageErrors.length);
});
"""


def _text(value: object) -> str:
    return escape("" if value is None else str(value))


def _link(url: str, label: str) -> str:
    return f'<a href="{escape(url, quote=True)}">{_text(label)}</a>'


def _status(status: str) -> str:
    return f'<span class="status {escape(status, quote=True)}">{_text(status)}</span>'


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def page(title: str, body: str, *, refresh: bool = False, signed_in: bool = False) -> str:
    """A whole page: the navigation, ``body`` (already HTML) and the image check."""
    reload = f'<meta http-equiv="refresh" content="{REFRESH_S}">' if refresh else ""
    sign_out = (
        '<form method="post" action="/ui/logout"><button>Sign out</button></form>'
        if signed_in
        else ""
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{reload}
<title>{_text(title)} - weightspace</title>
<style>{_STYLE}</style>
<script>{_ERROR_CHECK}</script>
</head>
<body>
<nav><span class="brand">weightspace</span>{_link("/ui", "Experiments")}{_link("/docs", "API (Swagger UI)")}{_link("/redoc", "API (ReDoc)")}{sign_out}</nav>
<h1>{_text(title)}</h1>
{body}
<script>{IMAGE_CHECK_SCRIPT}</script>
</body>
</html>
"""


def progress(experiment: ExperimentOut) -> str:
    """Epochs done over epochs planned, summed over the runs (uploads: the latest epoch)."""
    runs = experiment.runs
    planned = sum(r.final_epoch or 0 for r in runs)
    if experiment.source == "upload" or planned == 0:
        latest = max((r.epoch for r in runs if r.epoch is not None), default=None)
        return "no snapshots yet" if latest is None else f"up to epoch {latest}"
    done = sum(min(r.epoch or 0, r.final_epoch or 0) for r in runs)
    share = done / planned
    return (
        f'<progress max="{planned}" value="{done}">{share:.0%}</progress> '
        f"{share:.0%} <span class='muted'>({done}/{planned} epochs)</span>"
    )


def _experiment_label(experiment: ExperimentOut) -> str:
    return experiment.name or f"experiment {experiment.id.hex[:8]}"


def _tag_links(tags: Sequence[str]) -> str:
    return " ".join(_link(f"/ui?tag={quote(t)}", t) for t in tags)


def experiments_page(
    items: Sequence[ExperimentOut],
    *,
    limit: int,
    tag: str | None = None,
    signed_in: bool = False,
) -> str:
    """The caller's experiments (those tagged ``tag``), newest first, with status, progress and
    tags; a box per row chooses the experiments to compare (``/ui/compare``)."""
    filtered = (
        f"<p>Tagged <strong>{_text(tag)}</strong> ({_link('/ui', 'all experiments')}).</p>"
        if tag
        else ""
    )
    if not items:
        body = filtered + (
            "<p>No experiments yet. Submit one with <code>POST /experiments</code> "
            f"(see {_link('/docs', 'the API')}) or <code>weightspace submit</code>.</p>"
        )
        return page("Experiments", body, signed_in=signed_in)
    rows = []
    for e in items:
        suite = _link(f"/ui/suites/{e.suite_id}", e.role or "suite") if e.suite_id else ""
        rows.append(
            f'<tr><td><input type="checkbox" name="experiment" value="{e.id}" '
            f'aria-label="compare {escape(_experiment_label(e), quote=True)}"></td>'
            f"<td>{_link(f'/ui/experiments/{e.id}', _experiment_label(e))}</td>"
            f"<td>{_status(e.status)}</td><td>{progress(e)}</td>"
            f"<td>{len(e.runs)}</td><td>{_text(e.source)}</td><td>{suite}</td>"
            f"<td>{_tag_links(e.tags)}</td>"
            f"<td>{_text(e.created_at.isoformat(timespec='seconds'))}</td></tr>"
        )
    more = (
        f"<p class='muted'>The newest {limit} are shown; <code>GET /experiments</code> pages "
        "through all of them.</p>"
        if len(items) >= limit
        else ""
    )
    body = (
        f'{filtered}<form method="get" action="/ui/compare">'
        "<table><thead><tr><th></th><th>Experiment</th><th>Status</th><th>Progress</th>"
        "<th>Runs</th><th>Source</th><th>Suite</th><th>Tags</th><th>Created</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        "<button>Compare the chosen experiments</button></form>"
        f"{more}"
    )
    refresh = any(e.status not in TERMINAL for e in items)
    return page("Experiments", body, refresh=refresh, signed_in=signed_in)


def _plane_figure(e: ExperimentOut, name: str) -> str:
    url = f"/experiments/{e.id}/landscape.svg?run=0"
    return (
        f'<figure><img src="{escape(url, quote=True)}" alt="loss landscape of {_text(name)}">'
        f"<figcaption><strong>{_text(name)}</strong>: train and test loss over the plane of "
        f"PC1 and PC2 of run 0's trajectory (axes in parameter units). {_link(url, 'SVG')}"
        "</figcaption></figure>"
    )


def compare_page(
    experiments: Sequence[ExperimentOut],
    names: Mapping[Any, str],
    analyses: Mapping[str, Any],
    *,
    problem: str | None = None,
    signed_in: bool = False,
) -> str:
    """Experiments side by side: their joint PCA and distances (``analyses``: kind -> the id of
    the analysis of every run and snapshot) and each one's landscape plane, every figure naming
    the experiments; ``problem`` says why they cannot be analysed together."""
    chosen = "".join(
        f"<li>{_link(f'/ui/experiments/{e.id}', names[e.id])} {_status(e.status)} "
        f"{_tag_links(e.tags)}</li>"
        for e in experiments
    )
    body = f"<ul>{chosen}</ul>" if chosen else ""
    if not experiments:
        body += f"<p>Choose experiments to compare on {_link('/ui', 'the list')}.</p>"
    elif problem is not None:
        body += f'<p class="error">They cannot be analysed together: {_text(problem)}</p>'
    else:
        captions = {
            "pca": "Joint PCA: every run's path in one basis, both axes in the same units "
            "(hollow: first snapshot; filled: last)",
            "distances": "Distances between every two snapshots",
        }
        for kind, caption in captions.items():
            url = f"/analyses/{analyses[kind]}/figure.svg"
            table = f"/analyses/{analyses[kind]}/table.csv"
            body += (
                f'<figure id="{kind}"><img src="{url}" alt="{_text(caption)}">'
                f"<figcaption><strong>{_text(caption)}.</strong> "
                f"{_link(url, 'SVG')} · {_link(table, 'CSV')}</figcaption></figure>"
            )
    # Planes need a model: trained experiments' own, or one an upload declared.
    planes = [e for e in experiments if e.source == "train" or getattr(e.spec, "model", None)]
    if planes:
        body += "<h2 id='landscapes'>Landscapes</h2><p class='muted'>A worker computes a plane "
        body += "the first time it is asked for: reload the page if one is missing.</p>"
        body += "".join(_plane_figure(e, names[e.id]) for e in planes)
    refresh = any(e.status not in TERMINAL for e in experiments)
    return page("Comparison", body, refresh=refresh, signed_in=signed_in)


#: The metrics every trained run has, in the order the runs table shows them.
STANDARD_METRICS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")


def _metric_names(runs: Sequence[RunOut]) -> list[str]:
    """The runs table's metric columns: the standard ones any run has, then every other name
    an upload sent (sorted)."""
    present = {
        name
        for run in runs
        if run.metrics is not None
        for name, value in run.metrics.model_dump().items()
        if value is not None
    }
    return [m for m in STANDARD_METRICS if m in present] + sorted(present - {*STANDARD_METRICS})


def _run_row(experiment: ExperimentOut, run: RunOut, names: Sequence[str]) -> str:
    metrics = run.metrics.model_dump() if run.metrics is not None else {}
    cells = "".join(f"<td>{_number(metrics.get(k))}</td>" for k in names)
    base = f"/experiments/{experiment.id}/runs/{run.run}/snapshots"
    downloads = _link(base, "snapshots (JSON)")
    if run.epoch is not None:
        downloads += (
            f" \u00b7 {_link(f'{base}/{run.epoch}', f'epoch {run.epoch} (safetensors)')}"
            f" \u00b7 {_link(f'{base}/{run.epoch}?format=state_dict', 'as a state dict')}"
        )
    final = "" if run.final_epoch is None else f" / {run.final_epoch}"
    return (
        f"<tr><td>{run.run}</td><td>{_status(run.status)}</td>"
        f"<td>{_text(run.epoch)}{final}</td>{cells}<td>{downloads}</td></tr>"
    )


def _figure(experiment: ExperimentOut, name: FigureName, unavailable: str | None) -> str:
    info = FIGURES[name]
    title = _text(info.title)
    if unavailable is not None:
        return (
            f'<figure id="{name}"><figcaption><strong>{title}</strong>: '
            f'<span class="missing">not drawn: {_text(unavailable)}</span></figcaption></figure>'
        )
    url = f"/experiments/{experiment.id}/figures/{name}.svg"
    return (
        f'<figure id="{name}"><img src="{url}" alt="{title}">'
        f"<figcaption><strong>{title}.</strong> {_text(info.caption)} "
        f"{_link(url, 'SVG')}</figcaption></figure>"
    )


def experiment_page(
    experiment: ExperimentOut,
    figures: Mapping[FigureName, str | None],
    *,
    signed_in: bool = False,
) -> str:
    """One experiment: status, per-run metrics and downloads, its figures and its spec.

    ``figures`` says per figure ``None`` when it can be drawn, else why not.
    """
    e = experiment
    facts = [
        ("Status", _status(e.status)),
        ("Progress", progress(e)),
        ("Source", _text(e.source)),
        ("Queue", _text(e.queue)),
        ("Created", _text(e.created_at.isoformat(timespec="seconds"))),
    ]
    if e.finished_at is not None:
        facts.append(("Finished", _text(e.finished_at.isoformat(timespec="seconds"))))
    if e.suite_id is not None:
        facts.append(("Suite", _link(f"/ui/suites/{e.suite_id}", f"{e.role or ''} suite")))
    if e.error:
        facts.append(("Error", f'<span class="error">{_text(e.error)}</span>'))
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    names = _metric_names(e.runs)
    runs = "".join(_run_row(e, run, names) for run in e.runs)
    heads = "".join(f"<th>{_text(name.replace('_', ' ').capitalize())}</th>" for name in names)
    damaged = "".join(
        f"<li>run {d.run}, epoch {d.epoch}: {_text(d.reason)}</li>" for d in e.damaged_snapshots
    )
    base = f"/experiments/{e.id}"
    json_links = " \u00b7 ".join(
        _link(url, label)
        for url, label in (
            (base, "experiment"),
            (f"{base}/runs", "runs"),
            (f"{base}/pca", "PCA"),
            (f"{base}/distances", "distances"),
            (f"{base}/trajectory", "trajectory metrics"),
        )
    )
    spec = json.dumps(e.spec.model_dump(mode="json"), indent=2)
    body = f"""<table class="facts"><tbody>{table}</tbody></table>
<h2 id="runs">Runs</h2>
<p class="muted">Metrics at each run's latest snapshot, evaluated on the whole training and test
sets with dropout off; not the mean minibatch loss during an epoch (the run's
<code>train_loss</code> in the API, shown as &ldquo;batch loss&rdquo; by <code>weightspace
status</code> and <code>wait</code>).</p>
<table><thead><tr><th>Run</th><th>Status</th><th>Epoch</th>{heads}<th>Downloads</th></tr></thead>
<tbody>{runs}</tbody></table>
{f"<h3>Damaged snapshots</h3><ul>{damaged}</ul>" if damaged else ""}
<h2 id="figures">Figures</h2>
{"".join(_figure(e, name, why) for name, why in figures.items())}
<h2 id="data">Data</h2>
<p>As JSON: {json_links}.</p>
<details><summary>Spec</summary><pre>{_text(spec)}</pre></details>
"""
    return page(_experiment_label(e), body, refresh=e.status not in TERMINAL, signed_in=signed_in)


def _claims_table(claims: Sequence[Mapping[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{_text(c.get('id'))}</td><td>{_text(c.get('statement'))}</td>"
        f'<td><span class="verdict {escape(str(c.get("verdict", "")).replace(" ", "-"), quote=True)}">'
        f"{_text(c.get('verdict'))}</span></td><td>{_text(c.get('note'))}</td></tr>"
        for c in claims
    )
    return (
        "<table><thead><tr><th>Claim</th><th>What is measured</th><th>Verdict</th><th>Note</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def suite_page(
    suite: SuiteOut, claims: Sequence[Mapping[str, Any]], *, signed_in: bool = False
) -> str:
    """A suite: its experiments with their progress, and the report once it is ready."""
    rows = "".join(
        f"<tr><td>{_text(item.role)}</td><td>{item.replicate}</td>"
        f"<td>{_link(f'/ui/experiments/{item.experiment.id}', _experiment_label(item.experiment))}</td>"
        f"<td>{_status(item.experiment.status)}</td><td>{progress(item.experiment)}</td></tr>"
        for item in suite.experiments
    )
    report = suite.report
    base = f"/suites/{suite.id}/report"
    if report.status == "ready":
        figures = "".join(
            f'<figure><img src="{base}/{escape(name, quote=True)}" alt="{_text(name)}">'
            f"<figcaption>{_link(f'{base}/{name}', name)}</figcaption></figure>"
            for name in report.files
            if name.endswith(".svg")
        )
        report_html = (
            f"<p>{_link(f'{base}/index.html', 'The full report')} (claims with their nulls, "
            f"figures, specs) \u00b7 {_link(f'{base}/claims.json', 'claims.json')}</p>"
            f"<h3>Claims</h3>{_claims_table(claims)}<h3>Figures</h3>{figures}"
        )
    else:
        why = f": {_text(report.error)}" if report.error else ""
        report_html = (
            f"<p>The report is {_status(report.status)}{why}. It is built when every "
            "experiment of the suite has ended.</p>"
        )
    body = f"""<table class="facts"><tbody>
<tr><th>Status</th><td>{_status(suite.status)}</td></tr>
<tr><th>Preset</th><td>{_text(suite.preset)}</td></tr>
<tr><th>Data set</th><td>{_text(suite.dataset)}</td></tr>
<tr><th>Seeds</th><td>{suite.seeds}</td></tr>
<tr><th>Created</th><td>{_text(suite.created_at.isoformat(timespec="seconds"))}</td></tr>
</tbody></table>
<h2 id="experiments">Experiments</h2>
<table><thead><tr><th>Role</th><th>Seed</th><th>Experiment</th><th>Status</th><th>Progress</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2 id="report">Report</h2>
{report_html}
"""
    refresh = report.status not in REPORT_TERMINAL
    return page(
        f"Suite {suite.id.hex[:8]} ({suite.preset})", body, refresh=refresh, signed_in=signed_in
    )


def login_page(error: str | None = None) -> str:
    """The form that turns a bearer token into the pages' cookie (``WEIGHTSPACE_AUTH=tokens``)."""
    message = f'<p class="error">{_text(error)}</p>' if error else ""
    body = f"""{message}
<p>This server needs a token (<code>weightspace token create --owner NAME</code>). It is kept in
a cookie for this site's pages and downloads, sent with reads only.</p>
<form method="post" action="/ui/login">
<label>Token <input type="password" name="token" autocomplete="off" size="50" required></label>
<button>Sign in</button>
</form>
"""
    return page("Sign in", body)
