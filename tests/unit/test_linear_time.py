"""Time that grows linearly with the input, for every piece that reads text a stranger sends:
the link detector (SMS bodies), the markup scanner (e-mail HTML) and the User-Agent classifier.

Each input is repeated, at two sizes, from pieces of the grammar the code knows (brackets,
schemes, tag openings, quotes, ...), the shape that makes a backtracking regex or a rescanning
loop take quadratic time. Ten times the input may cost at most MAX_RATIO times the time: a ratio
of CPU times on the same machine, not seconds, so a slow or busy machine does not fail it while
a quadratic cost (a hundredfold) does. Every test has a deadline, so a regression fails rather
than hangs the suite.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, Phase, given, settings, target
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from shortener.text import bots, markup
from shortener.text.detection import find_links

GROWTH = 10
MAX_RATIO = 15
# A measured round lasts at least this long, far above the clock's resolution.
MIN_ROUND_SECONDS = 0.002
ROUNDS = 5
TIMEOUT_SECONDS = 120

DETECTION_SIZE = 2_000
MARKUP_SIZE = 2_000
AGENT_SIZE = 1_000

pytestmark = pytest.mark.timeout(TIMEOUT_SECONDS)

# Failing examples are shown as generated: shrinking one would rerun a quadratic cost many
# times over.
linear_settings = settings(
    max_examples=300,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _round(function: Callable[[str], object], argument: str, calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        function(argument)
    return time.process_time() - started


def _least_time(function: Callable[[str], object], argument: str, rounds: int) -> float:
    """The least CPU time of one call over several rounds, each repeating the call until it
    lasts MIN_ROUND_SECONDS: the minimum is what the work costs, free of what other processes
    on a shared machine add."""
    calls = 1
    while (elapsed := _round(function, argument, calls)) < MIN_ROUND_SECONDS and calls < 1 << 16:
        calls *= 2
    best = elapsed / calls
    for _ in range(rounds - 1):
        best = min(best, _round(function, argument, calls) / calls)
    return best


def assert_linear(function: Callable[[str], object], small: str, large: str) -> None:
    """`large` is about GROWTH times `small`; one call on it may cost at most MAX_RATIO times
    one on `small`."""
    gc.disable()
    try:
        base = _least_time(function, small, 2)
        cost = _least_time(function, large, 1)
        if MAX_RATIO * base < cost < 3 * MAX_RATIO * base:
            # A close call is measured again, longer, before it counts.
            base = min(base, _least_time(function, small, ROUNDS))
            cost = min(cost, _least_time(function, large, ROUNDS))
    finally:
        gc.enable()
    if currently_in_test_context():
        # Steers the search towards inputs whose cost grows fastest.
        target(cost / base, label="growth of the cost")
    assert cost <= MAX_RATIO * base, (
        f"{GROWTH}x the input ({len(small)} -> {len(large)} characters) took "
        f"{cost / base:.1f}x the time ({base * 1e6:.0f} -> {cost * 1e6:.0f} µs)"
    )


def repeated(prefix: str, unit: str, suffix: str, size: int) -> str:
    return prefix + unit * max(1, size // len(unit)) + suffix


def assert_repetition_linear(
    function: Callable[[str], object], prefix: str, unit: str, suffix: str, size: int
) -> None:
    assert_linear(
        function,
        repeated(prefix, unit, suffix, size),
        repeated(prefix, unit, suffix, size * GROWTH),
    )


def adversarial(openers: list[str], pieces: list[str]) -> st.SearchStrategy[tuple[str, str, str]]:
    """(prefix, repeated unit, suffix): something the grammar opens (a tag, a link, ...), then
    one to three of its pieces (delimiters, prefixes, letters) over and over, then a few more."""
    piece = st.sampled_from(pieces)
    several = st.lists(st.sampled_from(openers + pieces), min_size=2, max_size=3).map("".join)
    return st.tuples(
        st.sampled_from(["", *openers]),
        st.one_of(piece, piece, several),
        st.lists(piece, max_size=2).map("".join),
    )


# The link detector.

# Beginnings of links, and the characters around and inside them.
LINK_OPENERS = [
    "a.co/", "t.co/", "t.co/ab", "http://a.co/", "https://", "http://", "www.", "a.", "xn--",
    "a.co", "a.co:80/", "a.co/?", "a.co/#", "例.jp/", "https://例え", "@a.co/", "shop.com/(",
]  # fmt: skip
LINK_PIECES = [
    "(", ")", "[", "]", "{", "}", "<", ">", ".", "/", ":", "@", "#", "$", "?", "!", ",", ";",
    "'", '"', "-", "_", " ", "\n", "%", "&", "=", "~", "|", "*", "+", "\u2013", "a", "Z", "1",
    "é", "ж", "例", "😀", "\uff0e", "\u3002", ".co", ":80",
]  # fmt: skip


@linear_settings
@given(adversarial(LINK_OPENERS, LINK_PIECES))
def test_finding_links_takes_linear_time(pieces: tuple[str, str, str]) -> None:
    assert_repetition_linear(find_links, *pieces, DETECTION_SIZE)


# Inputs that once took quadratic time, each as (prefix, unit, suffix).
DETECTION_ATTACKS = {
    "links ending at an unclosed bracket": ("", "a.co/(((((((((", ""),
    "links ending at a stray closing bracket": ("", "a.co/)", ""),
    "t.co links followed by path characters": ("", "t.co/ab,", ""),
    "links ending in punctuation inside a path": ("", "a.co/b.(", ""),
}


@pytest.mark.parametrize("pieces", DETECTION_ATTACKS.values(), ids=DETECTION_ATTACKS.keys())
def test_known_link_attacks_take_linear_time(pieces: tuple[str, str, str]) -> None:
    assert_repetition_linear(find_links, *pieces, DETECTION_SIZE)


# The markup scanner, as links.py uses it: find the anchors, then rewrite them all and add the
# pixel.

# What opens a tag, an attribute value, a comment, a declaration or raw text, and the
# characters and strings that go on or end them.
MARKUP_OPENERS = [
    "<a", "<a ", "<A\n", "<a href=", '<a href="', "<a href='", "<p title='", "<script>",
    "<script><!--", "<script><!--<script>", "<style>", "<title>", "<textarea>", "<!--", "<!",
    "<![CDATA[", "<?", "</", "</p ", "<body>", "<plaintext>",
]  # fmt: skip
MARKUP_PIECES = [
    "<", ">", "/", "=", '"', "'", " ", "\n", "\t", "-", "!", "]", "&", "x", "é", "<a", "<a ",
    "href=", '="', "='", "<script", "</script", "</script>", "<!--", "-->", "--", "--!>", "<!",
    "]]>", "</", "</a>", "</body>", "</body", "</html>", "<title>", "</title", "/>", "&amp;",
]  # fmt: skip

PIXEL = markup.pixel_tag("https://sho.rt/o/1")


def scan_and_rewrite(html: str) -> str:
    anchors = markup.find_anchors(html)
    return markup.rewrite(html, [(anchor, "https://sho.rt/t") for anchor in anchors], PIXEL)


@linear_settings
@given(adversarial(MARKUP_OPENERS, MARKUP_PIECES))
def test_scanning_markup_takes_linear_time(pieces: tuple[str, str, str]) -> None:
    assert_repetition_linear(scan_and_rewrite, *pieces, MARKUP_SIZE)


MARKUP_ATTACKS = {
    "an unclosed tag of spaces": ("<a", " ", ""),
    "unclosed script tags": ("", "<script", ""),
    "unclosed comments": ("", "<!--", ""),
    "unclosed raw text": ("", "<title>", ""),
    "unclosed attribute values": ('<a href="', '<a href="', ""),
    "empty attributes": ("<a", " x=", ""),
    "body end tags in attributes": ("", '<p title="</body>">', ""),
}


@pytest.mark.parametrize("pieces", MARKUP_ATTACKS.values(), ids=MARKUP_ATTACKS.keys())
def test_known_markup_attacks_take_linear_time(pieces: tuple[str, str, str]) -> None:
    assert_repetition_linear(scan_and_rewrite, *pieces, MARKUP_SIZE)


# The User-Agent classifier. is_bot only ever classifies the first bots.MAX_AGENT_CHARS
# characters; the matching itself must be linear too, or an attacker varies short agents.

AGENT_OPENERS = [
    "Mozilla/5.0 ", "Mozilla/5.0 (compatible; ", "Mozilla/5.0 (iPhone; CPU iPhone OS ",
    "Mozilla/5.0 (Linux; Android ", "Yandex", "curl/", "Java/",
]  # fmt: skip
AGENT_PIECES = [
    "a", "z", "A", "0", "9", "bot", "Bot", "-", "_", " ", "(", ")", ";", "/", ".", ",", "+", ":",
    "Yandex", "Search", "Safari/", "Chrome/", "1.2", "crawl", "spider", "http://", "compatible",
    "Linux", "Android ", "_1", " like Mac OS X", "WhatsApp/", "Gecko", "rv:", "Build", "é",
    "\xa0", "\t",
]  # fmt: skip


@linear_settings
@given(adversarial(AGENT_OPENERS, AGENT_PIECES))
def test_classifying_agents_takes_linear_time(pieces: tuple[str, str, str]) -> None:
    assert_repetition_linear(bots.is_automated, *pieces, AGENT_SIZE)


def test_a_long_run_of_letters_takes_linear_time() -> None:
    assert_repetition_linear(bots.is_automated, "Mozilla/5.0 ", "a", "", AGENT_SIZE)


def _uncached_is_bot(agent: str) -> bool:
    bots._classify.cache_clear()
    return bots.is_bot(agent)


def test_a_long_agent_costs_no_more_than_a_capped_one() -> None:
    cap = bots.MAX_AGENT_CHARS
    small = "Mozilla/5.0 " + "a" * cap
    gc.disable()
    try:
        base = _least_time(_uncached_is_bot, small, ROUNDS)
        cost = _least_time(_uncached_is_bot, small + "a" * 100 * cap, ROUNDS)
    finally:
        gc.enable()
    # Slicing off the start is all that a longer agent adds.
    assert cost <= 3 * base
