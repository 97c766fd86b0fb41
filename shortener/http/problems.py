"""Errors as RFC 9457 problem details."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus

from starlette.responses import Response

from shortener.http.schemas import InvalidLink, InvalidLinksProblem, Problem

MEDIA_TYPE = "application/problem+json"


class HTTPProblem(Exception):
    """Raised anywhere in the HTTP layer; rendered as application/problem+json."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        invalid_links: Sequence[InvalidLink] = (),
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.invalid_links = list(invalid_links)


def problem(status: int, detail: str, invalid_links: Sequence[InvalidLink] = ()) -> Problem:
    title = HTTPStatus(status).phrase
    if invalid_links:
        return InvalidLinksProblem(
            title=title, status=status, detail=detail, invalid_links=list(invalid_links)
        )
    return Problem(title=title, status=status, detail=detail)


def problem_response(
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    invalid_links: Sequence[InvalidLink] = (),
) -> Response:
    return Response(
        problem(status, detail, invalid_links).model_dump_json(),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )
