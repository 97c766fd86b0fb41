"""Webhooks against real receivers on loopback: signed events for clicks and opens, retries
with the same webhook-id, the failed list and its replay, endpoints that do not wait for each
other, refused private addresses, and erasure."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from shortener.config import Settings
from shortener.domain.webhooks import Webhook
from shortener.outbound.addresses import is_public
from tests.support.apps import AUTH, CONSENTED, OTHER_AUTH, PHONE, relative, shorten
from tests.support.receivers import Received, Receiver

BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
PIXEL = re.compile(r'src="([^"]+/o/[^"]+)"')
OpenClient = Callable[[Settings], Any]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


@pytest.fixture
async def hooks(
    client_for: OpenClient, make_settings: Callable[..., Settings]
) -> httpx.AsyncClient:
    """The app with private webhook addresses allowed (the receivers are on loopback), and
    retries a fraction of a second apart."""
    opened: httpx.AsyncClient = await client_for(
        make_settings(
            webhook_allow_private=True, webhook_backoff_seconds=0.2, webhook_max_attempts=8
        )
    )
    return opened


async def put_webhook(
    client: httpx.AsyncClient, name: str, url: str, auth: dict[str, str] = AUTH, **fields: Any
) -> dict[str, Any]:
    response = await client.put(f"/v1/webhooks/{name}", json={"url": url, **fields}, headers=auth)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def tracked_link(client: httpx.AsyncClient, **message: Any) -> dict[str, Any]:
    message.setdefault("recipient", CONSENTED)
    link: dict[str, Any] = (await shorten(client, "Sale: https://shop.example/a", **message))[
        "links"
    ][0]
    return link


async def tap(client: httpx.AsyncClient, url: str, agent: str = PHONE) -> None:
    response = await client.get(relative(url), headers={"user-agent": agent})
    assert response.status_code in (200, 302), response.text


def of_type(kind: str) -> Callable[[list[Received]], bool]:
    return lambda events: any(got.event()["type"] == kind for got in events)


async def test_clicks_and_opens_arrive_signed(hooks: httpx.AsyncClient, receiver: Receiver) -> None:
    webhook = await put_webhook(hooks, "crm", receiver.url)
    assert webhook["secret"].startswith("whsec_")
    link = await tracked_link(hooks, message_id="m-1", campaign="spring")
    await tap(hooks, link["short_url"])
    html = await shorten(
        hooks,
        '<a href="https://shop.example/b">Shop</a>',
        content_type="html",
        recipient=CONSENTED,
    )
    (pixel,) = PIXEL.findall(html["body"])
    await tap(hooks, pixel)
    events = await receiver.wait_for(lambda got: len(got) >= 2, "a click and an open")
    payloads = [got.verified(webhook["secret"]) for got in events]
    by_type = {payload["type"]: payload for payload in payloads}
    click = by_type["interaction.click"]["data"]
    assert (click["code"], click["url"], click["contact_id"], click["campaign"]) == (
        link["code"],
        "https://shop.example/a",
        "c-42",
        "spring",
    )
    assert click["message_id"] == "m-1" and click["bot"] is False
    assert by_type["interaction.open"]["data"]["type"] == "open"
    for got in events:
        assert got.headers["content-type"] == "application/json"
        assert got.webhook_id.startswith("evt_")
    # A signature by another secret does not verify.
    with pytest.raises(Exception, match="signature"):
        events[0].verified("whsec_" + "A" * 32)
    # The same events are what /v1/interactions lists.
    listed = (await hooks.get("/v1/interactions", headers=AUTH)).json()["interactions"]
    assert {item["id"] for item in listed} == {p["data"]["id"] for p in payloads}


async def test_bots_go_only_where_asked_for(hooks: httpx.AsyncClient) -> None:
    people, everyone = Receiver().start(), Receiver().start()
    try:
        await put_webhook(hooks, "people", people.url)
        await put_webhook(hooks, "everyone", everyone.url, include_bots=True)
        link = await tracked_link(hooks)
        await tap(hooks, link["short_url"], agent=BOT)
        await tap(hooks, link["short_url"])
        got = await everyone.wait_for(lambda events: len(events) >= 2, "both taps")
        assert sorted(e.event()["data"]["bot"] for e in got) == [False, True]
        await people.wait_for(lambda events: len(events) >= 1, "the person's tap")
        # The bot's tap was read by this endpoint's group as well, and skipped.
        await asyncio.sleep(0.5)
        assert [e.event()["data"]["bot"] for e in people.events()] == [False]
    finally:
        people.stop()
        everyone.stop()


async def test_events_of_one_type_only(hooks: httpx.AsyncClient, receiver: Receiver) -> None:
    await put_webhook(hooks, "opens", receiver.url, events=["interaction.open"])
    await tap(hooks, (await tracked_link(hooks))["short_url"])
    html = await shorten(
        hooks, '<a href="https://shop.example/b">B</a>', content_type="html", recipient=CONSENTED
    )
    await tap(hooks, PIXEL.findall(html["body"])[0])
    got = await receiver.wait_for(lambda events: len(events) >= 1, "the open")
    await asyncio.sleep(0.5)
    assert [e.event()["type"] for e in receiver.events()] == ["interaction.open"]
    assert got[0].event()["type"] == "interaction.open"


async def test_a_receiver_down_for_a_while_gets_everything_with_the_same_ids(
    hooks: httpx.AsyncClient, receiver: Receiver
) -> None:
    await put_webhook(hooks, "crm", receiver.url)
    failures = {"left": 2}

    def flaky(got: Received) -> int:
        if failures["left"] > 0:
            failures["left"] -= 1
            return 503
        return 204

    receiver.status = flaky
    receiver.stop()
    link = await tracked_link(hooks)
    for _ in range(3):
        await tap(hooks, link["short_url"])
    # Refused connections first; then, once it listens again, two 503s before it takes them.
    await asyncio.sleep(0.6)
    receiver.start()
    got = await receiver.wait_for(
        lambda events: len({e.webhook_id for e in events}) == 3 and len(events) >= 5,
        "three events, two of them retried",
    )
    ids = [e.webhook_id for e in got]
    assert len(set(ids)) == 3
    retried = [webhook_id for webhook_id in set(ids) if ids.count(webhook_id) > 1]
    assert retried, ids
    status = (await hooks.get("/v1/webhooks/crm", headers=AUTH)).json()
    assert (status["failed"], status["backlog"]) == (0, 0)


async def test_given_up_events_are_listed_and_replayed(
    client_for: OpenClient, make_settings: Callable[..., Settings], receiver: Receiver
) -> None:
    hooks = await client_for(
        make_settings(
            webhook_allow_private=True, webhook_backoff_seconds=0.1, webhook_max_attempts=3
        )
    )
    await put_webhook(hooks, "crm", receiver.url)
    receiver.status = lambda got: 500
    await tap(hooks, (await tracked_link(hooks))["short_url"])
    # Three attempts (the setting), then it is given up.
    await receiver.wait_for(lambda events: len(events) >= 3, "three attempts")
    for _ in range(100):
        failed = (await hooks.get("/v1/webhooks/crm/failed", headers=AUTH)).json()["failed"]
        if failed:
            break
        await asyncio.sleep(0.1)
    (event,) = failed
    assert (event["attempts"], event["type"]) == (3, "interaction.click")
    assert event["webhook_id"] == receiver.events()[0].webhook_id
    listed = (await hooks.get("/v1/webhooks", headers=AUTH)).json()["webhooks"]
    assert (listed[0]["failed"], listed[0]["backlog"]) == (1, 0)
    await asyncio.sleep(0.5)
    assert len(receiver.events()) == 3

    receiver.status = lambda got: 204
    replayed = await hooks.post("/v1/webhooks/crm/replay", headers=AUTH)
    assert replayed.json() == {"replayed": 1}
    got = await receiver.wait_for(lambda events: len(events) >= 4, "the replay")
    assert got[3].webhook_id == event["webhook_id"]
    assert (await hooks.get("/v1/webhooks/crm/failed", headers=AUTH)).json() == {"failed": []}


async def test_a_hanging_endpoint_does_not_hold_up_another(hooks: httpx.AsyncClient) -> None:
    hanging, quick = Receiver().start(), Receiver().start()
    hanging.hold = threading.Event()
    try:
        await put_webhook(hooks, "hanging", hanging.url)
        await put_webhook(hooks, "quick", quick.url)
        for _ in range(3):
            await tap(hooks, (await tracked_link(hooks))["short_url"])
        await hanging.wait_for(lambda events: len(events) >= 1, "the hanging endpoint called")
        await quick.wait_for(lambda events: len(events) >= 3, "every event to the quick one")
        # All of the quick endpoint's events arrived while the other one still hangs.
        assert not hanging.hold.is_set()
    finally:
        hanging.hold.set()
        hanging.stop()
        quick.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "https://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
    ],
)
async def test_private_addresses_are_refused(client: httpx.AsyncClient, url: str) -> None:
    response = await client.put("/v1/webhooks/crm", json={"url": url}, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/webhooks", headers=AUTH)).json() == {"webhooks": []}


async def test_private_addresses_are_allowed_when_the_setting_says_so(
    hooks: httpx.AsyncClient,
) -> None:
    await put_webhook(hooks, "crm", "http://127.0.0.1:9/hook")


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://hooks.example.com/x"},
        {"url": "https://user:pw@hooks.example.com/x"},
        {"url": "https://hooks.example.com:99999/x"},
        {"url": "https://hooks.example.com/x", "events": ["interaction.tap"]},
        {"url": "https://hooks.example.com/x", "include_bots": "yes"},
        {"url": "https://hooks.example.com/" + "x" * 3000},
        {"url": "https://hooks.example.com/x", "secret": "mine"},
    ],
)
async def test_bad_endpoints_are_refused(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.put("/v1/webhooks/crm", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert (await client.get("/v1/webhooks", headers=AUTH)).json() == {"webhooks": []}


async def test_endpoints_are_the_orgs_own(client: httpx.AsyncClient) -> None:
    first = await put_webhook(client, "crm", "https://hooks.example.com/a")
    again = await put_webhook(client, "crm", "https://hooks.example.com/b", include_bots=True)
    # A change keeps the secret and the creation time.
    assert (again["secret"], again["created_at"]) == (first["secret"], first["created_at"])
    assert again["url"].endswith("/b") and again["include_bots"] is True
    assert (await client.get("/v1/webhooks", headers=OTHER_AUTH)).json() == {"webhooks": []}
    for method, path in (
        ("GET", "/v1/webhooks/crm"),
        ("DELETE", "/v1/webhooks/crm"),
        ("GET", "/v1/webhooks/crm/failed"),
        ("POST", "/v1/webhooks/crm/replay"),
    ):
        response = await client.request(method, path, headers=OTHER_AUTH)
        assert response.status_code == 404, (method, path)
    bad_name = await client.put(
        "/v1/webhooks/a%20b", json={"url": "https://hooks.example.com/a"}, headers=AUTH
    )
    assert bad_name.status_code == 422
    assert (await client.delete("/v1/webhooks/crm", headers=AUTH)).status_code == 204
    assert (await client.get("/v1/webhooks/crm", headers=AUTH)).status_code == 404


async def test_erasure_leaves_no_trace_and_is_announced(
    hooks: httpx.AsyncClient, receiver: Receiver, redis: aioredis.Redis
) -> None:
    webhook = await put_webhook(hooks, "crm", receiver.url)
    receiver.status = lambda got: 503
    erased_link = await tracked_link(hooks, message_id="m-erase")
    kept_link = await tracked_link(hooks, recipient={"contact_id": "c-7", "tracking_consent": True})
    for _ in range(2):
        await tap(hooks, erased_link["short_url"])
    await tap(hooks, kept_link["short_url"])
    # The receiver refuses them: the deliveries stay pending with the contact in them.
    await receiver.wait_for(lambda events: len(events) >= 3, "the first attempts")
    answer = await hooks.delete("/v1/contacts/c-42", headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"interactions_erased": 2, "links_erased": 1}

    listed = (await hooks.get("/v1/interactions", headers=AUTH)).json()["interactions"]
    assert [item["contact_id"] for item in listed] == ["c-7"]
    only = await hooks.get("/v1/interactions", params={"contact_id": "c-42"}, headers=AUTH)
    assert only.json()["interactions"] == []
    records = [v for key in await redis.keys("l:*") for v in (await redis.hgetall(key)).values()]
    assert not any(b"c-42" in value for value in records)
    assert await redis.keys("*c-42*") == []
    # The link still redirects, anonymously from now on.
    await tap(hooks, erased_link["short_url"])
    after = (await hooks.get("/v1/interactions", headers=AUTH)).json()["interactions"]
    assert after[-1]["contact_id"] is None

    receiver.status = lambda got: 204
    seen_before = len(receiver.events())
    got = await receiver.wait_for(of_type("contact.erased"), "the erasure event")
    erased = next(e for e in got if e.event()["type"] == "contact.erased")
    assert erased.verified(webhook["secret"])["data"] == {
        "contact_id": "c-42",
        "interactions_erased": 2,
        "links_erased": 1,
    }
    await receiver.wait_for(
        lambda events: (
            sum(e.event()["type"] == "interaction.click" for e in events[seen_before:]) >= 2
        ),
        "the other clicks",
    )
    # No delivery after the erasure names the contact.
    for got_event in receiver.events()[seen_before:]:
        if got_event.event()["type"] == "interaction.click":
            assert got_event.event()["data"]["contact_id"] != "c-42"


async def test_erasing_a_contact_without_traces_answers_zeros(client: httpx.AsyncClient) -> None:
    answer = await client.delete("/v1/contacts/nobody%2Fhere", headers=AUTH)
    assert answer.json() == {"interactions_erased": 0, "links_erased": 0}
    too_long = await client.delete("/v1/contacts/" + "x" * 257, headers=AUTH)
    assert too_long.status_code == 400


async def test_interactions_filters(client: httpx.AsyncClient) -> None:
    first = await tracked_link(client, campaign="spring", message_id="m-1")
    second = await tracked_link(
        client, campaign="autumn", recipient={"contact_id": "c-9", "tracking_consent": True}
    )
    await tap(client, first["short_url"])
    await tap(client, second["short_url"])
    await tap(client, second["short_url"])

    async def page(**params: str) -> list[dict[str, Any]]:
        response = await client.get("/v1/interactions", params=params, headers=AUTH)
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["interactions"]
        return found

    assert [i["campaign"] for i in await page(campaign="autumn")] == ["autumn", "autumn"]
    assert [i["message_id"] for i in await page(message_id="m-1")] == ["m-1"]
    assert len(await page(contact_id="c-9")) == 2
    assert len(await page(contact_id="c-9", campaign="spring")) == 0
    assert len(await page(type="click")) == 3
    assert await page(type="open") == []
    one = await client.get(
        "/v1/interactions", params={"campaign": "autumn", "limit": "1"}, headers=AUTH
    )
    rest = await page(campaign="autumn", after=one.json()["next"])
    assert len(one.json()["interactions"]) == 1 and len(rest) == 1
    for params in ({"type": "tap"}, {"campaign": "x" * 129}, {"contact_id": "x" * 257}):
        response = await client.get("/v1/interactions", params=params, headers=AUTH)
        assert response.status_code == 400, params
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_filtered_read_looks_through_a_bounded_number(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    from shortener.domain.limits import MAX_SCANNED_PER_PAGE
    from shortener.store.keys import interactions_key

    # Interactions that match no filter, written straight into the stream.
    pipe = redis.pipeline()
    for n in range(MAX_SCANNED_PER_PAGE + 50):
        pipe.xadd(interactions_key("org-a"), {"t": "c", "u": f"https://a.example/{n}", "b": "0"})
    await pipe.execute()
    first = await client.get("/v1/interactions", params={"campaign": "none"}, headers=AUTH)
    assert first.json()["interactions"] == [] and first.json()["next"] is not None
    second = await client.get(
        "/v1/interactions", params={"campaign": "none", "after": first.json()["next"]}, headers=AUTH
    )
    assert second.json()["interactions"] == []
    assert second.json()["next"] != first.json()["next"]


async def test_the_readme_receiver_verifies_a_delivered_event(
    hooks: httpx.AsyncClient, receiver: Receiver
) -> None:
    webhook = await put_webhook(hooks, "crm", receiver.url)
    await tap(hooks, (await tracked_link(hooks))["short_url"])
    (got,) = await receiver.wait_for(lambda events: len(events) >= 1, "a click")
    receive = readme_receiver(webhook["secret"])
    assert receive(got.body, got.headers)["type"] == "interaction.click"
    tampered = got.body.replace(b"click", b"clack")
    with pytest.raises(Exception, match="signature"):
        receive(tampered, got.headers)


def readme_receiver(secret: str) -> Callable[[bytes, dict[str, str]], dict[str, Any]]:
    """The README's receiver, as a reader would paste it, with the endpoint's secret."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (block,) = re.findall(r"^```python\n(.*?)^```$", readme, re.MULTILINE | re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(block.replace('"whsec_..."', repr(secret)), namespace)  # noqa: S102
    receive: Callable[[bytes, dict[str, str]], dict[str, Any]] = namespace["receive"]
    return receive


async def test_a_name_that_resolves_to_loopback_is_refused_at_delivery(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """An endpoint whose name turned private after it was checked (stored here directly, as
    DNS rebinding would leave it) is never called."""
    runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    webhook = Webhook(
        name="rebound",
        url=receiver.url.replace("127.0.0.1", "localhost"),
        events=["interaction.click"],
        include_bots=False,
        secret="whsec_" + "A" * 32,
        created_at=datetime.now(UTC),
    )
    await runtime.store.save_webhook("org-a", "rebound", webhook.model_dump_json(), new=True)
    await tap(client, (await tracked_link(client))["short_url"])
    for _ in range(100):
        status = (await client.get("/v1/webhooks/rebound", headers=AUTH)).json()
        if status["backlog"] == 1:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.5)
    assert receiver.events() == []
    assert (await client.get("/v1/webhooks/rebound", headers=AUTH)).json()["backlog"] == 1


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 (an address checked, not bound)
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("224.0.0.1", False),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


async def test_erasing_a_contact_with_more_entries_than_its_index_field_holds(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    from shortener.store.scripts import INDEX_FIELD_BYTES

    link = await tracked_link(client)
    # Each interaction id is over 15 characters: these outgrow the contact's field.
    taps = INDEX_FIELD_BYTES // 15 + 10
    for _ in range(taps):
        await tap(client, link["short_url"])
    assert await redis.keys("{o:org-a}:c:*"), "the index went on in a list of its own"
    answer = await client.delete("/v1/contacts/c-42", headers=AUTH)
    assert answer.json() == {"interactions_erased": taps, "links_erased": 1}
    assert (await client.get("/v1/interactions", headers=AUTH)).json()["interactions"] == []
    assert await redis.keys("{o:org-a}:c:*") == []
