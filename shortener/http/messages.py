"""`POST /v1/messages/shorten` and `/v1/messages/batch`; a stored message, and its takedown."""

from __future__ import annotations

import json

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from shortener.domain.errors import MessageRefused
from shortener.domain.messages import ShortenRequest, ShortenResult
from shortener.domain.takedown import TakedownRequest
from shortener.http import errors, requests
from shortener.http.problems import problem
from shortener.http.responses import json_response
from shortener.http.schemas import BatchRequest, BatchResult, MessageError, Problem
from shortener.http.translation import caller_problem


async def shorten(request: Request) -> Response:
    org = requests.org(request)
    message = await requests.body(request, ShortenRequest)
    services = await requests.services(request)
    return json_response(await services.shortening.shorten(org, message))


async def shorten_batch(request: Request) -> Response:
    org = requests.org(request)
    batch = await requests.body(request, BatchRequest)
    messages = [_message(raw) for raw in batch.messages]
    services = await requests.services(request)
    valid = [message for message in messages if isinstance(message, ShortenRequest)]
    outcomes = iter(await services.shortening.shorten_many(org, valid))
    results: list[ShortenResult | MessageError] = []
    for message in messages:
        outcome: ShortenResult | MessageRefused | Problem = (
            message if isinstance(message, Problem) else next(outcomes)
        )
        if isinstance(outcome, ShortenResult):
            results.append(outcome)
        elif isinstance(outcome, Problem):
            results.append(MessageError(error=outcome))
        else:
            refused = caller_problem(outcome)
            error = problem(refused.status, refused.detail, refused.invalid_links)
            results.append(MessageError(error=error))
    return json_response(BatchResult(results=results))


def _message(raw: object) -> ShortenRequest | Problem:
    """One message of a batch, or the problem a single shorten of it would answer."""
    try:
        # Parsed from JSON as a single shorten's body is, so that its errors read the same.
        return ShortenRequest.model_validate_json(json.dumps(raw))
    except ValidationError as error:
        invalid = requests.invalid(error)
        return problem(invalid.status, invalid.detail)


async def stored_message(request: Request) -> Response:
    org = requests.org(request)
    message_id = request.path_params["message_id"]
    services = await requests.services(request)
    found = await services.takedown.message(org, message_id)
    if found is None:
        raise errors.MESSAGE_NOT_YOURS(message_id=message_id)
    return json_response(found)


async def disable_message(request: Request) -> Response:
    org = requests.org(request)
    message_id = request.path_params["message_id"]
    takedown = await requests.optional_body(request, TakedownRequest) or TakedownRequest()
    services = await requests.services(request)
    if not await services.takedown.disable_message(org, message_id, takedown.reason):
        raise errors.MESSAGE_NOT_YOURS(message_id=message_id)
    return Response(status_code=204)
