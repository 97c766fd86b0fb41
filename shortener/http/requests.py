"""What every handler asks of a request before it calls the domain: who calls (the bearer
key's org), the host it was sent to, the JSON body as a model, and the domain's services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.types import Scope

from shortener.config import Settings
from shortener.domain.redirects import Redirects
from shortener.http import errors
from shortener.http.auth import AdminKeys, ApiKeys, bearer_key
from shortener.http.clients import ClientAddresses
from shortener.http.problems import HTTPProblem
from shortener.http.responses import JSON, header
from shortener.http.throttle import MissThrottle
from shortener.model import Visitor
from shortener.runtime import Runtime, Services
from shortener.text.bots import is_bot, is_mail_proxy, is_privacy_prefetch
from shortener.text.parsing import whole_number

M = TypeVar("M", bound=BaseModel)
# At most this many field errors are named in a 422's detail.
_ERRORS_NAMED = 10
_UNKNOWN_FIELD = "not a field of this request (check its spelling)"


@dataclass(frozen=True, slots=True)
class Gate:
    """What the HTTP layer checks requests against, before any call reaches the domain."""

    settings: Settings
    api_keys: ApiKeys
    admin_keys: AdminKeys
    throttle: MissThrottle
    clients: ClientAddresses

    @classmethod
    def of(cls, settings: Settings) -> Gate:
        return cls(
            settings,
            ApiKeys(settings.api_keys),
            AdminKeys(settings.admin_keys),
            MissThrottle(settings.miss_limit_per_minute),
            ClientAddresses(settings.trusted_proxies),
        )


def gate(request: Request) -> Gate:
    found: Gate = request.app.state.gate
    return found


def runtime(request: Request) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found


async def services(request: Request) -> Services:
    return await runtime(request).services()


def org(request: Request) -> str:
    """The org of the request's bearer key; 401 without a valid one."""
    authorization = request.headers.get("authorization")
    found = gate(request).api_keys.org_for(authorization)
    if found is None:
        found = _stored_key_org(request, authorization)
    if found is None:
        if gate(request).admin_keys.holds(authorization):
            raise errors.ORG_KEY_NEEDED()
        raise errors.UNAUTHORIZED()
    return found


def admin(request: Request) -> None:
    """Passes a request with an admin key; 403 with an org's key, 401 without either."""
    authorization = request.headers.get("authorization")
    if gate(request).admin_keys.holds(authorization):
        return
    if (
        gate(request).api_keys.org_for(authorization) is not None
        or _stored_key_org(request, authorization) is not None
    ):
        raise errors.ADMIN_KEY_NEEDED()
    raise errors.UNAUTHORIZED()


def _stored_key_org(request: Request, authorization: str | None) -> str | None:
    key = bearer_key(authorization)
    return None if key is None else runtime(request).org_keys.org_for(key)


def owner(scope: Scope, redirects: Redirects) -> str | None:
    """The org whose domain the request was sent to; None for any other host."""
    return redirects.owner(lambda: host(scope))


def host(scope: Scope) -> str:
    """The host a request was sent to: its Host header, lowercase, without port or trailing
    dot. An IPv6 literal keeps its brackets."""
    name = header(scope, b"host").lower()
    if ":" in name and not name.endswith("]"):
        name = name.rpartition(":")[0]
    return name.rstrip(".")


def visitor(method: str, user_agent: str) -> Visitor:
    """Who taps: a HEAD is a probe, a known agent of previews and crawlers a bot."""
    if method == "HEAD":
        return Visitor.PROBE
    return Visitor.BOT if is_bot(user_agent) else Visitor.PERSON


def visitor_of(request: Request) -> Visitor:
    return visitor(request.method, request.headers.get("user-agent", ""))


def pixel_visitor_of(request: Request) -> Visitor:
    """Who fetches an open pixel: as `visitor_of`, but a mail client's image proxy fetches for
    the person who opened the mail, and a mail privacy service ahead of anyone."""
    user_agent = request.headers.get("user-agent", "")
    if request.method != "HEAD":
        if is_mail_proxy(user_agent):
            return Visitor.PROXY
        if is_privacy_prefetch(user_agent, gate(request).clients.of(request.scope)):
            return Visitor.PREFETCH
    return visitor(request.method, user_agent)


async def body(request: Request, model: type[M]) -> M:
    """The JSON body as `model`: 415 unless sent as JSON, 413 past the size limit, 400 when
    not JSON, 422 when not the model."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != JSON and not media_type.endswith("+json"):
        raise errors.NOT_JSON()
    raw = await read_body(request, gate(request).settings.max_body_bytes)
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise invalid(error) from None


async def optional_body(request: Request, model: type[M]) -> M | None:
    """Like `body`, where the body may be left out: None for a request with no body (and no
    content type)."""
    if "content-type" not in request.headers:
        if await read_body(request, gate(request).settings.max_body_bytes):
            raise errors.NOT_JSON()
        return None
    return await body(request, model)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        size = whole_number(declared)
        if size is None:
            raise errors.CONTENT_LENGTH()
        if size > limit:
            raise errors.BODY_TOO_LARGE(limit=limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.BODY_TOO_LARGE(limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def invalid(error: ValidationError) -> HTTPProblem:
    """The problem of a body that pydantic refused: 400 when not JSON, else 422 naming the
    first fields that are wrong."""
    found = error.errors(include_url=False, include_input=False)
    if any(item["type"] == "json_invalid" for item in found):
        return errors.JSON_INVALID(reason=found[0]["msg"])
    details = []
    for item in found[:_ERRORS_NAMED]:
        where = ".".join(str(part) for part in item["loc"]) or "body"
        message = _UNKNOWN_FIELD if item["type"] == "extra_forbidden" else item["msg"]
        details.append(f"{where}: {message}")
    return errors.INVALID(fields="; ".join(details))
