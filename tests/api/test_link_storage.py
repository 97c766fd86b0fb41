"""Where links are kept, against a real Redis: a hash per part of a block, never more links in
one than a part holds (finding a link scans its hash). And links kept as they were before
blocks were split in parts, one hash for the whole block (`l:{BLOCK}`) and counts at the
block's offsets (`n:{BLOCK}`): taps find and count them, ops read them, and takedowns,
erasure and settling change them in place, without writing anything in the parts' keys."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import redis.asyncio as aioredis

from shortener.domain.codes import CodeCodec
from shortener.store.keys import (
    BOTS_COUNTER,
    CODE_MAC_KEY,
    COUNTER_TYPE,
    PEOPLE_COUNTER,
    block_count_key,
    block_counter_offset,
    block_link_key,
    count_key,
    link_field,
    link_key,
)
from shortener.store.serials import PART_SIZE
from shortener.store.store import Store
from tests.support.apps import AUTH, CONSENTED, PHONE, interactions, link_fields, shorten, tap
from tests.support.corpus import PREVIEWS


async def kept_whole(redis: aioredis.Redis, code: str) -> int:
    """Move the part hash holding the link `code` (and its neighbours, unless moved before)
    into its block's hash, as earlier versions kept it; the link's serial."""
    serial = CodeCodec(await redis.get(CODE_MAC_KEY)).decode(code)
    assert serial is not None
    part, block = link_key(serial), block_link_key(serial)
    if fields := await redis.hgetall(part):
        left = await redis.pttl(part)
        await redis.delete(part, count_key(serial))
        await redis.hset(block, mapping=fields)
        await redis.pexpire(block, left)
    assert await redis.hexists(block, link_field(serial))
    return serial


async def block_counts(redis: aioredis.Redis, serial: int) -> list[int]:
    counts: list[int] = await redis.execute_command(
        "BITFIELD",
        block_count_key(serial),
        *("GET", COUNTER_TYPE, block_counter_offset(serial, PEOPLE_COUNTER)),
        *("GET", COUNTER_TYPE, block_counter_offset(serial, BOTS_COUNTER)),
    )
    return counts


async def link_info(client: httpx.AsyncClient, code: str) -> dict[str, object]:
    response = await client.get(f"/v1/links/{code}", headers=AUTH)
    assert response.status_code == 200, response.text
    info: dict[str, object] = response.json()
    return info


async def test_a_hash_holds_the_links_of_one_part_of_a_block(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    body = " ".join(f"https://shop.example.com/{n}" for n in range(40))
    for _ in range(10):
        await shorten(client, body)
    assert len(await link_fields(redis)) == 400
    keys = await redis.keys("l:*")
    assert len(keys) >= 400 // PART_SIZE
    for key in keys:
        slots = [field for field in await redis.hkeys(key) if not field.startswith(b"base")]
        assert 0 < len(slots) <= PART_SIZE, key
        assert await redis.object("encoding", key) in (b"ziplist", b"listpack"), key


async def test_a_link_of_a_whole_block_hash_is_tapped_counted_and_read(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    sent = await shorten(
        client,
        "Sale https://shop.example.com/a and https://shop.example.com/b",
        recipient=CONSENTED,
    )
    tracked, untracked = sent["links"][0], sent["links"][1]
    await shorten(client, "Plain https://shop.example.com/c")
    plain = (await shorten(client, "Plain https://shop.example.com/d"))["links"][0]
    serial = await kept_whole(redis, plain["code"])
    tracked_serial = await kept_whole(redis, tracked["code"])
    assert untracked["code"] != tracked["code"]

    answer = await tap(client, plain["short_url"])
    assert answer.status_code == 302 and answer.headers["location"] == "https://shop.example.com/d"
    assert (await tap(client, plain["short_url"], PREVIEWS[0])).status_code == 302
    assert (await tap(client, tracked["short_url"])).status_code == 302
    assert await block_counts(redis, serial) == [1, 1]
    assert await block_counts(redis, tracked_serial) == [1, 0]
    (click,) = await interactions(client)
    assert click["code"] == tracked["code"] and click["contact_id"] == CONSENTED["contact_id"]
    # The counts live as long as the block's links, and nothing was written in the parts' keys.
    links_left = await redis.pttl(block_link_key(serial))
    assert 0 < await redis.pttl(block_count_key(serial)) <= links_left
    assert not await redis.exists(link_key(serial), count_key(serial))

    info = await link_info(client, plain["code"])
    assert info["status"] == "active" and info["url"] == "https://shop.example.com/d"
    assert (info["clicks"], info["bot_clicks"]) == (1, 1)
    assert info["short_url"] == plain["short_url"]

    # Judged a machine's when it settled: the count moves within the block's counters.
    await Store(redis, timeout=2).move_to_bots([serial])
    assert await block_counts(redis, serial) == [0, 2]
    assert not await redis.exists(count_key(serial))


async def test_a_link_of_a_whole_block_hash_is_taken_down_and_erased(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    sent = await shorten(client, "Sale https://shop.example.com/e", recipient=CONSENTED)
    link = sent["links"][0]
    serial = await kept_whole(redis, link["code"])
    contact = CONSENTED["contact_id"]
    assert contact.encode() in (await redis.hget(block_link_key(serial), link_field(serial)) or b"")

    erased = await client.delete(f"/v1/contacts/{quote(contact, safe='')}", headers=AUTH)
    assert erased.status_code == 200, erased.text
    assert erased.json()["links_erased"] == 1
    record = await redis.hget(block_link_key(serial), link_field(serial))
    assert record is not None and contact.encode() not in record
    assert (await tap(client, link["short_url"])).status_code == 302

    down = await client.request(
        "DELETE", f"/v1/links/{link['code']}", json={"reason": "reported"}, headers=AUTH
    )
    assert down.status_code == 204, down.text
    assert (await tap(client, link["short_url"], PHONE)).status_code == 410
    info = await link_info(client, link["code"])
    assert info["status"] == "disabled" and info["disabled_reason"] == "reported"
    assert not await redis.exists(link_key(serial))
