"""Text from outside that looks like a number to some readers and is not one here."""

from __future__ import annotations

# Text that `str.isdigit()`, `int()`, a regex `\d` or `re.match(r"^…$")` takes for a number,
# and that no caller means as one.
NOT_NUMBERS = [
    "",
    "²",
    "1²",
    "١",
    "١٢",
    "９",
    "1\n",
    "1\r\n",
    "\n1",
    " 1",
    "1 ",
    "+1",
    "-1",
    "1_0",
    "0x10",
    "1e3",
    "1.0",
    "1\x00",
    "٣-٤",
]
