"""`/v1/webhooks…`: an org's webhook endpoints, their failed events and their replay."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from shortener.domain.webhooks import WebhookRequest
from shortener.http import errors, requests
from shortener.http.responses import json_response
from shortener.http.translation import CALLER_ERRORS, caller_problem


async def put_webhook(request: Request) -> Response:
    org = requests.org(request)
    webhook = await requests.body(request, WebhookRequest)
    services = await requests.services(request)
    try:
        saved = await services.webhooks.put(org, request.path_params["name"], webhook)
    except CALLER_ERRORS as error:
        raise caller_problem(error) from None
    return json_response(saved)


async def list_webhooks(request: Request) -> Response:
    org = requests.org(request)
    services = await requests.services(request)
    return json_response(await services.webhooks.all(org))


async def _known(request: Request) -> tuple[str, str]:
    """The org and the name of one of its endpoints; 404 for an endpoint it does not have."""
    org = requests.org(request)
    name: str = request.path_params["name"]
    services = await requests.services(request)
    if await services.webhooks.find(org, name) is None:
        raise errors.WEBHOOK_UNKNOWN(name=name)
    return org, name


async def get_webhook(request: Request) -> Response:
    org = requests.org(request)
    name = request.path_params["name"]
    services = await requests.services(request)
    webhook = await services.webhooks.get(org, name)
    if webhook is None:
        raise errors.WEBHOOK_UNKNOWN(name=name)
    return json_response(webhook)


async def delete_webhook(request: Request) -> Response:
    org = requests.org(request)
    name = request.path_params["name"]
    services = await requests.services(request)
    if not await services.webhooks.delete(org, name):
        raise errors.WEBHOOK_UNKNOWN(name=name)
    return Response(status_code=204)


async def failed_events(request: Request) -> Response:
    org, name = await _known(request)
    services = await requests.services(request)
    return json_response(await services.webhooks.failed(org, name))


async def replay(request: Request) -> Response:
    org, name = await _known(request)
    services = await requests.services(request)
    return json_response(await services.webhooks.replay(org, name))
