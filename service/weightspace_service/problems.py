"""RFC 9457 problem documents for every error the API returns."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Scope, Send
from weightspace_app.access import Conflict, InvalidQuery, NotFound, Unsupported
from weightspace_app.infra import logs
from weightspace_app.infra.gram_store import DamagedSnapshot
from weightspace_app.infra.idempotency import KeyReused
from weightspace_app.usecases.limits import OverBudget, QuotaExceeded

from weightspace.data import DatasetUnavailable
from weightspace.errors import InvalidField
from weightspace.snapshots import StoreUnavailable
from weightspace_service.protocol import allowed_methods

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class Unavailable(RuntimeError):
    """A dependency (queue, store) cannot be reached: HTTP 503."""


class Unauthorized(RuntimeError):
    """No valid bearer token: HTTP 401 with ``WWW-Authenticate``."""

    def __init__(self, message: str, *, presented: bool) -> None:
        super().__init__(message)
        self.presented = presented


class FieldError(BaseModel):
    field: str = Field(
        description="Dotted path of the offending field, e.g. `optimizer.lr` or `query.components`."
    )
    message: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(default="about:blank", description="A URI naming the kind of problem.")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str | None = Field(default=None, description="What went wrong with this request.")
    instance: str | None = Field(default=None, description="The request's path.")
    errors: list[FieldError] | None = Field(
        default=None, description="One entry per invalid field (422 only)."
    )
    request_id: str | None = Field(
        default=None,
        description="The request's id (also in the `X-Request-ID` header and the server's log).",
    )


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
) -> JSONResponse:
    body = Problem(
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
        request_id=logs.current("request_id"),
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM_JSON
    )


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]  # the body is the spec: name its fields as the spec does
        if parts and parts[0] in {"train", "upload"}:
            parts = parts[1:]  # the tag of the spec's kind (training or upload)
    # Drop the discriminator tag pydantic inserts for tagged unions (model.mlp.hidden -> model.hidden).
    parts = [
        p
        for i, p in enumerate(parts)
        if not (i > 0 and parts[i - 1] == "model" and p in {"mlp", "cnn", "paper-cnn"})
    ]
    return ".".join(parts) or "body"


async def send_problem(scope: Scope, send: Send, exc: StarletteHTTPException) -> None:
    """Answer ``exc`` as a problem document straight from ASGI middleware."""
    request = Request(scope)
    response = problem_response(request, exc.status_code, _title(exc.status_code), exc.detail)
    await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    return [FieldError(field=_field_path(e["loc"]), message=e["msg"]) for e in exc.errors()]


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem_response(request, 422, "Invalid request", detail, errors)

    @app.exception_handler(InvalidQuery)
    async def _invalid_query(request: Request, exc: InvalidQuery) -> JSONResponse:
        field = f"query.{exc.field}"
        return problem_response(
            request,
            422,
            "Invalid request",
            f"{field}: {exc}",
            [FieldError(field=field, message=str(exc))],
        )

    @app.exception_handler(DatasetUnavailable)
    async def _no_data(request: Request, exc: DatasetUnavailable) -> JSONResponse:
        errors = [FieldError(field=exc.field, message=str(exc))]
        return problem_response(request, 422, "Data set unavailable", f"{exc.field}: {exc}", errors)

    @app.exception_handler(OverBudget)
    async def _over_budget(request: Request, exc: OverBudget) -> JSONResponse:
        errors = [FieldError(field=exc.field, message=str(exc))]
        return problem_response(request, 422, "Over a limit", f"{exc.field}: {exc}", errors)

    @app.exception_handler(QuotaExceeded)
    async def _quota(request: Request, exc: QuotaExceeded) -> JSONResponse:
        response = problem_response(request, 429, "Too many requests", str(exc))
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(KeyReused)
    async def _key_reused(request: Request, exc: KeyReused) -> JSONResponse:
        field = "header.Idempotency-Key"
        errors = [FieldError(field=field, message=str(exc))]
        return problem_response(request, 422, "Invalid request", f"{field}: {exc}", errors)

    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, exc: Unauthorized) -> JSONResponse:
        response = problem_response(request, 401, "Unauthorized", str(exc))
        challenge = 'Bearer realm="weightspace"'
        if exc.presented:
            challenge += ', error="invalid_token"'
        response.headers["WWW-Authenticate"] = challenge
        return response

    @app.exception_handler(InvalidField)
    async def _invalid_field(request: Request, exc: InvalidField) -> JSONResponse:
        return problem_response(
            request,
            422,
            "Invalid request",
            f"{exc.field}: {exc}",
            [FieldError(field=exc.field, message=str(exc))],
        )

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return problem_response(request, 404, "Not found", str(exc))

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> JSONResponse:
        title = "Not available for this experiment" if isinstance(exc, Unsupported) else None
        return problem_response(request, 409, title or "Not available yet", str(exc))

    @app.exception_handler(DamagedSnapshot)
    async def _damaged(request: Request, exc: DamagedSnapshot) -> JSONResponse:
        return problem_response(request, 409, "Damaged snapshot", str(exc))

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, exc: Unavailable) -> JSONResponse:
        return problem_response(request, 503, "Service unavailable", str(exc))

    # Handled here (not by the catch-all below, which Starlette re-raises to the server, which
    # then drops the connection): a dependency's outage is a 503 on a connection that stays open.
    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DBAPIError) and not exc.connection_invalidated and not _is_outage(exc):
            return await _unexpected(request, exc)
        log.warning("database unavailable on %s: %s", request.url.path, type(exc).__name__)
        response = problem_response(
            request, 503, "Service unavailable", "the database is unreachable; try again shortly"
        )
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(StoreUnavailable)
    async def _store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        response = problem_response(request, 503, "Service unavailable", str(exc))
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = problem_response(
            request, exc.status_code, _title(exc.status_code), str(exc.detail)
        )
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            table = request.app.state.routes
            response.headers["Allow"] = ", ".join(allowed_methods(table, request.url.path))
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        response = problem_response(
            request, 500, "Internal server error", "the error has been logged"
        )
        # The server closes the connection after an unhandled error: say so.
        response.headers["Connection"] = "close"
        return response


def _is_outage(exc: DBAPIError) -> bool:
    """An OperationalError that means "cannot reach / lost the database" (not a bad query)."""
    text = str(exc.orig).lower()
    return any(
        marker in text
        for marker in (
            "connection",
            "could not connect",
            "server closed",
            "terminating",
            "timeout",
            "timed out",
            "database is locked",
            "unable to open",
            "the database system is",
        )
    )


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries documenting problem responses for a route."""
    descriptions = {
        401: "No valid bearer token (WEIGHTSPACE_AUTH=tokens)",
        403: "Needs an admin token (WEIGHTSPACE_AUTH=tokens)",
        404: "Not found",
        409: "Not available in the experiment's current state",
        413: "The request body exceeds `WEIGHTSPACE_MAX_BODY_BYTES` (snapshot uploads: "
        "`WEIGHTSPACE_MAX_UPLOAD_BYTES`)",
        422: "Invalid request, or over a per-experiment limit; `errors` names each field",
        429: "Over a per-owner quota or the per-token submission rate (`Retry-After`)",
        500: "Unexpected server error",
        503: "A dependency is unavailable",
    }
    return {
        s: {
            "model": Problem,
            "description": descriptions.get(s, _title(s)),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }
