"""Aggregate counts by org, hour and campaign: where a count goes, and the ones summed in
memory before they are written (see `keys.analytics_hours_key` for the layout)."""

from __future__ import annotations

from dataclasses import dataclass

from shortener.store.keys import (
    LINKS_METRIC,
    TAPS_METRIC,
    analytics_days_key,
    analytics_hours_key,
    campaign_field,
    hour_field,
)

DAY_SECONDS = 86_400
HOUR_SECONDS = 3_600


@dataclass(frozen=True, slots=True)
class Hour:
    """An hour of a UTC day, and when the counts of its day are dropped."""

    day: int
    hour: int
    until_ms: int


def hour_of(at: float, retention_days: int) -> Hour:
    day, rest = divmod(int(at), DAY_SECONDS)
    return Hour(day, rest // HOUR_SECONDS, (day + 1 + retention_days) * DAY_SECONDS * 1000)


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
        key = analytics_days_key(org, at.day)
        self._add(key, campaign_field(LINKS_METRIC, campaign), at.until_ms, count)

    def take(self) -> dict[tuple[str, str], tuple[int, int]]:
        counts, self.counts = self.counts, {}
        return counts

    def put_back(self, counts: dict[tuple[str, str], tuple[int, int]]) -> None:
        """Counts a write failed to add: they go with the next one."""
        for (key, field), (count, until_ms) in counts.items():
            self._add(key, field, until_ms, count)
