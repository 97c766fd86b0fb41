"""The JSON shapes of the public API, as pydantic models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_BATCH = 1000
# The most a concatenated SMS can carry: 255 segments of 153 GSM-7 characters, rounded up.
MAX_SMS_CHARACTERS = 40_000
# Links found in one message (listed in `links` or `skipped`). Each link costs a stored record
# for a year and a few hundred bytes of answer, and a body this size can hold thousands of
# them: 40,000 SMS characters fit about 4,000 links, a megabyte of HTML tens of thousands. A
# real SMS carries a handful of links and a newsletter a few dozen to a couple of hundred, so
# these leave room for every real message while bounding what one message costs.
MAX_LINKS_PER_TEXT = 100
MAX_LINKS_PER_HTML = 500
# Links found in all the messages of one batch. A batch of 1000 messages with a few links
# each stays well below it. Without it, 1 MiB of short links issued about 97,000 links in one
# call, held 220 MB more memory while answering and sent back 14 MB; the worst batch within
# these limits (10,000 tracked links) holds about 40 MB more and answers about 6 MB.
MAX_LINKS_PER_BATCH = 10_000

ContactId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Campaign = Annotated[str, StringConstraints(min_length=1, max_length=128)]
LinkKindName = Literal["short", "tracked_link", "pixel"]


class Recipient(BaseModel):
    # A misspelt field would silently turn tracking off or on: unknown fields are refused.
    model_config = ConfigDict(frozen=True, extra="forbid")

    contact_id: ContactId | None = None
    # Consent decides whether a person is tracked: only a JSON boolean counts, never "yes" or 1.
    tracking_consent: bool = Field(default=False, strict=True)


class ShortenRequest(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "message_id": "campaign-7/recipient-42",
                    "content_type": "text",
                    "body": "Your order shipped: https://track.example.com/o/123",
                    "recipient": {"contact_id": "c-42", "tracking_consent": True},
                    "non_trackable": ["https://example.com/terms"],
                    "campaign": "order-updates",
                }
            ],
            # The SMS size limit of `_sms_sized`, which only applies to text bodies.
            "if": {"properties": {"content_type": {"const": "html"}}, "required": ["content_type"]},
            "else": {"properties": {"body": {"maxLength": MAX_SMS_CHARACTERS}}},
        },
    )

    message_id: MessageId | None = Field(
        default=None,
        description="Unique per org; a retry with the same id returns the same result.",
    )
    content_type: Literal["text", "html"] = "text"
    body: str = Field(
        description=f"A text body has at most {MAX_SMS_CHARACTERS} characters (255 concatenated "
        f"SMS segments) and {MAX_LINKS_PER_TEXT} links; an html body has at most "
        f"{MAX_LINKS_PER_HTML} links, and is otherwise only limited by the size of the request."
    )
    recipient: Recipient | None = None
    non_trackable: list[str] = Field(default_factory=list, max_length=1000)
    campaign: Campaign | None = Field(
        default=None,
        description="The journey or campaign the message belongs to; kept on its links and "
        "on their interactions, anonymous ones included (it names a journey, not a person).",
    )

    @model_validator(mode="after")
    def _sms_sized(self) -> ShortenRequest:
        if self.content_type == "text" and len(self.body) > MAX_SMS_CHARACTERS:
            raise ValueError(
                f"a text body can have at most {MAX_SMS_CHARACTERS} characters "
                "(255 concatenated SMS segments)"
            )
        return self


class BatchRequest(BaseModel):
    """The envelope of a batch. Each message is parsed on its own (as a `ShortenRequest`), so
    that one that is not valid gets its own error and the others are shortened."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="Messages as for a single shorten (`ShortenRequest`); one that is not "
        f"valid gets an error in its place. Together they have at most {MAX_LINKS_PER_BATCH} "
        "links.",
    )


class ShortLink(BaseModel):
    url: str = Field(
        description="In a text body, the link exactly as it appeared; in HTML, the address a "
        "browser follows (the `href` with its character references decoded)."
    )
    short_url: str | None
    code: str | None
    tracked: bool
    tracking_url: str | None


class SkippedLink(BaseModel):
    url: str = Field(description="The link as it appeared (in HTML, the decoded `href`).")
    reason: str = Field(description="Why it was left as it is.")


class SegmentInfo(BaseModel):
    encoding: Literal["GSM-7", "UCS-2"]
    characters: int
    segments: int


class Segments(BaseModel):
    before: SegmentInfo
    after: SegmentInfo


class ShortenResult(BaseModel):
    # Every field is always sent, defaults included.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    body: str
    links: list[ShortLink]
    segments: Segments | None
    # Results stored for retries before links were ever skipped have no such field.
    skipped: list[SkippedLink] = Field(
        default_factory=list,
        description="Links found but deliberately left as they are, in order of appearance.",
    )


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str


class MessageError(BaseModel):
    """A message of a batch that was not shortened; nothing of it was stored."""

    error: Problem = Field(description="The problem a single shorten of it would answer.")


class BatchResult(BaseModel):
    results: list[ShortenResult | MessageError]


class ConsentRequest(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"examples": [{"tracking": False}]}
    )

    tracking: bool = Field(strict=True, description="false: the contact opted out of tracking.")


class Consent(BaseModel):
    """A contact's tracking consent as stored here."""

    contact_id: str
    tracking: bool | None = Field(
        description="false: opted out, which wins over `tracking_consent` in requests; "
        "null: never set."
    )
    updated_at: datetime | None = Field(description="When it was last set; null: never set.")


class InteractionOut(BaseModel):
    id: str
    type: Literal["click", "open"]
    at: datetime
    link_id: str | None
    code: str | None
    message_id: str | None
    contact_id: str | None
    url: str | None = Field(description="Where the click went; null for an open.")
    bot: bool
    campaign: str | None = Field(description="The campaign of the message; null if none.")


class InteractionPage(BaseModel):
    interactions: list[InteractionOut]
    next: str | None = Field(description="Pass as `after` to read on from here.")


class LinkInfo(BaseModel):
    """What ops need to know about one id the service issued: a short code, an e-mail's tracked
    link or its open pixel."""

    link_id: str = Field(description="The id looked up.")
    kind: LinkKindName = Field(
        description="`short`: a short code (tracked or not); `tracked_link`: a tracked link "
        "of an e-mail, which has no short code; `pixel`: an e-mail's open pixel."
    )
    code: str | None = Field(description="The short code; null where the id has none.")
    short_url: str | None = Field(
        description="The short link as issued; null where the id has no short code."
    )
    url: str | None = Field(description="Where the id redirects (ASCII form); null for a pixel.")
    tracked: bool
    created_at: datetime
    expires_at: datetime
    ttl_seconds: int = Field(description="Seconds left until expires_at; 0 once expired.")
    status: Literal["active", "expired"]
    clicks: int = Field(description="Taps by people (for a pixel: opens).")
    bot_clicks: int = Field(description="Taps by link previews, crawlers and scanners.")
    campaign: str | None = Field(description="The campaign of its message; null if none.")
    message_id: str | None = Field(
        description="The message it was issued for, where it is tracked and the message had an "
        "id; null otherwise."
    )
