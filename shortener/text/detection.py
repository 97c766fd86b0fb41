"""Finding the links in an SMS body.

A link is what twitter-text (the rules behind t.co) takes for one, so that senders who know how
Twitter treats their text get the same result here:

- `http://` or `https://` (any case) followed by a host, or a host alone. Either way the host must
  end in a known top-level domain (`shortener/text/data/tlds.txt`); IP addresses and single
  names such as `localhost` are never links. No other scheme is recognised, so whatever is
  returned starts with http(s):// or with the host itself.
- A host with a scheme may be written in any script. A host without one is made of Latin, Greek
  and Cyrillic letters, digits, `-` and `_`, but for a unicode TLD: in Chinese or Japanese, which
  put no space between words, the text before such a host is not part of it.
- A link does not start right after a digit or a Latin, Greek or Cyrillic letter, nor after `@`,
  `$` or `#` (e-mail addresses, mentions, cashtags, hashtags); a host without a scheme not after
  `-`, `_`, `.` or `/` either, which keeps the tails of invalid hosts and of other schemes
  (`ftp://`, `javascript:...//`) from being picked up on their own.
- A path, query or fragment holds ASCII letters and digits, Latin, Greek and Cyrillic letters,
  currency signs and URL punctuation; it ends at anything else (spaces, quotes, angle brackets,
  CJK text and punctuation, emoji). A bracket belongs to the link only when it is balanced
  inside it, and punctuation that ends a sentence (`.,:;!?'`...) is not part of the link's end.
- The path of a t.co link is only its slug (at most 40 letters and digits) plus a query: t.co
  links are often followed by text such as `'s`, and a longer slug is not a t.co link at all.

Every pattern is possessive, every loop moves on and a run of path characters is read once however
many links it holds, so the time taken grows linearly with the length of the text, whatever it
holds.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from shortener.text.tlds import load_tlds

__all__ = ["FoundLink", "find_links"]


@dataclass(frozen=True, slots=True)
class FoundLink:
    """A link in a text: `text[start:end] == url`, offsets in code points."""

    start: int
    end: int
    url: str


_TLDS = load_tlds()
# A TLD may be written in either form, and the punycode one is the longer.
_MAX_TLD_LENGTH = max(
    len(tld if tld.isascii() else "xn--" + tld.encode("punycode").decode()) for tld in _TLDS
)
_MAX_LABEL_LENGTH = 63
_MAX_HOST_LENGTH = 253
_MAX_TCO_SLUG_LENGTH = 40


def _code_points(ranges: Iterable[tuple[int, int]], categories: tuple[str, ...]) -> set[int]:
    """The code points in `ranges` (inclusive) whose general category starts with one of
    `categories`."""
    return {
        code
        for low, high in ranges
        for code in range(low, high + 1)
        if unicodedata.category(chr(code)).startswith(categories)
    }


def _char_class(codes: Iterable[int]) -> str:
    """The inside of a regex `[...]` matching exactly `codes`, as ranges."""
    parts: list[str] = []
    ordered = sorted(set(codes))
    index = 0
    while index < len(ordered):
        low = high = ordered[index]
        while index + 1 < len(ordered) and ordered[index + 1] == high + 1:
            index += 1
            high = ordered[index]
        parts.append(
            re.escape(chr(low)) if low == high else f"{re.escape(chr(low))}-{re.escape(chr(high))}"
        )
        index += 1
    return "".join(parts)


def _ascii(chars: str) -> set[int]:
    return {ord(char) for char in chars}


_ALNUM = _ascii("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

# Letters, marks and digits of the Latin, Greek and Cyrillic scripts: words in them are separated
# by spaces, so one of them right before or after a name means the name is part of a longer word.
_WORD_LETTERS = _code_points(
    [
        (0x00C0, 0x02FF),  # Latin-1 letters, Latin Extended-A and -B, IPA, modifier letters
        (0x0300, 0x036F),  # combining diacritics
        (0x0370, 0x03FF),  # Greek
        (0x0400, 0x052F),  # Cyrillic and its supplement
        (0x1C80, 0x1C8F),  # Cyrillic Extended-C
        (0x1E00, 0x1FFF),  # Latin Extended Additional, Greek Extended
        (0x2C60, 0x2C7F),  # Latin Extended-C
        (0x2DE0, 0x2DFF),  # Cyrillic Extended-A
        (0xA640, 0xA69F),  # Cyrillic Extended-B
        (0xA720, 0xA7FF),  # Latin Extended-D
        (0xAB30, 0xAB6F),  # Latin Extended-E
    ],
    ("L", "M", "N"),
)

# What a label of a host without a scheme is made of.
_BARE_LABEL = _ALNUM | _ascii("-_") | _WORD_LETTERS

# A host after a scheme may be in any script; punctuation and spaces of every script end it, and
# so do the CJK and full-width punctuation blocks, symbols included (postal mark, full-width
# dollar and plus signs, ...).
_NOT_IN_HOST = set(range(0x3000, 0x3040)) | set(range(0xFE10, 0xFE20)) | set(range(0xFE30, 0xFE70))
_NOT_IN_HOST |= set(range(0xFF01, 0xFF10)) | set(range(0xFF1A, 0xFF21)) | set(range(0xFF3B, 0xFF41))
_NOT_IN_HOST |= set(range(0xFF5B, 0xFF66)) | set(range(0xFFF0, 0x10000))
_HOST_LETTER = _BARE_LABEL | (_code_points([(0x80, 0xFFFF)], ("L", "M", "N", "S")) - _NOT_IN_HOST)
# Beyond the BMP (CJK extensions, emoji, historic scripts) everything counts as a letter but the
# tag characters and the private use planes; checking each of those code points would cost
# a noticeable time at import for no practical gain.
_ASTRAL_HOST_LETTERS = "\U00010000-\U000dffff\U000e0100-\U000e01ef"

# A name right after one of these continues a longer word, mention, cashtag or hashtag.
_NOT_BEFORE_LINK = _ALNUM | _WORD_LETTERS | _ascii("@$#") | {0xFF20, 0xFF04, 0xFF03}
_NOT_BEFORE_BARE_HOST = _NOT_BEFORE_LINK | _BARE_LABEL | _ascii("./")
# A TLD or port followed by one of these is the start of a longer word or of an e-mail address.
_NOT_AFTER_HOST = frozenset(chr(code) for code in _BARE_LABEL | _ascii("@+") | {0xFF20})

_PATH_CHAR = _ALNUM | _WORD_LETTERS | _ascii("!*';:=+,.$/%#[]-_~|&@?()") | {0x2013}
# Currency signs (Latin-1 and the Currency Symbols block): shop and search links carry them in
# their queries, as in ?q=€5.
_PATH_CHAR |= _code_points([(0x00A0, 0x00FF), (0x20A0, 0x20CF)], ("Sc",))
# Characters a link does not end in: they end a sentence or a clause far more often than a URL.
_NOT_AT_END = "!*';:,.$%~|@?\u2013"

_HOST = _char_class(_HOST_LETTER) + _ASTRAL_HOST_LETTERS
_LABEL = _char_class(_BARE_LABEL)
_CANDIDATE = re.compile(
    # Case is ignored in ASCII only: under re.IGNORECASE the long s (U+017F) would match "s".
    rf"(?<![{_char_class(_NOT_BEFORE_LINK)}])(?P<scheme>[Hh][Tt][Tt][Pp][Ss]?://)"
    rf"(?P<host>[{_HOST}.]*+)"
    # A run of labels with at least one dot (one that does not end a sentence); after a final
    # dot, a unicode TLD may follow.
    rf"|(?<![{_char_class(_NOT_BEFORE_BARE_HOST)}])"
    rf"(?P<bare>[{_LABEL}]++\.(?=[{_HOST}])[{_LABEL}.]*+(?:(?<=\.)[{_HOST}]++)?)"
)
# Where a link may be: every candidate holds one of these, and finding them is several times
# faster than trying the lookbehinds above at every character.
_ANCHOR = re.compile(rf"://|\.(?<=[{_LABEL}]\.)(?=[{_HOST}])")
_LABEL_RUN = re.compile(rf"[{_LABEL}]*+")
_BAD_LABEL = re.compile(r"(?<![^.])[-_.]|[-_](?![^.])")
_PORT = re.compile(rf":[0-9]{{1,5}}(?![{_char_class(map(ord, _NOT_AFTER_HOST))}])")
_PATH = re.compile(rf"[{_char_class(_PATH_CHAR)}]++")
_BRACKET = re.compile(r"[()\[\]]")
_CLOSING_OF = {"(": ")", "[": "]"}
_NO_BRACKETS: list[int] = []
_NO_CUTS = [0]
_TCO_SLUG = re.compile(r"/[0-9A-Za-z]++")


def _is_tld(name: str) -> bool:
    lowered = name.lower()
    if lowered in _TLDS:
        return True
    if lowered.startswith("xn--"):
        decoded = _punycode(lowered)
        return decoded is not None and decoded in _TLDS
    return False


def _punycode(label: str) -> str | None:
    """The unicode form of an `xn--` label, or None when it is not valid punycode."""
    try:
        return label[4:].encode("ascii").decode("punycode")
    except UnicodeError:
        return None


def _tld_length(text: str, region: str, start: int, stop: int, region_end: int) -> int:
    """The length of the longest TLD that starts at `region[start]`, ends by `stop` and is not
    followed by a letter that would make it part of a longer word; 0 when there is none."""
    for end in range(min(stop, start + _MAX_TLD_LENGTH), start, -1):
        if end < len(region):
            follower = region[end]
        else:
            follower = text[region_end] if region_end < len(text) else ""
        if follower not in _NOT_AFTER_HOST and _is_tld(region[start:end]):
            return end - start
    return 0


def _host_length(text: str, region: str, region_start: int) -> int:
    """The length of the longest host at the start of `region` (a run of labels and dots in
    `text` at `region_start`) that ends in a TLD; 0 when there is none."""
    bad = _BAD_LABEL.search(region)
    dot = region.rfind(".", 0, bad.start() if bad else len(region))
    region_end = region_start + len(region)
    while dot > 0:
        chunk_end = region.find(".", dot + 1)
        tld = _tld_length(
            text, region, dot + 1, len(region) if chunk_end < 0 else chunk_end, region_end
        )
        previous = region.rfind(".", 0, dot)
        # Underscores occur in subdomains (DNS records of services) but never in a registered
        # domain name.
        if tld and "_" not in region[previous + 1 : dot]:
            return dot + 1 + tld
        dot = previous
    return 0


@functools.lru_cache(maxsize=4096)
def _encoded_length(label: str) -> int | None:
    """The length of a label in the form DNS sees, `xn--` and punycode for a unicode one; None
    if it has no such form."""
    if label.isascii():
        if label[:4].lower() == "xn--" and _punycode(label.lower()) is None:
            return None
        return len(label)
    if label[:4].lower() == "xn--":
        return None
    # The punycode codec is pure Python and slow next to everything else here, and the hosts
    # of a sender's links recur from message to message.
    try:
        return len("xn--") + len(label.encode("punycode"))
    except UnicodeError:
        return None


def _valid_host(host: str) -> bool:
    """Whether the host fits DNS limits once encoded, and its `xn--` labels are punycode."""
    labels = host.split(".")
    # An encoded label is never shorter than the label itself; checking that first keeps very
    # long labels away from the punycode codec, whose time grows faster than their length.
    if len(host) > _MAX_HOST_LENGTH or any(len(label) > _MAX_LABEL_LENGTH for label in labels):
        return False
    total = -1
    for label in labels:
        size = _encoded_length(label)
        if size is None or size > _MAX_LABEL_LENGTH:
            return False
        total += size + 1
    return total <= _MAX_HOST_LENGTH


class _Paths:
    """Where the paths of one text end.

    A path ends where its run of path characters ends, or before: at its first unbalanced
    bracket. Links can follow one another inside one run (`a.co/(b.co/(c.co/(`), each ending at
    a bracket, so each run is read once, with a table of where a path starting at any of its
    brackets ends, rather than once for every link in it.
    """

    __slots__ = ("_brackets", "_cuts", "_next", "_run_end", "_run_start", "_text")

    # The brackets of the current run; for a path starting at each of them (and at the run's
    # end), the index of the bracket it stops before, len(_brackets) when none; and the first
    # bracket after the start of the last path read.
    _brackets: list[int]
    _cuts: list[int]
    _next: int

    def __init__(self, text: str) -> None:
        self._text = text
        # The other fields are set with the first run.
        self._run_start = self._run_end = 0

    def run_end(self, start: int) -> int:
        """Where the run of path characters at `text[start]` ends."""
        if not self._run_start <= start < self._run_end:
            text = self._text
            found = _PATH.match(text, start)
            end = start if found is None else found.end()
            self._run_start, self._run_end, self._next = start, end, 0
            if _BRACKET.search(text, start, end) is None:
                # Most paths hold no bracket at all.
                self._brackets, self._cuts = _NO_BRACKETS, _NO_CUTS
            else:
                self._brackets = [
                    bracket.start() for bracket in _BRACKET.finditer(text, start, end)
                ]
                self._cuts = self._cut_table()
        return self._run_end

    def _cut_table(self) -> list[int]:
        text, brackets = self._text, self._brackets
        count = len(brackets)
        cuts = [count] * (count + 1)
        # From the right: a path starting at a closing bracket stops before it; one starting
        # at an opening bracket goes on past its match, if the path after the opening bracket
        # stops right at that match, and stops before the opening bracket otherwise.
        for index in range(count - 1, -1, -1):
            char = text[brackets[index]]
            cuts[index] = index
            if char in _CLOSING_OF:
                after = cuts[index + 1]
                if after < count and text[brackets[after]] == _CLOSING_OF[char]:
                    cuts[index] = cuts[after + 1]
        return cuts

    def balanced_end(self, start: int) -> int:
        """Where the path at `text[start]` ends: before its first unbalanced bracket and before
        the punctuation it ends in."""
        stop = self.run_end(start)
        brackets = self._brackets
        if brackets:
            index = self._next
            # Links come in order, so the first bracket of each path is found by moving on
            # from that of the one before.
            if index and brackets[index - 1] >= start:
                index = bisect.bisect_left(brackets, start)
            while index < len(brackets) and brackets[index] < start:
                index += 1
            self._next = index
            cut = self._cuts[index]
            if cut < len(brackets):
                stop = brackets[cut]
        return start + len(self._text[start:stop].rstrip(_NOT_AT_END))

    def end(self, start: int, tco: bool) -> int | None:
        """Where the path, query or fragment at `text[start]` ends; None if it makes the link
        invalid."""
        if tco:
            slug = _TCO_SLUG.match(self._text, start)
            if slug is not None:
                if slug.end() - start - 1 > _MAX_TCO_SLUG_LENGTH:
                    return None
                if not self._text.startswith("?", slug.end()):
                    return slug.end()
                return self.balanced_end(slug.end())
        return self.balanced_end(start)


def _link_end(text: str, match: re.Match[str], paths: _Paths) -> int | None:
    """Where the link found by `_CANDIDATE` ends, or None if it is not a link after all."""
    group = "host" if match.group("scheme") else "bare"
    region = match.group(group)
    region_start = match.start(group)
    length = _host_length(text, region, region_start)
    if not length or not _valid_host(host := region[:length]):
        return None
    end = region_start + length
    if text.startswith(":", end) and (port := _PORT.match(text, end)) is not None:
        end = port.end()
    if end < len(text) and text[end] in "/?#":
        return paths.end(end, host.lower() == "t.co")
    return end


def find_links(text: str) -> list[FoundLink]:
    """The links in `text`, in order of appearance and not overlapping."""
    # Every host has a dot before its TLD, so most short texts are done with here.
    if "." not in text:
        return []
    found: list[FoundLink] = []
    paths = _Paths(text)
    backwards = ""
    position = 0
    while (anchor := _ANCHOR.search(text, position)) is not None:
        at = anchor.start()
        if text[at] == ":":
            start = at - 5 if at and text[at - 1] in "sS" else at - 4
        else:
            # The labels before the first dot of a host, read from right to left.
            backwards = backwards or text[::-1]
            labels = _LABEL_RUN.match(backwards, len(text) - at)
            start = len(text) - labels.end() if labels else at
        # Only the scheme or first label of a candidate can start it: the lookbehinds in
        # _CANDIDATE reject every position in between. A start before `position` was tried.
        match = _CANDIDATE.match(text, start) if start >= position else None
        end = None if match is None else _link_end(text, match, paths)
        if end is None:
            position = at + 1
        else:
            found.append(FoundLink(start, end, text[start:end]))
            position = end
    return found
