"""Host patterns: a pattern covers its host and every subdomain, on IDNA-normalised names."""

from __future__ import annotations

import pytest

from shortener.config import DEFAULT_BLOCKED_DESTINATIONS
from shortener.domain.destinations import DestinationPolicy
from shortener.text.hosts import HostPatterns, InvalidPattern, normalise_pattern, target_host
from shortener.text.targets import redirect_target


def host_of(link: str) -> str:
    return target_host(redirect_target(link))


@pytest.mark.parametrize(
    ("host", "pattern"),
    [
        ("bit.ly", "bit.ly"),
        ("www.bit.ly", "bit.ly"),
        ("a.b.bit.ly", "bit.ly"),
        ("notbit.ly", None),
        ("ly", None),
        ("bit.ly.example", None),
    ],
)
def test_a_pattern_covers_its_host_and_subdomains_only(host: str, pattern: str | None) -> None:
    assert HostPatterns.parse(["bit.ly", "tinyurl.com"]).match(host) == pattern


@pytest.mark.parametrize("written", ["bücher.example", "xn--bcher-kva.example", "BÜCHER.Example."])
@pytest.mark.parametrize(
    "link", ["https://bücher.example/x", "https://shop.xn--bcher-kva.example/", "BÜCHER.example"]
)
def test_unicode_and_a_label_forms_are_one_pattern(written: str, link: str) -> None:
    assert HostPatterns.parse([written]).match(host_of(link)) == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("Bit.LY", "bit.ly"),
        ("bit.ly.", "bit.ly"),
        (" t.co ", "t.co"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_patterns_are_normalised(written: str, normal: str) -> None:
    assert normalise_pattern(written) == normal


@pytest.mark.parametrize(
    "written",
    ["", ".", ".bit.ly", "bit.ly/x", "https://bit.ly", "bit.ly:80", "a b", "a..b", "u@bit.ly"],
)
def test_what_is_no_host_is_refused(written: str) -> None:
    with pytest.raises(InvalidPattern):
        normalise_pattern(written)


def test_a_target_host_drops_a_trailing_dot() -> None:
    assert HostPatterns.parse(["bit.ly"]).match(host_of("https://www.bit.ly./x")) == "bit.ly"


def test_matching_looks_up_each_suffix_once_not_each_pattern() -> None:
    class CountingSet(frozenset[str]):
        lookups = 0

        def __contains__(self, item: object) -> bool:
            CountingSet.lookups += 1
            return super().__contains__(item)

    many = CountingSet(f"host{i}.example" for i in range(10_000))
    assert HostPatterns(many).match("a.b.c.example") is None
    assert CountingSet.lookups == 4


def test_the_default_block_list_holds_the_public_shorteners() -> None:
    defaults = HostPatterns.parse(DEFAULT_BLOCKED_DESTINATIONS)
    for host in ("bit.ly", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly"):
        assert defaults.match(host) == host
    assert defaults.patterns == DEFAULT_BLOCKED_DESTINATIONS


def test_a_policy_refuses_blocked_hosts_and_hosts_outside_a_non_empty_allow_list() -> None:
    everywhere = DestinationPolicy(HostPatterns.parse(["bit.ly"]))
    org = everywhere.for_org(
        blocked=HostPatterns.parse(["bad.contoso.com"]),
        allowed=HostPatterns.parse(["contoso.com", "bücher.example"]),
    )
    assert everywhere.refusal("https://shop.example/") is None
    assert everywhere.refusal("https://go.bit.ly/x") is not None
    assert org.refusal("https://www.contoso.com/") is None
    assert org.refusal("https://xn--bcher-kva.example/") is None
    assert "bad.contoso.com" in (org.refusal("https://x.bad.contoso.com/") or "")
    assert "allowed" in (org.refusal("https://shop.example/") or "")
    # The settings' list holds for an org whose own lists would allow the host.
    assert everywhere.for_org(
        blocked=HostPatterns(), allowed=HostPatterns.parse(["bit.ly"])
    ).refusal("https://bit.ly/x")
