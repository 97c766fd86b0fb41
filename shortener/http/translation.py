"""The domain's refusals and the store's outage, as the catalogue's errors (`errors.py`).

Each kind of exception is mapped on its own; an exception that is not one of them is no
refusal and no outage, and is left to the handler of unexpected errors (a 500, logged)."""

from __future__ import annotations

from shortener.domain.analytics import AnalyticsRangeTooLong
from shortener.domain.errors import (
    BatchTooLarge,
    InvalidLinks,
    InvalidSignature,
    MessageConflict,
    ShortenLimitReached,
    TooManyLinks,
)
from shortener.domain.tenancy import DomainTaken, InvalidOrgId
from shortener.domain.webhooks import InvalidWebhookName, PrivateWebhookUrl, TooManyWebhooks
from shortener.http import errors
from shortener.http.problems import HTTPProblem
from shortener.http.schemas import InvalidLink

_CATALOGUE: dict[type[Exception], errors.ApiError] = {
    MessageConflict: errors.MESSAGE_CONFLICT,
    TooManyLinks: errors.TOO_MANY_LINKS,
    InvalidLinks: errors.INVALID_LINKS,
    BatchTooLarge: errors.BATCH_TOO_LARGE,
    InvalidSignature: errors.INVALID_TRACKED_LINK,
    ShortenLimitReached: errors.SHORTEN_LIMIT_REACHED,
    DomainTaken: errors.DOMAIN_TAKEN,
    InvalidOrgId: errors.ORG_ID_INVALID,
    InvalidWebhookName: errors.WEBHOOK_NAME_INVALID,
    PrivateWebhookUrl: errors.WEBHOOK_URL_PRIVATE,
    TooManyWebhooks: errors.TOO_MANY_WEBHOOKS,
    AnalyticsRangeTooLong: errors.ANALYTICS_RANGE,
}
CALLER_ERRORS = tuple(_CATALOGUE)


def caller_problem(error: Exception) -> HTTPProblem:
    """The problem of an error of the domain that the caller made (one of CALLER_ERRORS)."""
    if isinstance(error, ShortenLimitReached):
        return errors.SHORTEN_LIMIT_REACHED(reason=error, retry_after=error.retry_after_seconds)
    if isinstance(error, InvalidLinks):
        refused = errors.INVALID_LINKS(reason=error)
        refused.invalid_links = [InvalidLink(url=url, reason=why) for url, why in error.refused]
        return refused
    return _CATALOGUE[type(error)](reason=error)
