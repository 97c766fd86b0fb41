"""Errors as RFC 9457 problem details."""

from __future__ import annotations

from http import HTTPStatus

from starlette.responses import Response

from shortener.http.schemas import Problem

MEDIA_TYPE = "application/problem+json"


class HTTPProblem(Exception):
    """Raised anywhere in the HTTP layer; rendered as application/problem+json."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def problem(status: int, detail: str) -> Problem:
    return Problem(title=HTTPStatus(status).phrase, status=status, detail=detail)


def problem_response(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        problem(status, detail).model_dump_json(),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )
