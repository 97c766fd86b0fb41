"""The one table of the HTTP API's endpoints: path, method, handler, request and response
models, errors, and whether the caller needs a key or is a person coming from a message. It
feeds the routes (`app.py`), the OpenAPI document (`openapi.py`) and the route templates of the
metrics and the access log."""

from __future__ import annotations

import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shortener.domain.analytics import Campaigns, Series
from shortener.domain.interactions import Consent, Erasure, InteractionPage
from shortener.domain.limits import (
    DEFAULT_PAGE,
    MAX_ANALYTICS_DAYS,
    MAX_ANALYTICS_HOURS,
    MAX_BATCH,
    MAX_CAMPAIGN_LENGTH,
    MAX_FAILED_LISTED,
    MAX_ID_LENGTH,
    MAX_LINKS_PER_BATCH,
    MAX_LINKS_PER_HTML,
    MAX_LINKS_PER_TEXT,
    MAX_PAGE,
    MAX_SCANNED_PER_PAGE,
    MAX_TIME_LENGTH,
    MIN_PAGE,
)
from shortener.domain.lookup import LinkInfo
from shortener.domain.messages import ShortenRequest, ShortenResult
from shortener.domain.org_keys import KeyList, NewKey
from shortener.domain.paths import OPEN_PIXEL, SHORT_LINK, TRACKED_LINK
from shortener.domain.takedown import StoredMessage, TakedownRequest
from shortener.domain.tenancy import Org, OrgChanges, OrgList
from shortener.domain.webhooks import (
    EVENT_TYPES,
    FailedEvents,
    Replayed,
    Webhook,
    WebhookList,
    WebhookRequest,
    WebhookStatus,
)
from shortener.http import (
    admin,
    analytics,
    contacts,
    errors,
    examples,
    interactions,
    links,
    messages,
    ops,
    webhooks,
)
from shortener.http import redirects as redirect_routes
from shortener.http.errors import ApiError, default_of
from shortener.http.openapi import (
    Body,
    Endpoint,
    build_document,
    dump,
    example,
    json_answer,
    path_parameter,
    query_parameter,
    request_dump,
)
from shortener.http.requests import gate
from shortener.http.responses import JSON
from shortener.http.schemas import BatchRequest, BatchResult, ConsentRequest
from shortener.http.tap import tap
from shortener.text.parsing import STREAM_CURSOR_PATTERN

_INFO = {
    "title": "SMS link shortener",
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
}
_TAGS = [
    {"name": "messages", "description": "Shorten the links in message bodies."},
    {"name": "tracking", "description": "Tracking consent, and the clicks and opens."},
    {"name": "redirects", "description": "What recipients' phones and mail apps fetch."},
    {"name": "ops", "description": "Health, readiness, metrics and link lookup."},
    {"name": "webhooks", "description": "Events pushed to the org's endpoints, signed."},
    {"name": "analytics", "description": "Aggregate counts by hour, day and campaign."},
    {"name": "admin", "description": "Orgs, their domains and keys; for admin keys only."},
]
_BODY_ERRORS = (
    errors.CONTENT_LENGTH,
    errors.JSON_INVALID,
    errors.BODY_TOO_LARGE,
    errors.NOT_JSON,
    errors.INVALID,
)


def common_errors(endpoint: Endpoint) -> tuple[ApiError, ...]:
    """What every endpoint of its sort may answer: 401 without a key, the body's errors, 503
    when the store does not answer."""
    found: list[ApiError] = []
    if endpoint.authenticated:
        found += (errors.UNAUTHORIZED, errors.ORG_KEY_NEEDED)
    if endpoint.admin:
        found += (errors.UNAUTHORIZED, errors.ADMIN_KEY_NEEDED)
    if endpoint.body is not None:
        found.extend(_BODY_ERRORS)
    if endpoint.needs_store:
        found.append(errors.STORE_UNAVAILABLE)
    return tuple(found)


def _status_answer(description: str, status: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            JSON: {
                "schema": {
                    "type": "object",
                    "properties": {"status": {"type": "string"}},
                    "required": ["status"],
                },
                "example": {"status": status},
            }
        },
    }


def _redirect_answer(description: str) -> dict[str, Any]:
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


_HEAD_RECORDS_NOTHING = " It records no click by a person: link checkers and some previews send it."
_CONTACT = path_parameter(
    "contact_id",
    "Your id of the contact, as sent in `recipient.contact_id`.",
    {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
)
_LINK_PARAMETERS = (
    path_parameter("org_hash", "The org, as a keyed hash.", {"type": "string"}),
    path_parameter("link_id", "The link.", {"type": "string"}),
)
_MESSAGE_PARAMETER = path_parameter(
    "message_id",
    "The `message_id` the message was shortened with, percent-encoded.",
    {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
)
_TAKEDOWN_BODY = Body(
    TakedownRequest,
    "Why the link is taken down (optional).",
    lambda: {"reason": example("With a reason", request_dump(examples.takedown_request()))},
    required=False,
)
_CODE_PARAMETER = path_parameter(
    "code", "The short code, or the id of a tracked link or pixel.", {"type": "string"}
)

_ORG_PARAMETER = path_parameter(
    "org", "The org's name: 1 to 64 of A-Z a-z 0-9 . _ -", {"type": "string"}
)

_WEBHOOK_NAME = path_parameter(
    "name", "The endpoint's name: 1 to 64 of A-Z a-z 0-9 . _ -", {"type": "string"}
)

_TIME_PARAMETERS = tuple(
    query_parameter(
        name,
        f"{what} (ISO 8601; UTC unless it names an offset). {default}",
        {"type": "string", "maxLength": MAX_TIME_LENGTH},
        example=value,
    )
    for name, what, default, value in (
        (
            "from",
            "The start",
            "Default: 24 hours (by the hour) or 30 days (by the day) before `to`.",
            "2026-01-01T00:00:00Z",
        ),
        ("to", "The end, not included", "Default: now.", "2026-01-31T00:00:00Z"),
    )
)

_KEY_ID_PARAMETER = path_parameter(
    "key_id", "The key's id, as `POST /v1/admin/orgs/{org}/keys` answered it.", {"type": "string"}
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
    f"{errors.SHORTEN_LIMIT} messages a minute, counted across every instance of the service; "
    "beyond it the request is refused with `429` and nothing is stored."
)


_BATCH_RULES = (
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
    "than the org may still shorten this minute (`429`): then nothing is stored."
)


async def _serve_document(request: Request) -> Response:
    return JSONResponse(openapi_document(gate(request).settings.base_url))


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "/v1/messages/shorten",
        "POST",
        messages.shorten,
        "shortenMessage",
        "messages",
        "Shorten the links in one message",
        _SHORTEN_RULES,
        lambda base_url: {
            200: json_answer(
                "The body to send, with its links replaced, and what was done to each link.",
                ShortenResult,
                {
                    "sms": example(
                        "An SMS with one tracked link", dump(examples.sms_result(base_url))
                    ),
                    "email": example(
                        "An e-mail with a tracked link and the open pixel",
                        dump(examples.email_result(base_url)),
                    ),
                    "skipped": example(
                        "An SMS whose only link cannot be a redirect target",
                        dump(examples.skipped_result()),
                    ),
                },
            )
        },
        errors=(
            errors.MESSAGE_CONFLICT,
            errors.TOO_MANY_LINKS,
            errors.INVALID_LINKS,
            errors.SHORTEN_LIMIT_REACHED,
        ),
        body=Body(
            ShortenRequest,
            "The message body and who it is for.",
            lambda: {
                "sms": example(
                    "An SMS to a recipient who consented to tracking",
                    request_dump(examples.sms_request()),
                ),
                "email": example("An e-mail body", request_dump(examples.email_request())),
            },
        ),
        authenticated=True,
        direct=True,
    ),
    Endpoint(
        "/v1/messages/batch",
        "POST",
        messages.shorten_batch,
        "shortenMessages",
        "messages",
        "Shorten the links in many messages at once",
        _BATCH_RULES,
        lambda base_url: {
            200: json_answer(
                "One result per message, in the order of the request: the result, or the error "
                "of a message that was not shortened.",
                BatchResult,
                {
                    "two": example(
                        "One tracked and one untracked recipient",
                        dump(
                            BatchResult(
                                results=[
                                    examples.sms_result(base_url),
                                    examples.untracked_result(base_url),
                                ]
                            )
                        ),
                    ),
                    "refusals": example(
                        "One message shortened, one reusing its id, one with a field not valid",
                        dump(examples.batch_refusals(base_url)),
                    ),
                },
            )
        },
        errors=(errors.BATCH_TOO_LARGE, errors.SHORTEN_LIMIT_REACHED),
        body=Body(
            BatchRequest,
            f"The messages, 1 to {MAX_BATCH}, with at most {MAX_LINKS_PER_BATCH} links in all.",
            lambda: {
                "two": example(
                    "One recipient who consented to tracking and one who did not",
                    {
                        "messages": [
                            request_dump(examples.sms_request()),
                            request_dump(examples.untracked_request()),
                        ]
                    },
                ),
                "refusals": example(
                    "A message, one reusing its id for another body, one with a field not valid",
                    {
                        "messages": [
                            request_dump(examples.sms_request()),
                            request_dump(examples.conflicting_request()),
                            {"body": "See https://example.com/", "content_type": "pdf"},
                        ]
                    },
                ),
            },
        ),
        authenticated=True,
        direct=True,
    ),
    Endpoint(
        "/v1/contacts/{contact_id}/consent",
        "GET",
        contacts.get_consent,
        "getTrackingConsent",
        "tracking",
        "Read a contact's tracking consent",
        "The consent last recorded for the contact with `PUT`, and when; `tracking` and "
        "`updated_at` are null when none was ever recorded.",
        lambda base_url: {
            200: json_answer(
                "The contact's consent.",
                Consent,
                {
                    "opted_out": example("The contact opted out", dump(examples.consents()[0])),
                    "never_set": example("No consent recorded", dump(examples.consents()[1])),
                },
            )
        },
        errors=(errors.CONTACT_ID,),
        parameters=(_CONTACT,),
        authenticated=True,
    ),
    Endpoint(
        "/v1/contacts/{contact_id}/consent",
        "PUT",
        contacts.set_consent,
        "setTrackingConsent",
        "tracking",
        "Record a contact's tracking consent",
        "Consent is looked up when a click or open happens, not when the message was sent: "
        "after an opt-out, the contact's interactions are recorded anonymously (`contact_id` "
        "null, nothing else that points to the person). An opt-out also wins over "
        "`tracking_consent` in later messages to the contact until consent is set to true "
        "again.",
        lambda base_url: {204: {"description": "Recorded."}},
        errors=(errors.CONTACT_ID,),
        body=Body(
            ConsentRequest,
            "Whether the contact allows tracking.",
            lambda: {"opt_out": example("The contact opted out", request_dump(examples.opt_out()))},
        ),
        parameters=(_CONTACT,),
        authenticated=True,
    ),
    Endpoint(
        "/v1/contacts/{contact_id}",
        "DELETE",
        contacts.erase_contact,
        "eraseContact",
        "tracking",
        "Erase a contact (right to erasure)",
        "Erases the contact's consent record, every stored interaction that names the contact "
        "(and its deliveries still pending to webhooks), and the contact in its link records: "
        "the links keep redirecting, and later taps on them are anonymous. Costs in proportion "
        "to the contact's own data. Each webhook endpoint of the org then gets a "
        "`contact.erased` event. Erasing a contact that left no trace answers zeros.",
        lambda base_url: {
            200: json_answer(
                "What was erased.",
                Erasure,
                {"erased": example("A contact with a dozen clicks", dump(examples.erasure()))},
            )
        },
        errors=(errors.CONTACT_ID,),
        parameters=(_CONTACT,),
        authenticated=True,
    ),
    Endpoint(
        "/v1/webhooks",
        "GET",
        webhooks.list_webhooks,
        "listWebhooks",
        "webhooks",
        "List the org's webhook endpoints",
        "Each endpoint with its `backlog` (events not yet delivered) and `failed` (events "
        "given up on) counts.",
        lambda base_url: {
            200: json_answer(
                "The org's endpoints.",
                WebhookList,
                {"one": example("One endpoint", dump(examples.webhook_list()))},
            )
        },
        authenticated=True,
    ),
    Endpoint(
        "/v1/webhooks/{name}",
        "PUT",
        webhooks.put_webhook,
        "putWebhook",
        "webhooks",
        "Create or change a webhook endpoint",
        "Events of the types in `events` (of " + ", ".join(f"`{t}`" for t in EVENT_TYPES) + ") "
        'that happen from now on are posted to `url` as JSON `{"type", "timestamp", '
        '"data"}`, signed by the Standard Webhooks scheme (`webhook-id`, '
        "`webhook-timestamp`, `webhook-signature`) with the endpoint's `secret`. Any 2xx "
        "answer within 10 s is a delivery; anything else is retried after "
        "`SHORTENER_WEBHOOK_BACKOFF_SECONDS`, doubling each time, with the same `webhook-id`, "
        "up to `SHORTENER_WEBHOOK_MAX_ATTEMPTS` attempts; then the event is listed as failed. "
        "Redirects are not followed. Interactions by bots go only with `include_bots`. A URL "
        "that names or resolves to a loopback, private or link-local address is refused "
        "unless the service allows them. Changing an endpoint keeps its secret.",
        lambda base_url: {
            200: json_answer(
                "The endpoint, with its secret.",
                Webhook,
                {"crm": example("An endpoint for a CRM", dump(examples.webhook()))},
            )
        },
        errors=(errors.WEBHOOK_NAME_INVALID, errors.WEBHOOK_URL_PRIVATE, errors.TOO_MANY_WEBHOOKS),
        body=Body(
            WebhookRequest,
            "Where events go, and which ones.",
            lambda: {"crm": example("A CRM's endpoint", request_dump(examples.webhook_request()))},
        ),
        parameters=(_WEBHOOK_NAME,),
        authenticated=True,
    ),
    Endpoint(
        "/v1/webhooks/{name}",
        "GET",
        webhooks.get_webhook,
        "getWebhook",
        "webhooks",
        "Read a webhook endpoint",
        "The endpoint with its secret, `backlog` and `failed` counts.",
        lambda base_url: {
            200: json_answer(
                "The endpoint.",
                WebhookStatus,
                {"crm": example("An endpoint", dump(examples.webhook_list().webhooks[0]))},
            )
        },
        errors=(errors.WEBHOOK_UNKNOWN,),
        parameters=(_WEBHOOK_NAME,),
        authenticated=True,
    ),
    Endpoint(
        "/v1/webhooks/{name}",
        "DELETE",
        webhooks.delete_webhook,
        "deleteWebhook",
        "webhooks",
        "Delete a webhook endpoint",
        "Nothing more is sent to it, its pending and failed events included.",
        lambda base_url: {204: {"description": "Deleted."}},
        errors=(errors.WEBHOOK_UNKNOWN,),
        parameters=(_WEBHOOK_NAME,),
        authenticated=True,
    ),
    Endpoint(
        "/v1/webhooks/{name}/failed",
        "GET",
        webhooks.failed_events,
        "listFailedWebhookEvents",
        "webhooks",
        "List the events given up on",
        f"Oldest first, at most {MAX_FAILED_LISTED}: the events every attempt failed for.",
        lambda base_url: {
            200: json_answer(
                "The failed events.",
                FailedEvents,
                {"one": example("One failed event", dump(examples.failed_events()))},
            )
        },
        errors=(errors.WEBHOOK_UNKNOWN,),
        parameters=(_WEBHOOK_NAME,),
        authenticated=True,
    ),
    Endpoint(
        "/v1/webhooks/{name}/replay",
        "POST",
        webhooks.replay,
        "replayWebhookEvents",
        "webhooks",
        "Send the failed events again",
        "Every failed event is scheduled again now, with its `webhook-id`, for a new round of "
        "attempts.",
        lambda base_url: {
            200: json_answer(
                "How many events were scheduled.",
                Replayed,
                {"one": example("One event", dump(examples.replayed()))},
            )
        },
        errors=(errors.WEBHOOK_UNKNOWN,),
        parameters=(_WEBHOOK_NAME,),
        authenticated=True,
    ),
    Endpoint(
        "/v1/interactions",
        "GET",
        interactions.list_interactions,
        "listInteractions",
        "tracking",
        "Read clicks and opens",
        "The org's interactions, oldest first. Read on by passing `next` as `after`; when "
        "there is nothing new, `interactions` is empty and `next` stays where it was. `bot` "
        "is true for link-preview fetchers, crawlers and scanners. The filters `campaign`, "
        "`contact_id`, `message_id` and `type` narrow the page to the interactions that match "
        f"all of them; a filtered read looks through at most {MAX_SCANNED_PER_PAGE} "
        "interactions, so a page may hold fewer than `limit` (even none) while `next` moves "
        "on: read on until `next` stops moving.",
        lambda base_url: {
            200: json_answer(
                "A page of interactions.",
                InteractionPage,
                {"click": example("One click by a person", dump(examples.interaction_page()))},
            )
        },
        errors=(errors.CURSOR, errors.PAGE_LIMIT, errors.FILTER_INVALID),
        parameters=(
            query_parameter(
                "after",
                "The `next` of the previous page; omit it, or leave it empty, to read from the "
                "start.",
                {"type": "string", "pattern": STREAM_CURSOR_PATTERN},
                example=examples.CURSOR,
            ),
            query_parameter(
                "limit",
                "The most interactions to return.",
                {
                    "type": "integer",
                    "minimum": MIN_PAGE,
                    "maximum": MAX_PAGE,
                    "default": DEFAULT_PAGE,
                },
            ),
            query_parameter(
                "campaign",
                "Only interactions of messages of this campaign.",
                {"type": "string", "maxLength": MAX_CAMPAIGN_LENGTH},
            ),
            query_parameter(
                "contact_id",
                "Only interactions that name this contact.",
                {"type": "string", "maxLength": MAX_ID_LENGTH},
            ),
            query_parameter(
                "message_id",
                "Only interactions of this message.",
                {"type": "string", "maxLength": MAX_ID_LENGTH},
            ),
            query_parameter(
                "type", "Only clicks, or only opens.", {"type": "string", "enum": ["click", "open"]}
            ),
        ),
        authenticated=True,
    ),
    Endpoint(
        "/v1/analytics",
        "GET",
        analytics.series,
        "getAnalytics",
        "analytics",
        "Count clicks, opens and taps over time",
        "The org's aggregate counts per hour or per UTC day: people's clicks on tracked links "
        "(`anonymous_clicks` of them by people who had opted out), opens, bot clicks, and "
        "people's taps on untracked short links. Every bucket that starts from `from`'s "
        "bucket up to `to` is listed, empty ones with zeros. The counts name no person, "
        "message or link, and are kept `SHORTENER_ANALYTICS_RETENTION_DAYS` (default "
        f"{default_of('analytics_retention_days')}), longer than the interactions. At most "
        f"{MAX_ANALYTICS_HOURS} hours or {MAX_ANALYTICS_DAYS} days per query.",
        lambda base_url: {
            200: json_answer(
                "The buckets, oldest first.",
                Series,
                {"days": example("Two days", dump(examples.analytics_series()))},
            )
        },
        errors=(errors.ANALYTICS_QUERY, errors.ANALYTICS_RANGE),
        parameters=(
            _TIME_PARAMETERS[0],
            _TIME_PARAMETERS[1],
            query_parameter(
                "interval",
                "Buckets of an hour, or of a UTC day.",
                {"type": "string", "enum": ["hour", "day"], "default": "day"},
            ),
            query_parameter(
                "campaign",
                "Only the counts of this campaign's messages.",
                {"type": "string", "maxLength": MAX_CAMPAIGN_LENGTH},
            ),
        ),
        authenticated=True,
    ),
    Endpoint(
        "/v1/analytics/campaigns",
        "GET",
        analytics.campaigns,
        "listCampaigns",
        "analytics",
        "Count each campaign's clicks and opens",
        "Each campaign's totals over the UTC days from `from`'s day up to `to`: people's "
        "clicks, opens, bot clicks and the links issued for it, most clicked first. Campaigns "
        "with nothing counted in the range are left out.",
        lambda base_url: {
            200: json_answer(
                "The campaigns.",
                Campaigns,
                {"two": example("Two campaigns", dump(examples.campaign_list()))},
            )
        },
        errors=(errors.ANALYTICS_QUERY, errors.ANALYTICS_RANGE),
        parameters=_TIME_PARAMETERS,
        authenticated=True,
    ),
    Endpoint(
        "/v1/links/{code}",
        "GET",
        links.link_info,
        "getLink",
        "ops",
        "Look up a short code, tracked link or pixel",
        "Where an id this service issued leads, whether it is tracked, when it expires and how "
        "often it was tapped: a short code, or the `link_id` of an e-mail's tracked link or of "
        "its open pixel (`kind` tells which; those have no `code` or `short_url`, and a pixel "
        "no `url`, and a pixel's `clicks` are its opens). `short_url` uses the base URL the "
        "code was issued with. `HEAD` requests count neither as clicks nor as bot clicks. The "
        "same as `shortener inspect CODE`.",
        lambda base_url: {
            200: json_answer(
                "The id's record.",
                LinkInfo,
                {
                    name: example(summary, dump(info))
                    for (name, summary), info in zip(
                        (
                            ("active", "A tracked code"),
                            ("tracked_link", "A tracked link of an e-mail"),
                            ("pixel", "The open pixel of an e-mail"),
                        ),
                        examples.link_infos(base_url),
                        strict=True,
                    )
                },
            )
        },
        errors=(errors.LINK_NOT_YOURS,),
        parameters=(_CODE_PARAMETER,),
        authenticated=True,
    ),
    Endpoint(
        "/v1/admin/orgs",
        "GET",
        admin.list_orgs,
        "listOrgs",
        "admin",
        "List the orgs",
        "Every org set through `PUT /v1/admin/orgs/{org}` or the CLI, and every org of "
        "`SHORTENER_API_KEYS` (with empty settings and null times until set), by name.",
        lambda base_url: {
            200: json_answer(
                "The orgs.",
                OrgList,
                {"one": example("One org", dump(OrgList(orgs=[examples.org()])))},
            )
        },
        admin=True,
    ),
    Endpoint(
        "/v1/admin/orgs/{org}",
        "GET",
        admin.get_org,
        "getOrg",
        "admin",
        "Read an org",
        "The org's settings, as the last `PUT` left them.",
        lambda base_url: {
            200: json_answer("The org.", Org, {"org": example("An org", dump(examples.org()))})
        },
        errors=(errors.ORG_UNKNOWN,),
        parameters=(_ORG_PARAMETER,),
        admin=True,
    ),
    Endpoint(
        "/v1/admin/orgs/{org}",
        "PUT",
        admin.put_org,
        "setOrg",
        "admin",
        "Create or change an org",
        "Sets the fields sent and keeps the others (a new org starts with none). Host names "
        "are kept lowercased in their IDNA A-label form. A domain belongs to one org at most: "
        "a domain another org owns is refused with `409` and nothing changes. A domain left "
        "out of `domains` is given up, and another org may claim it.",
        lambda base_url: {
            200: json_answer(
                "The org as stored.", Org, {"org": example("An org", dump(examples.org()))}
            )
        },
        errors=(errors.ORG_ID_INVALID, errors.DOMAIN_TAKEN),
        body=Body(
            OrgChanges,
            "The settings to change.",
            lambda: {"org": example("A branded domain", request_dump(examples.org_changes()))},
        ),
        parameters=(_ORG_PARAMETER,),
        admin=True,
    ),
    Endpoint(
        "/v1/admin/orgs/{org}/keys",
        "POST",
        admin.create_key,
        "createOrgKey",
        "admin",
        "Make an API key for an org",
        "A new API key that acts for the org, as `SHORTENER_API_KEYS` keys do. The key is "
        "shown in this answer only: the service keeps its SHA-256 alone. Every instance "
        "accepts it within a few seconds.",
        lambda base_url: {
            201: json_answer(
                "The key, shown this once.",
                NewKey,
                {"key": example("A key", dump(examples.new_key()))},
            )
        },
        errors=(errors.ORG_UNKNOWN,),
        parameters=(_ORG_PARAMETER,),
        admin=True,
    ),
    Endpoint(
        "/v1/admin/orgs/{org}/keys",
        "GET",
        admin.list_keys,
        "listOrgKeys",
        "admin",
        "List an org's API keys",
        "The keys made for the org through this API or the CLI, oldest first, without the keys "
        "themselves. `last_used_at` is written at most once a minute per key, so it may be up "
        "to a minute behind; null for a key never used. Keys of `SHORTENER_API_KEYS` are not "
        "listed.",
        lambda base_url: {
            200: json_answer(
                "The org's keys.", KeyList, {"keys": example("One key", dump(examples.key_list()))}
            )
        },
        errors=(errors.ORG_UNKNOWN,),
        parameters=(_ORG_PARAMETER,),
        admin=True,
    ),
    Endpoint(
        "/v1/admin/orgs/{org}/keys/{key_id}",
        "DELETE",
        admin.revoke_key,
        "revokeOrgKey",
        "admin",
        "Revoke an org's API key",
        "The key stops working on every instance within 5 seconds (`401`).",
        lambda base_url: {204: {"description": "Revoked."}},
        errors=(errors.ORG_UNKNOWN, errors.KEY_UNKNOWN),
        parameters=(_ORG_PARAMETER, _KEY_ID_PARAMETER),
        admin=True,
    ),
    Endpoint(
        "/v1/links/{code}",
        "DELETE",
        links.disable_link,
        "disableLink",
        "ops",
        "Take a short code, tracked link or pixel down",
        "Disables an id the org was issued, for good: its code answers `410` with a page that "
        "says the link was disabled, its signed tracked link answers `410` instead of "
        "redirecting, and neither (nor a disabled pixel) records anything. `GET "
        "/v1/links/{code}` then shows `status: disabled`, `disabled_at` and "
        "`disabled_reason`. Idempotent: taking a link down again changes nothing, and the "
        "first takedown's time and reason stay. The body is optional.",
        lambda base_url: {204: {"description": "Disabled (now or before)."}},
        errors=(errors.LINK_NOT_YOURS,),
        body=_TAKEDOWN_BODY,
        parameters=(_CODE_PARAMETER,),
        authenticated=True,
    ),
    Endpoint(
        "/v1/admin/links/{code}",
        "DELETE",
        admin.disable_any_link,
        "disableAnyLink",
        "admin",
        "Take any org's short code, tracked link or pixel down",
        "For the abuse desk: disables an id whichever org it was issued to, exactly as that "
        "org's own `DELETE /v1/links/{code}` would. Idempotent. The body is optional.",
        lambda base_url: {204: {"description": "Disabled (now or before)."}},
        errors=(errors.LINK_UNKNOWN,),
        body=_TAKEDOWN_BODY,
        parameters=(_CODE_PARAMETER,),
        admin=True,
    ),
    Endpoint(
        "/v1/messages/{message_id}",
        "GET",
        messages.stored_message,
        "getMessage",
        "messages",
        "Read a shortened message and its links' status",
        "The result answered when the message was shortened with this `message_id`, with "
        "each link's `status`. Kept as long as the message's links are.",
        lambda base_url: {
            200: json_answer(
                "The message's result, with each link's status.",
                StoredMessage,
                {
                    "disabled": example(
                        "An SMS whose link was taken down",
                        dump(examples.stored_message(base_url)),
                    )
                },
            )
        },
        errors=(errors.MESSAGE_NOT_YOURS,),
        parameters=(_MESSAGE_PARAMETER,),
        authenticated=True,
    ),
    Endpoint(
        "/v1/messages/{message_id}",
        "DELETE",
        messages.disable_message,
        "disableMessage",
        "messages",
        "Take every link of a message down",
        "Disables every short code and tracked link of the message, and an e-mail's open "
        "pixel, as `DELETE "
        "/v1/links/{code}` does each. Idempotent. The body is optional.",
        lambda base_url: {204: {"description": "Its links are disabled (now or before)."}},
        errors=(errors.MESSAGE_NOT_YOURS,),
        body=_TAKEDOWN_BODY,
        parameters=(_MESSAGE_PARAMETER,),
        authenticated=True,
    ),
    Endpoint(
        TRACKED_LINK,
        "GET",
        redirect_routes.follow_tracked,
        "followTrackedLink",
        "redirects",
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
        lambda base_url: {
            302: _redirect_answer(
                "The signature checks out: go to `targetUrl`; or the query was cut short: go "
                "to the target stored for the link."
            )
        },
        errors=(errors.INVALID_TRACKED_LINK, errors.SECRET_VERSION, errors.LINK_DISABLED),
        parameters=(
            *_LINK_PARAMETERS,
            query_parameter(
                "targetUrl",
                "Where to redirect, as the org submitted it.",
                {"type": "string", "minLength": 1},
                example=examples.TARGET,
            ),
            query_parameter(
                "digest",
                "The signature of org, link id and target.",
                {"type": "string", "minLength": 1},
                example=examples.DIGEST,
            ),
            query_parameter(
                "secretVersion",
                "The version of the signing key that made `digest`.",
                {"type": "integer", "minimum": 0, "maximum": 10**9 - 1},
                example=1,
            ),
        ),
        public=True,
        head_note=_HEAD_RECORDS_NOTHING,
    ),
    Endpoint(
        OPEN_PIXEL,
        "GET",
        redirect_routes.open_pixel,
        "fetchOpenPixel",
        "redirects",
        "Fetch the open pixel",
        "The invisible image added to tracked e-mail bodies. Fetching it records an `open` "
        "interaction while the link is inside its tracking window.",
        lambda base_url: {
            200: {
                "description": "A 1x1 transparent GIF, whether or not the link is known, so a "
                "mail client never shows a broken image.",
                "headers": {
                    "Cache-Control": {
                        "description": "Not cacheable, so every open reaches the service.",
                        "schema": {"type": "string"},
                    }
                },
                "content": {"image/gif": {}},
            }
        },
        parameters=(
            _LINK_PARAMETERS[0],
            path_parameter("link_id", "The pixel's id.", {"type": "string"}),
        ),
        public=True,
        head_note=_HEAD_RECORDS_NOTHING,
    ),
    Endpoint(
        "/",
        "GET",
        redirect_routes.home,
        "getHome",
        "redirects",
        "The bare address",
        "What someone who opens the service's address without a code sees: this service only "
        "forwards short links.",
        lambda base_url: {},
        errors=(errors.HOME,),
        public=True,
        needs_store=False,
    ),
    Endpoint(
        "/healthz",
        "GET",
        ops.healthz,
        "getHealth",
        "ops",
        "Is the process up",
        "Answers without touching the link store, so it stays `200` while the store is down; "
        "use it as a liveness probe.",
        lambda base_url: {200: _status_answer("The process is up.", "ok")},
        needs_store=False,
    ),
    Endpoint(
        "/readyz",
        "GET",
        ops.readyz,
        "getReadiness",
        "ops",
        "Can the service answer requests",
        "`200` when the link store answers, `503` when it does not; use it as a readiness "
        "probe to take an instance out of the load balancer while its store is unreachable.",
        lambda base_url: {200: _status_answer("The link store answers.", "ready")},
        errors=(errors.NOT_READY,),
        needs_store=False,
    ),
    Endpoint(
        "/metrics",
        "GET",
        ops.metrics,
        "getMetrics",
        "ops",
        "Prometheus metrics",
        "Counters and timings of the process in the Prometheus text exposition format, for "
        "scraping. Public, unless `SHORTENER_METRICS_KEY` is set: then only a request with "
        "`Authorization: Bearer` that key gets them (org API keys do not).",
        lambda base_url: {
            200: {
                "description": "The metrics, in the Prometheus text format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
        errors=(errors.METRICS_KEY,),
        needs_store=False,
    ),
    Endpoint(
        "/openapi.json",
        "GET",
        _serve_document,
        "getOpenApiDocument",
        "ops",
        "This API description",
        "The OpenAPI 3.1 document describing every route of the service.",
        lambda base_url: {
            200: {
                "description": "The OpenAPI document.",
                "content": {JSON: {"schema": {"type": "object"}}},
            }
        },
        needs_store=False,
    ),
    # Last: its path matches every single segment, so the routes above go first.
    Endpoint(
        SHORT_LINK,
        "GET",
        tap,
        "followShortLink",
        "redirects",
        "Follow a short link",
        "The recipient's tap on a short link. A tracked code records a `click` interaction "
        "before the redirect is sent; taps by link-preview fetchers and crawlers are recorded "
        "with `bot` true. On a host that is an org's domain only that org's codes resolve: "
        "another org's is `404`, as if never issued. Where the org has a `fallback_url`, its "
        "expired and disabled codes, and unknown codes on its domains, redirect there instead.",
        lambda base_url: {
            302: _redirect_answer(
                "The code is live: go to the original link (or to the org's `fallback_url`)."
            )
        },
        errors=(
            errors.CODE_UNKNOWN,
            errors.CODE_EXPIRED,
            errors.LINK_DISABLED,
            errors.TOO_MANY_MISSES,
        ),
        parameters=(
            path_parameter(
                "code",
                "The short code, 6 to 12 letters and digits. Phones take what follows a link "
                "up to the next space into it, so a path that starts with a code and goes on "
                "(`CODE.`, `CODE)`, `CODE/…`) is that code.",
                {"type": "string"},
            ),
        ),
        public=True,
        head_note=_HEAD_RECORDS_NOTHING,
    ),
)
# The routes people reach from a message: their errors are pages for browsers.
PUBLIC_HANDLERS = frozenset(endpoint.handler for endpoint in ENDPOINTS if endpoint.public)


@functools.cache
def openapi_document(base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the service reachable at `base_url`.

    Built once per base URL and shared: callers must not modify the returned dict.
    """
    return build_document(ENDPOINTS, base_url, _INFO, _TAGS, common_errors)
