from __future__ import annotations

import re
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shortener.text import targets
from shortener.text.targets import MAX_TARGET_LENGTH, InvalidTarget, redirect_target

RFC3986_CHARS = frozenset(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")
LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def assert_valid_target(target: str) -> None:
    assert target.isascii()
    assert set(target) <= RFC3986_CHARS, set(target) - RFC3986_CHARS
    assert LONE_PERCENT.search(target) is None
    assert target.startswith(("http://", "https://"))
    assert len(target) <= MAX_TARGET_LENGTH


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("www.shop.com/deal", "https://www.shop.com/deal"),
        ("shop.com", "https://shop.com"),
        ("Shop.COM/Deal?A=B", "https://shop.com/Deal?A=B"),
        ("bücher.de/x", "https://xn--bcher-kva.de/x"),
        ("shop.com:8080/deal", "https://shop.com:8080/deal"),
        ("//shop.com/deal", "https://shop.com/deal"),
        ("  shop.com/deal\n", "https://shop.com/deal"),
    ],
)
def test_schemeless_link_gets_https(link: str, expected: str) -> None:
    assert redirect_target(link) == expected


def test_schemeless_scheme_can_be_http() -> None:
    assert redirect_target("shop.com/deal", schemeless_scheme="http") == "http://shop.com/deal"
    assert redirect_target("https://shop.com", schemeless_scheme="http") == "https://shop.com"


@pytest.mark.parametrize("scheme", ["ftp", "javascript", "HTTPS", ""])
def test_unusable_schemeless_scheme_is_a_caller_error(scheme: str) -> None:
    with pytest.raises(ValueError, match="schemeless_scheme") as raised:
        redirect_target("shop.com", schemeless_scheme=scheme)
    assert not isinstance(raised.value, InvalidTarget)


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("HTTP://shop.com/deal", "http://shop.com/deal"),
        ("HTTPS://SHOP.COM/Deal", "https://shop.com/Deal"),
        ("hTtPs://Shop.Com", "https://shop.com"),
    ],
)
def test_scheme_and_host_are_lowercased_but_not_the_path(link: str, expected: str) -> None:
    assert redirect_target(link) == expected


def test_internationalised_host_path_query_and_fragment() -> None:
    assert (
        redirect_target("https://bücher.de/straße?q=€#frag")
        == "https://xn--bcher-kva.de/stra%C3%9Fe?q=%E2%82%AC#frag"
    )


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://BÜCHER.de/", "https://xn--bcher-kva.de/"),
        ("https://bücher。de/", "https://xn--bcher-kva.de/"),
        ("https://\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com/", "https://example.com/"),
        ("https://straße.de", "https://xn--strae-oqa.de"),
        ("https://xn--bcher-kva.de/x", "https://xn--bcher-kva.de/x"),
        ("https://XN--BCHER-KVA.de/x", "https://xn--bcher-kva.de/x"),
        ("https://bücher.de./x", "https://xn--bcher-kva.de./x"),
        ("https://shop.com./x", "https://shop.com./x"),
        ("https://my_shop.example.com/", "https://my_shop.example.com/"),
    ],
)
def test_host_normalisation(link: str, expected: str) -> None:
    assert redirect_target(link) == expected


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("http://xn--ls8h.XN--ls8h.la/", "http://xn--ls8h.xn--ls8h.la/"),
        ("http://✪df.ws/ejp", "http://xn--df-oiy.ws/ejp"),
        ("https://💩.la/", "https://xn--ls8h.la/"),
        ("https://I♥NY.example/", "https://xn--iny-zx5a.example/"),
        ("https://xn--iny-zx5a.example/", "https://xn--iny-zx5a.example/"),
    ],
)
def test_hosts_browsers_open_map_to_their_a_labels(link: str, expected: str) -> None:
    # Symbols and emoji are valid in UTS #46 (as browsers map hosts), though not in IDNA 2008.
    assert redirect_target(link) == expected
    assert redirect_target(expected) == expected


@pytest.mark.parametrize(
    "link",
    [
        "https://xn--zz.com/",
        "https://xn--abc-.com/",
        "https://xn--ab-5da.com/",
        "https://xn--.com/",
        "https://\u0301abc.com/",
        "https://a\u200cb.com/",
        "https://שלום1a.com/",
        "https://\ufffd.com/",
    ],
)
def test_hosts_browsers_refuse_stay_invalid(link: str) -> None:
    with pytest.raises(InvalidTarget, match="host"):
        redirect_target(link)


@pytest.mark.parametrize(
    "link",
    [
        "https://shop.com/%E2%82%AC",
        "https://shop.com/?q=%E2%82%AC",
        "https://shop.com/#%E2%82%AC",
        "https://shop.com/a%2Fb?x=%e2%82%ac&y=%20#%7e",
        "https://shop.com/?b=2&a=1&&=&a=3",
        "https://shop.com",
        "https://shop.com?q=1",
        "https://shop.com#top",
        "https://shop.com/?",
        "https://shop.com/#",
        "https://shop.com/a/./../b//c",
        "https://shop.com/p;x=1:2@3!$&'()*+,=~?q=/?:@#f/?",
    ],
)
def test_already_valid_urls_are_unchanged(link: str) -> None:
    assert redirect_target(link) == link


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://shop.com/50%", "https://shop.com/50%25"),
        ("https://shop.com/%zz", "https://shop.com/%25zz"),
        ("https://shop.com/%4", "https://shop.com/%254"),
        ("https://shop.com/?off=50%&x=%E2", "https://shop.com/?off=50%25&x=%E2"),
        ("https://shop.com/#100%", "https://shop.com/#100%25"),
        ("https://shop.com/%%41", "https://shop.com/%25%41"),
    ],
)
def test_percent_without_escape_is_encoded(link: str, expected: str) -> None:
    assert redirect_target(link) == expected


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ('https://shop.com/a b<c>"d', "https://shop.com/a%20b%3Cc%3E%22d"),
        ('https://shop.com/?q=a b<c>"d', "https://shop.com/?q=a%20b%3Cc%3E%22d"),
        ('https://shop.com/#a b<c>"d', "https://shop.com/#a%20b%3Cc%3E%22d"),
        ("https://shop.com/\\^`{|}[]", "https://shop.com/%5C%5E%60%7B%7C%7D%5B%5D"),
        ("https://shop.com/a\tb\x00c\x7fd", "https://shop.com/a%09b%00c%7Fd"),
        ("https://shop.com/#a#b", "https://shop.com/#a%23b"),
        ("https://shop.com/?a?b", "https://shop.com/?a?b"),
        ("https://shop.com/€ 😀", "https://shop.com/%E2%82%AC%20%F0%9F%98%80"),
    ],
)
def test_characters_not_allowed_literally_are_encoded(link: str, expected: str) -> None:
    assert redirect_target(link) == expected


@pytest.mark.parametrize(
    "link",
    [
        "http://192.168.0.1/x",
        "http://192.168.0.1:8080/x?y#z",
        "https://255.255.255.255",
        "http://[2001:db8::1]/x",
        "http://[::1]:8443/",
        "http://[::ffff:192.0.2.1]",
    ],
)
def test_ip_literal_hosts_pass_through(link: str) -> None:
    assert redirect_target(link) == link


@pytest.mark.parametrize(
    "link",
    [
        "http://1.2.3.256/",
        "http://1.2.3/",
        "http://0x7f.1/",
        "http://2130706433/",
        "http://010.0.0.1/",
        "http://shop.123/",
        "http://[2001:db8::g]/",
        "http://[2001:db8::1/",
        "http://[2001:db8::1]x/",
        "http://[fe80::1%25eth0]/",
        "http://[v1.x]/",
    ],
)
def test_malformed_ip_literals_are_rejected(link: str) -> None:
    with pytest.raises(InvalidTarget):
        redirect_target(link)


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://shop.com:8443/x", "https://shop.com:8443/x"),
        ("http://shop.com:1", "http://shop.com:1"),
        ("http://shop.com:65535?q", "http://shop.com:65535?q"),
        ("https://bücher.de:8443/", "https://xn--bcher-kva.de:8443/"),
        ("https://shop.com:/x", "https://shop.com/x"),
    ],
)
def test_port_is_kept(link: str, expected: str) -> None:
    assert redirect_target(link) == expected


@pytest.mark.parametrize(
    "port", ["0", "00000", "65536", "99999", "123456", "-1", "8o", "\uff18\uff10", "80:80", " 80"]
)
def test_invalid_port_is_rejected(port: str) -> None:
    with pytest.raises(InvalidTarget, match="port"):
        redirect_target(f"https://shop.com:{port}/x")


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "ftp://shop.com/file",
        "tel:+15551234567",
        "tel:911",
        "sms:+15551234567",
        "mailto:someone@shop.com",
        "intent://scan/#Intent;scheme=zxing;end",
        "com.shop.app://open",
        "blob:https://shop.com/uuid",
        "http:shop.com",
        "https:/shop.com",
        "https:\\\\shop.com",
    ],
)
def test_dangerous_or_unsupported_schemes_are_rejected(link: str) -> None:
    with pytest.raises(InvalidTarget) as raised:
        redirect_target(link)
    assert str(raised.value)


@pytest.mark.parametrize(
    "link",
    [
        "http://user:pass@shop.com/",
        "http://user@shop.com/",
        "https://shop.com@evil.example/",
        "https://@shop.com/",
        "user@shop.com",
        "https://bank.com:443@evil.example/",
    ],
)
def test_userinfo_is_rejected(link: str) -> None:
    with pytest.raises(InvalidTarget, match="user name or password"):
        redirect_target(link)


@pytest.mark.parametrize(
    "link", ["https://", "https:///path", "https://:443/", "http://?q=1", "http://#x", "/path"]
)
def test_empty_host_is_rejected(link: str) -> None:
    with pytest.raises(InvalidTarget, match="no host"):
        redirect_target(link)


@pytest.mark.parametrize("link", ["", "   ", "\n\t"])
def test_empty_link_is_rejected(link: str) -> None:
    with pytest.raises(InvalidTarget, match="empty"):
        redirect_target(link)


@pytest.mark.parametrize(
    "link",
    [
        "https://sho p.com/",
        "https://shop.com\\@evil.example/",
        "https://shop.com\\evil.example/",
        "https://shop%2Ecom/",
        "https://exa<mple.com/",
        "https://shop..com/",
        "https://.shop.com/",
        "https://shop.com!/",
        "https://" + "a" * 64 + ".com/",
        "https://" + "a." * 127 + "com/",
        "https://xn--a.com/",
        "https://bü cher.de/",
        "https://⒈.com/",
    ],
)
def test_invalid_host_is_rejected(link: str) -> None:
    with pytest.raises(InvalidTarget, match="host"):
        redirect_target(link)


def test_length_limit() -> None:
    base = "https://shop.com/"
    at_limit = base + "a" * (MAX_TARGET_LENGTH - len(base))
    assert redirect_target(at_limit) == at_limit
    with pytest.raises(InvalidTarget, match=str(MAX_TARGET_LENGTH)):
        redirect_target(at_limit + "a")
    # Only the encoded form counts: each "€" becomes nine characters.
    assert len(redirect_target("shop.com/" + "€" * 453)) == MAX_TARGET_LENGTH - 2
    with pytest.raises(InvalidTarget, match=str(MAX_TARGET_LENGTH)):
        redirect_target("shop.com/" + "€" * 454)


def test_lone_surrogate_is_rejected() -> None:
    with pytest.raises(InvalidTarget, match="Unicode"):
        redirect_target("https://shop.com/\ud800")


def test_invalid_target_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="http and https"):
        redirect_target("javascript:alert(1)")


@given(st.text(max_size=300))
@example("")
@example("%")
@example("%E2%82%AC%zz%4")
@example("?#?#%")
@example("a\ud7ff\ue000\U0010ffff")
def test_any_path_becomes_a_valid_idempotent_target(text: str) -> None:
    target = redirect_target("https://example.com/" + text)
    assert_valid_target(target)
    assert target.startswith("https://example.com/")
    assert redirect_target(target) == target


@given(
    st.sampled_from(["", "http://", "HTTPS://", "//"]),
    st.text(max_size=20),
    st.sampled_from(["", ":1", ":8080", ":"]),
    st.text(max_size=60),
)
@example("https://", "bücher.de", "", "/straße?q=€#frag")
@example("", "xn--bcher-kva.de", ":8443", "/%E2%82%AC")
def test_any_link_is_rejected_or_valid_and_idempotent(
    prefix: str, host: str, port: str, rest: str
) -> None:
    try:
        target = redirect_target(prefix + host + port + rest)
    except InvalidTarget as error:
        assert str(error)
        return
    assert_valid_target(target)
    assert redirect_target(target) == target


@given(st.text(max_size=200))
def test_arbitrary_text_raises_nothing_but_invalid_target(text: str) -> None:
    try:
        target = redirect_target(text)
    except InvalidTarget:
        return
    assert_valid_target(target)
    assert redirect_target(target) == target


valid_ascii_url = st.from_regex(
    r"https?://[a-z0-9]{1,10}(\.[a-z0-9_-]{1,10}){0,3}(:[1-9][0-9]{0,3})?"
    r"(/[A-Za-z0-9._~!$&'()*+,;=:@/-]*)?(\?[A-Za-z0-9._~!$&'()*+,;=:@/?%-]*)?"
    r"(#[A-Za-z0-9%?/-]*)?",
    fullmatch=True,
)


@given(valid_ascii_url)
def test_fast_path_agrees_with_full_conversion(link: str) -> None:
    try:
        expected = targets._convert(link, "https")
    except InvalidTarget as error:
        with pytest.raises(InvalidTarget) as raised:
            redirect_target(link)
        assert str(raised.value) == str(error)
        return
    assert redirect_target(link) == expected
