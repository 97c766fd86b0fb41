"""The dashboard's routes: its pages, its forms, and its one style sheet.

They are pages for people, not the API: the OpenAPI document leaves them out."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute

from shortener.http import errors
from shortener.http.dashboard import pages
from shortener.http.dashboard.rendering import PATHS, PREFIX, STATIC
from shortener.http.routing import SegmentRoute

_STATIC_DIR = Path(__file__).parent / "static"
# Served by name from this list only: no path from a request reaches the file system.
_STATIC_FILES = {"dashboard.css": "text/css; charset=utf-8"}
# A style sheet changes with the service's code: an hour in a browser's cache is enough.
_STATIC_CACHE = "public, max-age=3600"


async def static_file(request: Request) -> Response:
    name = request.path_params["name"]
    media_type = _STATIC_FILES.get(name)
    if media_type is None:
        raise errors.NO_RESOURCE(path=request.url.path)
    return FileResponse(
        _STATIC_DIR / name,
        media_type=media_type,
        headers={"cache-control": _STATIC_CACHE, "x-content-type-options": "nosniff"},
    )


def _get(name: str, handler: pages.Handler) -> SegmentRoute:
    return SegmentRoute(PATHS[name], handler, methods=["GET"])


def _post(name: str, handler: pages.Handler) -> SegmentRoute:
    return SegmentRoute(PATHS[name], handler, methods=["POST"])


ROUTES: list[BaseRoute] = [
    _get("overview", pages.home),
    _post("sign_in", pages.sign_in),
    _post("sign_out", pages.posted(pages.sign_out)),
    _get("link", pages.signed_in(pages.link)),
    _post("disable", pages.posted(pages.disable)),
    _get("expiring", pages.signed_in(pages.expiring)),
    _get("webhooks", pages.signed_in(pages.webhooks)),
    _post("replay", pages.posted(pages.replay)),
    _get("orgs", pages.signed_in(pages.orgs)),
    _post("save_org", pages.posted(pages.save_org)),
    _post("create_key", pages.posted(pages.create_key)),
    _post("revoke_key", pages.posted(pages.revoke_key)),
    SegmentRoute(f"{STATIC}/{{name}}", static_file, methods=["GET"]),
]


def is_dashboard(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")
