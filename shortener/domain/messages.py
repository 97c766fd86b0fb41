"""A message to shorten and what comes back: the domain's input and output, validated as
pydantic models and sent as they are by the HTTP layer."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shortener.domain.limits import (
    MAX_CAMPAIGN_LENGTH,
    MAX_ID_LENGTH,
    MAX_LINKS_PER_HTML,
    MAX_LINKS_PER_TEXT,
    MAX_NON_TRACKABLE,
    MAX_SMS_CHARACTERS,
)

ContactId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]
Campaign = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CAMPAIGN_LENGTH)]


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
    non_trackable: list[str] = Field(default_factory=list, max_length=MAX_NON_TRACKABLE)
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
