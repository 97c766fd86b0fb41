"""Short codes: an unforgeable, compact name for a serial number handed out by the store.

A code is the base-62 form of `serial * 2**TAG_BITS + tag`, where `tag` is a keyed BLAKE2b MAC
of the serial. Anyone may learn serials from codes they see, but without the key a made-up
code passes the tag check with a chance of 2**-35, so forged codes are refused before any
store lookup. A verified code that the store no longer holds was therefore really issued and
has expired. Serials come from a store counter in blocks, so issuing a code usually costs no
round trip, and a serial is never handed out twice.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TAG_BITS = 35
BLOCK_BITS = 9
BLOCK_SIZE = 1 << BLOCK_BITS
MIN_CODE_LENGTH = 6
MAX_CODE_LENGTH = 12

_TAG_MASK = (1 << TAG_BITS) - 1
_DIGIT = {char: value for value, char in enumerate(ALPHABET)}
_BASE = len(ALPHABET)
MAX_SERIAL = (_BASE**MAX_CODE_LENGTH >> TAG_BITS) - 1


class CodeCodec:
    """Turns serials into codes and back; `decode` refuses anything it did not make."""

    __slots__ = ("_mac",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the code secret must have 16 bytes or more")
        self._mac = hashlib.blake2b(key=secret[:64], digest_size=5)

    def _tag(self, serial: int) -> int:
        mac = self._mac.copy()
        mac.update(serial.to_bytes(8, "big"))
        return int.from_bytes(mac.digest(), "big") & _TAG_MASK

    def encode(self, serial: int) -> str:
        if not 1 <= serial <= MAX_SERIAL:
            raise ValueError(f"serial {serial} is outside 1..{MAX_SERIAL}")
        number = (serial << TAG_BITS) | self._tag(serial)
        digits = []
        while number:
            number, digit = divmod(number, _BASE)
            digits.append(ALPHABET[digit])
        return "".join(reversed(digits))

    def decode(self, code: str) -> int | None:
        """The serial of a code this codec issued, or None for anything else."""
        if not MIN_CODE_LENGTH <= len(code) <= MAX_CODE_LENGTH or code[0] == "0":
            return None
        number = 0
        for char in code:
            digit = _DIGIT.get(char)
            if digit is None:
                return None
            number = number * _BASE + digit
        return self._serial_of(number)

    def decode_leading(self, text: str) -> tuple[str, int] | None:
        """The longest code this codec issued that `text` starts with, and its serial.

        Phones take whatever follows a link up to the next space into it (`CODE.`, `CODE)`,
        `CODEパス`). Every code carries its own check, so the code is found without knowing
        where it was meant to end: each length from the longest candidate down costs one
        MAC, at most MAX_CODE_LENGTH - MIN_CODE_LENGTH + 1 of them, and a text that is a
        code itself is that code.
        """
        if not text or text[0] == "0":
            return None
        numbers = []
        number = 0
        for char in text[:MAX_CODE_LENGTH]:
            digit = _DIGIT.get(char)
            if digit is None:
                break
            number = number * _BASE + digit
            numbers.append(number)
        for length in range(len(numbers), MIN_CODE_LENGTH - 1, -1):
            serial = self._serial_of(numbers[length - 1])
            if serial is not None:
                return text[:length], serial
        return None

    def _serial_of(self, number: int) -> int | None:
        serial = number >> TAG_BITS
        # The tag is not secret once a code is public, so a plain comparison leaks nothing.
        if serial == 0 or self._tag(serial) != number & _TAG_MASK:
            return None
        return serial


def block_of(serial: int) -> int:
    return serial >> BLOCK_BITS


def slot_in_block(serial: int) -> int:
    return serial & (BLOCK_SIZE - 1)


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
