"""Short codes: an unforgeable, compact name for a serial number handed out by the store.

A code is the base-62 form of `permuted * 2**TAG_BITS + tag`. `permuted` is the serial passed
through a keyed permutation that stays among the serials whose codes have the same length, so
a code tells neither how many codes the service issued nor in which order, and its length
stays what the serial alone would give it. `tag` is a keyed BLAKE2b MAC of `permuted`: without
the key a made-up code passes the tag check with a chance of 2**-35, so forged codes are
refused before the permutation is undone and before any store lookup. A verified code that the
store no longer holds was therefore really issued and has expired. Serials come from a store
counter in blocks (`store/serials.py`), so issuing a code usually costs no round trip, and a
serial is never handed out twice.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
from array import array

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TAG_BITS = 35
MIN_CODE_LENGTH = 6
MAX_CODE_LENGTH = 12
# As many Feistel rounds as the standard format-preserving ciphers use on small domains
# (FF3-1: 8, FF1: 10); fewer leave a band's few thousand serials open to known attacks.
PERMUTATION_ROUNDS = 8

_TAG_MASK = (1 << TAG_BITS) - 1
_DIGIT = {char: value for value, char in enumerate(ALPHABET)}
_BASE = len(ALPHABET)
MAX_SERIAL = (_BASE**MAX_CODE_LENGTH >> TAG_BITS) - 1


def _length_bands() -> tuple[tuple[int, int, int], ...]:
    starts = [_BASE**length >> TAG_BITS for length in range(MIN_CODE_LENGTH, MAX_CODE_LENGTH + 1)]
    return tuple(
        (MIN_CODE_LENGTH + 1 + index, first, following - 1)
        for index, (first, following) in enumerate(itertools.pairwise(starts))
    )


# (length, first serial, last serial): every serial of a band makes a code of that length,
# except that the first one's code may be a character shorter (its number may fall just
# below a power of 62). The permutation keeps each serial within its band.
SERIAL_BANDS = _length_bands()
_BAND_LASTS = tuple(last for _, _, last in SERIAL_BANDS)


def _prf(mac: hashlib.blake2b | hashlib.blake2s, value: int) -> int:
    keyed = mac.copy()
    keyed.update(value.to_bytes(8, "big"))
    return int.from_bytes(keyed.digest(), "big")


_UNKNOWN = 0xFFFFFFFF


class _BandPermutation:
    """A keyed permutation of the serials `first..last`.

    The offset from `first` is written as two digits in a mixed radix, `wide * narrow` just
    at or above the band's size, and a Feistel network adds a keyed function of one digit to
    the other, round by round. The rare result past the band is permuted again (cycle
    walking); with `narrow` ≈ √size that happens with a chance below 1/√size.

    A digit takes at most about 300,000 values, so each round's function is remembered in a
    table once computed: a permutation then costs table lookups instead of a BLAKE2s call
    per round, which matters on the tap path. The tables of a band are made on its first use;
    those of the last band take about 10 MB.
    """

    __slots__ = ("_first", "_macs", "_narrow", "_size", "_tables", "_wide")

    def __init__(self, key: bytes, band: int, first: int, last: int) -> None:
        self._first = first
        self._size = last - first + 1
        self._narrow = math.isqrt(self._size - 1) + 1
        self._wide = -(-self._size // self._narrow)
        self._macs = tuple(
            hashlib.blake2s(key=key, digest_size=8, salt=bytes((band, step)))
            for step in range(PERMUTATION_ROUNDS)
        )
        self._tables: tuple[array[int], ...] = ()

    def _round_tables(self) -> tuple[array[int], ...]:
        # Even rounds map the narrow digit to an addend of the wide one, odd rounds the other
        # way round.
        if not self._tables:
            self._tables = tuple(
                array("I", [_UNKNOWN]) * (self._narrow if step % 2 == 0 else self._wide)
                for step in range(PERMUTATION_ROUNDS)
            )
        return self._tables

    def _addend(self, step: int, digit: int) -> int:
        modulus = self._wide if step % 2 == 0 else self._narrow
        addend = _prf(self._macs[step], digit) % modulus
        self._tables[step][digit] = addend
        return addend

    def forward(self, serial: int) -> int:
        tables = self._round_tables()
        narrow, wide = self._narrow, self._wide
        offset = serial - self._first
        while True:
            high, low = divmod(offset, narrow)
            for step in range(0, PERMUTATION_ROUNDS, 2):
                addend = tables[step][low]
                if addend == _UNKNOWN:
                    addend = self._addend(step, low)
                high = (high + addend) % wide
                addend = tables[step + 1][high]
                if addend == _UNKNOWN:
                    addend = self._addend(step + 1, high)
                low = (low + addend) % narrow
            offset = high * narrow + low
            if offset < self._size:
                return self._first + offset

    def backward(self, permuted: int) -> int:
        tables = self._round_tables()
        narrow, wide = self._narrow, self._wide
        offset = permuted - self._first
        while True:
            high, low = divmod(offset, narrow)
            for step in range(PERMUTATION_ROUNDS - 2, -1, -2):
                addend = tables[step + 1][high]
                if addend == _UNKNOWN:
                    addend = self._addend(step + 1, high)
                low = (low - addend) % narrow
                addend = tables[step][low]
                if addend == _UNKNOWN:
                    addend = self._addend(step, low)
                high = (high - addend) % wide
            offset = high * narrow + low
            if offset < self._size:
                return self._first + offset


class CodeCodec:
    """Turns serials into codes and back; `decode` refuses anything it did not make."""

    __slots__ = ("_bands", "_mac", "_plain_mac")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the code secret must have 16 bytes or more")
        key = secret[:64]
        self._mac = hashlib.blake2b(key=key, digest_size=5, person=b"code-tag")
        # Codes made before serials were permuted carry this MAC of the plain serial. They
        # are still in people's messages, so they keep resolving; none is made any more.
        self._plain_mac = hashlib.blake2b(key=key, digest_size=5)
        round_key = hashlib.blake2b(key=key, digest_size=32, person=b"code-permutation").digest()
        self._bands = tuple(
            _BandPermutation(round_key, band, first, last)
            for band, (_, first, last) in enumerate(SERIAL_BANDS)
        )

    def _band(self, serial: int) -> _BandPermutation:
        return self._bands[bisect.bisect_left(_BAND_LASTS, serial)]

    def encode(self, serial: int) -> str:
        if not 1 <= serial <= MAX_SERIAL:
            raise ValueError(f"serial {serial} is outside 1..{MAX_SERIAL}")
        permuted = self._band(serial).forward(serial)
        number = (permuted << TAG_BITS) | (_prf(self._mac, permuted) & _TAG_MASK)
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
        permuted = number >> TAG_BITS
        if not 1 <= permuted <= MAX_SERIAL:
            return None
        # The tag is not secret once a code is public, so a plain comparison leaks nothing.
        tag = number & _TAG_MASK
        if _prf(self._mac, permuted) & _TAG_MASK == tag:
            return self._band(permuted).backward(permuted)
        if _prf(self._plain_mac, permuted) & _TAG_MASK == tag:
            return permuted
        return None
