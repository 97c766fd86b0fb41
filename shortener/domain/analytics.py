"""Campaign analytics: an org's aggregate counts by hour or day, and its campaigns' totals.

The counts are written as interactions happen (see `store.analytics`) and hold nothing that
names a person, message or link, so they outlive the interactions: they are kept
`analytics_retention_days`. A query reads a few fields per day of its range and never scans
interactions.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from shortener.domain.limits import MAX_ANALYTICS_DAYS, MAX_ANALYTICS_HOURS
from shortener.model import BotReason
from shortener.store.analytics import (
    BOT_REASON_METRICS,
    DAY_SECONDS,
    HOUR_SECONDS,
    Hour,
    hour_of,
)
from shortener.store.keys import (
    ANALYTICS_METRICS,
    ANONYMOUS_CLICKS_METRIC,
    BOT_CLICKS_METRIC,
    CLICKS_METRIC,
    LINKS_METRIC,
    OPENS_METRIC,
    TAPS_METRIC,
    hour_field,
)
from shortener.store.store import Store


class Interval(enum.StrEnum):
    HOUR = "hour"
    DAY = "day"


class AnalyticsRangeTooLong(ValueError):
    """More buckets than one query may ask for."""

    def __init__(self, interval: Interval, most: int) -> None:
        super().__init__(f"{most} {interval.value}s")
        self.interval = interval
        self.most = most


class Bucket(BaseModel):
    start: datetime = Field(description="The bucket's start: on the hour, or 00:00 UTC.")
    clicks: int = Field(description="People's clicks on tracked links.")
    opens: int = Field(description="People's opens of e-mails.")
    bot_clicks: int = Field(description="Clicks by previews, crawlers and scanners.")
    anonymous_clicks: int = Field(
        description="Of `clicks`, those by people who had opted out: counted, not named."
    )
    taps: int = Field(description="People's taps on untracked short links.")


class ReasonTotals(BaseModel):
    reason: BotReason
    clicks: int = Field(description="Machines' clicks in the range judged so for this reason.")
    opens: int = Field(description="Machines' opens in the range judged so for this reason.")


class Series(BaseModel):
    interval: Interval
    series: list[Bucket]
    bot_reasons: list[ReasonTotals] = Field(
        description="Why the range's machine clicks and opens were not counted as people's: "
        "every reason, with zeros."
    )


class CampaignTotals(BaseModel):
    campaign: str
    clicks: int
    opens: int
    bot_clicks: int
    links: int = Field(description="Links issued for the campaign in the range.")


class Campaigns(BaseModel):
    campaigns: list[CampaignTotals]


_BUCKET_FIELDS = {
    CLICKS_METRIC: "clicks",
    OPENS_METRIC: "opens",
    BOT_CLICKS_METRIC: "bot_clicks",
    ANONYMOUS_CLICKS_METRIC: "anonymous_clicks",
    TAPS_METRIC: "taps",
}
_REASON_METRICS = tuple(
    metric for _, clicks, opens in BOT_REASON_METRICS for metric in (clicks, opens)
)
_HOURLY_METRICS = ANALYTICS_METRICS + _REASON_METRICS
_CAMPAIGN_FIELDS = {
    CLICKS_METRIC: "clicks",
    OPENS_METRIC: "opens",
    BOT_CLICKS_METRIC: "bot_clicks",
    LINKS_METRIC: "links",
}


def _floor(at: datetime, interval: Interval) -> int:
    seconds = int(at.timestamp())
    step = HOUR_SECONDS if interval is Interval.HOUR else DAY_SECONDS
    return seconds - seconds % step


class Analytics:
    def __init__(
        self, store: Store, *, retention_days: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.retention_days = retention_days
        self.clock = clock
        # The hour of the last second asked about: every tap asks, seconds change seldom.
        self._second = -1
        self._hour: Hour | None = None

    def now(self) -> Hour:
        """The hour counts go to now."""
        second = int(self.clock())
        if second != self._second or self._hour is None:
            self._second, self._hour = second, hour_of(second, self.retention_days)
        return self._hour

    def default_range(
        self, interval: Interval, start: datetime | None, end: datetime | None
    ) -> tuple[datetime, datetime]:
        """The range asked for, where missing ending now and lasting 24 hours by the hour, or
        30 days by the day."""
        end = end or datetime.fromtimestamp(self.clock(), UTC)
        span = timedelta(hours=24) if interval is Interval.HOUR else timedelta(days=30)
        return start or end - span, end

    async def series(
        self, org: str, start: datetime, end: datetime, interval: Interval, campaign: str | None
    ) -> Series:
        """Every bucket that starts in [start's bucket, end), zeros included."""
        # What this process still sums in memory goes first, so that it reads its own taps.
        await self.store.flush()
        step = HOUR_SECONDS if interval is Interval.HOUR else DAY_SECONDS
        starts = range(_floor(start, interval), int(end.timestamp()), step)
        most = MAX_ANALYTICS_HOURS if interval is Interval.HOUR else MAX_ANALYTICS_DAYS
        if len(starts) > most:
            raise AnalyticsRangeTooLong(interval, most)
        days = sorted({first // DAY_SECONDS for first in starts})
        fields = [
            hour_field(hour, metric, campaign) for hour in range(24) for metric in _HOURLY_METRICS
        ]
        counts = dict(zip(days, await self.store.hour_counts(org, days, fields), strict=True))
        width = len(_HOURLY_METRICS)
        buckets: list[Bucket] = []
        reasons = dict.fromkeys(_REASON_METRICS, 0)
        for first in starts:
            day, rest = divmod(first, DAY_SECONDS)
            hours = [rest // HOUR_SECONDS] if interval is Interval.HOUR else range(24)
            totals = dict.fromkeys(_HOURLY_METRICS, 0)
            for hour in hours:
                row = counts[day][hour * width : (hour + 1) * width]
                for metric, count in zip(_HOURLY_METRICS, row, strict=True):
                    totals[metric] += count
            for metric in _REASON_METRICS:
                reasons[metric] += totals[metric]
            buckets.append(
                Bucket(
                    start=datetime.fromtimestamp(first, UTC),
                    **{_BUCKET_FIELDS[metric]: totals[metric] for metric in ANALYTICS_METRICS},
                )
            )
        return Series(
            interval=interval,
            series=buckets,
            bot_reasons=[
                ReasonTotals(reason=reason, clicks=reasons[clicks], opens=reasons[opens])
                for reason, clicks, opens in BOT_REASON_METRICS
            ],
        )

    async def campaigns(self, org: str, start: datetime, end: datetime) -> Campaigns:
        """Each campaign's totals over the days from start's to the one before end, most
        clicked first."""
        first, last = _floor(start, Interval.DAY), int(end.timestamp())
        first_day, end_day = first // DAY_SECONDS, -(-last // DAY_SECONDS)
        if end_day - first_day > MAX_ANALYTICS_DAYS:
            raise AnalyticsRangeTooLong(Interval.DAY, MAX_ANALYTICS_DAYS)
        await self.store.flush()
        totals: dict[str, dict[str, int]] = {}
        for field, count in (await self.store.campaign_totals(org, first_day, end_day)).items():
            metric, _, campaign = field.partition(":")
            if metric in _CAMPAIGN_FIELDS:
                totals.setdefault(campaign, dict.fromkeys(_CAMPAIGN_FIELDS.values(), 0))[
                    _CAMPAIGN_FIELDS[metric]
                ] += count
        listed = [CampaignTotals(campaign=name, **counts) for name, counts in totals.items()]
        listed.sort(key=lambda totals: (-totals.clicks, -totals.opens, totals.campaign))
        return Campaigns(campaigns=listed)
