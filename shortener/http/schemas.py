"""The JSON shapes that only the HTTP API has: the batch envelope, problem details and the
consent request. What the domain takes and gives (`domain/messages.py`, the link info, the
consent and the interactions) is sent as the domain's own models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shortener.domain.limits import MAX_BATCH, MAX_LINKS_PER_BATCH
from shortener.domain.messages import ShortenResult


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


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str


class InvalidLink(BaseModel):
    url: str = Field(description="The link as written in the message.")
    reason: str = Field(description="Why it was refused.")


class InvalidLinksProblem(Problem):
    """A message refused for where its links lead: the problem, and each refused link."""

    invalid_links: list[InvalidLink]


class MessageError(BaseModel):
    """A message of a batch that was not shortened; nothing of it was stored."""

    error: InvalidLinksProblem | Problem = Field(
        description="The problem a single shorten of it would answer."
    )


class BatchResult(BaseModel):
    results: list[ShortenResult | MessageError]


class ConsentRequest(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"examples": [{"tracking": False}]}
    )

    tracking: bool = Field(strict=True, description="false: the contact opted out of tracking.")
