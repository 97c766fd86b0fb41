"""Campaign analytics: aggregate counts by hour, day and campaign, against a real Redis.

Across hour and day boundaries the recorder runs on a clock the test moves; through the API
the counts come from real taps, clicks and opens of shortened messages."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from shortener.domain.analytics import Analytics, Interval
from shortener.domain.codes import CodeCodec
from shortener.domain.interactions import ClickRecorder
from shortener.domain.limits import MAX_ANALYTICS_DAYS, MAX_ANALYTICS_HOURS
from shortener.domain.settling import Rules, Settler
from shortener.model import InteractionType, LinkKind, StoredLink, Visitor
from shortener.store.analytics import campaign_keys
from shortener.store.keys import analytics_days_key, analytics_weeks_key, interactions_key
from shortener.store.store import Store
from tests.support.agents import PREVIEWS
from tests.support.apps import AUTH, CONSENTED, OTHER_AUTH, PHONE, mail, shorten, tap

ORG = "org-t"
# 22:30 UTC on the last day of February: the clock crosses an hour and a day (and a month).
START = datetime(2027, 2, 28, 22, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
# Hang guard only: how long a test waits for the once-a-second write of tallied counts.
TALLY_WAIT_SECONDS = 10.0


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at.timestamp()


def link(kind: LinkKind, contact: str | None, campaign: str | None) -> StoredLink:
    now = int(START.timestamp())
    return StoredLink(
        kind, ORG, "https://shop.example.com/", now, now + 86_400 * 30, contact, "m-1", campaign
    )


RULES = Rules(
    settle_ms=10_000,
    scanner_window_ms=120_000,
    too_soon_ms=0,
    keep_ms=86_400_000,
    retention_days=400,
)


@pytest.fixture
async def recorder(redis: aioredis.Redis) -> tuple[ClickRecorder, Analytics, Clock, Store]:
    store = Store(redis, timeout=2)
    clock = Clock(START)
    analytics = Analytics(store, retention_days=400, clock=clock)
    recorder = ClickRecorder(
        store,
        window_seconds=86_400,
        retain_seconds=86_400,
        analytics=analytics,
        rules=RULES,
        clock=clock,
    )
    return recorder, analytics, clock, store


class Entries:
    """Interactions written straight into the org's stream at the times a test names (the
    service's own get Redis' time), then settled as the service settles them."""

    def __init__(self, redis: aioredis.Redis, store: Store) -> None:
        self.redis = redis
        self.store = store
        self.sequence = 0

    async def add(
        self,
        at: datetime,
        kind: str = "c",
        *,
        bot: bool = False,
        reason: str = "u",
        contact: str | None = "c-1",
        campaign: str | None = "spring",
    ) -> None:
        fields = {"t": kind, "u": "-" if kind == "o" else "https://shop.example.com/", "b": "0"}
        if bot:
            fields |= {"b": "1", "r": reason}
        if campaign is not None:
            fields["g"] = campaign
        if contact is not None:
            fields |= {"l": "AbCdEfGh", "k": "AbCdEfGh", "m": "m-1", "p": contact}
        self.sequence += 1
        entry = f"{int(at.timestamp() * 1000)}-{self.sequence}"
        await self.redis.xadd(interactions_key(ORG), fields, id=entry)  # type: ignore[arg-type]

    async def settle(self) -> None:
        settler = Settler(self.store, CodeCodec(b"k" * 32), RULES, clock=lambda: 4e9)
        while await settler.settle(ORG):
            pass


def row(bucket: Any) -> tuple[int, int, int, int, int]:
    return (bucket.clicks, bucket.opens, bucket.bot_clicks, bucket.anonymous_clicks, bucket.taps)


async def test_counts_by_hour_and_day_match_what_happened_across_boundaries(
    recorder, redis
) -> None:
    recorder_, analytics, clock, store = recorder
    entries = Entries(redis, store)
    plain = link(LinkKind.SHORT, None, None)
    plain_campaign = link(LinkKind.SHORT, None, "spring")

    async def tap(at: datetime, item: StoredLink, visitor: Visitor) -> None:
        clock.at = at
        await recorder_.record(item, InteractionType.CLICK, "AbCdEfGh", visitor)

    # 22:xx: two people's clicks, one of them anonymous (it names no contact), and a bot's.
    await entries.add(START)
    await entries.add(START, contact=None)
    await entries.add(START, bot=True)
    # 23:59:59: an open by a person, one by a bot (counted nowhere), untracked taps by a
    # person (one of a campaign), a bot and a HEAD probe (counted nowhere), and a click of
    # another campaign.
    last_second = START.replace(hour=23, minute=59, second=59)
    await entries.add(last_second, "o")
    await entries.add(last_second, "o", bot=True)
    await entries.add(last_second, "o", bot=True, reason="p", campaign=None)
    await tap(last_second, plain, Visitor.PERSON)
    await tap(last_second, plain_campaign, Visitor.PERSON)
    await tap(last_second, plain, Visitor.BOT)
    await tap(last_second, plain, Visitor.PROBE)
    await entries.add(last_second, contact="c-2", campaign="autumn")
    # 00:00:00 the next day, in March: a click and a tap.
    await entries.add(START + timedelta(hours=1, minutes=30))
    await tap(START + timedelta(hours=1, minutes=30), plain, Visitor.PERSON)
    await entries.settle()
    await store.flush()

    hourly = await analytics.series(
        ORG, START - HOUR, START + 3 * HOUR, Interval.HOUR, campaign=None
    )
    assert [bucket.start for bucket in hourly.series] == [
        datetime(2027, 2, 28, 21, tzinfo=UTC),
        datetime(2027, 2, 28, 22, tzinfo=UTC),
        datetime(2027, 2, 28, 23, tzinfo=UTC),
        datetime(2027, 3, 1, 0, tzinfo=UTC),
        datetime(2027, 3, 1, 1, tzinfo=UTC),
    ]
    assert [row(bucket) for bucket in hourly.series] == [
        (0, 0, 0, 0, 0),
        (2, 0, 1, 1, 0),
        (1, 1, 0, 0, 2),
        (1, 0, 0, 0, 1),
        (0, 0, 0, 0, 0),
    ]
    daily = await analytics.series(
        ORG, START - timedelta(days=1), START + timedelta(days=2), Interval.DAY, campaign=None
    )
    assert [(bucket.start.day, row(bucket)) for bucket in daily.series] == [
        (27, (0, 0, 0, 0, 0)),
        (28, (3, 1, 1, 1, 2)),
        (1, (1, 0, 0, 0, 1)),
        (2, (0, 0, 0, 0, 0)),
    ]
    # Why machines' clicks and opens were not counted: each reason, zeros too.
    assert [(r.reason, r.clicks, r.opens) for r in daily.bot_reasons] == [
        ("user_agent", 1, 1),
        ("prefetch", 0, 1),
        ("honeypot", 0, 0),
        ("burst", 0, 0),
        ("too_soon", 0, 0),
    ]
    assert daily.bot_reasons == hourly.bot_reasons
    # One campaign: the anonymous click still counts for it.
    spring = await analytics.series(ORG, START, START + 2 * HOUR, Interval.HOUR, campaign="spring")
    assert [row(bucket) for bucket in spring.series] == [
        (2, 0, 1, 1, 0),
        (0, 1, 0, 0, 1),
        (1, 0, 0, 0, 0),
    ]
    assert [(r.clicks, r.opens) for r in spring.bot_reasons][:2] == [(1, 1), (0, 0)]
    listed = await analytics.campaigns(ORG, START - timedelta(days=1), START + timedelta(days=1))
    assert [(c.campaign, c.clicks, c.opens, c.bot_clicks) for c in listed.campaigns] == [
        ("spring", 3, 1, 1),
        ("autumn", 1, 0, 0),
    ]
    # Another org sees none of it.
    on_the_hour = START.replace(minute=0)
    elsewhere = await analytics.series(
        "org-x", on_the_hour, on_the_hour + HOUR, Interval.HOUR, None
    )
    assert [row(bucket) for bucket in elsewhere.series] == [(0, 0, 0, 0, 0)]


async def test_aggregates_name_no_contact_message_or_link(recorder, redis) -> None:
    recorder_, _, _, store = recorder
    entries = Entries(redis, store)
    for contact in ("c-secret-1", "c-secret-2"):
        await entries.add(START, contact=contact)
    await recorder_.record(
        link(LinkKind.SHORT, None, "spring"), InteractionType.CLICK, "CoDe1234", Visitor.PERSON
    )
    await entries.settle()
    await store.flush()
    keys = [key.decode() async for key in redis.scan_iter(match="{o:org-t}:a[hdw]:*")]
    assert keys
    for key in keys:
        assert re.fullmatch(r"\{o:org-t\}:a[hdw]:\d+", key), key
        for field in await redis.hkeys(key):
            # An hour, a metric and the campaign: nothing else.
            assert re.fullmatch(rb"(\d+:)?[cobatl](:spring)?", field), field


async def test_aggregates_are_dropped_after_the_retention(recorder, redis) -> None:
    recorder_, _, _, store = recorder
    entries = Entries(redis, store)
    await entries.add(START)
    await recorder_.record(
        link(LinkKind.SHORT, None, "spring"), InteractionType.CLICK, "AbCdEfGh", Visitor.PERSON
    )
    await entries.settle()
    await store.flush()
    day_end = datetime(2027, 3, 1, tzinfo=UTC)
    day = int(START.timestamp()) // 86_400
    week_end = datetime.fromtimestamp((day // 7 + 1) * 7 * 86_400, UTC)
    ends = {"ah": day_end, "ad": day_end, "aw": week_end}
    keys = [key.decode() async for key in redis.scan_iter(match="{o:org-t}:a[hdw]:*")]
    assert sorted(key.split(":")[2] for key in keys) == ["ad", "ah", "aw"]
    for key in keys:
        wanted = (ends[key.split(":")[2]] + timedelta(days=400)).timestamp()
        # The Redis of the tests has no PEXPIRETIME: the time left, from now.
        expires = time.time() + await redis.pttl(key) / 1000
        assert abs(expires - wanted) < 5, key


async def wait_for_counts(client: httpx.AsyncClient, params: dict[str, str], wanted: Any) -> Any:
    """The answer once it is `wanted`: taps are tallied and written once a second."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TALLY_WAIT_SECONDS
    while True:
        answer = await client.get("/v1/analytics", params=params, headers=AUTH)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if wanted(body) or loop.time() > deadline:
            return body
        await asyncio.sleep(0.1)


async def test_counts_of_real_taps_clicks_and_opens(client: httpx.AsyncClient) -> None:
    sms = await shorten(
        client,
        body="A https://shop.example.com/a and B https://shop.example.com/b",
        recipient=CONSENTED,
        non_trackable=["https://shop.example.com/b"],
        campaign="launch",
    )
    tracked, untracked = sms["links"]
    _, pixel = await mail(client, campaign="launch")
    assert (await tap(client, tracked["short_url"])).status_code == 302
    assert (await tap(client, tracked["short_url"], PREVIEWS[0])).status_code == 302
    assert (await tap(client, untracked["short_url"])).status_code == 302
    assert (await tap(client, untracked["short_url"], PREVIEWS[0])).status_code == 302
    opened = await client.get(pixel, headers={"user-agent": PHONE})
    assert opened.status_code == 200

    now = datetime.now(UTC)
    params = {
        "from": (now - HOUR).isoformat(),
        "to": (now + HOUR).isoformat(),
        "interval": "hour",
    }
    totals = ("clicks", "opens", "bot_clicks", "anonymous_clicks", "taps")

    def summed(body: Any) -> tuple[int, ...]:
        return tuple(sum(bucket[name] for bucket in body["series"]) for name in totals)

    body = await wait_for_counts(client, params, lambda body: summed(body) == (1, 1, 1, 0, 1))
    assert body["interval"] == "hour"
    assert len(body["series"]) in (2, 3)
    assert summed(body) == (1, 1, 1, 0, 1)
    body = await wait_for_counts(
        client, {**params, "campaign": "launch"}, lambda body: summed(body)[4] == 1
    )
    assert summed(body) == (1, 1, 1, 0, 1)
    body = await wait_for_counts(client, {**params, "campaign": "other"}, lambda body: True)
    assert summed(body) == (0, 0, 0, 0, 0)

    listed = await client.get("/v1/analytics/campaigns", headers=AUTH)
    assert listed.status_code == 200, listed.text
    # Links issued: both of the text message and the e-mail's one (not its pixel).
    assert listed.json() == {
        "campaigns": [{"campaign": "launch", "clicks": 1, "opens": 1, "bot_clicks": 1, "links": 3}]
    }
    other = await client.get("/v1/analytics/campaigns", headers=OTHER_AUTH)
    assert other.json() == {"campaigns": []}


async def test_defaults_cover_the_last_day_or_month(client: httpx.AsyncClient) -> None:
    hourly = await client.get("/v1/analytics", params={"interval": "hour"}, headers=AUTH)
    assert hourly.status_code == 200
    assert len(hourly.json()["series"]) in (24, 25)
    daily = await client.get("/v1/analytics", headers=AUTH)
    assert daily.json()["interval"] == "day"
    assert len(daily.json()["series"]) in (30, 31)
    starts = [datetime.fromisoformat(bucket["start"]) for bucket in daily.json()["series"]]
    assert all(start.hour == 0 and start.minute == 0 for start in starts)
    assert starts == sorted(starts)


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"interval": "week"}, "interval must be hour or day"),
        ({"interval": "HOUR"}, "interval must be hour or day"),
        ({"from": "yesterday"}, "from must be an ISO 8601 date or time"),
        ({"from": "２０２６-01-01"}, "from must be an ISO 8601 date or time"),
        ({"from": "٢٠٢٦-01-01"}, "from must be an ISO 8601 date or time"),
        ({"to": "2026-13-01"}, "to must be an ISO 8601 date or time"),
        ({"to": "9" * 5000}, "to must be an ISO 8601 date or time"),
        ({"to": "99999-01-01"}, "to must be an ISO 8601 date or time"),
        ({"from": "2026-01-02", "to": "2026-01-01"}, "from must be before to"),
        ({"from": "2026-01-01", "to": "2026-01-01"}, "from must be before to"),
        (
            {"from": "2026-01-01", "to": "2026-03-01", "interval": "hour"},
            f"from and to may span at most {MAX_ANALYTICS_HOURS} hours",
        ),
        (
            {"from": "2000-01-01", "to": "2026-03-01"},
            f"from and to may span at most {MAX_ANALYTICS_DAYS} days",
        ),
        ({"campaign": "c" * 129}, "campaign must be at most 128 characters"),
    ],
)
async def test_bad_queries_get_a_clear_400(
    client: httpx.AsyncClient, params: dict[str, str], detail: str
) -> None:
    answer = await client.get("/v1/analytics", params=params, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == detail


async def test_campaign_lists_refuse_bad_ranges_and_need_a_key(client: httpx.AsyncClient) -> None:
    answer = await client.get(
        "/v1/analytics/campaigns", params={"from": "1900-01-01", "to": "2026-01-01"}, headers=AUTH
    )
    assert answer.status_code == 400
    assert answer.json()["detail"] == f"from and to may span at most {MAX_ANALYTICS_DAYS} days"
    for path in ("/v1/analytics", "/v1/analytics/campaigns"):
        assert (await client.get(path)).status_code == 401


async def test_a_time_with_an_offset_is_read_in_utc(client: httpx.AsyncClient) -> None:
    answer = await client.get(
        "/v1/analytics",
        params={"from": "2026-01-01T02:00:00+02:00", "to": "2026-01-01T03:00:00+02:00"},
        headers=AUTH,
    )
    assert answer.status_code == 200
    assert [bucket["start"] for bucket in answer.json()["series"]] == ["2026-01-01T00:00:00Z"]


async def test_campaign_totals_over_any_days_add_weeks_and_days_alike(recorder, redis) -> None:
    # A click of campaign `spring` on each of 20 days in a row, so that every range of days
    # holds as many clicks as days: ranges cut weeks anywhere, and cover whole ones.
    _, analytics, _, store = recorder
    entries = Entries(redis, store)
    first = START.replace(hour=12, minute=0)
    for offset in range(20):
        await entries.add(first + timedelta(days=offset))
    await entries.settle()
    for start in range(0, 20, 3):
        for days in (1, 6, 7, 8, 13, 14, 15, 20 - start):
            end = min(start + days, 20)
            listed = await analytics.campaigns(
                ORG, first + timedelta(days=start), first + timedelta(days=end)
            )
            # The range ends at noon of its last day: that day counts whole.
            assert [(c.campaign, c.clicks) for c in listed.campaigns] == [
                ("spring", end - start + (1 if end < 20 else 0))
            ], (start, days)


def test_a_range_reads_whole_weeks_where_it_covers_them() -> None:
    first_monday_ish = 7 * 3000
    keys = campaign_keys("o", first_monday_ish - 2, first_monday_ish + 16)
    assert keys == [
        analytics_days_key("o", first_monday_ish - 2),
        analytics_days_key("o", first_monday_ish - 1),
        analytics_weeks_key("o", 3000),
        analytics_weeks_key("o", 3001),
        analytics_days_key("o", first_monday_ish + 14),
        analytics_days_key("o", first_monday_ish + 15),
    ]
    # A month reads at most four weeks and a dozen days.
    assert all(len(campaign_keys("o", day, day + 30)) <= 16 for day in range(0, 14))
    assert campaign_keys("o", 5, 5) == []
