"""A link's tap counts, against a real Redis: counters found by offset in their block's count
string, counts kept as hash fields before the counters still added to them, and a count moved
to the bots' where the person's tap was counted either way."""

from __future__ import annotations

import httpx
import redis.asyncio as aioredis

from shortener.domain.codes import CodeCodec
from shortener.store.keys import (
    BOTS_COUNTER,
    CODE_MAC_KEY,
    COUNTER_TYPE,
    PEOPLE_COUNTER,
    count_key,
    counter_offset,
    legacy_count_field,
    legacy_count_key,
    link_key,
)
from shortener.store.store import Store
from tests.support.apps import AUTH, PHONE, first_link, tap
from tests.support.corpus import PREVIEWS

I32_MAX = 2**31 - 1


async def counts(client: httpx.AsyncClient, code: str) -> tuple[int, int]:
    info = (await client.get(f"/v1/links/{code}", headers=AUTH)).json()
    return info["clicks"], info["bot_clicks"]


async def serial_of(redis: aioredis.Redis, code: str) -> int:
    serial = CodeCodec(await redis.get(CODE_MAC_KEY)).decode(code)
    assert serial is not None
    return serial


async def test_taps_are_counted_per_link_by_who_tapped(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    one = await first_link(client, "https://shop.example.com/1")
    two = await first_link(client, "https://shop.example.com/2")
    for _ in range(3):
        assert (await tap(client, one["short_url"], PHONE)).status_code == 302
    assert (await tap(client, one["short_url"], PREVIEWS[0])).status_code == 302
    assert (await client.head(f"/{one['code']}")).status_code == 302
    assert (await tap(client, two["short_url"], PHONE)).status_code == 302
    assert await counts(client, one["code"]) == (3, 1)
    assert await counts(client, two["code"]) == (1, 0)
    # The count string lives as long as its block's links.
    serial = await serial_of(redis, one["code"])
    links_left = await redis.pttl(link_key(serial))
    assert 0 < await redis.pttl(count_key(serial)) <= links_left


async def test_counts_kept_as_hash_fields_are_added_and_moved_alike(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    link = await first_link(client, "https://shop.example.com/old")
    serial = await serial_of(redis, link["code"])
    await redis.hset(
        legacy_count_key(serial),
        mapping={
            legacy_count_field(serial, PEOPLE_COUNTER): 5,
            legacy_count_field(serial, BOTS_COUNTER): 2,
        },
    )
    assert await counts(client, link["code"]) == (5, 2)
    assert (await tap(client, link["short_url"], PHONE)).status_code == 302
    assert await counts(client, link["code"]) == (6, 2)
    # A tap counted in the old fields, judged a machine's when it settled: the people's
    # counter goes below zero, and the sum is right.
    store = Store(redis, timeout=2)
    await store.move_to_bots([serial, serial])
    assert await counts(client, link["code"]) == (4, 4)


async def test_a_counter_saturates_and_the_tap_still_redirects(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    link = await first_link(client, "https://shop.example.com/busy")
    serial = await serial_of(redis, link["code"])
    people_at = counter_offset(serial, PEOPLE_COUNTER)
    await redis.execute_command(
        "BITFIELD", count_key(serial), "SET", COUNTER_TYPE, people_at, I32_MAX
    )
    assert (await tap(client, link["short_url"], PHONE)).status_code == 302
    assert await counts(client, link["code"]) == (I32_MAX, 0)
    # A count string made by a move alone still expires with its links.
    other = await first_link(client, "https://shop.example.com/moved")
    moved = await serial_of(redis, other["code"])
    await redis.delete(count_key(moved))
    await Store(redis, timeout=2).move_to_bots([moved])
    links_left = await redis.pttl(link_key(moved))
    assert 0 < await redis.pttl(count_key(moved)) <= links_left
