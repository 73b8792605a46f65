"""Every operation of the weightspace API, written once for the sync and the async client.

Why one module of ~770 lines: one flow per API operation (see :mod:`weightspace_client.flows`),
so the whole contract -- paths, parameters, bodies, how answers are read -- reads in one place;
the clients in ``client.py`` and ``aio.py`` only perform the flows' steps.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx

from weightspace_client.errors import (
    ApiError,
    ChecksumError,
    ExperimentFailed,
    ReportFailed,
    WeightspaceError,
)
from weightspace_client.flows import (
    CHECKSUM_HEADER,
    Flow,
    Pages,
    Sleep,
    Stream,
    Streamed,
    atomic_file,
    call,
    every_item,
    experiment_path,
    get,
    json_or_none,
    operation,
    page,
    paged,
    segment,
    settled,
    snapshots_path,
    suite_path,
)
from weightspace_client.flows import poll as poll_until
from weightspace_client.tensors import state_dict_file
from weightspace_client.types import (
    PCA,
    Analysis,
    Barriers,
    BarriersPending,
    Claims,
    Distances,
    Experiment,
    Health,
    Landscape,
    LandscapePending,
    Preset,
    Readiness,
    ReportStatus,
    Run,
    SnapshotInfo,
    Status,
    Suite,
    Trajectory,
    Verification,
    VerificationPending,
    WorkerList,
)

#: An experiment in one of these states will not change any more (until a retry).
TERMINAL_STATUSES: frozenset[Status] = frozenset({"succeeded", "failed", "cancelled"})
#: A suite's report in one of these states will not change any more.
REPORT_TERMINAL_STATUSES: frozenset[ReportStatus] = frozenset({"ready", "failed"})
#: Sent with every submission: the same key and request create one resource (24 hours).
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: What a report file may be called: a plain name in the report folder, nothing above it.
_REPORT_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")
_CSV = {"Accept": "text/csv"}
_SVG = {"Accept": "image/svg+xml"}
#: A worker job's answer: its ``status`` is ``ready`` once computed.
Job = TypeVar("Job", bound=Mapping[str, object])


class Operations:
    """The API's operations; a subclass performs their flows (see ``_perform``/``_iterate``)."""

    # -- service ------------------------------------------------------------------------

    @operation
    def health(self) -> Flow[Health]:
        """``GET /health``: the process answers."""
        return cast(Health, (yield from get("/health")))

    @operation
    def ready(self) -> Flow[Readiness]:
        """``GET /ready``: whether the database, broker and store answer, with a check for each.

        A 503 with a readiness document is returned (``status == "unavailable"``), not raised.
        """
        response = yield from call("GET", "/ready", accept=frozenset({503}))
        if response.status_code == 503:
            body = json_or_none(response)
            if isinstance(body, dict) and "checks" in body:
                return cast(Readiness, body)
            raise ApiError.from_response(response)
        return cast(Readiness, response.json())

    # -- experiments ----------------------------------------------------------------------

    @operation
    def submit(
        self,
        spec: Mapping[str, Any],
        *,
        queue: str | None = None,
        idempotency_key: str | None = None,
    ) -> Flow[Experiment]:
        """Create an experiment from ``spec`` (an ``ExperimentSpec`` as JSON) and queue it.

        ``queue`` is ``"cpu"`` or ``"gpu"``; by default the service's default queue. Invalid
        specs raise :class:`ApiError` (422) naming each offending field. The request carries an
        ``Idempotency-Key`` (``idempotency_key``, else a new random one), so that sending it
        again, e.g. after a lost answer, creates nothing more.
        """
        params = {} if queue is None else {"queue": queue}
        created = yield from _create("/experiments", dict(spec), params, idempotency_key)
        return cast(Experiment, created)

    @paged
    def list_experiments(
        self, *, status: str | None = None, tag: str | None = None, limit: int = 50
    ) -> Pages[Experiment]:
        """Every experiment (newest first), or those with ``status`` and ``tag``, fetching pages
        of ``limit`` as the iterator advances."""
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        if tag is not None:
            params["tag"] = tag
        return Pages("/experiments", params)

    @operation
    def annotate(
        self, experiment_id: str, *, tags: Iterable[str] | None = None, note: str | None = None
    ) -> Flow[Experiment]:
        """``PATCH /experiments/{id}``: replace its ``tags`` and set its ``note`` (``""``
        removes it); what is ``None`` stays as it is."""
        body: dict[str, Any] = {}
        if tags is not None:
            body["tags"] = list(tags)
        if note is not None:
            body["note"] = note
        response = yield from call("PATCH", experiment_path(experiment_id), json=body)
        return cast(Experiment, response.json())

    @operation
    def get_experiment(self, experiment_id: str) -> Flow[Experiment]:
        return cast(Experiment, (yield from get(experiment_path(experiment_id))))

    @operation
    def list_runs(self, experiment_id: str) -> Flow[list[Run]]:
        return (yield from every_item(Pages[Run](f"{experiment_path(experiment_id)}/runs")))

    @operation
    def wait(
        self,
        experiment_id: str,
        *,
        poll: float = 1.0,
        timeout: float | None = None,
        on_update: Callable[[Experiment], None] | None = None,
        check: bool = True,
    ) -> Flow[Experiment]:
        """Poll until the experiment is succeeded, failed or cancelled, and return it.

        ``on_update`` is called with every polled state, the last one included. Raises
        :class:`ExperimentFailed` (carrying the server's ``error``) if it ended failed or
        cancelled, unless ``check`` is false, and :class:`TimeoutError` if ``timeout`` seconds
        pass first.
        """
        final = yield from poll_until(
            lambda: Operations.get_experiment.flow(self, experiment_id),
            lambda e: e["status"] in TERMINAL_STATUSES,
            lambda e: f"experiment {experiment_id} is still {e['status']}",
            every=poll,
            timeout=timeout,
            on_update=on_update,
        )
        if check and final["status"] != "succeeded":
            raise ExperimentFailed(final)
        return final

    # -- snapshots ------------------------------------------------------------------------

    @paged
    def list_snapshots(self, experiment_id: str, run: int) -> Pages[SnapshotInfo]:
        """Metadata of one run's snapshots, in epoch order."""
        return Pages(snapshots_path(experiment_id, run))

    @operation
    def download_snapshot(
        self, experiment_id: str, run: int, epoch: int, path: str | os.PathLike[str]
    ) -> Flow[Path]:
        """Save one snapshot's safetensors file at ``path``, verified, and return the path.

        The bytes are streamed to a temporary file beside ``path`` and checked against both the
        response's ``X-Checksum-Sha256`` header and the sha256 and size listed for the snapshot;
        only then is the file renamed into place, so ``path`` never holds a partial or corrupt
        file. Raises :class:`ChecksumError` on any mismatch (and leaves nothing behind).
        """
        target = Path(path)
        listed = yield from _find_snapshot(experiment_id, run, epoch)
        url = f"{snapshots_path(experiment_id, run)}/{int(epoch)}"
        with atomic_file(target) as out:
            streamed = yield Stream(url, out, headers={"Accept": "application/octet-stream"})
            _verify(streamed, listed)
        return target

    # -- uploads: snapshots from your own training loop -------------------------------------

    @operation
    def create_upload(
        self,
        *,
        name: str | None = None,
        replicas: int = 1,
        model: Mapping[str, Any] | None = None,
        dataset: Mapping[str, Any] | None = None,
        include: str | None = None,
    ) -> Flow[Experiment]:
        """Create an experiment that receives snapshots (``replicas`` runs) instead of training.

        ``model`` and ``dataset`` (as in a training spec) declare an architecture the service
        can build: landscape planes and barriers then work as for trained runs. ``include``:
        ``"parameters+buffers"`` (the default) or ``"parameters"`` (buffers left out)."""
        given = {"name": name, "model": model, "dataset": dataset, "include": include}
        body: dict[str, Any] = {"source": "upload", "replicas": int(replicas)}
        body.update({key: value for key, value in given.items() if value is not None})
        return (yield from Operations.submit.flow(self, body))

    @operation
    def upload(
        self,
        experiment_id: str,
        run: int,
        epoch: int,
        state_dict: Mapping[str, Any] | bytes | str | os.PathLike[str] | Any,
        *,
        metrics: Mapping[str, float] | None = None,
    ) -> Flow[SnapshotInfo]:
        """Upload one snapshot: a state dict (torch tensors or numpy arrays), a module (its
        ``state_dict()``, with its buffers named), the bytes of a safetensors file, or the path
        of one (``str`` or ``os.PathLike``). Tensors sharing memory (tied weights) are declared
        as such and counted once. The body's sha256 is sent and verified."""
        if isinstance(state_dict, bytes):
            body = state_dict
        elif isinstance(state_dict, str | os.PathLike):
            body = Path(state_dict).read_bytes()
        else:
            body = state_dict_file(state_dict)
        headers = {
            "Content-Type": "application/octet-stream",
            CHECKSUM_HEADER: hashlib.sha256(body).hexdigest(),
        }
        if metrics:
            headers["X-Metrics"] = json.dumps({k: float(v) for k, v in metrics.items()})
        url = f"{snapshots_path(experiment_id, run)}/{int(epoch)}"
        response = yield from call("PUT", url, content=body, headers=headers)
        return cast(SnapshotInfo, response.json())

    @operation
    def complete(self, experiment_id: str) -> Flow[Experiment]:
        """Close an uploaded experiment once every run has its snapshots."""
        response = yield from call("POST", f"{experiment_path(experiment_id)}/complete")
        return cast(Experiment, response.json())

    @operation
    def download_state_dict(
        self, experiment_id: str, run: int, epoch: int, path: str | os.PathLike[str]
    ) -> Flow[Path]:
        """Save one snapshot as a plain safetensors state dict (``safetensors.torch.load_file``
        then ``model.load_state_dict``); verified against the announced sha256."""
        target = Path(path)
        url = f"{snapshots_path(experiment_id, run)}/{int(epoch)}"
        with atomic_file(target) as out:
            streamed = yield Stream(url, out, params={"format": "state_dict"})
            announced = (streamed.headers.get(CHECKSUM_HEADER) or "").strip().lower()
            if streamed.sha256 != announced:
                raise ChecksumError(f"state dict does not match its {CHECKSUM_HEADER}")
        return target

    @operation
    def workers(self) -> Flow[WorkerList]:
        """``GET /workers``: the live workers, their queues, devices and data sets (an admin
        token under ``WEIGHTSPACE_AUTH=tokens``)."""
        return cast(WorkerList, (yield from get("/workers")))

    # -- presets and suites: reproducing the paper -----------------------------------------

    @operation
    def presets(self) -> Flow[list[Preset]]:
        """``GET /presets``: every preset, each with its experiment specs."""
        return (yield from every_item(Pages[Preset]("/presets")))

    @operation
    def preset(self, name: str, *, dataset: str | None = None) -> Flow[Preset]:
        """One preset's experiment specs, on ``dataset`` (default: the preset's own)."""
        params = {} if dataset is None else {"dataset": dataset}
        return cast(Preset, (yield from get(f"/presets/{segment(name)}", params)))

    @operation
    def submit_suite(
        self,
        preset: str,
        *,
        dataset: str | None = None,
        queue: str | None = None,
        idempotency_key: str | None = None,
        seeds: int | None = None,
    ) -> Flow[Suite]:
        """Submit a preset's experiments as one suite; its report is built when they end.

        ``preset`` is ``"quick"`` or ``"paper"``; ``dataset`` is ``"mnist"``,
        ``"fashion-mnist"`` or ``"digits"`` (default: the preset's); ``queue`` is ``"cpu"`` or
        ``"gpu"`` (default: the service's); ``seeds`` repeats the experiments with that many
        sets of derived seeds, the report giving intervals over them (default: the preset's).
        Idempotent like :meth:`submit`.
        """
        params = {} if queue is None else {"queue": queue}
        body: dict[str, Any] = {"preset": preset, "dataset": dataset}
        if seeds is not None:
            body["seeds"] = seeds
        return cast(Suite, (yield from _create("/suites", body, params, idempotency_key)))

    @operation
    def cancel(self, experiment_id: str) -> Flow[Experiment]:
        """Cancel a queued or running experiment (a running one stops within seconds)."""
        response = yield from call("POST", f"{experiment_path(experiment_id)}/cancel")
        return cast(Experiment, response.json())

    @operation
    def retry(self, experiment_id: str) -> Flow[Experiment]:
        """Queue a failed or cancelled experiment again; it continues from its stored state."""
        response = yield from call("POST", f"{experiment_path(experiment_id)}/retry")
        return cast(Experiment, response.json())

    @operation
    def delete(self, experiment_id: str) -> Flow[None]:
        """Delete an experiment and all its stored snapshots (not while it runs)."""
        yield from call("DELETE", experiment_path(experiment_id))

    @operation
    def cancel_suite(self, suite_id: str) -> Flow[Suite]:
        """Cancel every experiment of the suite that has not ended."""
        response = yield from call("POST", f"{suite_path(suite_id)}/cancel")
        return cast(Suite, response.json())

    @operation
    def retry_suite(self, suite_id: str) -> Flow[Suite]:
        """Queue the suite's failed and cancelled experiments again."""
        response = yield from call("POST", f"{suite_path(suite_id)}/retry")
        return cast(Suite, response.json())

    @operation
    def delete_suite(self, suite_id: str) -> Flow[None]:
        """Delete the suite, its experiments and their snapshots, and its report."""
        yield from call("DELETE", suite_path(suite_id))

    @paged
    def list_suites(self, *, limit: int = 50) -> Pages[Suite]:
        """Every suite (newest first), fetching pages of ``limit`` as the iterator advances."""
        return Pages("/suites", {"limit": limit})

    @operation
    def get_suite(self, suite_id: str) -> Flow[Suite]:
        """The suite's experiments with their progress, and its report's status."""
        return cast(Suite, (yield from get(suite_path(suite_id))))

    @operation
    def wait_suite(
        self,
        suite_id: str,
        *,
        poll: float = 1.0,
        timeout: float | None = None,
        on_update: Callable[[Suite], None] | None = None,
        check: bool = True,
    ) -> Flow[Suite]:
        """Poll until the suite's report is ready or has failed, and return the suite.

        The report is built once every experiment has ended (whether or not they succeeded),
        so this outlasts the training. ``on_update`` is called with every polled state, the
        last one included. Raises :class:`ReportFailed` if the report could not be built,
        unless ``check`` is false, and :class:`TimeoutError` if ``timeout`` seconds pass first.
        Experiments that failed leave their claims "not measured" in a report that is ready.
        """
        final = yield from poll_until(
            lambda: Operations.get_suite.flow(self, suite_id),
            lambda s: s["report"]["status"] in REPORT_TERMINAL_STATUSES,
            lambda s: (
                f"suite {suite_id} is still {s['status']}, its report {s['report']['status']}"
            ),
            every=poll,
            timeout=timeout,
            on_update=on_update,
        )
        if check and final["report"]["status"] != "ready":
            raise ReportFailed(final)
        return final

    @operation
    def claims(self, suite_id: str) -> Flow[Claims]:
        """The paper's claims with the measured figures and a verdict each.

        Raises :class:`ApiError` (409) until the suite's report is ready.
        """
        return cast(Claims, (yield from get(f"{suite_path(suite_id)}/claims")))

    @operation
    def download_report(self, suite_id: str, directory: str | os.PathLike[str]) -> Flow[list[Path]]:
        """Save every file of the suite's report into ``directory``; return their paths.

        The files are those the suite lists in ``report.files`` (``index.html``,
        ``claims.json`` and the figures it links to, by relative names), each written to a
        temporary file first and renamed into place, so no file is ever left half-written.
        Raises :class:`WeightspaceError` unless the report is ready.
        """
        suite = yield from Operations.get_suite.flow(self, suite_id)
        report = suite["report"]
        if report["status"] != "ready":
            message = f"the report of suite {suite_id} is {report['status']}"
            if report.get("error"):
                message += f": {report['error']}"
            raise WeightspaceError(message)
        names = list(report.get("files") or [])
        for name in names:
            if not _REPORT_FILE.match(name):
                raise WeightspaceError(f"the service lists a report file named {name!r}")
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in names:
            target = folder / name
            with atomic_file(target) as out:
                yield Stream(f"{suite_path(suite_id)}/report/{segment(name)}", out)
            paths.append(target)
        return paths

    # -- analysis -------------------------------------------------------------------------

    @operation
    def pca(
        self,
        experiment_id: str,
        *,
        components: int = 2,
        runs: Iterable[int] | None = None,
        epochs: Iterable[int] | None = None,
    ) -> Flow[PCA]:
        """PCA of the snapshots of ``runs`` (all by default) at ``epochs`` (all by default);
        waits while workers compute a large experiment's (202)."""
        params = _pca_params(components, runs, epochs)
        path = f"{experiment_path(experiment_id)}/pca"
        return cast(PCA, (yield from settled("GET", path, params=params)).json())

    @operation
    def pca_csv(
        self,
        experiment_id: str,
        *,
        components: int = 2,
        runs: Iterable[int] | None = None,
        epochs: Iterable[int] | None = None,
    ) -> Flow[str]:
        """:meth:`pca`'s points as CSV text: ``run,epoch,pc1,...``, one row per snapshot."""
        params = {**_pca_params(components, runs, epochs), "format": "csv"}
        path = f"{experiment_path(experiment_id)}/pca"
        response = yield from settled("GET", path, params=params, headers=_CSV)
        return response.text

    @operation
    def analyse(
        self,
        kind: str,
        selection: Iterable[Mapping[str, Any]],
        *,
        components: int = 2,
        poll: float = 0.5,
        timeout: float | None = None,
    ) -> Flow[Analysis]:
        """``POST /analyses``: PCA (``kind="pca"``), distances (``"distances"``) or loss barriers
        (``"barriers"``: computed by a worker, for experiments the service trained) of snapshots
        from several experiments, e.g. ``[{"experiment": id1}, {"experiment": id2, "runs": [0]}]``;
        polls while the service answers 202 and returns the finished analysis."""
        body = {"kind": kind, "components": int(components), "selection": list(selection)}
        response = yield from call("POST", "/analyses", json=body)
        response = yield from _analysis_done(response, {}, poll, timeout)
        return cast(Analysis, response.json())

    @operation
    def analysis_csv(
        self, analysis_id: str, *, poll: float = 0.5, timeout: float | None = None
    ) -> Flow[str]:
        """An analysis of :meth:`analyse` (its ``id``) as CSV text, every row naming its
        experiment: ``pca`` a row per snapshot, ``distances`` per ordered pair, ``barriers`` per
        line."""
        path = f"/analyses/{segment(analysis_id)}/table.csv"
        response = yield from call("GET", path, headers=_CSV)
        return (yield from _analysis_done(response, _CSV, poll, timeout)).text

    @operation
    def analysis_svg(
        self, analysis_id: str, *, poll: float = 0.5, timeout: float | None = None
    ) -> Flow[bytes]:
        """An analysis of :meth:`analyse` (its ``id``) as an SVG figure, experiments named."""
        path = f"/analyses/{segment(analysis_id)}/figure.svg"
        response = yield from call("GET", path, headers=_SVG)
        return (yield from _analysis_done(response, _SVG, poll, timeout)).content

    @operation
    def distances(self, experiment_id: str, *, epoch: int | None = None) -> Flow[Distances]:
        """Distances between the runs at ``epoch`` (the final epoch by default)."""
        params = {} if epoch is None else {"epoch": int(epoch)}
        path = f"{experiment_path(experiment_id)}/distances"
        return cast(Distances, (yield from settled("GET", path, params=params)).json())

    @operation
    def distances_csv(self, experiment_id: str, *, epoch: int | None = None) -> Flow[str]:
        """:meth:`distances` as CSV text: ``epoch,run_a,run_b,distance,cosine_similarity``,
        one row per ordered pair of runs."""
        params: dict[str, Any] = {"format": "csv"}
        if epoch is not None:
            params["epoch"] = int(epoch)
        path = f"{experiment_path(experiment_id)}/distances"
        response = yield from settled("GET", path, params=params, headers=_CSV)
        return response.text

    @operation
    def trajectory(self, experiment_id: str) -> Flow[Trajectory]:
        """Per run and snapshot: metrics, step and path length, displacement, straightness."""
        path = f"{experiment_path(experiment_id)}/trajectory"
        return cast(Trajectory, (yield from settled("GET", path)).json())

    @operation
    def barriers(self, experiment_id: str) -> Flow[Barriers | BarriersPending]:
        """Loss barriers between the final solutions (``status`` "queued" while a worker
        computes them: ask again after a while)."""
        path = f"{experiment_path(experiment_id)}/barriers"
        return cast(Barriers | BarriersPending, (yield from get(path)))

    @operation
    def landscape(
        self,
        experiment_id: str,
        *,
        run: int = 0,
        resolution: int = 21,
        margin: float = 0.25,
        normalisation: str = "none",
        wait: bool = False,
        poll: float = 1.0,
        timeout: float | None = None,
    ) -> Flow[Landscape | LandscapePending]:
        """Train and test loss on a grid over the PC1-PC2 plane of one run's trajectory
        (``status`` "queued" while a worker computes it; with ``wait``, poll until it is ready,
        raising :class:`TimeoutError` if ``timeout`` seconds pass first)."""
        params = _plane_params(run, resolution, margin, normalisation)
        path = f"{experiment_path(experiment_id)}/landscape"

        def fetch() -> Flow[Landscape | LandscapePending]:
            return cast(Landscape | LandscapePending, (yield from get(path, params)))

        if not wait:
            return (yield from fetch())
        what = f"landscape of {experiment_id}"
        return (yield from _until_ready(fetch, what, every=poll, timeout=timeout))

    @operation
    def landscape_svg(
        self,
        experiment_id: str,
        *,
        run: int = 0,
        resolution: int = 21,
        margin: float = 0.25,
        normalisation: str = "none",
    ) -> Flow[bytes | None]:
        """:meth:`landscape`'s plane as an SVG figure, or None while a worker computes it (202)."""
        params = _plane_params(run, resolution, margin, normalisation)
        path = f"{experiment_path(experiment_id)}/landscape.svg"
        response = yield from call("GET", path, params=params, headers=_SVG)
        return None if response.status_code == 202 else response.content

    @operation
    def landscape_plane(
        self,
        experiment_id: str,
        *,
        run: int = 0,
        resolution: int = 21,
        margin: float = 0.25,
        normalisation: str = "none",
    ) -> Flow[bytes]:
        """The plane of :meth:`landscape` as a safetensors file, to evaluate with your own model
        (``weightspace_client.planes.evaluate`` does it and sends the losses back)."""
        params = _plane_params(run, resolution, margin, normalisation)
        path = f"{experiment_path(experiment_id)}/landscape/plane"
        response = yield from call("GET", path, params=params)
        return response.content

    @operation
    def put_landscape(
        self,
        experiment_id: str,
        losses: Mapping[str, Any],
        *,
        run: int = 0,
        resolution: int = 21,
        margin: float = 0.25,
        normalisation: str = "none",
    ) -> Flow[Landscape]:
        """Store ``losses`` (``train_loss``, ``train_examples``, optionally ``test_loss`` and
        ``test_examples``) evaluated over :meth:`landscape_plane`'s grid as the landscape."""
        params = _plane_params(run, resolution, margin, normalisation)
        path = f"{experiment_path(experiment_id)}/landscape"
        response = yield from call("PUT", path, params=params, json=dict(losses))
        return cast(Landscape, response.json())

    @operation
    def verify(
        self,
        experiment_id: str,
        *,
        run: int | None = None,
        epoch: int | None = None,
        wait: bool = True,
        poll: float = 1.0,
        timeout: float | None = None,
    ) -> Flow[Verification | VerificationPending]:
        """``POST /experiments/{id}/verify``: a worker replays the training of ``run`` (every
        run by default) up to snapshot ``epoch`` (the final one) and compares each stored
        snapshot on the way bit for bit. With ``wait``, poll until the verdict is ready
        (``verdict`` "identical", or "differs" with the first differing snapshot in
        ``difference``), raising :class:`TimeoutError` if ``timeout`` seconds pass first."""
        given = {"run": run, "epoch": epoch}
        body = {name: int(value) for name, value in given.items() if value is not None}
        path = f"{experiment_path(experiment_id)}/verify"
        response = yield from call("POST", path, json=body)
        if not wait:
            return cast(VerificationPending, response.json())
        location = response.headers.get("Location")
        params = None if location else body  # the Location names them

        def fetch() -> Flow[Verification | VerificationPending]:
            answer = yield from get(location or path, params)
            return cast(Verification | VerificationPending, answer)

        what = f"verification of {experiment_id}"
        return (yield from _until_ready(fetch, what, every=poll, timeout=timeout))


# -- the operations' parts ---------------------------------------------------------------------


def _until_ready(
    fetch: Callable[[], Flow[Job]], what: str, *, every: float, timeout: float | None
) -> Flow[Job]:
    """Fetch a worker job's answer until its ``status`` is ``ready``; TimeoutError after
    ``timeout`` seconds."""
    return (
        yield from poll_until(
            fetch,
            lambda answer: answer["status"] == "ready",
            lambda answer: f"{what} is still {answer['status']}",
            every=every,
            timeout=timeout,
            on_update=None,
        )
    )


def _create(
    path: str, body: dict[str, Any], params: Mapping[str, Any], idempotency_key: str | None
) -> Flow[Any]:
    """``POST`` a submission with its ``Idempotency-Key``; the created resource (read from
    ``Location`` if the answer has no body)."""
    headers = {IDEMPOTENCY_HEADER: idempotency_key or str(uuid.uuid4())}
    response = yield from call("POST", path, json=body, params=params, headers=headers)
    created = json_or_none(response)
    if isinstance(created, dict) and "id" in created:
        return created
    location = response.headers.get("Location")
    if not location:
        raise WeightspaceError(f"the service created {path} but named neither id nor Location")
    return (yield from get(response.request.url.join(location)))


def _analysis_done(
    response: httpx.Response, headers: Mapping[str, str], poll: float, timeout: float | None
) -> Flow[httpx.Response]:
    """``response``, or while it is a 202 the answer of its ``Location`` asked again every
    ``poll`` seconds; TimeoutError after ``timeout``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while response.status_code == 202:
        location = response.headers.get("Location") or f"/analyses/{response.json()['id']}"
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"analysis {location} still running after {timeout:g} s")
        yield Sleep(poll)
        response = yield from call("GET", location, headers=dict(headers))
    return response


def _find_snapshot(experiment_id: str, run: int, epoch: int) -> Flow[SnapshotInfo]:
    """The listed snapshot of ``run`` at ``epoch``, reading pages only until it is found."""
    pages = Pages[SnapshotInfo](snapshots_path(experiment_id, run))
    query: dict[str, Any] | None = {}
    seen: set[str] = set()
    while query is not None:
        items, query = yield from page(pages, query, seen)
        for item in items:
            if item["epoch"] == epoch:
                return cast(SnapshotInfo, item)
    raise WeightspaceError(
        f"experiment {experiment_id} has no snapshot of run {run} at epoch {epoch}"
    )


def _verify(streamed: Streamed, listed: SnapshotInfo) -> None:
    announced = (streamed.headers.get(CHECKSUM_HEADER) or "").strip().lower()
    if not announced:
        raise ChecksumError(f"the response has no {CHECKSUM_HEADER} header")
    actual = streamed.sha256
    if actual != announced:
        raise ChecksumError(
            f"snapshot bytes have sha256 {actual}, but {CHECKSUM_HEADER} says {announced}"
        )
    expected = str(listed.get("sha256", "")).lower()
    if actual != expected:
        raise ChecksumError(
            f"snapshot bytes have sha256 {actual}, but the snapshot is listed with {expected}"
        )
    listed_size = listed.get("size")
    if listed_size is not None and int(listed_size) != streamed.size:
        raise ChecksumError(f"snapshot has {streamed.size} bytes, but is listed with {listed_size}")


def _pca_params(
    components: int, runs: Iterable[int] | None, epochs: Iterable[int] | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"components": int(components)}
    if runs is not None:
        params["runs"] = [int(r) for r in runs]  # repeated: ?runs=0&runs=1
    if epochs is not None:
        params["epochs"] = [int(e) for e in epochs]
    return params


def _plane_params(run: int, resolution: int, margin: float, normalisation: str) -> dict[str, Any]:
    return {
        "run": int(run),
        "resolution": int(resolution),
        "margin": float(margin),
        "normalisation": normalisation,
    }
