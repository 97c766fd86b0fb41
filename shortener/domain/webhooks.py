"""Webhook endpoints of an org: where its events go, which ones, signed with which secret; and
the events themselves as they are posted (see `delivery.py` for how)."""

from __future__ import annotations

import base64
import dataclasses
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shortener.domain.interactions import InteractionOut, interaction_out
from shortener.domain.limits import MAX_FAILED_LISTED, MAX_WEBHOOK_URL_LENGTH, MAX_WEBHOOKS
from shortener.outbound.addresses import private_address_of
from shortener.store.records import decode_interaction
from shortener.store.store import Store

EventType = Literal["interaction.click", "interaction.open", "contact.erased"]
EVENT_TYPES: tuple[EventType, ...] = ("interaction.click", "interaction.open", "contact.erased")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


class InvalidWebhookName(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"a webhook name is 1 to 64 of A-Z a-z 0-9 . _ -, not {name!r}")


class TooManyWebhooks(Exception):
    def __init__(self) -> None:
        super().__init__(f"an org has at most {MAX_WEBHOOKS} webhook endpoints")


class PrivateWebhookUrl(Exception):
    """A URL whose host is, or resolves to, an address the service may not call."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} is {address}, a loopback, private or link-local address")


def _webhook_url(value: str) -> str:
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not value.isascii()
        or any(not char.isprintable() or char.isspace() for char in value)
    ):
        raise ValueError("must be an absolute http(s) URL in ASCII, without spaces")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold a user name or password")
    try:
        parts.port  # noqa: B018 (it raises for a port that is no port)
    except ValueError:
        raise ValueError("names no valid port") from None
    return value


class WebhookRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.contoso.com/shortener",
                    "events": ["interaction.click", "interaction.open"],
                    "include_bots": False,
                }
            ]
        },
    )

    url: Annotated[str, AfterValidator(_webhook_url)] = Field(
        max_length=MAX_WEBHOOK_URL_LENGTH, description="Where events are posted."
    )
    events: list[EventType] = Field(
        default_factory=lambda: list(EVENT_TYPES),
        max_length=len(EVENT_TYPES),
        description="The event types sent; all of them when left out.",
    )
    include_bots: bool = Field(
        default=False, description="Whether interactions by bots (link previews, crawlers) go too."
    )


class Webhook(BaseModel):
    name: str
    url: str
    events: list[EventType]
    include_bots: bool
    secret: str = Field(
        description="Verifies the `webhook-signature` of each event (Standard Webhooks); kept "
        "when the endpoint is changed."
    )
    created_at: datetime


class WebhookStatus(Webhook):
    backlog: int = Field(description="Events not yet delivered (nor given up).")
    failed: int = Field(description="Events given up on; `POST …/replay` sends them again.")


class WebhookList(BaseModel):
    webhooks: list[WebhookStatus]


class FailedEvent(BaseModel):
    webhook_id: str = Field(description="The `webhook-id` the event is sent with, every time.")
    type: EventType
    timestamp: datetime = Field(description="When the event happened.")
    attempts: int
    failed_at: datetime = Field(description="When it was given up.")


class FailedEvents(BaseModel):
    failed: list[FailedEvent]


class Replayed(BaseModel):
    replayed: int = Field(description="Failed events scheduled to be sent again now.")


class ContactErased(BaseModel):
    contact_id: str
    interactions_erased: int
    links_erased: int


class Event(BaseModel):
    """What an endpoint is posted."""

    type: EventType
    timestamp: datetime
    # An interaction's data is exactly what `GET /v1/interactions` lists of it.
    data: InteractionOut | ContactErased

    @property
    def by_bot(self) -> bool:
        return isinstance(self.data, InteractionOut) and self.data.bot


def webhook_id(entry: str) -> str:
    """The `webhook-id` of a stream entry: the same for every attempt, and for every endpoint."""
    return "evt_" + entry


def entry_time(entry: str) -> datetime:
    return datetime.fromtimestamp(int(entry[1:].split("-")[0]) / 1000, UTC)


def event_of(entry: str, fields: dict[str, str], *, settled: bool = False) -> Event:
    """The event of a stream entry ("i…": an interaction, `settled` or not; "e…": a contact's
    erasure)."""
    at = entry_time(entry)
    if entry.startswith("i"):
        decoded = dataclasses.replace(decode_interaction(entry[1:], fields), settled=settled)
        interaction: InteractionOut = interaction_out(decoded)
        kind: EventType = "interaction.click" if interaction.type == "click" else "interaction.open"
        return Event(type=kind, timestamp=at, data=interaction)
    return Event(
        type="contact.erased",
        timestamp=at,
        data=ContactErased(
            contact_id=fields.get("p", ""),
            interactions_erased=int(fields.get("ni", "0")),
            links_erased=int(fields.get("nl", "0")),
        ),
    )


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class Webhooks:
    """An org's endpoints, as the routes see them."""

    def __init__(
        self, store: Store, *, allow_private: bool, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.allow_private = allow_private
        self.clock = clock

    async def put(self, org: str, name: str, request: WebhookRequest) -> Webhook:
        """Create or change an endpoint; a change keeps its secret and creation time."""
        if _NAME.fullmatch(name) is None:
            raise InvalidWebhookName(name)
        await self._check_address(request.url)
        stored = await self.store.webhooks(org)
        current = None if name not in stored else Webhook.model_validate_json(stored[name])
        if current is None and len(stored) >= MAX_WEBHOOKS:
            raise TooManyWebhooks()
        webhook = Webhook(
            name=name,
            url=request.url,
            events=list(dict.fromkeys(request.events)),
            include_bots=request.include_bots,
            secret=current.secret if current else new_secret(),
            created_at=current.created_at
            if current
            else datetime.fromtimestamp(int(self.clock()), UTC),
        )
        await self.store.save_webhook(org, name, webhook.model_dump_json(), new=current is None)
        return webhook

    async def _check_address(self, url: str) -> None:
        if self.allow_private:
            return
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = await private_address_of(host, port)
        if address is not None:
            raise PrivateWebhookUrl(host, str(address))

    async def find(self, org: str, name: str) -> Webhook | None:
        """The endpoint, without its counts; None where the org has none of that name."""
        raw = await self.store.webhook(org, name) if _NAME.fullmatch(name) else None
        return None if raw is None else Webhook.model_validate_json(raw)

    async def get(self, org: str, name: str) -> WebhookStatus | None:
        webhook = await self.find(org, name)
        return None if webhook is None else await self._status(org, webhook)

    async def _status(self, org: str, webhook: Webhook) -> WebhookStatus:
        backlog, failed = await self.store.webhook_counts(org, webhook.name)
        return WebhookStatus(**webhook.model_dump(), backlog=backlog, failed=failed)

    async def all(self, org: str) -> WebhookList:
        stored = await self.store.webhooks(org)
        webhooks = [Webhook.model_validate_json(raw) for _, raw in sorted(stored.items())]
        return WebhookList(webhooks=[await self._status(org, webhook) for webhook in webhooks])

    async def delete(self, org: str, name: str) -> bool:
        return bool(_NAME.fullmatch(name)) and await self.store.delete_webhook(org, name)

    async def failed(self, org: str, name: str) -> FailedEvents:
        found = await self.store.failed_entries(org, name, MAX_FAILED_LISTED)
        fields = await self.store.entries(org, [entry for entry, _, _ in found])
        events = []
        for (entry, failed_ms, attempts), entry_fields in zip(found, fields, strict=True):
            if entry_fields is None:
                # Erased since: nothing of it is left to send.
                continue
            events.append(
                FailedEvent(
                    webhook_id=webhook_id(entry),
                    type=event_of(entry, entry_fields).type,
                    timestamp=entry_time(entry),
                    attempts=attempts,
                    failed_at=datetime.fromtimestamp(failed_ms / 1000, UTC),
                )
            )
        return FailedEvents(failed=events)

    async def replay(self, org: str, name: str) -> Replayed:
        return Replayed(replayed=await self.store.replay(org, name, int(self.clock() * 1000)))


def event_body(event: Event) -> str:
    return event.model_dump_json()
