"""The errors the client raises (besides httpx's transport errors and TimeoutError)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from weightspace_client.types import Experiment, Suite


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


class ExperimentFailed(WeightspaceError):
    """:meth:`WeightspaceClient.wait` saw the experiment end ``failed`` or ``cancelled``.

    ``experiment`` is its last polled state; ``status`` and ``cause`` (the server's ``error``,
    or None) are read from it.
    """

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self.status: str = experiment["status"]
        self.cause: str | None = experiment.get("error") or None
        message = f"experiment {experiment['id']} {self.status}"
        super().__init__(f"{message}: {self.cause}" if self.cause else message)


class ReportFailed(WeightspaceError):
    """:meth:`WeightspaceClient.wait_suite` saw the suite's report fail to build.

    ``suite`` is its last polled state; ``cause`` the report's ``error`` (or None).
    """

    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self.cause: str | None = suite["report"].get("error") or None
        message = f"the report of suite {suite['id']} failed"
        super().__init__(f"{message}: {self.cause}" if self.cause else message)


def _reason(status: int) -> str:
    return httpx.codes.get_reason_phrase(status) or "HTTP error"
