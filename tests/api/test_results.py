"""What a shorten result and the interactions say about each link: the address a browser
follows, and every link found but left alone, with the reason."""

from __future__ import annotations

import re

import httpx

from tests.support.apps import AUTH, BASE_URL, CONSENTED, PHONE, shorten


async def test_html_links_report_the_address_a_browser_follows(client: httpx.AsyncClient) -> None:
    body = (
        '<a href="https://shop.example.com/s?x=1&amp;y=2">S</a> '
        "<a href=' https://shop.example.com/&#116;ea '>T</a>"
    )
    results = [
        await shorten(client, content_type="html", body=body, recipient=recipient)
        for recipient in (CONSENTED, None)
    ]
    for result in results:
        urls = [link["url"] for link in result["links"]]
        assert urls == ["https://shop.example.com/s?x=1&y=2", "https://shop.example.com/tea"]
    tracked = results[0]["links"][0]
    response = await client.get(tracked["tracking_url"][len(BASE_URL) :])
    assert response.headers["location"] == "https://shop.example.com/s?x=1&y=2" == tracked["url"]


async def test_opens_carry_no_url(client: httpx.AsyncClient) -> None:
    result = await shorten(
        client,
        content_type="html",
        body='<a href="https://shop.example.com/o">O</a>',
        recipient=CONSENTED,
    )
    pixel = re.search(r'<img src="[^"]+(/api/orgs/[^"]+)"', result["body"])
    assert pixel is not None
    assert (await client.get(pixel.group(1), headers={"user-agent": PHONE})).status_code == 200
    page = (await client.get("/v1/interactions", headers=AUTH)).json()
    ((opened),) = page["interactions"]
    assert opened["type"] == "open" and opened["url"] is None


async def test_hosts_that_browsers_open_are_shortened_to_their_a_labels(
    client: httpx.AsyncClient,
) -> None:
    # Both from twitter-text's conformance cases: emoji hosts that IDNA 2008 refuses.
    body = "test http://xn--ls8h.XN--ls8h.la/ and http://✪df.ws/ejp"
    result = await shorten(client, body=body)
    assert result["skipped"] == []
    assert [link["url"] for link in result["links"]] == [
        "http://xn--ls8h.XN--ls8h.la/",
        "http://✪df.ws/ejp",
    ]
    # Where each code redirects (the tap's Location); httpx itself cannot parse such hosts.
    targets = []
    for link in result["links"]:
        response = await client.get(f"/v1/links/{link['code']}", headers=AUTH)
        targets.append(response.json()["url"])
    assert targets == ["http://xn--ls8h.xn--ls8h.la/", "http://xn--df-oiy.ws/ejp"]


async def test_links_left_alone_are_listed_with_the_reason(client: httpx.AsyncClient) -> None:
    long_link = "https://shop.example.com/" + "a" * 5000
    body = f"A http://\u0301abc.com/x B https://shop.com:99999/x C {long_link} D https://ok.example.com/"
    result = await shorten(client, body=body)
    assert [link["url"] for link in result["links"]] == ["https://ok.example.com/"]
    skipped = result["skipped"]
    assert [item["url"] for item in skipped] == [
        "http://\u0301abc.com/x",
        "https://shop.com:99999/x",
        long_link,
    ]
    reasons = [item["reason"] for item in skipped]
    assert "host" in reasons[0] and "port" in reasons[1] and "longer" in reasons[2]
    assert result["body"].startswith("A http://\u0301abc.com/x B https://shop.com:99999/x C ")

    markup = (
        '<a href="https://user:pass@shop.example.com/">U</a>'
        '<a href="https://shop.example.com/fine">F</a>'
    )
    for recipient in (CONSENTED, None):
        html = await shorten(client, content_type="html", body=markup, recipient=recipient)
        assert [link["url"] for link in html["links"]] == ["https://shop.example.com/fine"]
        ((item),) = html["skipped"]
        assert item["url"] == "https://user:pass@shop.example.com/"
        assert "password" in item["reason"]
        assert 'href="https://user:pass@shop.example.com/"' in html["body"]

    plain = await shorten(client, body="nothing to skip: https://shop.example.com/")
    assert plain["skipped"] == []
