"""A typed, synchronous HTTP client of the weightspace REST API (httpx only: no torch or numpy).

Why one module of ~750 lines: one class with one method per API operation (as httpx-based SDKs
are laid out), so the whole contract reads in one place; retries, uploads' safetensors
encoding and the torch callback live in their own modules.
"""

from __future__ import annotations

import contextlib
import hashlib
import json as json_module
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self, TypeVar, cast
from urllib.parse import quote

import httpx

from weightspace_client import __version__
from weightspace_client.retries import RetryTransport
from weightspace_client.tensors import encode_safetensors
from weightspace_client.types import (
    PCA,
    REPORT_TERMINAL_STATUSES,
    TERMINAL_STATUSES,
    Analysis,
    Barriers,
    BarriersPending,
    Claims,
    Distances,
    Experiment,
    Health,
    Preset,
    Readiness,
    Run,
    SnapshotInfo,
    Suite,
    Trajectory,
    WorkerList,
)

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "WEIGHTSPACE_URL"
TOKEN_ENV = "WEIGHTSPACE_TOKEN"
#: Sent with every submission: the same key and request create one resource (24 hours).
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Response header carrying the hex sha256 of a downloaded snapshot's bytes.
CHECKSUM_HEADER = "X-Checksum-Sha256"
_DOWNLOAD_CHUNK = 1 << 20
#: What a report file may be called: a plain name in the report folder, nothing above it.
_REPORT_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")


def resolve_base_url(base_url: str | None = None) -> str:
    """``base_url``, else ``$WEIGHTSPACE_URL``, else :data:`DEFAULT_URL`; no trailing slash."""
    url = base_url or os.environ.get(URL_ENV) or DEFAULT_URL
    return url.rstrip("/")


def resolve_token(token: str | None = None) -> str | None:
    """``token``, else ``$WEIGHTSPACE_TOKEN``, else no token."""
    return token or os.environ.get(TOKEN_ENV) or None


class WeightspaceError(Exception):
    """Base class of the errors this client raises (besides httpx's transport errors)."""


class ApiError(WeightspaceError):
    """A non-2xx response, with its RFC 9457 problem document.

    ``problem`` is the response's JSON object when it has one; otherwise a document made from
    the status line and the start of the body.
    """

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem: dict[str, Any] = dict(problem)
        super().__init__(status, self.problem)

    @property
    def title(self) -> str:
        return str(self.problem.get("title") or _reason(self.status))

    @property
    def detail(self) -> str | None:
        detail = self.problem.get("detail")
        return None if detail in (None, "") else str(detail)

    @property
    def errors(self) -> list[dict[str, Any]]:
        errors = self.problem.get("errors")
        if not isinstance(errors, list):
            return []
        return [e if isinstance(e, dict) else {"message": str(e)} for e in errors]

    def __str__(self) -> str:
        lines = []
        for error in self.errors:
            field = error.get("field")
            if isinstance(field, list | tuple):
                field = ".".join(map(str, field))
            message = error.get("message", "")
            lines.append(f"{field}: {message}" if field else str(message))
        text = f"{self.status} {self.title}"
        detail = self.detail
        # The service's detail often just joins the field errors: say them once.
        if detail and detail != self.title and not (lines and all(x in detail for x in lines)):
            text += f": {detail}"
        return "\n  - ".join([text, *lines])

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """The error for ``response``, whose body must have been read."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            return cls(response.status_code, body)
        problem: dict[str, Any] = {"title": response.reason_phrase or _reason(response.status_code)}
        text = response.text.strip()
        if isinstance(body, str):  # FastAPI-style {"detail": ...} aside, a bare JSON string
            problem["detail"] = body
        elif text:
            problem["detail"] = text[:500]
        return cls(response.status_code, problem)


class ChecksumError(WeightspaceError):
    """Downloaded bytes do not match the checksum the server announced or listed."""


def _reason(status: int) -> str:
    return httpx.codes.get_reason_phrase(status) or "HTTP error"


def _segment(value: object) -> str:
    """One path segment, percent-encoded (ids come from users)."""
    return quote(str(value), safe="")


def _experiment_path(experiment_id: str) -> str:
    return f"/experiments/{_segment(experiment_id)}"


def _snapshots_path(experiment_id: str, run: int) -> str:
    return f"{_experiment_path(experiment_id)}/runs/{int(run)}/snapshots"


def _suite_path(suite_id: str) -> str:
    return f"/suites/{_segment(suite_id)}"


@contextlib.contextmanager
def _atomic_file(target: Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``target``, renamed onto it only if the block ends normally.

    On any exception the temporary file is removed and ``target`` is left as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)  # mkstemp's 0600 is for the unfinished file only
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


class WeightspaceClient:
    """Client of one weightspace service.

    Parameters
    ----------
    base_url : str, optional
        Root URL of the API; default ``$WEIGHTSPACE_URL``, then ``http://127.0.0.1:8000``.
    token : str, optional
        Sent as ``Authorization: Bearer <token>``; default ``$WEIGHTSPACE_TOKEN``, if set.
    timeout : float
        Seconds for each network operation (connect, read, write) of one request.
    transport : httpx.BaseTransport, optional
        For tests (``httpx.MockTransport``) or custom networking.
    retries : int, optional
        Attempts per request on connection errors and 502/503/504, with exponential backoff,
        for requests that are safe to repeat (see :mod:`weightspace_client.retries`). Default
        5 with the client's own networking, 1 (no retries) with a ``transport`` of yours.

    Use it as a context manager, or call :meth:`close`, to release its connections.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        retries: int | None = None,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        attempts = retries if retries is not None else (1 if transport is not None else 5)
        if attempts > 1:
            transport = RetryTransport(transport or httpx.HTTPTransport(), attempts=attempts)
        headers = {
            "Accept": "application/json",
            "User-Agent": f"weightspace-client/{__version__}",
        }
        token = resolve_token(token)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        #: The underlying ``httpx.Client`` (base URL and headers set), for requests of your own.
        self.http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    # -- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WeightspaceClient({self.base_url!r})"

    def _request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        response = self.http.request(
            method, url, params=params, json=json, content=content, headers=headers
        )
        if response.is_error:
            raise ApiError.from_response(response)
        return response

    def _get(self, url: str | httpx.URL, params: Mapping[str, Any] | None = None) -> Any:
        return self._request("GET", url, params=params).json()

    def _paginate(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """Items of a list endpoint, following ``next_cursor`` until it is null.

        A page is ``{"items": [...], "next_cursor": ...}``; a bare JSON list is one last page.
        """
        query = dict(params or {})
        seen: set[str] = set()
        while True:
            page = self._get(path, query)
            if isinstance(page, list):
                yield from page
                return
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return
            if cursor in seen:
                raise WeightspaceError(f"the server repeated the cursor {cursor!r} of {path}")
            seen.add(cursor)
            query["cursor"] = cursor

    # -- service ------------------------------------------------------------------------

    def health(self) -> Health:
        """``GET /health``: the process answers."""
        return cast(Health, self._get("/health"))

    def ready(self) -> Readiness:
        """``GET /ready``: whether the database, broker and store answer, with a check for each.

        A 503 with a readiness document is returned (``status == "unavailable"``), not raised.
        """
        response = self.http.get("/ready")
        if response.status_code == 503:
            body = _json_or_none(response)
            if isinstance(body, dict) and "checks" in body:
                return cast(Readiness, body)
        if response.is_error:
            raise ApiError.from_response(response)
        return cast(Readiness, response.json())

    # -- experiments ----------------------------------------------------------------------

    def submit(
        self,
        spec: Mapping[str, Any],
        *,
        queue: str | None = None,
        idempotency_key: str | None = None,
    ) -> Experiment:
        """Create an experiment from ``spec`` (an ``ExperimentSpec`` as JSON) and queue it.

        ``queue`` is ``"cpu"`` or ``"gpu"``; by default the service's default queue. Invalid
        specs raise :class:`ApiError` (422) naming each offending field. The request carries an
        ``Idempotency-Key`` (``idempotency_key``, else a new random one), so that sending it
        again, e.g. after a lost answer, creates nothing more.
        """
        params = {} if queue is None else {"queue": queue}
        response = self._request(
            "POST",
            "/experiments",
            json=dict(spec),
            params=params,
            headers=_idempotent(idempotency_key),
        )
        created = _json_or_none(response)
        if isinstance(created, dict) and "id" in created:
            return cast(Experiment, created)
        location = response.headers.get("Location")
        if not location:
            raise WeightspaceError(
                "the service created an experiment but named neither id nor Location"
            )
        return cast(Experiment, self._get(response.request.url.join(location)))

    def list_experiments(
        self, *, status: str | None = None, limit: int = 50
    ) -> Iterator[Experiment]:
        """Every experiment (newest first), fetching pages of ``limit`` as the iterator advances."""
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        return cast(Iterator[Experiment], self._paginate("/experiments", params))

    def get_experiment(self, experiment_id: str) -> Experiment:
        return cast(Experiment, self._get(_experiment_path(experiment_id)))

    def list_runs(self, experiment_id: str) -> list[Run]:
        return cast(list[Run], list(self._paginate(f"{_experiment_path(experiment_id)}/runs")))

    def wait(
        self,
        experiment_id: str,
        *,
        poll: float = 1.0,
        timeout: float | None = None,
        on_update: Callable[[Experiment], None] | None = None,
    ) -> Experiment:
        """Poll until the experiment is succeeded, failed or cancelled, and return it.

        ``on_update`` is called with every polled state, the last one included. Raises
        :class:`TimeoutError` if ``timeout`` seconds pass first.
        """
        return _poll(
            lambda: self.get_experiment(experiment_id),
            lambda e: e["status"] in TERMINAL_STATUSES,
            lambda e: f"experiment {experiment_id} is still {e['status']}",
            poll=poll,
            timeout=timeout,
            on_update=on_update,
        )

    # -- snapshots ------------------------------------------------------------------------

    def list_snapshots(self, experiment_id: str, run: int) -> Iterator[SnapshotInfo]:
        """Metadata of one run's snapshots, in epoch order."""
        return cast(Iterator[SnapshotInfo], self._paginate(_snapshots_path(experiment_id, run)))

    def download_snapshot(
        self, experiment_id: str, run: int, epoch: int, path: str | os.PathLike[str]
    ) -> Path:
        """Save one snapshot's safetensors file at ``path``, verified, and return the path.

        The bytes are streamed to a temporary file beside ``path`` and checked against both the
        response's ``X-Checksum-Sha256`` header and the sha256 and size listed for the snapshot;
        only then is the file renamed into place, so ``path`` never holds a partial or corrupt
        file. Raises :class:`ChecksumError` on any mismatch (and leaves nothing behind).
        """
        target = Path(path)
        listed = next(
            (s for s in self.list_snapshots(experiment_id, run) if s["epoch"] == epoch), None
        )
        if listed is None:
            raise WeightspaceError(
                f"experiment {experiment_id} has no snapshot of run {run} at epoch {epoch}"
            )
        with _atomic_file(target) as out:
            announced, digest, size = self._stream_snapshot(experiment_id, run, epoch, out)
            _verify(announced, digest, size, listed)
        return target

    def _stream_snapshot(
        self, experiment_id: str, run: int, epoch: int, out: Any
    ) -> tuple[str, str, int]:
        """Write the snapshot's bytes to ``out``; return (announced sha256, actual sha256, size)."""
        url = f"{_snapshots_path(experiment_id, run)}/{int(epoch)}"
        headers = {"Accept": "application/octet-stream"}
        with self.http.stream("GET", url, headers=headers) as response:
            if response.is_error:
                response.read()
                raise ApiError.from_response(response)
            announced = response.headers.get(CHECKSUM_HEADER)
            if not announced:
                raise ChecksumError(f"the response has no {CHECKSUM_HEADER} header")
            digest = hashlib.sha256()
            size = 0
            for chunk in response.iter_bytes(_DOWNLOAD_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        return announced.strip().lower(), digest.hexdigest(), size

    # -- uploads: snapshots from your own training loop -------------------------------------

    def create_upload(self, *, name: str | None = None, replicas: int = 1) -> Experiment:
        """Create an experiment that receives snapshots (``replicas`` runs) instead of training."""
        body: dict[str, Any] = {"source": "upload", "replicas": int(replicas)}
        if name is not None:
            body["name"] = name
        return self.submit(body)

    def upload(
        self,
        experiment_id: str,
        run: int,
        epoch: int,
        state_dict: Mapping[str, Any] | bytes | os.PathLike[str],
        *,
        metrics: Mapping[str, float] | None = None,
    ) -> SnapshotInfo:
        """Upload one snapshot: a state dict (torch tensors or numpy arrays), the bytes of a
        safetensors file, or the path of one. The body's sha256 is sent and verified."""
        if isinstance(state_dict, bytes):
            body = state_dict
        elif isinstance(state_dict, os.PathLike):
            body = Path(state_dict).read_bytes()
        else:
            body = encode_safetensors(state_dict)
        headers = {
            "Content-Type": "application/octet-stream",
            CHECKSUM_HEADER: hashlib.sha256(body).hexdigest(),
        }
        if metrics:
            headers["X-Metrics"] = json_module.dumps({k: float(v) for k, v in metrics.items()})
        url = f"{_snapshots_path(experiment_id, run)}/{int(epoch)}"
        response = self._request("PUT", url, content=body, headers=headers)
        return cast(SnapshotInfo, response.json())

    def complete(self, experiment_id: str) -> Experiment:
        """Close an uploaded experiment once every run has its snapshots."""
        path = f"{_experiment_path(experiment_id)}/complete"
        return cast(Experiment, self._request("POST", path).json())

    def download_state_dict(
        self, experiment_id: str, run: int, epoch: int, path: str | os.PathLike[str]
    ) -> Path:
        """Save one snapshot as a plain safetensors state dict (``safetensors.torch.load_file``
        then ``model.load_state_dict``); verified against the announced sha256."""
        target = Path(path)
        url = f"{_snapshots_path(experiment_id, run)}/{int(epoch)}"
        with _atomic_file(target) as out:
            with self.http.stream("GET", url, params={"format": "state_dict"}) as response:
                if response.is_error:
                    response.read()
                    raise ApiError.from_response(response)
                announced = (response.headers.get(CHECKSUM_HEADER) or "").strip().lower()
                digest = hashlib.sha256()
                for chunk in response.iter_bytes(_DOWNLOAD_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
            if digest.hexdigest() != announced:
                raise ChecksumError(f"state dict does not match its {CHECKSUM_HEADER}")
        return target

    # -- presets and suites: reproducing the paper -----------------------------------------

    def workers(self) -> WorkerList:
        """``GET /workers``: the live workers, their queues, devices and data sets (an admin
        token under ``WEIGHTSPACE_AUTH=tokens``)."""
        return cast(WorkerList, self._get("/workers"))

    def presets(self) -> list[Preset]:
        """``GET /presets``: every preset, each with its experiment specs."""
        return cast(list[Preset], list(self._paginate("/presets")))

    def preset(self, name: str, *, dataset: str | None = None) -> Preset:
        """One preset's experiment specs, on ``dataset`` (default: the preset's own)."""
        params = {} if dataset is None else {"dataset": dataset}
        return cast(Preset, self._get(f"/presets/{_segment(name)}", params))

    def submit_suite(
        self,
        preset: str,
        *,
        dataset: str | None = None,
        queue: str | None = None,
        idempotency_key: str | None = None,
        seeds: int | None = None,
    ) -> Suite:
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
        response = self._request(
            "POST", "/suites", json=body, params=params, headers=_idempotent(idempotency_key)
        )
        created = _json_or_none(response)
        if isinstance(created, dict) and "id" in created:
            return cast(Suite, created)
        location = response.headers.get("Location")
        if not location:
            raise WeightspaceError("the service created a suite but named neither id nor Location")
        return cast(Suite, self._get(response.request.url.join(location)))

    def cancel(self, experiment_id: str) -> Experiment:
        """Cancel a queued or running experiment (a running one stops within seconds)."""
        path = f"{_experiment_path(experiment_id)}/cancel"
        return cast(Experiment, self._request("POST", path).json())

    def retry(self, experiment_id: str) -> Experiment:
        """Queue a failed or cancelled experiment again; it continues from its stored state."""
        path = f"{_experiment_path(experiment_id)}/retry"
        return cast(Experiment, self._request("POST", path).json())

    def delete(self, experiment_id: str) -> None:
        """Delete an experiment and all its stored snapshots (not while it runs)."""
        self._request("DELETE", _experiment_path(experiment_id))

    def cancel_suite(self, suite_id: str) -> Suite:
        """Cancel every experiment of the suite that has not ended."""
        return cast(Suite, self._request("POST", f"{_suite_path(suite_id)}/cancel").json())

    def retry_suite(self, suite_id: str) -> Suite:
        """Queue the suite's failed and cancelled experiments again."""
        return cast(Suite, self._request("POST", f"{_suite_path(suite_id)}/retry").json())

    def delete_suite(self, suite_id: str) -> None:
        """Delete the suite, its experiments and their snapshots, and its report."""
        self._request("DELETE", _suite_path(suite_id))

    def get_suite(self, suite_id: str) -> Suite:
        """The suite's experiments with their progress, and its report's status."""
        return cast(Suite, self._get(_suite_path(suite_id)))

    def wait_suite(
        self,
        suite_id: str,
        *,
        poll: float = 1.0,
        timeout: float | None = None,
        on_update: Callable[[Suite], None] | None = None,
    ) -> Suite:
        """Poll until the suite's report is ready or has failed, and return the suite.

        The report is built once every experiment has ended (whether or not they succeeded),
        so this outlasts the training. ``on_update`` is called with every polled state, the
        last one included. Raises :class:`TimeoutError` if ``timeout`` seconds pass first.
        """
        return _poll(
            lambda: self.get_suite(suite_id),
            lambda s: s["report"]["status"] in REPORT_TERMINAL_STATUSES,
            lambda s: (
                f"suite {suite_id} is still {s['status']}, its report {s['report']['status']}"
            ),
            poll=poll,
            timeout=timeout,
            on_update=on_update,
        )

    def claims(self, suite_id: str) -> Claims:
        """The paper's claims with the measured figures and a verdict each.

        Raises :class:`ApiError` (409) until the suite's report is ready.
        """
        return cast(Claims, self._get(f"{_suite_path(suite_id)}/claims"))

    def download_report(self, suite_id: str, directory: str | os.PathLike[str]) -> list[Path]:
        """Save every file of the suite's report into ``directory``; return their paths.

        The files are those the suite lists in ``report.files`` (``index.html``,
        ``claims.json`` and the figures it links to, by relative names), each written to a
        temporary file first and renamed into place, so no file is ever left half-written.
        Raises :class:`WeightspaceError` unless the report is ready.
        """
        suite = self.get_suite(suite_id)
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
            url = f"{_suite_path(suite_id)}/report/{_segment(name)}"
            with _atomic_file(target) as out:
                self._stream_to(url, out)
            paths.append(target)
        return paths

    def _stream_to(self, url: str, out: BinaryIO) -> None:
        """Write the body of ``GET url`` to ``out`` as it arrives."""
        with self.http.stream("GET", url, headers={"Accept": "*/*"}) as response:
            if response.is_error:
                response.read()
                raise ApiError.from_response(response)
            for chunk in response.iter_bytes(_DOWNLOAD_CHUNK):
                out.write(chunk)

    # -- analysis -------------------------------------------------------------------------

    def pca(
        self,
        experiment_id: str,
        *,
        components: int = 2,
        runs: Iterable[int] | None = None,
        epochs: Iterable[int] | None = None,
    ) -> PCA:
        """PCA of the snapshots of ``runs`` (all by default) at ``epochs`` (all by default)."""
        params: dict[str, Any] = {"components": components}
        if runs is not None:
            params["runs"] = [int(r) for r in runs]  # repeated: ?runs=0&runs=1
        if epochs is not None:
            params["epochs"] = [int(e) for e in epochs]
        return cast(PCA, self._get(f"{_experiment_path(experiment_id)}/pca", params))

    def analyse(
        self,
        kind: str,
        selection: Iterable[Mapping[str, Any]],
        *,
        components: int = 2,
        poll: float = 0.5,
        timeout: float | None = None,
    ) -> Analysis:
        """``POST /analyses``: PCA (``kind="pca"``) or distances (``"distances"``) of snapshots
        from several experiments, e.g. ``[{"experiment": id1}, {"experiment": id2, "runs": [0]}]``;
        polls while the service answers 202 and returns the finished analysis."""
        body = {"kind": kind, "components": int(components), "selection": list(selection)}
        response = self._request("POST", "/analyses", json=body)
        if response.status_code != 202:
            return cast(Analysis, response.json())
        location = response.headers.get("Location") or f"/analyses/{response.json()['id']}"
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            time.sleep(poll)
            response = self._request("GET", location)
            if response.status_code != 202:
                return cast(Analysis, response.json())
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"analysis {location} still running after {timeout:g} s")

    def distances(self, experiment_id: str, *, epoch: int | None = None) -> Distances:
        """Distances between the runs at ``epoch`` (the final epoch by default)."""
        params = {} if epoch is None else {"epoch": int(epoch)}
        path = f"{_experiment_path(experiment_id)}/distances"
        return cast(Distances, self._get(path, params))

    def trajectory(self, experiment_id: str) -> Trajectory:
        """Per run and snapshot: metrics, step and path length, displacement, straightness."""
        return cast(Trajectory, self._get(f"{_experiment_path(experiment_id)}/trajectory"))

    def barriers(self, experiment_id: str) -> Barriers | BarriersPending:
        """Loss barriers between the final solutions (``status`` "queued" while a worker
        computes them: ask again after a while)."""
        return cast(
            Barriers | BarriersPending, self._get(f"{_experiment_path(experiment_id)}/barriers")
        )


def _idempotent(key: str | None) -> dict[str, str]:
    """The ``Idempotency-Key`` header of one logical submission."""
    return {IDEMPOTENCY_HEADER: key or str(uuid.uuid4())}


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


def _verify(announced: str, actual: str, size: int, listed: SnapshotInfo) -> None:
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
    if listed_size is not None and int(listed_size) != size:
        raise ChecksumError(f"snapshot has {size} bytes, but is listed with {listed_size}")


def _poll(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    describe: Callable[[T], str],
    *,
    poll: float,
    timeout: float | None,
    on_update: Callable[[T], None] | None,
) -> T:
    """Fetch until ``done``; every state goes to ``on_update``; TimeoutError after ``timeout`` s."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        state = fetch()
        if on_update is not None:
            on_update(state)
        if done(state):
            return state
        pause = poll
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{describe(state)} after {timeout:g} s")
            pause = min(poll, left)
        time.sleep(pause)
