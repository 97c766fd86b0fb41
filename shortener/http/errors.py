"""Every error the HTTP API answers, each written once: its status, the `detail` it sends, the
headers that go with it, and what the OpenAPI document says of it.

Handlers raise an entry (`raise CONTACT_ID()`); the document lists the entries of each
endpoint (`endpoints.py`) with their texts, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shortener.config import Settings, setting_variable
from shortener.domain.errors import (
    BatchTooLarge,
    InvalidLinks,
    InvalidSignature,
    MessageConflict,
    ShortenLimitReached,
    TooManyLinks,
)
from shortener.domain.limits import (
    MAX_ID_LENGTH,
    MAX_LINKS_PER_BATCH,
    MAX_LINKS_PER_HTML,
    MAX_LINKS_PER_TEXT,
    MAX_PAGE,
    MIN_PAGE,
)
from shortener.domain.org_keys import UnknownKey
from shortener.domain.tenancy import DomainTaken, InvalidOrgId
from shortener.domain.webhooks import InvalidWebhookName, PrivateWebhookUrl, TooManyWebhooks
from shortener.http.problems import HTTPProblem
from shortener.http.schemas import InvalidLink, InvalidLinksProblem, Problem

# What the document calls a header an error sends, and says of it, by header name.
_HEADER_SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    "retry-after": ("Retry-After", {"type": "integer", "minimum": 0}),
    "www-authenticate": ("WWW-Authenticate", {"type": "string", "const": "Bearer"}),
}


@dataclass(frozen=True, slots=True)
class ApiError:
    status: int
    # A str.format template, filled by the handler that raises it.
    detail: str
    # What it means to a caller, for the OpenAPI document.
    meaning: str
    headers: Mapping[str, str] = field(default_factory=dict)
    # Values for the template in the document's example.
    example: Mapping[str, Any] = field(default_factory=dict)
    # The document's example of `invalid_links`, for an error that lists refused links.
    example_links: tuple[InvalidLink, ...] = ()

    @property
    def model(self) -> type[Problem]:
        """The shape of the problem this error answers."""
        return InvalidLinksProblem if self.example_links else Problem

    def __call__(self, **values: Any) -> HTTPProblem:
        headers = {name: value.format(**values) for name, value in self.headers.items()}
        return HTTPProblem(self.status, self.detail.format(**values), headers=headers)

    @property
    def example_detail(self) -> str:
        return self.detail.format(**self.example)

    def header_schemas(self) -> dict[str, dict[str, Any]]:
        return dict(_HEADER_SCHEMAS[name] for name in self.headers)


def default_of(setting: str) -> Any:
    """A setting's default, as the document quotes it."""
    return Settings.model_fields[setting].default


def _configured(setting: str, unless: str) -> str:
    return f"`{setting_variable(setting)}` ({unless})"


BODY_LIMIT = _configured("max_body_bytes", f"{default_of('max_body_bytes')} bytes by default")
MISS_LIMIT = _configured(
    "miss_limit_per_minute", f"{default_of('miss_limit_per_minute')} by default"
)
BLOCKED_DESTINATIONS = _configured(
    "blocked_destinations", "the well-known public link shorteners by default"
)
SHORTEN_LIMIT = _configured("org_shorten_limit_per_minute", "no limit by default")

# Asking and answering

UNAUTHORIZED = ApiError(
    401,
    "send a valid API key as 'Authorization: Bearer KEY'",
    "No API key, or one this service does not know.",
    {"www-authenticate": "Bearer"},
)
ORG_KEY_NEEDED = ApiError(
    403,
    "an admin key opens only the routes under /v1/admin/: send an org's API key",
    "An admin key was sent to a route that acts for an org.",
)
ADMIN_KEY_NEEDED = ApiError(
    403,
    "this route needs an admin key; an org's API key does not open it",
    "An org's API key was sent to an admin route.",
)
METRICS_KEY = ApiError(
    401,
    "send the metrics key as 'Authorization: Bearer KEY'",
    "`SHORTENER_METRICS_KEY` is set, and the request does not carry it.",
    {"www-authenticate": "Bearer"},
)
CONTENT_LENGTH = ApiError(
    400,
    "Content-Length must be a whole number of bytes",
    "`Content-Length` is not a whole number.",
)
BODY_TOO_LARGE = ApiError(
    413,
    "the request body must not exceed {limit} bytes",
    f"The request body is larger than {BODY_LIMIT}.",
    example={"limit": default_of("max_body_bytes")},
)
NOT_JSON = ApiError(
    415,
    "send the body as JSON with 'Content-Type: application/json'",
    "The body was not sent as `Content-Type: application/json`.",
)
JSON_INVALID = ApiError(
    400,
    "the body is not valid JSON: {reason}",
    "The body is not valid JSON.",
    example={"reason": "EOF while parsing"},
)
INVALID = ApiError(
    422,
    "{fields}",
    "The body is JSON but does not have the fields and values described; `detail` names the "
    "first problems found.",
    example={"fields": "body: Field required"},
)
STORE_UNAVAILABLE = ApiError(
    503,
    "the link store is not answering; try again shortly",
    "The link store did not answer in time. Retry after the number of seconds in `Retry-After`.",
    {"retry-after": "1"},
)
NOT_READY = ApiError(
    503,
    "Redis does not answer",
    "The link store does not answer. Retry after the number of seconds in `Retry-After`.",
    {"retry-after": "1"},
)
UNEXPECTED = ApiError(500, "an unexpected error occurred; it has been logged", "A bug; logged.")
NO_RESOURCE = ApiError(
    404, "there is no resource at {path!r}", "No route has this path.", example={"path": "/x/y"}
)
METHOD_NOT_ALLOWED = ApiError(
    405,
    "{method} is not allowed on {path!r}",
    "The route does not take this method.",
    example={"method": "DELETE", "path": "/healthz"},
)
PATH_SEGMENT = ApiError(
    400,
    "a path segment is not UTF-8 once percent-decoded",
    "A path segment is not UTF-8 once percent-decoded.",
)

# Messages

MESSAGE_CONFLICT = ApiError(
    409,
    "{reason}",
    "A `message_id` was used before by this org for a different message. A retry of the same "
    "message with the same id is not a conflict: it returns the first result again.",
    example={"reason": MessageConflict("campaign-7/recipient-42")},
)
TOO_MANY_LINKS = ApiError(
    422,
    "{reason}",
    f"The message has more links than a message may have ({MAX_LINKS_PER_TEXT} in a text "
    f"body, {MAX_LINKS_PER_HTML} in an html body). Nothing of it was stored.",
    example={"reason": TooManyLinks("text", MAX_LINKS_PER_TEXT + 1)},
)
_REFUSED_EXAMPLE = ("https://bit.ly/x", "links to bit.ly are not allowed on this service")
INVALID_LINKS = ApiError(
    422,
    "{reason}",
    "A link of the message leads to a host this service or the org does not allow: one "
    f"matching {BLOCKED_DESTINATIONS}, "
    "or the org's blocked destinations, or none of its allowed destinations (a pattern covers "
    "its subdomains). Every link that can be a redirect target counts, tracked or not. "
    "`invalid_links` lists each refused link with the reason. Nothing of the message was "
    "stored.",
    example={"reason": InvalidLinks([_REFUSED_EXAMPLE])},
    example_links=(InvalidLink(url=_REFUSED_EXAMPLE[0], reason=_REFUSED_EXAMPLE[1]),),
)
BATCH_TOO_LARGE = ApiError(
    413,
    "{reason}",
    f"The messages have more than {MAX_LINKS_PER_BATCH} links together (links found, as for "
    "each message's limit; messages refused on their own do not count). Nothing was stored.",
    example={"reason": BatchTooLarge()},
)
SHORTEN_LIMIT_REACHED = ApiError(
    429,
    "{reason}",
    f"An org may shorten at most {SHORTEN_LIMIT} messages a minute, and the messages of this "
    "request do not fit in what is left of the org's current minute (a batch counts each valid "
    "message, and is refused whole). Nothing was stored. Retry after the number of seconds in "
    "`Retry-After`, when that minute is over; a batch larger than the limit itself must be "
    "split.",
    {"retry-after": "{retry_after}"},
    example={
        "reason": ShortenLimitReached(limit=100, count=1, retry_after_ms=30_000),
        "retry_after": 30,
    },
)

# Contacts and interactions

CONTACT_ID = ApiError(
    400,
    f"contact_id must have 1 to {MAX_ID_LENGTH} characters",
    f"`contact_id` is not 1 to {MAX_ID_LENGTH} characters.",
)
CURSOR = ApiError(
    400,
    "after must be a cursor returned as 'next' by an earlier call",
    "`after` is not a cursor returned by this service.",
)
FILTER_INVALID = ApiError(
    400,
    "{name} must be {what}",
    "A filter of `GET /v1/interactions` is not a value it can match.",
    example={"name": "type", "what": "click or open"},
)
ANALYTICS_QUERY = ApiError(
    400,
    "{name} must be {what}",
    "A parameter of `GET /v1/analytics` or `GET /v1/analytics/campaigns` is not a value it takes.",
    example={"name": "interval", "what": "hour or day"},
)
ANALYTICS_RANGE = ApiError(
    400,
    "from and to may span at most {reason}",
    "The range asks for more buckets than one query answers.",
    example={"reason": "744 hours"},
)
PAGE_LIMIT = ApiError(
    400,
    f"limit must be a whole number from {MIN_PAGE} to {MAX_PAGE}",
    f"`limit` is not a whole number from {MIN_PAGE} to {MAX_PAGE}.",
)
LINK_NOT_YOURS = ApiError(
    404,
    "no link {link_id!r} of yours is stored",
    "This service never issued the id, or issued it to another org.",
    example={"link_id": "Xk3p9Qa"},
)
LINK_UNKNOWN = ApiError(
    404,
    "no link {link_id!r} is stored",
    "This service never issued the id, or its record is no longer kept.",
    example={"link_id": "Xk3p9Qa"},
)
MESSAGE_NOT_YOURS = ApiError(
    404,
    "no message {message_id!r} of yours is stored",
    "No message of this org was shortened with this `message_id`, or its result is no longer "
    "kept (it lives as long as the message's links).",
    example={"message_id": "campaign-7/recipient-42"},
)

# Redirects: what recipients' phones and mail apps fetch

HOME = ApiError(
    404,
    "this service only forwards short links; open the complete link from the message",
    "There is nothing here but short links.",
)
CODE_UNKNOWN = ApiError(
    404,
    "no short link was issued under this code",
    "The path starts with no code this service issued; no redirect.",
)
CODE_EXPIRED = ApiError(
    410, "this short link has expired", "The code's lifetime has passed; no redirect."
)
LINK_DISABLED = ApiError(
    410,
    "this link was disabled by its sender",
    "The link was taken down (`DELETE /v1/links/{code}`); no redirect, nothing recorded.",
)
TOO_MANY_MISSES = ApiError(
    429,
    "too many taps on unknown links from this address",
    f"This client address had {MISS_LIMIT} `404` and `410` answers within the minute, so codes "
    "this service never issued are refused until the minute is over; codes it issued are still "
    "followed. Retry after the number of seconds in `Retry-After`.",
    {"retry-after": "60"},
)
SECRET_VERSION = ApiError(
    400,
    "secretVersion must be a whole number",
    "`secretVersion` is not a whole number.",
)
INVALID_TRACKED_LINK = ApiError(
    400,
    "this tracked link is not valid: {reason}",
    "The digest, the key version or `targetUrl` does not check out, or the query was cut short "
    "and no record of the link is kept. There is never a redirect to an unsigned target.",
    example={"reason": InvalidSignature("the link's digest does not match its target")},
)

# Orgs

ORG_UNKNOWN = ApiError(
    404,
    "no org {org!r} is known",
    "No org of this name was ever set, nor configured in `SHORTENER_API_KEYS`.",
    example={"org": "contoso"},
)
ORG_ID_INVALID = ApiError(
    422,
    "{reason}",
    "The path does not name an org: 1 to 64 of A-Z a-z 0-9 . _ -",
    example={"reason": InvalidOrgId("con toso")},
)
DOMAIN_TAKEN = ApiError(
    409,
    "{reason}",
    "A domain of the request belongs to another org; nothing was changed.",
    example={"reason": DomainTaken("go.contoso.com")},
)
KEY_UNKNOWN = ApiError(
    404,
    "{reason}",
    "The org has no key of this id: it was never made, or was revoked.",
    example={"reason": UnknownKey("contoso", "k_0123456789abcdef")},
)

# Webhooks

WEBHOOK_UNKNOWN = ApiError(
    404,
    "no webhook {name!r} of yours is stored",
    "The org has no webhook endpoint of this name.",
    example={"name": "crm"},
)
WEBHOOK_NAME_INVALID = ApiError(
    422,
    "{reason}",
    "The path does not name a webhook: 1 to 64 of A-Z a-z 0-9 . _ -",
    example={"reason": InvalidWebhookName("my hook")},
)
WEBHOOK_URL_PRIVATE = ApiError(
    422,
    "{reason}",
    "The URL names, or resolves to, a loopback, private or link-local address, which the "
    "service does not call (unless `SHORTENER_WEBHOOK_ALLOW_PRIVATE=1`).",
    example={"reason": PrivateWebhookUrl("hooks.contoso.com", "10.0.0.7")},
)
TOO_MANY_WEBHOOKS = ApiError(
    422,
    "{reason}",
    "The org has as many webhook endpoints as it may; delete one first.",
    example={"reason": TooManyWebhooks()},
)
