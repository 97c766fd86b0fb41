"""`GET`/`PUT /v1/contacts/{contact_id}/consent`: a contact's tracking consent; `DELETE
/v1/contacts/{contact_id}`: its erasure."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from shortener.domain.limits import MAX_ID_LENGTH
from shortener.http import errors, requests
from shortener.http.responses import json_response
from shortener.http.schemas import ConsentRequest


def _contact_id(request: Request) -> str:
    contact_id: str = request.path_params["contact_id"]
    if not 1 <= len(contact_id) <= MAX_ID_LENGTH:
        raise errors.CONTACT_ID()
    return contact_id


async def set_consent(request: Request) -> Response:
    org = requests.org(request)
    contact_id = _contact_id(request)
    consent = await requests.body(request, ConsentRequest)
    services = await requests.services(request)
    await services.recorder.set_consent(org, contact_id, consent.tracking)
    return Response(status_code=204)


async def get_consent(request: Request) -> Response:
    org = requests.org(request)
    contact_id = _contact_id(request)
    services = await requests.services(request)
    return json_response(await services.recorder.consent(org, contact_id))


async def erase_contact(request: Request) -> Response:
    org = requests.org(request)
    contact_id = _contact_id(request)
    services = await requests.services(request)
    return json_response(await services.recorder.erase(org, contact_id))
