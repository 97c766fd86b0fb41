"""`/v1/admin/orgs…`: orgs and their settings, for holders of an admin key."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

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
