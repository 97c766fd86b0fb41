"""`GET /v1/links/{code}`: the link info of an id the org was issued; `DELETE`: its takedown."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from shortener.domain.takedown import TakedownRequest
from shortener.http import errors, requests
from shortener.http.responses import json_response


async def link_info(request: Request) -> Response:
    org = requests.org(request)
    link_id = request.path_params["code"]
    services = await requests.services(request)
    found = await services.lookup.link_info(link_id)
    if found is None or found[0] != org:
        raise errors.LINK_NOT_YOURS(link_id=link_id)
    return json_response(found[1])


async def disable_link(request: Request) -> Response:
    org = requests.org(request)
    link_id = request.path_params["code"]
    takedown = await requests.optional_body(request, TakedownRequest) or TakedownRequest()
    services = await requests.services(request)
    if not await services.takedown.disable(link_id, org, takedown.reason):
        raise errors.LINK_NOT_YOURS(link_id=link_id)
    return Response(status_code=204)
