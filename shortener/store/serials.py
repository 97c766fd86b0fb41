"""Serial numbers in blocks: the store's counter hands out blocks, a process the serials in them.

A block's links share a few Redis hashes, a part of the block each (see `keys.py`), and a block
is only ever issued by one process, so the block and part a serial falls in are part of the
storage layout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

BLOCK_BITS = 9
BLOCK_SIZE = 1 << BLOCK_BITS
# Links per hash: finding a field of a small hash scans it, so a hash of an eighth of a block
# costs an eighth of the scan of a whole one, for a couple of bytes more per link.
PART_BITS = 6
PART_SIZE = 1 << PART_BITS


def block_of(serial: int) -> int:
    return serial >> BLOCK_BITS


def slot_in_block(serial: int) -> int:
    return serial & (BLOCK_SIZE - 1)


def part_of_block(serial: int) -> int:
    """Which hash of its block holds the link `serial`."""
    return slot_in_block(serial) >> PART_BITS


def slot_in_part(serial: int) -> int:
    return serial & (PART_SIZE - 1)


class SerialAllocator:
    """Hands out serials from blocks reserved in the store, one reservation per many codes.

    `reserve(n)` must return the first of `n` consecutive, never-before-reserved block numbers.
    A block reserved but not used up when the process stops is skipped for good: that costs
    serial space, never a reuse.
    """

    __slots__ = ("_lock", "_next", "_reserve", "_stop")

    def __init__(self, reserve: Callable[[int], Awaitable[int]]) -> None:
        self._reserve = reserve
        self._next = 0
        self._stop = 0
        self._lock = asyncio.Lock()

    def end_block(self) -> None:
        """Take the next serials from a new block: what is left of this one is skipped."""
        self._next = self._stop

    async def allocate(self, count: int) -> list[int]:
        serials: list[int] = []
        while len(serials) < count:
            if self._next >= self._stop:
                async with self._lock:
                    # Another task may have refilled while this one waited for the lock.
                    if self._next >= self._stop:
                        needed = count - len(serials)
                        blocks = (needed + BLOCK_SIZE - 1) // BLOCK_SIZE
                        first = await self._reserve(blocks)
                        self._next = first << BLOCK_BITS
                        self._stop = (first + blocks) << BLOCK_BITS
                continue
            take = min(count - len(serials), self._stop - self._next)
            serials.extend(range(self._next, self._next + take))
            self._next += take
        return serials
