"""Numbers, versions and cursors that come from outside, read by one rule.

Only ASCII digits count, the whole text must be the number, and its length is bounded.
`str.isdigit()` and a regex `\\d` also take superscripts and the digits of other scripts
('²', '١٢'), which `int()` refuses or reads as a number and Redis refuses; `int()` itself
takes signs, spaces and underscores; `re.match(r"^…$")` takes a trailing newline.
"""

from __future__ import annotations

# Enough for any count, size or timestamp here, and for the 2**64 - 1 of a Redis stream id.
MAX_DIGITS = 20
MAX_STREAM_ID_PART = 2**64 - 1
# The rule of `stream_cursor` as a pattern, for the API description; empty means none.
STREAM_CURSOR_PATTERN = f"^(?:[0-9]{{1,{MAX_DIGITS}}}-[0-9]{{1,{MAX_DIGITS}}})?$"


def whole_number(text: str, *, max_digits: int = MAX_DIGITS) -> int | None:
    """The value of `text` when it is 1 to `max_digits` ASCII digits and nothing else."""
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


def stream_cursor(text: str) -> str | None:
    """`text` as a Redis stream id to read after (`MILLISECONDS-SEQUENCE`, each part at most
    2**64 - 1, not both), in the form Redis writes it; None for anything else."""
    milliseconds_text, _, sequence_text = text.partition("-")
    milliseconds = whole_number(milliseconds_text)
    sequence = whole_number(sequence_text)
    if milliseconds is None or sequence is None:
        return None
    parts = (milliseconds, sequence)
    if max(parts) > MAX_STREAM_ID_PART or min(parts) == MAX_STREAM_ID_PART:
        # A part Redis cannot hold, or the largest id, after which nothing can come.
        return None
    return f"{milliseconds}-{sequence}"
