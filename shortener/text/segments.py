"""SMS body encoding and segment count, per GSM 03.38 / 3GPP TS 23.038.

A body is sent as GSM-7 when every character exists in the default alphabet
(basic table or extension table) and as UCS-2 otherwise. A single message holds
160 septets or 70 UTF-16 code units; once a body needs more than one message,
each part loses room to the concatenation header and holds 153 septets or 67
code units.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["Encoding", "SegmentCount", "count_segments"]

Encoding = Literal["GSM-7", "UCS-2"]

# Laid out in GSM code order, 16 positions a row, so that each character sits at
# its septet value and the table can be checked against the standard by eye.
# 0x1B is the escape into the extension table, not a character of its own, so
# the 128 positions hold 127 characters.
_BASIC_TABLE: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # 0x10
    " !\"#¤%&'()*+,-./"  # 0x20
    "0123456789:;<=>?"  # 0x30
    "¡ABCDEFGHIJKLMNO"  # 0x40
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50
    "¿abcdefghijklmno"  # 0x60
    "pqrstuvwxyzäöñüà"  # 0x70
)
_ESCAPE: Final = "\x1b"

# Each of these is sent as ESC followed by its code, so it costs two septets.
# The table's other entries (a second escape, and CR2 at 0x0D) have no
# character that a sender could ask for.
_EXTENSION_TABLE: Final = "\x0c^{}\\[~]|€"

_GSM_SINGLE: Final = 160
_GSM_MULTI: Final = 153
_UCS2_SINGLE: Final = 70
_UCS2_MULTI: Final = 67

# Compiled classes keep the per-character work in C, which is what keeps a long
# body in the microsecond range; only the rare extension characters and the
# part boundaries are handled in Python.
_BASIC_CHARS: Final = _BASIC_TABLE.replace(_ESCAPE, "")
_NOT_BASIC_RE: Final = re.compile("[^" + re.escape(_BASIC_CHARS) + "]")
_NOT_GSM_RE: Final = re.compile("[^" + re.escape(_BASIC_CHARS + _EXTENSION_TABLE) + "]")


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """How a body would be sent.

    ``characters`` is in the unit the encoding is billed in: septets for GSM-7
    (an extension-table character counts 2) and UTF-16 code units for UCS-2 (a
    character outside the BMP counts 2). ``segments`` is 0 for an empty body.
    """

    encoding: Encoding
    characters: int
    segments: int


def count_segments(text: str) -> SegmentCount:
    """Return the encoding, billed length and number of SMS parts for ``text``."""
    if not text:
        return SegmentCount("GSM-7", 0, 0)
    first_non_basic = _NOT_BASIC_RE.search(text)
    if first_non_basic is None:
        return SegmentCount("GSM-7", len(text), _divide(len(text), _GSM_SINGLE, _GSM_MULTI))
    if _NOT_GSM_RE.search(text, first_non_basic.start()) is None:
        return _count_gsm_with_extension(text)
    return _count_ucs2(text)


def _divide(units: int, single: int, multi: int) -> int:
    return 1 if units <= single else -(-units // multi)


def _count_gsm_with_extension(text: str) -> SegmentCount:
    present = [char for char in _EXTENSION_TABLE if char in text]
    septets = len(text) + sum(text.count(char) for char in present)
    if septets <= _GSM_SINGLE:
        return SegmentCount("GSM-7", septets, 1)
    # Spelling each extension character as ESC + character gives one string
    # position per septet, so a part boundary can be checked by indexing. The
    # body cannot already contain ESC: that would have made it UCS-2.
    septet_string = text
    for char in present:
        septet_string = septet_string.replace(char, _ESCAPE + char)
    segments = _pack(septets, _GSM_MULTI, lambda unit: septet_string[unit] == _ESCAPE)
    return SegmentCount("GSM-7", septets, segments)


def _count_ucs2(text: str) -> SegmentCount:
    # surrogatepass keeps a lone surrogate countable (one code unit) instead of
    # raising; a JSON "\ud83d" escape is enough to produce one.
    encoded = text.encode("utf-16-le", "surrogatepass")
    units = len(encoded) // 2
    if units <= _UCS2_SINGLE:
        return SegmentCount("UCS-2", units, 1)

    def starts_pair(unit: int) -> bool:
        # The high byte of each little-endian unit says whether it is a high
        # (D8-DB) or low (DC-DF) surrogate.
        return 0xD8 <= encoded[2 * unit + 1] <= 0xDB and 0xDC <= encoded[2 * unit + 3] <= 0xDF

    return SegmentCount("UCS-2", units, _pack(units, _UCS2_MULTI, starts_pair))


def _pack(units: int, multi: int, starts_pair: Callable[[int], bool]) -> int:
    """Count parts of ``multi`` units when a two-unit pair may not be split.

    A pair whose first unit would be the last unit of a part moves whole to the
    next part and that unit is left empty, which is why plain division is not
    enough. Only the unit at each boundary matters, so this loops once per part
    rather than once per character.
    """
    segments = 0
    start = 0
    while True:
        segments += 1
        end = start + multi
        if end >= units:
            return segments
        if starts_pair(end - 1):
            end -= 1
        start = end
