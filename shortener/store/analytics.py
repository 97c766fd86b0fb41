"""Aggregate counts by org, hour and campaign: where a count goes, and the ones summed in
memory before they are written (see `keys.analytics_hours_key` for the layout)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shortener.model import BotReason, InteractionType
from shortener.store.keys import (
    LINKS_METRIC,
    TAPS_METRIC,
    analytics_days_key,
    analytics_hours_key,
    analytics_weeks_key,
    bot_reason_metric,
    campaign_field,
    hour_field,
)
from shortener.store.records import BOT_REASON_CODES, INTERACTION_CODES

DAY_SECONDS = 86_400
HOUR_SECONDS = 3_600


WEEK_DAYS = 7
CLICK_TYPE = INTERACTION_CODES[InteractionType.CLICK]
OPEN_TYPE = INTERACTION_CODES[InteractionType.OPEN]

# Each reason, with the hourly metrics of machines' clicks and opens for it.
BOT_REASON_METRICS: tuple[tuple[BotReason, str, str], ...] = tuple(
    (reason, bot_reason_metric(CLICK_TYPE, code), bot_reason_metric(OPEN_TYPE, code))
    for reason, code in BOT_REASON_CODES.items()
)


@dataclass(frozen=True, slots=True)
class Hour:
    """An hour of a UTC day, and when the counts of its day, and of its week, are dropped."""

    day: int
    hour: int
    until_ms: int
    week_until_ms: int

    @property
    def week(self) -> int:
        return self.day // WEEK_DAYS


def hour_of(at: float, retention_days: int) -> Hour:
    day, rest = divmod(int(at), DAY_SECONDS)
    week_end = (day // WEEK_DAYS + 1) * WEEK_DAYS
    return Hour(
        day,
        rest // HOUR_SECONDS,
        (day + 1 + retention_days) * DAY_SECONDS * 1000,
        (week_end + retention_days) * DAY_SECONDS * 1000,
    )


def campaign_keys(org: str, first_day: int, end_day: int) -> list[str]:
    """The hashes that hold the campaign totals of the days from `first_day` up to `end_day`:
    a week's where the range covers all of it, else a day's."""
    keys: list[str] = []
    day = first_day
    while day < end_day:
        if day % WEEK_DAYS == 0 and day + WEEK_DAYS <= end_day:
            keys.append(analytics_weeks_key(org, day // WEEK_DAYS))
            day += WEEK_DAYS
        else:
            keys.append(analytics_days_key(org, day))
            day += 1
    return keys


class AnalyticsTally:
    """Counts that come too often to be written one by one, or from scripts that may not
    touch the org's keys (a tap's script works on its code's block): summed here, and added
    once a second with the expiry index (`Store`). A crash loses at most that second's."""

    def __init__(self) -> None:
        # (key, field) -> (count, until_ms)
        self.counts: dict[tuple[str, str], tuple[int, int]] = {}

    def _add(self, key: str, field: str, until_ms: int, count: int) -> None:
        before, _ = self.counts.get((key, field), (0, until_ms))
        self.counts[key, field] = (before + count, until_ms)

    def add_tap(self, org: str, at: Hour, campaign: str | None) -> None:
        """A person's tap on an untracked code."""
        hours = analytics_hours_key(org, at.day)
        self._add(hours, hour_field(at.hour, TAPS_METRIC), at.until_ms, 1)
        if campaign is not None:
            self._add(hours, hour_field(at.hour, TAPS_METRIC, campaign), at.until_ms, 1)

    def add_links(self, org: str, at: Hour, campaign: str, count: int) -> None:
        """Links issued for a campaign."""
        field = campaign_field(LINKS_METRIC, campaign)
        self._add(analytics_days_key(org, at.day), field, at.until_ms, count)
        self._add(analytics_weeks_key(org, at.week), field, at.week_until_ms, count)

    def take(self) -> dict[tuple[str, str], tuple[int, int]]:
        counts, self.counts = self.counts, {}
        return counts

    def put_back(self, counts: dict[tuple[str, str], tuple[int, int]]) -> None:
        """Counts a write failed to add: they go with the next one."""
        for (key, field), (count, until_ms) in counts.items():
            self._add(key, field, until_ms, count)


def interaction_counts(
    org: str, at: Hour, metrics: Sequence[str], campaign: str | None, hourly: str | None = None
) -> list[tuple[str, str, int]]:
    """Where one interaction is counted (key, field, expiry ms): by hour, and for its
    campaign by hour, day and week; the `hourly` metric by hour only."""
    hours = analytics_hours_key(org, at.day)
    counts: list[tuple[str, str, int]] = []
    if hourly is not None:
        counts.append((hours, hour_field(at.hour, hourly), at.until_ms))
        if campaign is not None:
            counts.append((hours, hour_field(at.hour, hourly, campaign), at.until_ms))
    for metric in metrics:
        counts.append((hours, hour_field(at.hour, metric), at.until_ms))
        if campaign is not None:
            field = campaign_field(metric, campaign)
            counts += [
                (hours, hour_field(at.hour, metric, campaign), at.until_ms),
                (analytics_days_key(org, at.day), field, at.until_ms),
                (analytics_weeks_key(org, at.week), field, at.week_until_ms),
            ]
    return counts
