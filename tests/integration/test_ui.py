"""The web pages, the figures and the API docs, served by uvicorn and loaded in headless Chromium.

A real migrated PostgreSQL and SeaweedFS; an experiment on ``digits`` trained through the use
case the worker calls, another left queued, and a suite whose report is the core's rendering of
a tiny reproduction. Chromium resolves no host but loopback, so a page that needed the network
would not render. One harness page (added to the app for the test) loads every page in a
same-origin iframe and reports what each one loaded.
"""

from __future__ import annotations

import html
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from weightspace_app.infra.db import Experiment, Suite
from weightspace_app.infra.settings import Settings
from weightspace_app.usecases.execution import execute
from weightspace_app.usecases.suites import report_key
from weightspace_app.usecases.tokens import create_token

from tests.conftest import SeaweedFS
from tests.integration.browser import chromium, run_chromium
from tests.integration.serving import serving
from tests.integration.test_stranger import is_problem, settings_for
from tests.reproduction import build_reproduction
from weightspace.report import render_report
from weightspace.vocabulary import FIGURE_NAMES
from weightspace_service.app import create_app
from weightspace_service.deps import TOKEN_COOKIE

pytestmark = pytest.mark.integration

# User input that must stay text: markup, and dollar signs that matplotlib would read as TeX.
NAME = '<script>document.title="owned"</script> $\\alpha$ & <b>co</b>'
SPEC = {
    "name": NAME,
    "seed": 3,
    "dataset": {"name": "digits", "train_size": 300, "test_size": 100},
    "model": {"kind": "mlp", "hidden": [16]},
    "optimizer": {"name": "adam", "lr": 0.01},
    "epochs": 4,
    "snapshot_every": 1,
    "replicas": 2,
}
HARNESS = """<!doctype html><html><body><script>
var urls = %s, results = {}, pending = urls.length;
urls.forEach(function (url) {
  var frame = document.createElement("iframe");
  frame.width = 1200; frame.height = 900; frame.src = url;
  frame.addEventListener("load", function () {
    setTimeout(function () {  // Swagger UI and ReDoc render after fetching /openapi.json
      var doc = frame.contentDocument, images = Array.prototype.slice.call(doc.images);
      results[url] = {
        title: doc.title,
        images: images.length,
        broken: images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
          .map(function (i) { return i.getAttribute("src"); }),
        errors: doc.body.dataset.errors,
        text: doc.body.innerText.slice(0, 100000)
      };
      if (--pending === 0) {
        var out = document.createElement("pre");
        out.id = "results"; out.textContent = JSON.stringify(results);
        document.body.appendChild(out);
      }
    }, 5000);
  });
  document.body.appendChild(frame);
});
</script></body></html>"""


@dataclass
class Served:
    app: FastAPI
    url: str
    http: httpx.Client
    experiment: str  # trained
    queued: str  # never run
    suite: str  # its report ready


def _train(app: FastAPI, experiment_id: str) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # models this small train no faster on more threads
    try:
        status = execute(
            app.state.sessions, app.state.store, uuid.UUID(experiment_id), device="cpu"
        )
    finally:
        torch.set_num_threads(threads)
    assert status == "succeeded"


def _with_report(app: FastAPI, suite_id: str) -> None:
    """The suite's report as the report job stores it, from the core's tiny reproduction."""
    files = render_report(build_reproduction().core)
    for name, data in files.items():
        app.state.store.put(report_key(uuid.UUID(suite_id), name), data)
    with app.state.sessions() as session:
        suite = session.get_one(Suite, uuid.UUID(suite_id))
        suite.report_status, suite.report_files = "ready", sorted(files)
        suite.claims = json.loads(files["claims.json"])["claims"]
        session.commit()


def _s3_settings(home: Path, database_url: str, seaweedfs: SeaweedFS, **changes: Any) -> Settings:
    return Settings(
        home=home,
        database_url=database_url,
        broker_url=f"sqla+sqlite:///{home / 'broker.db'}",
        storage_url=f"s3://ws-ui-{secrets.token_hex(6)}",
        s3_endpoint_url=seaweedfs.endpoint_url,
        s3_access_key=seaweedfs.access_key,
        s3_secret_key=seaweedfs.secret_key,
        s3_region=seaweedfs.region,
        **changes,
    )


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, migrated_postgres_url: str, seaweedfs: SeaweedFS
) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("ui")
    app = create_app(_s3_settings(home, migrated_postgres_url, seaweedfs))

    @app.get("/test-harness", include_in_schema=False)
    def harness(urls: str) -> HTMLResponse:
        return HTMLResponse(HARNESS % json.dumps(urls.split(",")))

    with serving(app) as url, httpx.Client(base_url=url, timeout=120) as http:
        created = http.post("/experiments", json=SPEC)
        assert created.status_code == 202, created.text
        experiment = created.json()["id"]
        _train(app, experiment)
        queued = http.post("/experiments", json={**SPEC, "name": "waiting"}).json()["id"]
        suite = http.post("/suites", json={"preset": "quick", "dataset": "digits", "seeds": 1})
        assert suite.status_code == 202, suite.text
        _with_report(app, suite.json()["id"])
        yield Served(app, url, http, experiment, queued, suite.json()["id"])
        app.state.store.delete_prefix("")


def test_every_page_renders_offline_with_every_figure(served: Served, tmp_path: Path) -> None:
    pages = [
        "/ui",
        f"/ui/experiments/{served.experiment}",
        f"/ui/experiments/{served.queued}",
        f"/ui/suites/{served.suite}",
        "/docs",
        "/redoc",
    ]
    harness = f"{served.url}/test-harness?urls={','.join(pages)}"
    result = run_chromium(
        chromium(),
        tmp_path / "profile",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=30000",
        "--dump-dom",
        harness,
    )
    assert '<pre id="results">' in result.stdout, result.stdout[-3000:]
    dom = result.stdout.split('<pre id="results">', 1)[1].split("</pre>", 1)[0]
    loaded = json.loads(html.unescape(dom))
    assert set(loaded) == set(pages)
    for page in pages[:4]:
        assert loaded[page]["broken"] == [] and loaded[page]["errors"] == "0", (page, loaded[page])
    assert "Uncaught" not in result.stderr

    listing = loaded["/ui"]["text"]
    assert NAME in listing and "waiting" in listing and "succeeded" in listing
    experiment = loaded[f"/ui/experiments/{served.experiment}"]
    assert experiment["images"] == len(FIGURE_NAMES)
    assert experiment["title"] != "owned" and NAME in experiment["text"]  # text, not markup
    assert "Spectrum against the random-walk null" in experiment["text"]
    queued = loaded[f"/ui/experiments/{served.queued}"]
    assert queued["images"] == 0 and "no snapshots have been captured yet" in queued["text"]
    suite = loaded[f"/ui/suites/{served.suite}"]
    assert suite["images"] >= 8 and "supported" in suite["text"]
    for docs in ("/docs", "/redoc"):  # rendered from the local files: the operations are there
        assert "Get Figure" in loaded[docs]["text"], loaded[docs]["text"][:2000]


def test_names_are_escaped_in_the_html(served: Served) -> None:
    page = served.http.get(f"/ui/experiments/{served.experiment}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script>document.title="owned"</script>' not in page.text
    assert "&lt;script&gt;document.title=&quot;owned&quot;&lt;/script&gt;" in page.text
    assert "&lt;b&gt;co&lt;/b&gt;" in served.http.get("/ui").text


def test_figures_are_svg_or_problems(served: Served) -> None:
    base = f"/experiments/{served.experiment}/figures"
    for name in FIGURE_NAMES:
        figure = served.http.get(f"{base}/{name}.svg")
        assert figure.status_code == 200, figure.text
        assert figure.headers["content-type"] == "image/svg+xml"
        assert b"<svg" in figure.content[:1000] and b"</svg>" in figure.content[-100:]
    unknown = is_problem(served.http.get(f"{base}/umap.svg"), 422)
    assert unknown["errors"][0]["field"] == "path.figure", unknown
    assert served.http.get(f"{base}/pca.png").status_code == 404
    waiting = is_problem(served.http.get(f"/experiments/{served.queued}/figures/pca.svg"), 409)
    assert "no snapshots" in waiting["detail"]
    is_problem(served.http.get(f"/experiments/{uuid.uuid4()}/figures/pca.svg"), 404)

    with served.app.state.sessions() as session:
        failed = session.get_one(Experiment, uuid.UUID(served.queued))
        failed.status, failed.error = "failed", "RuntimeError: out of memory"
        session.commit()
    problem = is_problem(served.http.get(f"/experiments/{served.queued}/figures/metrics.svg"), 409)
    assert problem["detail"] == "experiment failed: RuntimeError: out of memory"
    assert (
        "experiment failed: RuntimeError"
        in served.http.get(f"/ui/experiments/{served.queued}").text
    )


def test_with_tokens_the_pages_take_a_token_from_the_sign_in_form(
    tmp_path: Path, migrated_postgres_url: str
) -> None:
    app = create_app(settings_for(tmp_path, migrated_postgres_url, auth="tokens"))
    with TestClient(app, follow_redirects=False) as client:
        with app.state.sessions() as session:
            alice = create_token(session, "alice")[1]
            bob = create_token(session, "bob")[1]
        created = client.post(
            "/experiments", json=SPEC, headers={"Authorization": f"Bearer {alice}"}
        )
        experiment = created.json()["id"]
        _train(app, experiment)

        assert client.get("/ui").headers["location"] == "/ui/login"
        assert client.get(f"/ui/experiments/{experiment}").status_code == 303
        refused = client.post("/ui/login", data={"token": "ws_not-a-token"})
        assert refused.status_code == 401 and "unknown or revoked" in refused.text
        signed_in = client.post("/ui/login", data={"token": alice})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/ui"
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert client.cookies.get(TOKEN_COOKIE) == alice

        page = client.get(f"/ui/experiments/{experiment}")
        assert page.status_code == 200 and "Sign out" in page.text
        assert client.get(f"/experiments/{experiment}/figures/pca.svg").status_code == 200
        # The cookie is for reads: a write with it alone is refused.
        is_problem(client.post(f"/experiments/{experiment}/cancel"), 401)

        # Bob signs in on this browser: his cookie replaces alice's (one cookie of that name).
        client.cookies.clear()
        client.cookies.set(TOKEN_COOKIE, bob)
        is_problem(client.get(f"/ui/experiments/{experiment}"), 404)
        is_problem(client.get(f"/experiments/{experiment}/figures/pca.svg"), 404)
        assert NAME not in client.get("/ui").text
        signed_out = client.post("/ui/logout")
        assert signed_out.status_code == 303 and TOKEN_COOKIE in signed_out.headers["set-cookie"]
