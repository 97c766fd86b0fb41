"""Finding links in SMS bodies: twitter-text's conformance data, properties that must hold for any
text, message-shaped examples, inputs built to make a regex backtrack, and the TLD list."""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from shortener.text import detection, tlds
from shortener.text.detection import FoundLink, find_links

# The conformance data is kept outside the repository, in the shared folder beside the checkout.
SHARED = Path(__file__).resolve().parents[3] / "shared"
CONFORMANCE = SHARED / "conformance" / "twitter-text"
URL_SECTIONS = (
    "urls",
    "urls_with_indices",
    "urls_with_directional_markers",
    "tco_urls_with_params",
)
TLD_SECTIONS = ("country", "generic")

# Conformance cases find_links may fail, by (file, section, description), each with the reason.
# The test fails as soon as one of them passes, so that the list never outlives its reason.
TOLERATED: dict[tuple[str, str, str], str] = {}

needs_conformance = pytest.mark.skipif(
    not CONFORMANCE.is_dir(),
    reason=f"the twitter-text conformance data lives in ../shared beside the checkout "
    f"({CONFORMANCE} is absent)",
)


@dataclass(frozen=True, slots=True)
class Case:
    file: str
    section: str
    description: str
    text: str
    urls: list[str]
    indices: list[tuple[int, int]] | None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.file, self.section, self.description)


def _case(file: str, section: str, raw: dict[str, Any]) -> Case:
    expected = raw["expected"]
    if expected and isinstance(expected[0], dict):
        urls = [item["url"] for item in expected]
        indices: list[tuple[int, int]] | None = [tuple(item["indices"]) for item in expected]
    else:
        urls, indices = list(expected), None
    return Case(file, section, raw["description"], raw["text"], urls, indices)


def _cases(file: str, sections: tuple[str, ...]) -> list[Case]:
    with (CONFORMANCE / file).open(encoding="utf-8") as stream:
        tests = yaml.safe_load(stream)["tests"]
    cases = []
    for section in sections:
        assert tests.get(section), f"{file} has no cases in section {section!r}"
        cases += [_case(file, section, raw) for raw in tests[section]]
    keys = [case.key for case in cases]
    assert len(set(keys)) == len(keys), "descriptions must name the cases unambiguously"
    return cases


def _outcome(case: Case) -> str | None:
    """None if find_links does what the case expects, else what it did instead."""
    links = find_links(case.text)
    if [link.url for link in links] != case.urls:
        return f"urls {[link.url for link in links]} != {case.urls}"
    if case.indices is not None and [(link.start, link.end) for link in links] != case.indices:
        return f"indices {[(link.start, link.end) for link in links]} != {case.indices}"
    return None


# tlds.yml proves less than extract.yml: its TLDs are one of the sources the shipped TLD list is
# built from, so it shows that detection uses the list, not that the list is right. The tests
# against the Public Suffix List below check the list against a source it is not built from.
@needs_conformance
@pytest.mark.parametrize(
    ("file", "sections"), [("extract.yml", URL_SECTIONS), ("tlds.yml", TLD_SECTIONS)]
)
def test_twitter_text_conformance(file: str, sections: tuple[str, ...]) -> None:
    cases = _cases(file, sections)
    outcomes = {case.key: _outcome(case) for case in cases}
    failing = {key for key, outcome in outcomes.items() if outcome is not None}
    tolerated = {key for key in TOLERATED if key[0] == file}

    unexpected = [f"{key[1]}: {key[2]}: {outcomes[key]}" for key in sorted(failing - tolerated)]
    assert not unexpected, "failing and not tolerated:\n" + "\n".join(unexpected)
    fixed = sorted(tolerated - failing)
    assert not fixed, f"tolerated but passing (or gone), take them out of TOLERATED: {fixed}"


# Properties over arbitrary text, with the pieces links are made of mixed in so that near-links,
# glued links and broken brackets come up far more often than in random characters.
FRAGMENTS = (
    "https://",
    "http://",
    "HTTP://",
    "www.",
    ".com",
    ".co",
    ".jp",
    ".みんな",
    ".рф",
    "t.co/",
    "example",
    "/",
    "//",
    "(",
    ")",
    "[",
    "]",
    ".",
    "...",
    "@",
    "#",
    "$",
    ":",
    "?",
    "!",
    ",",
    "'",
    "-",
    "_",
    "=",
    "&",
    "%20",
    "xn--",
    "例え",
    "訂單",
    "。",
    "\uff1a",
    "\uff08",
    "“",
    "”",
    "😀",
    "👍🏽",
    " ",
    "\n",
    "\u00a0",
    "\u202a",
    "é",
    "Д",
    "€",
    "a",
    "9",
    "8080",
)
messages = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=30).map(
    "".join
)

# A short link in t.co's shape: a slug of letters and digits, which ends at whatever character
# follows it. A link with a general path would take in what follows a replaced span that ended
# for reasons of its own, e.g. the "'s" after a t.co link or the "!x" after a bare host.
SHORT_LINK = "https://t.co/AbC123x"
_HOST_FIRST = re.compile(r"[^\s:/?#@]+(?::[0-9]+)?(?:[/?#]|\Z)")


def _shorten(text: str, links: list[FoundLink]) -> tuple[str, list[tuple[int, int]]]:
    """`text` with every link replaced by SHORT_LINK, and where the short links are."""
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    position = length = 0
    for link in links:
        pieces.append(text[position : link.start])
        length += link.start - position
        pieces.append(SHORT_LINK)
        spans.append((length, length + len(SHORT_LINK)))
        length += len(SHORT_LINK)
        position = link.end
    pieces.append(text[position:])
    return "".join(pieces), spans


@settings(max_examples=500)
@given(messages)
def test_links_are_ordered_exact_spans_of_the_text(text: str) -> None:
    position = 0
    for link in find_links(text):
        assert position <= link.start < link.end <= len(text)
        assert text[link.start : link.end] == link.url
        position = link.end


@settings(max_examples=500)
@given(messages)
def test_links_are_http_or_start_with_their_host(text: str) -> None:
    for link in find_links(text):
        if not link.url.lower().startswith(("http://", "https://")):
            assert _HOST_FIRST.match(link.url), link.url


@settings(max_examples=500)
@given(messages)
def test_shortening_then_restoring_gives_back_the_text(text: str) -> None:
    links = find_links(text)
    shortened, spans = _shorten(text, links)
    restored, position = [], 0
    for (start, end), link in zip(spans, links, strict=True):
        assert shortened[start:end] == SHORT_LINK
        restored += [shortened[position:start], link.url]
        position = end
    restored.append(shortened[position:])
    assert "".join(restored) == text


@settings(max_examples=1000)
@given(messages)
def test_a_shortened_text_holds_exactly_its_short_links(text: str) -> None:
    shortened, spans = _shorten(text, find_links(text))
    found = find_links(shortened)
    assert [(link.start, link.end) for link in found] == spans
    assert all(link.url == SHORT_LINK for link in found)


# Message-shaped examples: (body, the links in it).
EXAMPLES = [
    ("Sale!www.shop.com/deal.", ["www.shop.com/deal"]),
    ("Order:https://a.co/x", ["https://a.co/x"]),
    ("(see shop.com/deal)", ["shop.com/deal"]),
    ("“https://example.com/quoted”", ["https://example.com/quoted"]),
    ("<https://example.com/a>", ["https://example.com/a"]),
    ("訂單\uff1ahttps://example.com/x。謝謝", ["https://example.com/x"]),
    ("訂單https://example.com/x謝謝", ["https://example.com/x"]),
    # Japanese text follows a link without a space, so a path ends where CJK text starts.
    ("https://例え.jp/パス", ["https://例え.jp/"]),
    ("https://例え.jp/%E3%83%91%E3%82%B9", ["https://例え.jp/%E3%83%91%E3%82%B9"]),
    ("詳細はexample.jpをご覧ください", ["example.jp"]),
    ("xn--bcher-kva.de/x", ["xn--bcher-kva.de/x"]),
    ("Go https://bücher.example/straße?q=€ now", ["https://bücher.example/straße?q=€"]),
    ("Скидки на мой-магазин.рф/акции!", ["мой-магазин.рф/акции"]),
    ("email me at bob@shop.com", []),
    ("email me at bob.smith@shop.co.uk.", []),
    ("#shop.com", []),
    ("$shop.com", []),
    ("\uff20shop.com \uff03shop.com", []),
    ("localhost:8000/x", []),
    ("http://localhost:8000/x", []),
    ("192.168.0.1/x", []),
    ("http://192.168.0.1/x", []),
    ("javascript:alert(1)", []),
    ("javascript:alert(1)//example.com", []),
    ("javascript:alert('http://example.com')", ["http://example.com"]),
    ("data:text/html,<script>alert(1)</script>", []),
    ("vbscript:msgbox file:///etc/passwd ftp://files.example.com/x", []),
    ("tel:+15550100 mailto:bob@shop.com", []),
    ("http\u017f://example.com", []),
    ("http://google.com@evil.com/", []),
    ("https://example.com/a?b=c&d=e#frag", ["https://example.com/a?b=c&d=e#frag"]),
    (
        "Read https://en.wikipedia.org/wiki/Python_(language).",
        ["https://en.wikipedia.org/wiki/Python_(language)"],
    ),
    (
        "(https://en.wikipedia.org/wiki/Python_(language))",
        ["https://en.wikipedia.org/wiki/Python_(language)"],
    ),
    ("Wait for it... shop.com/deal...", ["shop.com/deal"]),
    ("Hurry! https://shop.com/sale!", ["https://shop.com/sale"]),
    ("Seen https://shop.com/sale?", ["https://shop.com/sale"]),
    ("https://shop.com/a, https://shop.com/b", ["https://shop.com/a", "https://shop.com/b"]),
    ("https://t.co/abc", ["https://t.co/abc"]),
    ("Tap http://t.co/AbC123x's link", ["http://t.co/AbC123x"]),
    ("HTTPS://SHOP.COM/A", ["HTTPS://SHOP.COM/A"]),
    ("shop.com:8080/x and shop.com:80abc", ["shop.com:8080/x", "shop.com"]),
    ("Meet at 9:30. Call 555.0100 or see v2.0 notes", []),
    ("long.test.tar.bz2", []),
]


@pytest.mark.parametrize(("text", "urls"), EXAMPLES, ids=[text for text, _ in EXAMPLES])
def test_examples(text: str, urls: list[str]) -> None:
    links = find_links(text)
    assert [link.url for link in links] == urls
    assert all(text[link.start : link.end] == link.url for link in links)


def test_offsets_count_code_points() -> None:
    text = "😀👍🏽 訂單\uff1ahttps://例え.jp/x 😀 shop.com"
    assert find_links(text) == [
        FoundLink(7, 22, "https://例え.jp/x"),
        FoundLink(25, 33, "shop.com"),
    ]


# Inputs that make a backtracking pattern take exponential or quadratic time; each must finish
# at once, so that a pattern that regresses hangs the suite rather than a gateway.
PATHOLOGICAL = {
    "dots": "." * 10_000,
    "label-dot runs": "a." * 25_000,
    "label-dot runs after a scheme": "https://" + "a." * 20_000 + "com/",
    "glued hosts": "a.com" * 8_000,
    "hyphens": "a-" * 20_000 + ".com",
    "underscores": "https://" + "a_" * 20_000 + ".com",
    "www": "www." * 10_000,
    "schemes": "https://" * 5_000 + ".com",
    "scheme colons": "http:" * 8_000 + ".com",
    "opening parens": "(" * 20_000 + "shop.com",
    "opening parens in a path": "https://shop.com/" + "(" * 20_000,
    "nested parens in a path": "https://shop.com/" + "(a" * 20_000 + ")" * 10_000,
    "closing parens in a path": "https://shop.com/(" + ")" * 20_000,
    "a long path": "https://shop.com/" + "a" * 50_000,
    "a long path of punctuation": "https://shop.com/a" + "?!.," * 10_000 + "b",
    "trailing punctuation": "shop.com/a" + "." * 40_000,
    "a long t.co slug": "https://t.co/" + "a" * 50_000,
    "a long unicode label": "https://" + "例え" * 20_000 + ".jp/",
    "long unicode labels": "https://" + "例え." * 15_000 + "みんな",
    "mentions": "@a.co" * 8_000,
    "punycode prefixes": "xn--" * 10_000 + ".com",
    "ports": "shop.com:" * 5_000,
    "sentence ends": "Ok. " * 10_000,
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_inputs_finish(text: str) -> None:
    for link in find_links(text):
        assert text[link.start : link.end] == link.url


# Where a path ends, for any brackets in it: as a scan with a stack finds it, from every start.


def _path_end_by_scanning(text: str, start: int) -> int:
    stop = start
    while stop < len(text) and text[stop] != " ":
        stop += 1
    cut, opened = stop, []
    for index in range(start, stop):
        char = text[index]
        if char in "([":
            opened.append((index, char))
        elif char in ")]":
            if not opened or opened[-1][1] != {")": "(", "]": "["}[char]:
                cut = index
                break
            opened.pop()
    if opened:
        cut = opened[0][0]
    return start + len(text[start:cut].rstrip(",."))


@settings(max_examples=1000)
@given(st.text("()[]a., ", max_size=40), st.lists(st.integers(0, 41), max_size=6))
def test_paths_end_before_their_first_unbalanced_bracket(body: str, starts: list[int]) -> None:
    text = "/" + body
    paths = detection._Paths(text)
    # Like find_links, one reader is asked for paths in order along the text.
    for start in sorted({start for start in starts if start < len(text) and text[start] != " "}):
        assert paths.balanced_end(start) == _path_end_by_scanning(text, start)


# The TLD list and its refresh command.


def test_shipped_tlds_are_lowercase_unicode_single_labels() -> None:
    known = tlds.load_tlds()
    assert {"com", "co", "jp", "uk", "みんな", "рф", "中国", "پاکستان"} <= known
    assert len(known) > 1400
    for tld in known:
        assert tld == tld.lower() and not tld.startswith("xn--") and "." not in tld


# The Public Suffix List (as the publicsuffixlist package ships it) is kept apart from both
# sources of the shipped list, IANA's list of the root zone and twitter-text's conformance data:
# the TLDs of its ICANN section are the independent check of that list.
PUBLIC_SUFFIX_LIST = importlib.resources.files("publicsuffixlist") / "public_suffix_list.dat"
# ICANN TLDs of the Public Suffix List that IANA's root zone list, as of the shipped list's
# version, does not have (the shipped list holds all of that one): mostly variant spellings of
# country codes. The test fails once one of them is in the shipped list, or once another TLD is
# missing from it.
NOT_IN_THE_ROOT_ZONE_LIST = {
    "hotel",
    "السعوديه",
    "السعودیة",
    "السعودیۃ",
    "اليمن",
    "ايران",
    "سوريا",
    "پاكستان",
    "澳门",
    "臺灣",
}
# Names reserved by RFC 2606 that the shipped list adds, for the links of docs and tests.
RESERVED_FOR_EXAMPLES = {"example"}


def _public_suffix_list_tlds() -> set[str]:
    """The top-level labels of the rules in the Public Suffix List's ICANN section."""
    found: set[str] = set()
    in_icann = False
    for raw in PUBLIC_SUFFIX_LIST.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("// ===BEGIN ICANN DOMAINS==="):
            in_icann = True
        elif line.startswith("// ===END ICANN DOMAINS==="):
            break
        elif in_icann and line and not line.startswith("//"):
            rule = line.split()[0].removeprefix("!").removeprefix("*.")
            found.add(tlds.parse_tlds([rule.rsplit(".", 1)[-1]], str(PUBLIC_SUFFIX_LIST)).pop())
    assert len(found) > 1000, f"{PUBLIC_SUFFIX_LIST} has no ICANN section as expected"
    return found


def test_every_tld_of_the_public_suffix_list_is_known() -> None:
    missing = _public_suffix_list_tlds() - tlds.load_tlds()
    assert sorted(missing - NOT_IN_THE_ROOT_ZONE_LIST) == [], (
        "missing from shortener/text/data/tlds.txt"
    )
    assert sorted(NOT_IN_THE_ROOT_ZONE_LIST - missing) == [], "known now: take them out of the set"


@needs_conformance
def test_every_known_tld_beyond_the_public_suffix_list_has_its_reason() -> None:
    # What the Public Suffix List does not have, twitter-text's conformance data asks for (TLDs
    # since withdrawn, e.g. `an`, `tp`), or RFC 2606 reserves.
    twitter_text = {
        case.text.rsplit(".", 1)[-1].lower() for case in _cases("tlds.yml", TLD_SECTIONS)
    }
    unexplained = tlds.load_tlds() - _public_suffix_list_tlds() - twitter_text
    assert unexplained == RESERVED_FOR_EXAMPLES


def test_links_are_found_under_every_tld_of_the_public_suffix_list() -> None:
    for tld in sorted(_public_suffix_list_tlds() - NOT_IN_THE_ROOT_ZONE_LIST):
        text = f"Order https://shop.{tld}/o?id=1 or visit shop.{tld}/help today"
        urls = [link.url for link in find_links(text)]
        assert urls == [f"https://shop.{tld}/o?id=1", f"shop.{tld}/help"], tld


def test_refresh_reads_iana_format_and_keeps_existing_entries(tmp_path: Path) -> None:
    iana = tmp_path / "tlds-alpha-by-domain.txt"
    iana.write_text(
        "# Version 2024010100, Last Updated Mon Jan  1 07:07:01 2024 UTC\nCOM\nXN--P1AI\n"
    )
    output = tmp_path / "tlds.txt"
    assert tlds.main([str(iana), "--output", str(output)]) == 0
    assert tlds.load_tlds(output) == {"com", "рф"}
    header = output.read_text().splitlines()
    assert "tlds-alpha-by-domain.txt: Version 2024010100" in "\n".join(header)
    assert any("python -m shortener.text.tlds" in line for line in header)

    newer = tmp_path / "newer.txt"
    newer.write_text("# Version 2025010100\nNET\n")
    assert tlds.main([str(newer), str(output), "-o", str(output)]) == 0
    assert tlds.load_tlds(output) == {"com", "рф", "net"}
    text = output.read_text()
    assert "Version 2024010100" in text and "Version 2025010100" in text


def test_refresh_rejects_what_is_not_a_tld_list(tmp_path: Path) -> None:
    source = tmp_path / "hosts.txt"
    source.write_text("COM\nexample.com\n")
    output = tmp_path / "tlds.txt"
    assert tlds.main([str(source), "-o", str(output)]) == 1
    assert not output.exists()


def test_refresh_needs_a_file() -> None:
    with pytest.raises(SystemExit) as exit_info:
        tlds.main([])
    assert exit_info.value.code == 2
