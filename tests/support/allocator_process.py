"""A serial allocator in a process of its own, for tests that race several processes."""

from __future__ import annotations

import asyncio
import random
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import redis.asyncio as aioredis

from shortener.store.serials import SerialAllocator
from shortener.store.store import Store

# Each process asks for this many batches of serials at once, of sizes below and above a block.
BATCHES = 20
BATCH_SIZES = (1, 3, 700)
START_SECONDS = 60


async def _allocate(redis_url: str, seed: int) -> list[int]:
    redis = aioredis.from_url(redis_url)
    try:
        allocator = SerialAllocator(Store(redis, timeout=5).reserve_blocks)
        sizes = random.Random(seed).choices(BATCH_SIZES, k=BATCHES)
        batches = await asyncio.gather(*(allocator.allocate(size) for size in sizes))
    finally:
        await redis.aclose()
    return [serial for batch in batches for serial in batch]


def allocate(redis_url: str, seed: int, start: Barrier, results: Queue[list[int]]) -> None:
    """Once every process is ready, take serials and put them on `results`."""
    start.wait(START_SECONDS)
    results.put(asyncio.run(_allocate(redis_url, seed)))
