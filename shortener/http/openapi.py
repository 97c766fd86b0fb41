"""The OpenAPI 3.1 document of the HTTP API, served at `/openapi.json`.

Every JSON shape comes from the pydantic models in `shortener.schemas`, and every example is
built from a model instance, so the document cannot describe a field the service does not
accept or send.
"""

from __future__ import annotations

import copy
import functools
import html
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shortener import __version__
from shortener.domain.links import BatchTooLarge, ShortenLimitReached, TooManyLinks
from shortener.http.problems import MEDIA_TYPE as PROBLEM_JSON
from shortener.http.problems import problem
from shortener.http.schemas import (
    MAX_BATCH,
    MAX_LINKS_PER_BATCH,
    MAX_LINKS_PER_HTML,
    MAX_LINKS_PER_TEXT,
    BatchRequest,
    BatchResult,
    Consent,
    ConsentRequest,
    InteractionOut,
    InteractionPage,
    LinkInfo,
    MessageError,
    Problem,
    Recipient,
    SegmentInfo,
    Segments,
    ShortenRequest,
    ShortenResult,
    ShortLink,
    SkippedLink,
)
from shortener.text.markup import pixel_tag
from shortener.text.segments import count_segments
from shortener.text.targets import InvalidTarget, redirect_target

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"
HTML = "text/html"
BEARER = "bearerAuth"
SCHEMA_REF = "#/components/schemas/{model}"

# Requests are described as the service parses them and responses as it writes them. Each
# model appears in one mode only, so pydantic keeps the plain class names; were one needed in
# both modes, it would name the two schemas `-Input` and `-Output` and the refs below follow.
_MODELS: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
    (ShortenRequest, "validation"),
    (BatchRequest, "validation"),
    (ConsentRequest, "validation"),
    (ShortenResult, "serialization"),
    (BatchResult, "serialization"),
    (InteractionPage, "serialization"),
    (LinkInfo, "serialization"),
    (Consent, "serialization"),
    (Problem, "serialization"),
)

_BODY_LIMIT = "SHORTENER_MAX_BODY_BYTES (1 MiB unless configured otherwise)"
_MISS_LIMIT = "SHORTENER_MISS_LIMIT_PER_MINUTE (120 unless configured otherwise)"
_SHORTEN_LIMIT = "SHORTENER_ORG_SHORTEN_LIMIT_PER_MINUTE (no limit unless configured)"
_STORE_DOWN = "the link store is not answering; try again shortly"

# Example values; they only need to look like what the service issues.
_CODE = "Xk3p9Qa"
_HTML_LINK_ID = "Q2fZr8Lk1"
_PIXEL_ID = "b7Ty2mQw4"
_ORG_HASH = "c0VjcmV0LW9yZy1oYXNo"
_DIGEST = "pQ9v3TzJm1kXw6bR0yHs8aLc2eNf5gUd7iKo4tVx1Aq"
_TARGET = "https://track.example.com/o/123"
_SMS_BODY = f"Your order shipped: {_TARGET}"
_EMAIL_BODY = f'<p>Your order <a href="{_TARGET}">has shipped</a>.</p>'
_CONTACT_ID = "c-42"
_CURSOR = "1767225600000-0"
# The handler checks `after` with the same rule; the app imports this module, not the reverse.
# An empty `after` is accepted too: the handler reads it as absent.
_CURSOR_PATTERN = r"^(?:[0-9]{1,20}-[0-9]{1,20})?$"


def openapi_document(base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the service reachable at `base_url`.

    Built once per base URL and shared: callers must not modify the returned dict.
    """
    return _document(base_url)


@functools.cache
def _document(base_url: str) -> dict[str, Any]:
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "SMS link shortener",
            "version": __version__,
            "summary": "Short links and click tracking for SMS and e-mail messages.",
            "description": (
                "Send a message body to `/v1/messages/shorten` before handing it to the SMS "
                "gateway: every link in it comes back replaced by a short link, tracked when "
                "the recipient consented. Recipients' taps are redirected by `GET /{code}` "
                "and the tracked-link routes, and the clicks and opens they produce are read "
                "back from `/v1/interactions`.\n\n"
                "Every error is `application/problem+json` (RFC 9457); on the routes people "
                "reach from a message (`/`, taps, tracked links, the pixel), a client that "
                "prefers `text/html`, as browsers do, gets a short HTML page instead. When the "
                "link store does not answer, the routes that need it answer `503` with a "
                "`Retry-After` header, and recover by themselves when the store is back."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": base_url}],
        "tags": [
            {"name": "messages", "description": "Shorten the links in message bodies."},
            {"name": "tracking", "description": "Tracking consent, and the clicks and opens."},
            {"name": "redirects", "description": "What recipients' phones and mail apps fetch."},
            {"name": "ops", "description": "Health, readiness, metrics and link lookup."},
        ],
        "paths": _paths(base_url),
        "components": {
            "schemas": copy.deepcopy(_model_schemas()[1]),
            "responses": _shared_responses(),
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "An org's API key, sent as `Authorization: Bearer KEY`. The key's org "
                        "scopes everything the call reads and writes."
                    ),
                }
            },
        },
    }


@functools.cache
def _model_schemas() -> tuple[dict[type[Any], dict[str, Any]], dict[str, Any]]:
    refs, top = models_json_schema(_MODELS, ref_template=SCHEMA_REF)
    schemas = top.get("$defs", {})
    # A batch takes any message and answers an error in the place of one that is not a valid
    # `ShortenRequest`, so the envelope constrains its messages no further.
    messages = schemas["BatchRequest"]["properties"]["messages"]
    messages["items"] = {"anyOf": [refs[ShortenRequest, "validation"], {}]}
    return {model: ref for (model, _mode), ref in refs.items()}, schemas


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return dict(_model_schemas()[0][model])


def _dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json")


def _request_dump(model: BaseModel) -> Any:
    # Only the fields a caller would write; the defaults are in the schema.
    return model.model_dump(mode="json", exclude_unset=True)


# Operations


def _operation(
    operation_id: str,
    tag: str,
    summary: str,
    description: str,
    responses: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    request_body: dict[str, Any] | None = None,
    authenticated: bool = False,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "description": description,
    }
    if parameters:
        operation["parameters"] = parameters
    if request_body is not None:
        operation["requestBody"] = request_body
    if authenticated:
        operation["security"] = [{BEARER: []}]
        responses = {**responses, "401": _shared("Unauthorized")}
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def _json_body(
    description: str, model: type[BaseModel], examples: dict[str, Any]
) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": {JSON: {"schema": _ref(model), "examples": examples}},
    }


def _json_response(
    description: str, model: type[BaseModel], examples: dict[str, Any]
) -> dict[str, Any]:
    return {
        "description": description,
        "content": {JSON: {"schema": _ref(model), "examples": examples}},
    }


def _example(summary: str, value: Any) -> dict[str, Any]:
    return {"summary": summary, "value": value}


def _problem(status: int, description: str, detail: str, *, body: bool = True) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if body:
        example = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail)
        response["content"] = {PROBLEM_JSON: {"schema": _ref(Problem), "example": _dump(example)}}
    return response


def _shared(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _shared_responses() -> dict[str, Any]:
    unauthorized = _problem(
        401,
        "No API key, or one this service does not know.",
        "send a valid API key as 'Authorization: Bearer KEY'",
    )
    unauthorized["headers"] = {
        "WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}
    }
    return {
        "Unauthorized": unauthorized,
        "BodyTooLarge": _problem(
            413,
            f"The request body is larger than {_BODY_LIMIT}.",
            "the request body must not exceed 1048576 bytes",
        ),
        "NotJson": _problem(
            415,
            "The body was not sent as `Content-Type: application/json`.",
            "send the body as JSON with 'Content-Type: application/json'",
        ),
        "Invalid": _problem(
            422,
            "The body is JSON but does not have the fields and values described; `detail` "
            "names the first problems found.",
            "body: Field required",
        ),
        "StoreUnavailable": _store_unavailable(body=True),
    }


def _store_unavailable(*, body: bool, detail: str = _STORE_DOWN) -> dict[str, Any]:
    response = _problem(
        503,
        "The link store did not answer in time. Retry after the number of seconds in "
        "`Retry-After`.",
        detail,
        body=body,
    )
    response["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}}
    return response


def _json_invalid(what: str) -> dict[str, Any]:
    return _problem(
        400, f"The body is not valid JSON{what}.", "the body is not valid JSON: EOF while parsing"
    )


def _message_conflict() -> dict[str, Any]:
    return _problem(
        409,
        "A `message_id` was used before by this org for a different message. A retry of the "
        "same message with the same id is not a conflict: it returns the first result again.",
        "message_id 'campaign-7/recipient-42' was already used for a different message",
    )


def _paths(base_url: str) -> dict[str, Any]:
    return {
        "/v1/messages/shorten": {"post": _shorten(base_url)},
        "/v1/messages/batch": {"post": _batch(base_url)},
        "/v1/contacts/{contact_id}/consent": {"get": _get_consent(), "put": _consent()},
        "/v1/interactions": {"get": _interactions()},
        "/v1/links/{code}": {"get": _link_info(base_url)},
        "/{code}": {"get": _tap(head=False), "head": _tap(head=True)},
        "/api/orgs/{org_hash}/r/{link_id}": {
            "get": _tracked(head=False),
            "head": _tracked(head=True),
        },
        "/api/orgs/{org_hash}/o/{link_id}": {"get": _pixel(head=False), "head": _pixel(head=True)},
        "/": {"get": _home()},
        "/healthz": {"get": _healthz()},
        "/readyz": {"get": _readyz()},
        "/metrics": {"get": _metrics()},
        "/openapi.json": {"get": _openapi()},
    }


# Messages


def _sms_request() -> ShortenRequest:
    return ShortenRequest(
        message_id="campaign-7/recipient-42",
        content_type="text",
        body=_SMS_BODY,
        recipient=Recipient(contact_id="c-42", tracking_consent=True),
        non_trackable=["https://example.com/terms"],
    )


def _email_request() -> ShortenRequest:
    return ShortenRequest(
        message_id="newsletter-3/recipient-42",
        content_type="html",
        body=_EMAIL_BODY,
        recipient=Recipient(contact_id="c-42", tracking_consent=True),
    )


def _tracking_url(base_url: str, link_id: str, target: str) -> str:
    return (
        f"{base_url}/api/orgs/{_ORG_HASH}/r/{link_id}"
        f"?targetUrl={quote(target, safe='')}&digest={_DIGEST}&secretVersion=1"
    )


def _segment_info(text: str) -> SegmentInfo:
    count = count_segments(text)
    return SegmentInfo(
        encoding=count.encoding, characters=count.characters, segments=count.segments
    )


def _sms_result(base_url: str) -> ShortenResult:
    short_url = f"{base_url}/{_CODE}"
    body = _SMS_BODY.replace(_TARGET, short_url)
    return ShortenResult(
        body=body,
        links=[
            ShortLink(
                url=_TARGET,
                short_url=short_url,
                code=_CODE,
                tracked=True,
                tracking_url=_tracking_url(base_url, _CODE, _TARGET),
            )
        ],
        segments=Segments(before=_segment_info(_SMS_BODY), after=_segment_info(body)),
    )


def _skipped_result() -> ShortenResult:
    bad_port = "https://track.example.com:99999/o/123"
    body = f"Your order shipped: {bad_port}"
    try:
        redirect_target(bad_port)
    except InvalidTarget as error:
        reason = str(error)
    else:
        raise AssertionError(f"{bad_port} was meant to be refused")
    return ShortenResult(
        body=body,
        links=[],
        segments=Segments(before=_segment_info(body), after=_segment_info(body)),
        skipped=[SkippedLink(url=bad_port, reason=reason)],
    )


def _email_result(base_url: str) -> ShortenResult:
    tracking_url = _tracking_url(base_url, _HTML_LINK_ID, _TARGET)
    pixel = pixel_tag(f"{base_url}/api/orgs/{_ORG_HASH}/o/{_PIXEL_ID}")
    body = _EMAIL_BODY.replace(_TARGET, html.escape(tracking_url, quote=True)) + pixel
    return ShortenResult(
        body=body,
        links=[
            ShortLink(
                url=_TARGET, short_url=None, code=None, tracked=True, tracking_url=tracking_url
            )
        ],
        segments=None,
    )


_SHORTEN_RULES = (
    "With `content_type` `text` (an SMS body, the default), every link in the body is replaced "
    "by a short link. Links are found as twitter-text finds them: `http`/`https` links, and "
    "links without a scheme whose host ends in a known top-level domain (these redirect to "
    "`https://`). Hosts are mapped as browsers map them (UTS #46), so a link a phone opens is "
    "shortened, to its ASCII (A-label) form. A link is tracked when the recipient consented to "
    "tracking, the contact has not opted out here (`PUT /v1/contacts/{contact_id}/consent` "
    "with `tracking` false wins over `tracking_consent` until set to true again), and the link "
    "is not listed in `non_trackable`; `segments` tells how many SMS parts the body takes "
    "before and after.\n\n"
    "With `content_type` `html` (an e-mail body), every trackable `http(s)` link in an "
    "`<a href>` is replaced by its tracked link and an invisible tracking pixel is added; links "
    'marked `data-tracking="false"` or listed in `non_trackable` stay as they are. Without a '
    "consenting recipient the body comes back unchanged. `short_url`, `code` and `segments` "
    "are null for html.\n\n"
    "`links` lists every link found, in order of appearance, with `url` as written (in html, "
    "the address a browser follows: the `href` with its character references decoded). A link "
    "found but deliberately left as it is (it carries a user name or password, is too long, "
    "or its host or port is not valid) is listed in `skipped` instead, with the reason. "
    "Unknown request fields are refused (`422`, naming them). Retrying with the same "
    "`message_id` returns the same result without issuing new links.\n\n"
    f"A text message can have at most {MAX_LINKS_PER_TEXT} links and an html message "
    f"{MAX_LINKS_PER_HTML}, counting every link found (`links` and `skipped` together); a "
    "message with more is refused with `422` and nothing of it is stored. Real messages carry "
    "a handful of links, a newsletter a few hundred at most; the limits keep one message "
    "from issuing thousands of links that live for a year. An org may shorten at most "
    f"{_SHORTEN_LIMIT} messages a minute, counted across every instance of the service; "
    "beyond it the request is refused with `429` and nothing is stored."
)


def _message_errors() -> dict[str, Any]:
    return {
        "400": _json_invalid(""),
        "413": _shared("BodyTooLarge"),
        "415": _shared("NotJson"),
        "422": _shared("Invalid"),
        "429": _shorten_limit_reached(),
        "503": _shared("StoreUnavailable"),
    }


def _shorten_limit_reached() -> dict[str, Any]:
    response = _problem(
        429,
        f"An org may shorten at most {_SHORTEN_LIMIT} messages a minute, and the messages of "
        "this request do not fit in what is left of the org's current minute (a batch counts "
        "each valid message, and is refused whole). Nothing was stored. Retry after the number "
        "of seconds in `Retry-After`, when that minute is over; a batch larger than the limit "
        "itself must be split.",
        str(ShortenLimitReached(limit=100, count=1, retry_after_ms=30_000)),
    )
    response["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
    return response


def _shorten(base_url: str) -> dict[str, Any]:
    return _operation(
        "shortenMessage",
        "messages",
        "Shorten the links in one message",
        _SHORTEN_RULES,
        {
            "200": _json_response(
                "The body to send, with its links replaced, and what was done to each link.",
                ShortenResult,
                {
                    "sms": _example("An SMS with one tracked link", _dump(_sms_result(base_url))),
                    "email": _example(
                        "An e-mail with a tracked link and the open pixel",
                        _dump(_email_result(base_url)),
                    ),
                    "skipped": _example(
                        "An SMS whose only link cannot be a redirect target",
                        _dump(_skipped_result()),
                    ),
                },
            ),
            "409": _message_conflict(),
            **_message_errors(),
            "422": _problem(
                422,
                "The body is JSON but does not have the fields and values described, or the "
                f"message has more links than a message may have ({MAX_LINKS_PER_TEXT} in a "
                f"text body, {MAX_LINKS_PER_HTML} in an html body); `detail` says which.",
                str(TooManyLinks("text", MAX_LINKS_PER_TEXT + 1)),
            ),
        },
        request_body=_json_body(
            "The message body and who it is for.",
            ShortenRequest,
            {
                "sms": _example(
                    "An SMS to a recipient who consented to tracking",
                    _request_dump(_sms_request()),
                ),
                "email": _example("An e-mail body", _request_dump(_email_request())),
            },
        ),
        authenticated=True,
    )


def _batch(base_url: str) -> dict[str, Any]:
    untracked = ShortenRequest(message_id="campaign-7/recipient-43", body=_SMS_BODY)
    short_url = f"{base_url}/Lm4sT8d"
    untracked_body = _SMS_BODY.replace(_TARGET, short_url)
    untracked_result = ShortenResult(
        body=untracked_body,
        links=[
            ShortLink(
                url=_TARGET, short_url=short_url, code="Lm4sT8d", tracked=False, tracking_url=None
            )
        ],
        segments=Segments(before=_segment_info(_SMS_BODY), after=_segment_info(untracked_body)),
    )
    conflict = ShortenRequest(message_id="campaign-7/recipient-42", body="Another body")
    refused = MessageError(
        error=problem(
            409, "message_id 'campaign-7/recipient-42' was already used for a different message"
        )
    )
    invalid = MessageError(error=problem(422, "content_type: Input should be 'text' or 'html'"))
    return _operation(
        "shortenMessages",
        "messages",
        "Shorten the links in many messages at once",
        f"Up to {MAX_BATCH} messages, each as for `shortenMessage`, in one call; the results "
        "come back in the same order. A message that cannot be shortened (a field that is not "
        'valid, a `message_id` used before for another message) gets `{"error": PROBLEM}` in '
        "its place, PROBLEM being the problem details a single `shortenMessage` of it would "
        "answer; nothing of it is stored, and the other messages are shortened. A batch names "
        "each message once: a later message with the `message_id` of an earlier one of the "
        "same batch gets a `409` error, and a message with more links than one message may have "
        "a `422` error. Only a broken envelope (not JSON, no `messages`, more "
        f"than {MAX_BATCH} of them, unknown fields) fails the whole call, and so do messages "
        f"that have more than {MAX_LINKS_PER_BATCH} links together (`413`), or more messages "
        "than the org may still shorten this minute (`429`): then nothing is stored.",
        {
            "200": _json_response(
                "One result per message, in the order of the request: the result, or the error "
                "of a message that was not shortened.",
                BatchResult,
                {
                    "two": _example(
                        "One tracked and one untracked recipient",
                        _dump(BatchResult(results=[_sms_result(base_url), untracked_result])),
                    ),
                    "refusals": _example(
                        "One message shortened, one reusing its id, one with a field not valid",
                        _dump(BatchResult(results=[_sms_result(base_url), refused, invalid])),
                    ),
                },
            ),
            **_message_errors(),
            "413": _problem(
                413,
                f"The request body is larger than {_BODY_LIMIT}, or the messages have more than "
                f"{MAX_LINKS_PER_BATCH} links together (links found, as for each message's "
                "limit; messages refused on their own do not count). Nothing was stored.",
                str(BatchTooLarge()),
            ),
        },
        request_body=_json_body(
            f"The messages, 1 to {MAX_BATCH}, with at most {MAX_LINKS_PER_BATCH} links in all.",
            BatchRequest,
            {
                "two": _example(
                    "One recipient who consented to tracking and one who did not",
                    {"messages": [_request_dump(_sms_request()), _request_dump(untracked)]},
                ),
                "refusals": _example(
                    "A message, one reusing its id for another body, one with a field not valid",
                    {
                        "messages": [
                            _request_dump(_sms_request()),
                            _request_dump(conflict),
                            {"body": "See https://example.com/", "content_type": "pdf"},
                        ]
                    },
                ),
            },
        ),
        authenticated=True,
    )


# Tracking


def _contact_parameter() -> dict[str, Any]:
    return _path_parameter(
        "contact_id",
        "Your id of the contact, as sent in `recipient.contact_id`.",
        {"type": "string", "minLength": 1, "maxLength": 256},
    )


def _get_consent() -> dict[str, Any]:
    example = Consent(
        contact_id=_CONTACT_ID,
        tracking=False,
        updated_at=datetime(2026, 1, 1, 9, 30, tzinfo=UTC),
    )
    never = Consent(contact_id=_CONTACT_ID, tracking=None, updated_at=None)
    return _operation(
        "getTrackingConsent",
        "tracking",
        "Read a contact's tracking consent",
        "The consent last recorded for the contact with `PUT`, and when; `tracking` and "
        "`updated_at` are null when none was ever recorded.",
        {
            "200": _json_response(
                "The contact's consent.",
                Consent,
                {
                    "opted_out": _example("The contact opted out", _dump(example)),
                    "never_set": _example("No consent recorded", _dump(never)),
                },
            ),
            "400": _problem(
                400,
                "`contact_id` is not 1 to 256 characters.",
                "contact_id must have 1 to 256 characters",
            ),
            "503": _shared("StoreUnavailable"),
        },
        parameters=[_contact_parameter()],
        authenticated=True,
    )


def _consent() -> dict[str, Any]:
    return _operation(
        "setTrackingConsent",
        "tracking",
        "Record a contact's tracking consent",
        "Consent is looked up when a click or open happens, not when the message was sent: "
        "after an opt-out, the contact's interactions are recorded anonymously (`contact_id` "
        "null, nothing else that points to the person). An opt-out also wins over "
        "`tracking_consent` in later messages to the contact until consent is set to true "
        "again.",
        {
            "204": {"description": "Recorded."},
            "400": _problem(
                400,
                "The body is not valid JSON, or `contact_id` is not 1 to 256 characters.",
                "contact_id must have 1 to 256 characters",
            ),
            "413": _shared("BodyTooLarge"),
            "415": _shared("NotJson"),
            "422": _shared("Invalid"),
            "503": _shared("StoreUnavailable"),
        },
        parameters=[_contact_parameter()],
        request_body=_json_body(
            "Whether the contact allows tracking.",
            ConsentRequest,
            {"opt_out": _example("The contact opted out", _request_dump(_opt_out()))},
        ),
        authenticated=True,
    )


def _opt_out() -> ConsentRequest:
    return ConsentRequest(tracking=False)


def _interaction_page() -> InteractionPage:
    milliseconds = int(_CURSOR.split("-")[0])
    return InteractionPage(
        interactions=[
            InteractionOut(
                id=_CURSOR,
                type="click",
                at=datetime.fromtimestamp(milliseconds / 1000, UTC),
                link_id=_CODE,
                code=_CODE,
                message_id="campaign-7/recipient-42",
                contact_id=_CONTACT_ID,
                url=_TARGET,
                bot=False,
                campaign="order-updates",
            )
        ],
        next=_CURSOR,
    )


def _interactions() -> dict[str, Any]:
    return _operation(
        "listInteractions",
        "tracking",
        "Read clicks and opens",
        "The org's interactions, oldest first. Read on by passing `next` as `after`; when "
        "there is nothing new, `interactions` is empty and `next` stays where it was. `bot` "
        "is true for link-preview fetchers, crawlers and scanners.",
        {
            "200": _json_response(
                "A page of interactions.",
                InteractionPage,
                {"click": _example("One click by a person", _dump(_interaction_page()))},
            ),
            "400": _problem(
                400,
                "`after` is not a cursor returned by this service, or `limit` is not 1 to 1000.",
                "limit must be a whole number from 1 to 1000",
            ),
            "503": _shared("StoreUnavailable"),
        },
        parameters=[
            {
                "name": "after",
                "in": "query",
                "required": False,
                "description": "The `next` of the previous page; omit it, or leave it empty, to "
                "read from the start.",
                "schema": {"type": "string", "pattern": _CURSOR_PATTERN},
                "example": _CURSOR,
            },
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": "The most interactions to return.",
                "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
            },
        ],
        authenticated=True,
    )


# Ops


def _link_info(base_url: str) -> dict[str, Any]:
    created = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
    example = LinkInfo(
        link_id=_CODE,
        kind="short",
        code=_CODE,
        short_url=f"{base_url}/{_CODE}",
        url=_TARGET,
        tracked=True,
        created_at=created,
        expires_at=created + timedelta(days=365),
        ttl_seconds=int(timedelta(days=300).total_seconds()),
        status="active",
        clicks=3,
        campaign="order-updates",
        message_id="campaign-7/recipient-42",
        bot_clicks=1,
    )
    tracked_link = example.model_copy(
        update={"link_id": _HTML_LINK_ID, "kind": "tracked_link", "code": None, "short_url": None}
    )
    pixel = tracked_link.model_copy(update={"link_id": _PIXEL_ID, "kind": "pixel", "url": None})
    return _operation(
        "getLink",
        "ops",
        "Look up a short code, tracked link or pixel",
        "Where an id this service issued leads, whether it is tracked, when it expires and how "
        "often it was tapped: a short code, or the `link_id` of an e-mail's tracked link or of "
        "its open pixel (`kind` tells which; those have no `code` or `short_url`, and a pixel "
        "no `url`, and a pixel's `clicks` are its opens). `short_url` uses the base URL the "
        "code was issued with. `HEAD` requests count neither as clicks nor as bot clicks. The "
        "same as `shortener inspect CODE`.",
        {
            "200": _json_response(
                "The id's record.",
                LinkInfo,
                {
                    "active": _example("A tracked code", _dump(example)),
                    "tracked_link": _example("A tracked link of an e-mail", _dump(tracked_link)),
                    "pixel": _example("The open pixel of an e-mail", _dump(pixel)),
                },
            ),
            "404": _problem(
                404,
                "This service never issued the id, or issued it to another org.",
                f"no link {_CODE!r} of yours is stored",
            ),
            "503": _shared("StoreUnavailable"),
        },
        parameters=[
            _path_parameter(
                "code", "The short code, or the id of a tracked link or pixel.", {"type": "string"}
            )
        ],
        authenticated=True,
    )


def _status_body(status: str) -> dict[str, Any]:
    return {
        JSON: {
            "schema": {
                "type": "object",
                "properties": {"status": {"type": "string"}},
                "required": ["status"],
            },
            "example": {"status": status},
        }
    }


def _healthz() -> dict[str, Any]:
    return _operation(
        "getHealth",
        "ops",
        "Is the process up",
        "Answers without touching the link store, so it stays `200` while the store is down; "
        "use it as a liveness probe.",
        {"200": {"description": "The process is up.", "content": _status_body("ok")}},
    )


def _readyz() -> dict[str, Any]:
    return _operation(
        "getReadiness",
        "ops",
        "Can the service answer requests",
        "`200` when the link store answers, `503` when it does not; use it as a readiness "
        "probe to take an instance out of the load balancer while its store is unreachable.",
        {
            "200": {"description": "The link store answers.", "content": _status_body("ready")},
            "503": _store_unavailable(body=True, detail="Redis does not answer"),
        },
    )


def _metrics() -> dict[str, Any]:
    return _operation(
        "getMetrics",
        "ops",
        "Prometheus metrics",
        "Counters and timings of the process in the Prometheus text exposition format, for "
        "scraping. Public, unless `SHORTENER_METRICS_KEY` is set: then only a request with "
        "`Authorization: Bearer` that key gets them (org API keys do not).",
        {
            "200": {
                "description": "The metrics, in the Prometheus text format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "401": _metrics_key_needed(),
        },
    )


def _metrics_key_needed() -> dict[str, Any]:
    response = _problem(
        401,
        "`SHORTENER_METRICS_KEY` is set, and the request does not carry it.",
        "send the metrics key as 'Authorization: Bearer KEY'",
    )
    response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}}
    return response


def _openapi() -> dict[str, Any]:
    return _operation(
        "getOpenApiDocument",
        "ops",
        "This API description",
        "The OpenAPI 3.1 document describing every route of the service.",
        {
            "200": {
                "description": "The OpenAPI document.",
                "content": {JSON: {"schema": {"type": "object"}}},
            }
        },
    )


# Redirects: fetched by recipients' phones, mail apps and link-preview bots, without a key.


def _home() -> dict[str, Any]:
    return _operation(
        "getHome",
        "redirects",
        "The bare address",
        "What someone who opens the service's address without a code sees: this service only "
        "forwards short links.",
        {
            "404": _public(
                _problem(
                    404,
                    "There is nothing here but short links.",
                    "this service only forwards short links; open the complete link from the "
                    "message",
                )
            )
        },
    )


def _path_parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def _redirect(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {
            "Location": {
                "description": "The destination, in ASCII: IDNA host, percent-encoded path and "
                "query.",
                "required": True,
                "schema": {"type": "string", "format": "uri"},
            },
            "Cache-Control": {"schema": {"type": "string", "const": "no-store"}},
        },
    }


def _public(response: dict[str, Any]) -> dict[str, Any]:
    """An error of a route people reach from a message: its problem, or for a client that
    asks for `text/html` (as browsers do) a short page."""
    if "content" not in response:
        return response
    return {
        **response,
        "description": response["description"] + " A client that prefers `text/html` (a "
        "browser) gets a short HTML page for people instead of the problem.",
        "content": {**response["content"], HTML: {"schema": {"type": "string"}}},
    }


def _variant(
    head: bool, ids: tuple[str, str], summary: str, description: str
) -> tuple[str, str, str]:
    if not head:
        return ids[0], summary, description
    return (
        ids[1],
        f"{summary}, headers only",
        description + " `HEAD` answers with the same status and headers and no body, and "
        "records no click by a person: link checkers and some previews send it.",
    )


def _unavailable(head: bool) -> dict[str, Any]:
    return _public(_store_unavailable(body=not head))


def _tap(*, head: bool) -> dict[str, Any]:
    operation_id, summary, description = _variant(
        head,
        ("followShortLink", "headShortLink"),
        "Follow a short link",
        "The recipient's tap on a short link. A tracked code records a `click` interaction "
        "before the redirect is sent; taps by link-preview fetchers and crawlers are recorded "
        "with `bot` true.",
    )
    return _operation(
        operation_id,
        "redirects",
        summary,
        description,
        {
            "302": _redirect("The code is live: go to the original link."),
            "404": _public(
                _problem(
                    404,
                    "The path starts with no code this service issued; no redirect.",
                    "no short link was issued under this code",
                    body=not head,
                )
            ),
            "410": _public(
                _problem(
                    410,
                    "The code's lifetime has passed; no redirect.",
                    "this short link has expired",
                    body=not head,
                )
            ),
            "429": _too_many_misses(head),
            "503": _unavailable(head),
        },
        parameters=[
            _path_parameter(
                "code",
                "The short code, 6 to 12 letters and digits. Phones take what follows a link "
                "up to the next space into it, so a path that starts with a code and goes on "
                "(`CODE.`, `CODE)`, `CODE/…`) is that code.",
                {"type": "string"},
            )
        ],
    )


def _too_many_misses(head: bool) -> dict[str, Any]:
    response = _problem(
        429,
        f"This client address had {_MISS_LIMIT} `404` and `410` answers within the minute, so "
        "codes this service never issued are refused until the minute is over; codes it issued "
        "are still followed. Retry after the number of seconds in `Retry-After`.",
        "too many taps on unknown links from this address",
        body=not head,
    )
    response["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}}
    return _public(response)


def _tracked(*, head: bool) -> dict[str, Any]:
    operation_id, summary, description = _variant(
        head,
        ("followTrackedLink", "headTrackedLink"),
        "Follow a tracked link",
        "A tracked link as issued in `tracking_url`. `digest` signs the org, the link id and "
        "`targetUrl` with the signing key of `secretVersion`, so it only ever redirects where "
        "the org asked. A `click` is recorded while the link is inside its tracking window; "
        "after it, the redirect still works and records nothing.\n\n"
        "Mail and SMS clients cut long links short. When `digest`, `secretVersion` or "
        "`targetUrl` is missing or empty, the link redirects to the target stored for "
        "`link_id`, never to the query's, and records the click as usual; what is left of "
        "the query must agree with that record. With no record of the org kept for "
        "`link_id`, it answers `400`.",
    )
    return _operation(
        operation_id,
        "redirects",
        summary,
        description,
        {
            "302": _redirect(
                "The signature checks out: go to `targetUrl`; or the query was cut short: go "
                "to the target stored for the link."
            ),
            "400": _public(
                _problem(
                    400,
                    "The digest, the key version or `targetUrl` does not check out, or the "
                    "query was cut short and no record of the link is kept. There is never a "
                    "redirect to an unsigned target.",
                    "this tracked link is not valid: the link's digest does not match its target",
                    body=not head,
                )
            ),
            "503": _unavailable(head),
        },
        parameters=[
            _path_parameter("org_hash", "The org, as a keyed hash.", {"type": "string"}),
            _path_parameter("link_id", "The link.", {"type": "string"}),
            {
                "name": "targetUrl",
                "in": "query",
                "required": False,
                "description": "Where to redirect, as the org submitted it.",
                "schema": {"type": "string", "minLength": 1},
                "example": _TARGET,
            },
            {
                "name": "digest",
                "in": "query",
                "required": False,
                "description": "The signature of org, link id and target.",
                "schema": {"type": "string", "minLength": 1},
                "example": _DIGEST,
            },
            {
                "name": "secretVersion",
                "in": "query",
                "required": False,
                "description": "The version of the signing key that made `digest`.",
                "schema": {"type": "integer", "minimum": 0, "maximum": 999_999_999},
                "example": 1,
            },
        ],
    )


def _pixel(*, head: bool) -> dict[str, Any]:
    operation_id, summary, description = _variant(
        head,
        ("fetchOpenPixel", "headOpenPixel"),
        "Fetch the open pixel",
        "The invisible image added to tracked e-mail bodies. Fetching it records an `open` "
        "interaction while the link is inside its tracking window.",
    )
    ok: dict[str, Any] = {
        "description": "A 1x1 transparent GIF, whether or not the link is known, so a mail "
        "client never shows a broken image.",
        "headers": {
            "Cache-Control": {
                "description": "Not cacheable, so every open reaches the service.",
                "schema": {"type": "string"},
            }
        },
    }
    if not head:
        ok["content"] = {"image/gif": {}}
    return _operation(
        operation_id,
        "redirects",
        summary,
        description,
        {"200": ok, "503": _unavailable(head)},
        parameters=[
            _path_parameter("org_hash", "The org, as a keyed hash.", {"type": "string"}),
            _path_parameter("link_id", "The pixel's id.", {"type": "string"}),
        ],
    )
