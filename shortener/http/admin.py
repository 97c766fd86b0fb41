"""`/v1/admin/…`: orgs, their settings and keys, and any org's link takedown, for holders of
an admin key."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from shortener.domain.org_keys import UnknownKey
from shortener.domain.takedown import TakedownRequest
from shortener.domain.tenancy import OrgChanges, OrgList
from shortener.http import errors, requests
from shortener.http.responses import json_response
from shortener.http.translation import CALLER_ERRORS, caller_problem


async def put_org(request: Request) -> Response:
    requests.admin(request)
    changes = await requests.body(request, OrgChanges)
    services = await requests.services(request)
    try:
        org = await services.tenancy.put(request.path_params["org"], changes)
    except CALLER_ERRORS as error:
        raise caller_problem(error) from None
    return json_response(org)


async def get_org(request: Request) -> Response:
    requests.admin(request)
    name = request.path_params["org"]
    services = await requests.services(request)
    org = await services.tenancy.get(name)
    if org is None:
        raise errors.ORG_UNKNOWN(org=name)
    return json_response(org)


async def list_orgs(request: Request) -> Response:
    requests.admin(request)
    services = await requests.services(request)
    return json_response(OrgList(orgs=await services.tenancy.all()))


async def _known_org(request: Request) -> str:
    name: str = request.path_params["org"]
    services = await requests.services(request)
    if await services.tenancy.get(name) is None:
        raise errors.ORG_UNKNOWN(org=name)
    return name


async def create_key(request: Request) -> Response:
    requests.admin(request)
    org = await _known_org(request)
    services = await requests.services(request)
    return json_response(await services.org_keys.create(org), status=201)


async def list_keys(request: Request) -> Response:
    requests.admin(request)
    org = await _known_org(request)
    services = await requests.services(request)
    return json_response(await services.org_keys.list(org))


async def revoke_key(request: Request) -> Response:
    requests.admin(request)
    org = await _known_org(request)
    key_id = request.path_params["key_id"]
    services = await requests.services(request)
    try:
        await services.org_keys.revoke(org, key_id)
    except UnknownKey as error:
        raise errors.KEY_UNKNOWN(reason=error) from None
    return Response(status_code=204)


async def disable_any_link(request: Request) -> Response:
    requests.admin(request)
    link_id = request.path_params["code"]
    takedown = await requests.optional_body(request, TakedownRequest) or TakedownRequest()
    services = await requests.services(request)
    if not await services.takedown.disable(link_id, None, takedown.reason):
        raise errors.LINK_UNKNOWN(link_id=link_id)
    return Response(status_code=204)
