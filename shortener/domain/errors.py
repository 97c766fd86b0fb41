"""What the domain refuses, and why, in words a caller can act on."""

from __future__ import annotations

from collections.abc import Sequence

from shortener.domain.limits import MAX_LINKS_PER_BATCH, MAX_LINKS_PER_HTML, MAX_LINKS_PER_TEXT

_LINK_LIMITS = {"text": MAX_LINKS_PER_TEXT, "html": MAX_LINKS_PER_HTML}


def link_limit(content_type: str) -> int:
    """The most links a message of this content type may have."""
    return _LINK_LIMITS[content_type]


class MessageConflict(Exception):
    """A message id was reused for a different message."""

    def __init__(self, message_id: str, *, in_this_batch: bool = False) -> None:
        if in_this_batch:
            super().__init__(
                f"message_id {message_id!r} is used by an earlier message of this batch"
            )
        else:
            super().__init__(f"message_id {message_id!r} was already used for a different message")


class TooManyLinks(Exception):
    """A message with more links than one message may have."""

    def __init__(self, content_type: str, found: int) -> None:
        super().__init__(
            f"a message of content_type {content_type!r} can have at most "
            f"{link_limit(content_type)} links; this one has {found}"
        )


class InvalidLinks(Exception):
    """A message with links to destinations its org may not link to."""

    def __init__(self, refused: Sequence[tuple[str, str]]) -> None:
        shown = "; ".join(f"{url}: {reason}" for url, reason in refused[:3])
        more = f" (and {len(refused) - 3} more)" if len(refused) > 3 else ""
        super().__init__(f"the message links to destinations that are refused: {shown}{more}")
        # Each refused link as written, with the reason.
        self.refused = list(refused)


# A message that is not shortened, while the others of its call are.
MessageRefused = MessageConflict | TooManyLinks | InvalidLinks


class BatchTooLarge(Exception):
    """The messages of one call have more links together than one call may issue."""

    def __init__(self) -> None:
        super().__init__(
            f"the messages of a batch can have at most {MAX_LINKS_PER_BATCH} links in all, and "
            "these have more: send them in smaller batches"
        )


class ShortenLimitReached(Exception):
    """The org has shortened as many messages as it may in this minute."""

    def __init__(self, limit: int, count: int, retry_after_ms: int) -> None:
        allowed = f"this org may shorten at most {limit} messages per minute"
        if count > limit:
            super().__init__(
                f"{allowed}: send the {count} messages of this request in smaller batches"
            )
        else:
            super().__init__(
                f"{allowed}; this request's messages ({count}) do not fit in what is left of "
                "the current minute"
            )
        # Whole seconds, rounded up: a client that waits that long finds a new window.
        self.retry_after_seconds = max(1, -(-retry_after_ms // 1000))


class InvalidSignature(Exception):
    """A tracked link whose digest, version or org does not check out."""


class LinkDisabled(Exception):
    """A tracked link whose link was taken down: it no longer redirects."""
