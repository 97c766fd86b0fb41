"""How values are laid out in Redis: link records, consent, interactions.

A link record is `kind created expires org target [contact message [campaign]]`,
space-separated: orgs are validated to contain none, targets are encoded URLs, and ids are
percent-encoded. A disabled link's kind letter is upper case: the tap script, which follows
only the lower-case letters it is given, sees the takedown in the record it reads anyway, and
the record keeps its size. Trailing ids that are absent are left out, so an untracked link without a
campaign costs no byte more than its target.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from shortener.model import (
    BURST,
    HONEYPOT,
    PIXEL_TARGET,
    PREFETCH_REASON,
    TOO_SOON,
    USER_AGENT,
    BotReason,
    Interaction,
    InteractionType,
    LinkKind,
    StoredConsent,
    StoredLink,
)

# The first character of a record: the tap script reads it to tell kinds apart.
_KIND_CODES = {
    LinkKind.SHORT: "u",
    LinkKind.TRACKED_SHORT: "t",
    LinkKind.TRACKED: "h",
    LinkKind.PIXEL: "o",
    LinkKind.HONEYPOT: "y",
}
_KINDS = {code: kind for kind, code in _KIND_CODES.items()}
# An interaction's type in its stream entry.
INTERACTION_CODES = {InteractionType.CLICK: "c", InteractionType.OPEN: "o"}
_INTERACTION_TYPES = {code: kind for kind, code in INTERACTION_CODES.items()}
# Why an interaction is a bot's, in its stream entry (field `r`).
# Every reason, in the order the API lists them.
BOT_REASON_CODES: dict[BotReason, str] = {
    USER_AGENT: "u",
    PREFETCH_REASON: "p",
    HONEYPOT: "h",
    BURST: "s",
    TOO_SOON: "t",
}
_BOT_REASONS = {code: reason for reason, code in BOT_REASON_CODES.items()}
# Entries stored before reasons were kept had only user agents to tell bots by.
USER_AGENT_CODE = BOT_REASON_CODES[USER_AGENT]
_PLAIN_ID = re.compile(r"[A-Za-z0-9._~-]*")


def text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


@functools.cache
def kind_codes(kinds: frozenset[LinkKind]) -> str:
    """Kinds as the tap script takes them: their first characters, in one string. Cached:
    every tap asks, for one of three sets."""
    return "".join(sorted(_KIND_CODES[kind] for kind in kinds))


def interaction_code(kind: InteractionType) -> str:
    return INTERACTION_CODES[kind]


def bot_reason_code(reason: BotReason | None) -> str:
    return "" if reason is None else BOT_REASON_CODES[reason]


def bot_reason_of(code: str) -> BotReason | None:
    return _BOT_REASONS.get(code)


def encoded_id(value: str) -> str:
    """An id (a contact's, a message's) as link records write it."""
    return _quote_id(value)


def _quote_id(value: str | None) -> str:
    # Most ids need no escaping, and a regex check is far cheaper than quote.
    if value is None:
        return ""
    return value if _PLAIN_ID.fullmatch(value) else quote(value, safe="")


def encode_link(link: StoredLink) -> str:
    kind = _KIND_CODES[link.kind]
    if link.disabled:
        kind = kind.upper()
    head = f"{kind} {link.created_at:x} {link.expires_at:x} {link.org} {link.target}"
    ids: list[str | None] = [link.contact_id, link.message_id] if link.kind.tracked else []
    if link.campaign is not None:
        ids += [None] * (2 - len(ids)) + [link.campaign]
    elif not ids:
        return head
    return " ".join((head, *(_quote_id(value) for value in ids)))


def decode_link(raw: str) -> StoredLink:
    kind, created, expires, org, target, *ids = raw.split(" ")
    contact, message, campaign = (unquote(i) or None for i in [*ids, "", "", ""][:3])
    return StoredLink(
        _KINDS[kind.lower()],
        org,
        target,
        int(created, 16),
        int(expires, 16),
        contact,
        message,
        campaign,
        disabled=kind.isupper(),
    )


def encode_takedown(at: int, reason: str | None) -> str:
    """`AT REASON`: when (seconds since the epoch, hex) and why a link was disabled."""
    return f"{at:x} {reason or ''}"


def decode_takedown(value: str) -> tuple[int, str | None]:
    at, _, reason = value.partition(" ")
    return int(at, 16), reason or None


def encode_consent(tracking: bool, at_ms: int) -> str:
    """`1 MS` or `0 MS`: allowed or opted out, and when; the record script reads the flag."""
    return f"{'1' if tracking else '0'} {at_ms}"


def decode_consent(value: str) -> StoredConsent:
    flag, _, at_ms = value.partition(" ")
    return StoredConsent(flag != "0", int(at_ms) if at_ms.isdigit() else None)


@dataclass(frozen=True, slots=True)
class Unsettled:
    """What settling reads of a stored interaction: its fields as the stream holds them
    (`type` an interaction code, `reason` a reason code), decoded no further."""

    id: str
    at_ms: int
    type: str
    bot: bool
    reason: str
    link_id: str
    message_id: str | None
    campaign: str | None
    anonymous: bool


def decode_unsettled(entry_id: bytes, fields: Mapping[bytes, bytes]) -> Unsettled:
    """Decodes only the fields settling reads: it reads every interaction once more."""
    entry = entry_id.decode()
    message_id, campaign = fields.get(b"m"), fields.get(b"g")
    return Unsettled(
        entry,
        int(entry.partition("-")[0]),
        fields.get(b"t", b"c").decode(),
        fields.get(b"b") == b"1",
        fields.get(b"r", b"").decode(),
        fields.get(b"l", b"").decode(),
        message_id.decode() if message_id else None,
        campaign.decode() if campaign else None,
        b"p" not in fields,
    )


def decode_interaction(entry_id: str, fields: Mapping[str, str]) -> Interaction:
    return Interaction(
        id=entry_id,
        type=_INTERACTION_TYPES[fields["t"]],
        url=None if fields["u"] == PIXEL_TARGET else fields["u"],
        bot=fields["b"] == "1",
        bot_reason=_BOT_REASONS.get(fields.get("r") or USER_AGENT_CODE)
        if fields["b"] == "1"
        else None,
        proxied=fields.get("x") == "1",
        link_id=fields.get("l") or None,
        code=fields.get("k") or None,
        message_id=fields.get("m") or None,
        contact_id=fields.get("p") or None,
        campaign=fields.get("g") or None,
    )
