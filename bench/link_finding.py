"""How long finding the links in an SMS-sized body takes: `python bench/link_finding.py`.

Prints the median time of one `find_links` call, in microseconds, for a 1,600-character body
with ten links (with and without a scheme, some with unicode hosts or paths), for a body of the
same length without links but with sentences, decimals and times, and for one with neither dots
nor colons. The same body is searched again and again, so the encoded lengths of its unicode
host labels come from the detector's cache after the first call, as those of a sender's
recurring hosts do.
"""

from __future__ import annotations

import statistics
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shortener.text.detection import find_links

BODY_LENGTH = 1600
LINKS = (
    "https://shop.example.com/deals/winter-sale?utm_source=sms&utm_campaign=w24",
    "www.example.org/track/0012345",
    "http://t.co/AbC123x",
    "https://例え.jp/",
    "bit.ly/3xYz9Qa",
    "https://en.wikipedia.org/wiki/Python_(programming_language)",
    "https://мой-магазин.рф/акции/скидка",
    "xn--bcher-kva.de/angebote",
    "https://example.com/a?b=c&d=e#frag",
    "shop.co.uk/returns",
)
PROSE = (
    "Hi Sam, your order 1234 has shipped and should arrive on Tue. between 9:00 and 17:00. "
    "Total $19.99 (incl. 2.5% fee). Reply STOP to opt out, HELP for help. Questions? Call us. "
    "訂單已發貨，請查收。Ваш заказ отправлен. Votre commande est partie. ¡Gracias! 😀 "  # noqa: RUF001
)


def _filler(length: int) -> str:
    return (PROSE * (length // len(PROSE) + 1))[:length]


def body_with_links() -> str:
    separators = [" See ", " or ", ": ", " (", ") ", "\n", "：", " — ", " ", " ->"]  # noqa: RUF001
    pieces = [f"{separator}{link} " for separator, link in zip(separators, LINKS, strict=True)]
    linked = "".join(pieces) + ". "
    body = _filler(BODY_LENGTH - len(linked))
    # Spread the links through the prose rather than bunching them at one end.
    step = len(body) // len(pieces)
    out = []
    for index, piece in enumerate(pieces):
        out += [body[index * step : (index + 1) * step], piece]
    out += [body[len(pieces) * step :], ". "]
    return "".join(out)


def median_microseconds(text: str, *, number: int = 200, repeat: int = 25) -> float:
    timings = timeit.repeat(lambda: find_links(text), number=number, repeat=repeat)
    return statistics.median(timings) / number * 1e6


def main() -> None:
    linked = body_with_links()
    found = find_links(linked)
    assert len(linked) == BODY_LENGTH, len(linked)
    assert [link.url for link in found] == list(LINKS), [link.url for link in found]
    plain = _filler(BODY_LENGTH)
    assert not find_links(plain)
    bare = plain.replace(".", " ").replace(":", " ")
    print(f"{BODY_LENGTH} chars, {len(found)} links: {median_microseconds(linked):.1f} µs per call")
    print(f"{BODY_LENGTH} chars, no links: {median_microseconds(plain):.1f} µs per call")
    print(f"{BODY_LENGTH} chars, no '.' or ':': {median_microseconds(bare):.2f} µs per call")


if __name__ == "__main__":
    main()
