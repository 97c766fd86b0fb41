"""Examples for the OpenAPI document, each a model instance, so that it is a value the service
really takes or sends. They only need to look like what the service issues."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from shortener.domain.analytics import (
    Bucket,
    Campaigns,
    CampaignTotals,
    Interval,
    ReasonTotals,
    Series,
)
from shortener.domain.errors import MessageConflict
from shortener.domain.interactions import Consent, Erasure, InteractionOut, InteractionPage
from shortener.domain.lookup import LinkInfo
from shortener.domain.messages import (
    Recipient,
    Segments,
    ShortenRequest,
    ShortenResult,
    ShortLink,
    SkippedLink,
)
from shortener.domain.org_keys import KeyInfo, KeyList, NewKey
from shortener.domain.paths import OPEN_PIXEL, TRACKED_LINK
from shortener.domain.shortening import segment_info
from shortener.domain.takedown import MessageLink, StoredMessage, TakedownRequest
from shortener.domain.tenancy import Org, OrgChanges
from shortener.domain.webhooks import (
    FailedEvent,
    FailedEvents,
    Replayed,
    Webhook,
    WebhookList,
    WebhookRequest,
    WebhookStatus,
    webhook_id,
)
from shortener.http import errors
from shortener.http.problems import problem
from shortener.http.schemas import BatchResult, ConsentRequest, MessageError
from shortener.text.markup import pixel_tag
from shortener.text.targets import InvalidTarget, redirect_target

CODE = "Xk3p9Qa"
HTML_LINK_ID = "Q2fZr8Lk1"
PIXEL_ID = "b7Ty2mQw4"
ORG_HASH = "c0VjcmV0LW9yZy1oYXNo"
DIGEST = "pQ9v3TzJm1kXw6bR0yHs8aLc2eNf5gUd7iKo4tVx1Aq"
TARGET = "https://track.example.com/o/123"
CONTACT_ID = "c-42"
CURSOR = "1767225600000-0"
_SMS_BODY = f"Your order shipped: {TARGET}"
_EMAIL_BODY = f'<p>Your order <a href="{TARGET}">has shipped</a>.</p>'
_MESSAGE_ID = "campaign-7/recipient-42"
_CREATED = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)


def sms_request() -> ShortenRequest:
    return ShortenRequest(
        message_id=_MESSAGE_ID,
        content_type="text",
        body=_SMS_BODY,
        recipient=Recipient(contact_id=CONTACT_ID, tracking_consent=True),
        non_trackable=["https://example.com/terms"],
    )


def email_request() -> ShortenRequest:
    return ShortenRequest(
        message_id="newsletter-3/recipient-42",
        content_type="html",
        body=_EMAIL_BODY,
        recipient=Recipient(contact_id=CONTACT_ID, tracking_consent=True),
    )


def untracked_request() -> ShortenRequest:
    return ShortenRequest(message_id="campaign-7/recipient-43", body=_SMS_BODY)


def conflicting_request() -> ShortenRequest:
    return ShortenRequest(message_id=_MESSAGE_ID, body="Another body")


def _tracking_url(base_url: str, link_id: str, target: str) -> str:
    path = TRACKED_LINK.format(org_hash=ORG_HASH, link_id=link_id)
    return f"{base_url}{path}?targetUrl={quote(target, safe='')}&digest={DIGEST}&secretVersion=1"


def _short_result(base_url: str, code: str, *, tracked: bool) -> ShortenResult:
    short_url = f"{base_url}/{code}"
    body = _SMS_BODY.replace(TARGET, short_url)
    tracking_url = _tracking_url(base_url, code, TARGET) if tracked else None
    return ShortenResult(
        body=body,
        links=[
            ShortLink(
                url=TARGET,
                short_url=short_url,
                code=code,
                tracked=tracked,
                tracking_url=tracking_url,
            )
        ],
        segments=Segments(before=segment_info(_SMS_BODY), after=segment_info(body)),
    )


def sms_result(base_url: str) -> ShortenResult:
    return _short_result(base_url, CODE, tracked=True)


def untracked_result(base_url: str) -> ShortenResult:
    return _short_result(base_url, "Lm4sT8d", tracked=False)


def skipped_result() -> ShortenResult:
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
        segments=Segments(before=segment_info(body), after=segment_info(body)),
        skipped=[SkippedLink(url=bad_port, reason=reason)],
    )


def stored_message(base_url: str) -> StoredMessage:
    result = sms_result(base_url)
    return StoredMessage(
        **result.model_dump(exclude={"links"}),
        links=[MessageLink(**link.model_dump(), status="disabled") for link in result.links],
    )


def takedown_request() -> TakedownRequest:
    return TakedownRequest(reason="phishing reported by a recipient")


def email_result(base_url: str) -> ShortenResult:
    tracking_url = _tracking_url(base_url, HTML_LINK_ID, TARGET)
    pixel = pixel_tag(base_url + OPEN_PIXEL.format(org_hash=ORG_HASH, link_id=PIXEL_ID))
    body = _EMAIL_BODY.replace(TARGET, html.escape(tracking_url, quote=True)) + pixel
    return ShortenResult(
        body=body,
        links=[
            ShortLink(
                url=TARGET, short_url=None, code=None, tracked=True, tracking_url=tracking_url
            )
        ],
        segments=None,
    )


def batch_refusals(base_url: str) -> BatchResult:
    conflict = errors.MESSAGE_CONFLICT
    refused = MessageError(
        error=problem(conflict.status, conflict.detail.format(reason=MessageConflict(_MESSAGE_ID)))
    )
    invalid = MessageError(
        error=problem(errors.INVALID.status, "content_type: Input should be 'text' or 'html'")
    )
    return BatchResult(results=[sms_result(base_url), refused, invalid])


def opt_out() -> ConsentRequest:
    return ConsentRequest(tracking=False)


def consents() -> tuple[Consent, Consent]:
    opted_out = Consent(contact_id=CONTACT_ID, tracking=False, updated_at=_CREATED)
    never = Consent(contact_id=CONTACT_ID, tracking=None, updated_at=None)
    return opted_out, never


def interaction_page() -> InteractionPage:
    milliseconds = int(CURSOR.split("-")[0])
    return InteractionPage(
        interactions=[
            InteractionOut(
                id=CURSOR,
                type="click",
                at=datetime.fromtimestamp(milliseconds / 1000, UTC),
                link_id=CODE,
                code=CODE,
                message_id=_MESSAGE_ID,
                contact_id=CONTACT_ID,
                url=TARGET,
                bot=False,
                campaign="order-updates",
            )
        ],
        next=CURSOR,
    )


def link_infos(base_url: str) -> tuple[LinkInfo, LinkInfo, LinkInfo]:
    code = LinkInfo(
        link_id=CODE,
        kind="short",
        code=CODE,
        short_url=f"{base_url}/{CODE}",
        url=TARGET,
        tracked=True,
        created_at=_CREATED,
        expires_at=_CREATED + timedelta(days=365),
        ttl_seconds=int(timedelta(days=300).total_seconds()),
        status="active",
        clicks=3,
        campaign="order-updates",
        message_id=_MESSAGE_ID,
        bot_clicks=1,
        disabled_at=None,
        disabled_reason=None,
    )
    tracked_link = code.model_copy(
        update={"link_id": HTML_LINK_ID, "kind": "tracked_link", "code": None, "short_url": None}
    )
    pixel = tracked_link.model_copy(update={"link_id": PIXEL_ID, "kind": "pixel", "url": None})
    return code, tracked_link, pixel


def org_changes() -> OrgChanges:
    return OrgChanges(
        domains=["go.contoso.com"],
        allowed_destinations=["contoso.com"],
        blocked_destinations=[],
        fallback_url="https://contoso.com/expired",
    )


def org() -> Org:
    changed = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    return Org(
        org="contoso",
        **org_changes().model_dump(),
        created_at=changed,
        updated_at=changed,
    )


KEY_CREATED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
KEY_ID = "k_3f9a0c1e5b7d2468"


def new_key() -> NewKey:
    return NewKey(
        key_id=KEY_ID, key="q4Zc1XhT0vB8mN2pL6sR9wE3yU7iO5aK1jH4gF8dS0a", created_at=KEY_CREATED
    )


def key_list() -> KeyList:
    used = KEY_CREATED + timedelta(days=3)
    return KeyList(keys=[KeyInfo(key_id=KEY_ID, created_at=KEY_CREATED, last_used_at=used)])


_WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 (an example)
_WEBHOOK_CREATED = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def webhook_request() -> WebhookRequest:
    return WebhookRequest(
        url="https://hooks.contoso.com/shortener",
        events=["interaction.click", "interaction.open", "contact.erased"],
        include_bots=False,
    )


def webhook() -> Webhook:
    request = webhook_request()
    return Webhook(
        name="crm",
        url=request.url,
        events=request.events,
        include_bots=request.include_bots,
        secret=_WEBHOOK_SECRET,
        created_at=_WEBHOOK_CREATED,
    )


def webhook_list() -> WebhookList:
    return WebhookList(webhooks=[WebhookStatus(**webhook().model_dump(), backlog=3, failed=1)])


def failed_events() -> FailedEvents:
    happened = datetime.fromtimestamp(int(CURSOR.split("-")[0]) / 1000, UTC)
    return FailedEvents(
        failed=[
            FailedEvent(
                webhook_id=webhook_id("i" + CURSOR),
                type="interaction.click",
                timestamp=happened,
                attempts=10,
                failed_at=happened + timedelta(hours=1, minutes=25),
            )
        ]
    )


def replayed() -> Replayed:
    return Replayed(replayed=1)


def erasure() -> Erasure:
    return Erasure(interactions_erased=12, links_erased=3)


def analytics_series() -> Series:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return Series(
        interval=Interval.DAY,
        series=[
            Bucket(
                start=start + timedelta(days=day),
                clicks=clicks,
                opens=opens,
                bot_clicks=bots,
                anonymous_clicks=anonymous,
                taps=taps,
            )
            for day, (clicks, opens, bots, anonymous, taps) in enumerate(
                [(120, 340, 18, 3, 41), (86, 210, 9, 1, 30)]
            )
        ],
        bot_reasons=[
            ReasonTotals(reason="user_agent", clicks=9, opens=0),
            ReasonTotals(reason="prefetch", clicks=0, opens=112),
            ReasonTotals(reason="honeypot", clicks=14, opens=6),
            ReasonTotals(reason="burst", clicks=4, opens=0),
            ReasonTotals(reason="too_soon", clicks=0, opens=0),
        ],
    )


def campaign_list() -> Campaigns:
    return Campaigns(
        campaigns=[
            CampaignTotals(campaign="spring-sale", clicks=206, opens=550, bot_clicks=27, links=900),
            CampaignTotals(campaign="welcome", clicks=12, opens=40, bot_clicks=0, links=35),
        ]
    )
