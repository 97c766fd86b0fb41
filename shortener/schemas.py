"""The JSON shapes of the public API, as pydantic models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_BATCH = 1000
# The most a concatenated SMS can carry: 255 segments of 153 GSM-7 characters, rounded up.
MAX_SMS_CHARACTERS = 40_000

ContactId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Recipient(BaseModel):
    model_config = ConfigDict(frozen=True)

    contact_id: ContactId | None = None
    # Consent decides whether a person is tracked: only a JSON boolean counts, never "yes" or 1.
    tracking_consent: bool = Field(default=False, strict=True)


class ShortenRequest(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "message_id": "campaign-7/recipient-42",
                    "content_type": "text",
                    "body": "Your order shipped: https://track.example.com/o/123",
                    "recipient": {"contact_id": "c-42", "tracking_consent": True},
                    "non_trackable": ["https://example.com/terms"],
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
        "SMS segments); an html body is only limited by the size of the request."
    )
    recipient: Recipient | None = None
    non_trackable: list[str] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _sms_sized(self) -> ShortenRequest:
        if self.content_type == "text" and len(self.body) > MAX_SMS_CHARACTERS:
            raise ValueError(
                f"a text body can have at most {MAX_SMS_CHARACTERS} characters "
                "(255 concatenated SMS segments)"
            )
        return self


class BatchRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    messages: list[ShortenRequest] = Field(min_length=1, max_length=MAX_BATCH)


class ShortLink(BaseModel):
    url: str = Field(description="The link exactly as it appeared in the body.")
    short_url: str | None
    code: str | None
    tracked: bool
    tracking_url: str | None


class SegmentInfo(BaseModel):
    encoding: Literal["GSM-7", "UCS-2"]
    characters: int
    segments: int


class Segments(BaseModel):
    before: SegmentInfo
    after: SegmentInfo


class ShortenResult(BaseModel):
    body: str
    links: list[ShortLink]
    segments: Segments | None


class BatchResult(BaseModel):
    results: list[ShortenResult]


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str


class ConsentRequest(BaseModel):
    model_config = ConfigDict(frozen=True, json_schema_extra={"examples": [{"tracking": False}]})

    tracking: bool = Field(strict=True, description="false: the contact opted out of tracking.")


class InteractionOut(BaseModel):
    id: str
    type: Literal["click", "open"]
    at: datetime
    link_id: str | None
    code: str | None
    message_id: str | None
    contact_id: str | None
    url: str
    bot: bool


class InteractionPage(BaseModel):
    interactions: list[InteractionOut]
    next: str | None = Field(description="Pass as `after` to read on from here.")


class LinkInfo(BaseModel):
    """What ops need to know about one short code."""

    code: str
    short_url: str
    url: str = Field(description="Where the code redirects (ASCII form).")
    tracked: bool
    created_at: datetime
    expires_at: datetime
    ttl_seconds: int = Field(description="Seconds left until expires_at; 0 once expired.")
    status: Literal["active", "expired"]
    clicks: int = Field(description="Taps by people.")
    bot_clicks: int = Field(description="Taps by link previews, crawlers and scanners.")
