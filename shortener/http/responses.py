"""What the HTTP layer answers with: JSON, redirects, and errors as problem+json or, on the
routes people reach from a message, as a page for a browser."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel
from starlette.responses import Response
from starlette.types import Scope

from shortener.http.pages import MEDIA_TYPE as PAGE_MEDIA_TYPE
from shortener.http.pages import page_for, wants_html
from shortener.http.problems import problem_response
from shortener.http.schemas import InvalidLink

JSON = "application/json"
RawHeaders = list[tuple[bytes, bytes]]


def json_response(model: BaseModel, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status, media_type=JSON)


def redirect(location: str) -> Response:
    return Response(status_code=302, headers={"location": location, "cache-control": "no-store"})


def header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def error_response(
    scope: Scope,
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    public: bool,
    page: bytes | None = None,
    invalid_links: Sequence[InvalidLink] = (),
) -> Response:
    """problem+json; or, on a public route and for a client that asks for HTML, a page for
    people."""
    if public and wants_html(header(scope, b"accept")):
        return Response(
            page or page_for(status),
            status_code=status,
            headers={
                **(headers or {}),
                "cache-control": "no-store",
                "content-type": PAGE_MEDIA_TYPE,
            },
        )
    return problem_response(status, detail, headers, invalid_links)


def error_parts(
    scope: Scope,
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    page: bytes | None = None,
) -> tuple[int, RawHeaders, bytes]:
    """An error on a public route, as status, headers and body for a bare ASGI answer."""
    response = error_response(scope, status, detail, headers, page=page, public=True)
    raw = [(k, v) for k, v in response.raw_headers if k != b"content-length"]
    return status, raw, bytes(response.body)
