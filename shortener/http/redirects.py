"""The routes people reach from a message, but for the tap itself (`tap.py`): signed tracked
links, the open pixel, and the bare address."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from shortener.domain.errors import LinkDisabled
from shortener.http import errors, requests
from shortener.http.pages import DISABLED_PAGE, HOME_PAGE
from shortener.http.responses import error_response, redirect
from shortener.text.parsing import whole_number

# The smallest transparent GIF: 1x1, one transparent colour.
PIXEL_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
_NO_STORE = {
    "cache-control": "no-store, no-cache, must-revalidate, max-age=0",
    "pragma": "no-cache",
}


async def follow_tracked(request: Request) -> Response:
    query = request.query_params
    # An empty value is what a query cut right after its '=' leaves: as good as none.
    target, digest, written_version = (
        query.get(name) or None for name in ("targetUrl", "digest", "secretVersion")
    )
    version = None
    if written_version is not None:
        version = whole_number(written_version)
        if version is None:
            raise errors.SECRET_VERSION()
    services = await requests.services(request)
    redirects = services.redirects
    org_hash = request.path_params["org_hash"]
    link_id = request.path_params["link_id"]
    visitor = requests.visitor_of(request)
    owner = requests.owner(request.scope, redirects)
    try:
        if target is None or digest is None or version is None:
            location = await redirects.follow_cut(
                org_hash, link_id, visitor, owner, target=target, digest=digest, version=version
            )
        else:
            location = await redirects.follow(
                org_hash, link_id, target, digest, version, visitor, owner
            )
    except LinkDisabled:
        disabled = errors.LINK_DISABLED()
        return error_response(
            request.scope, disabled.status, disabled.detail, public=True, page=DISABLED_PAGE
        )
    return redirect(location)


async def open_pixel(request: Request) -> Response:
    redirects = (await requests.services(request)).redirects
    await redirects.open(
        request.path_params["org_hash"],
        request.path_params["link_id"],
        requests.pixel_visitor_of(request),
        requests.owner(request.scope, redirects),
    )
    return Response(PIXEL_GIF, media_type="image/gif", headers=_NO_STORE)


async def home(request: Request) -> Response:
    problem = errors.HOME()
    return error_response(
        request.scope, problem.status, problem.detail, public=True, page=HOME_PAGE
    )
