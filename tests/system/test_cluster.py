"""The service on a real Redis Cluster (three masters with a replica each), configured with
the address of one node only, as `SHORTENER_REDIS_CLUSTER=1` deployments are."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.cluster import RedisCluster as SyncRedisCluster
from redis.crc import key_slot

from shortener.config import Settings
from shortener.domain.codes import CodeCodec
from shortener.store.embedded import COMPACT_HASH_CONFIG
from shortener.store.keys import CODE_MAC_KEY, link_key
from tests.support import service
from tests.support.apps import (
    ADMIN_AUTH,
    ADMIN_KEY,
    API_KEY,
    AUTH,
    BASE_URL,
    CONSENTED,
    OTHER_AUTH,
    OTHER_KEY,
    PHONE,
    app_clients,
    bot_reasons,
    mail_with_honeypot,
    relative,
    settled_interactions,
    shorten,
    start_of_second,
)
from tests.support.corpus import DESKTOP
from tests.support.receivers import Receiver
from tests.support.redis_cluster import ClusterServer, LocalCluster, wait_until
from tests.support.redis_servers import free_port

BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
# Hang guard only: noticing a dead master takes about the node timeout (1 s), electing its
# replica about as long again.
RECOVERY_SECONDS = 30.0

Opener = Callable[..., Any]


@pytest.fixture
def cluster(redis_cluster: LocalCluster) -> Iterator[LocalCluster]:
    """The module's cluster, emptied for each test."""
    for master in redis_cluster.master_nodes():
        with master.client() as admin:
            admin.flushall()
    yield redis_cluster


@pytest.fixture
async def open_app(cluster: LocalCluster, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens the app in-process on the cluster."""
    async with app_clients() as open_with:

        async def open_(**overrides: Any) -> httpx.AsyncClient:
            values: dict[str, Any] = {
                "redis_url": cluster.url,
                "redis_cluster": True,
                "data_dir": tmp_path / "data",
                "base_url": BASE_URL,
                "api_keys": {API_KEY: "org-a", OTHER_KEY: "org-b"},
                "admin_keys": frozenset({ADMIN_KEY}),
                "signing_keys": {1: "signing-secret-one-0123456789"},
                "redis_timeout_seconds": 1.0,
                "settle_seconds": 1,
                **overrides,
            }
            client: httpx.AsyncClient = await open_with(Settings(**values))
            return client

        yield open_


@pytest.fixture
async def client(open_app: Opener) -> httpx.AsyncClient:
    opened: httpx.AsyncClient = await open_app()
    return opened


async def shorten_batch(
    client: httpx.AsyncClient, messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    response = await client.post("/v1/messages/batch", json={"messages": messages}, headers=AUTH)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def codes_of(results: list[dict[str, Any]]) -> dict[str, str]:
    return {link["code"]: link["url"] for result in results for link in result["links"]}


async def issue(client: httpx.AsyncClient, count: int) -> dict[str, str]:
    """`count` codes, one message each: code -> URL."""
    codes: dict[str, str] = {}
    for start in range(0, count, 1000):
        stop = min(count, start + 1000)
        messages = [{"body": f"https://shop.example.com/n/{i}"} for i in range(start, stop)]
        codes.update(codes_of(await shorten_batch(client, messages)))
    return codes


async def tap(client: httpx.AsyncClient, code: str, agent: str = PHONE) -> httpx.Response:
    return await client.get(f"/{code}", headers={"user-agent": agent})


async def tap_all(client: httpx.AsyncClient, links: dict[str, str]) -> dict[str, int]:
    """Each code's tap status, up to 200 taps at a time; every redirect must go to the URL
    the code was issued for (`links`: code -> URL)."""
    codes = list(links)
    statuses: dict[str, int] = {}
    for start in range(0, len(codes), 200):
        chunk = codes[start : start + 200]
        responses = await asyncio.gather(*(tap(client, code) for code in chunk))
        for code, response in zip(chunk, responses, strict=True):
            if response.status_code == 302:
                assert response.headers["location"] == links[code], code
            statuses[code] = response.status_code
    return statuses


async def until_all_served(client: httpx.AsyncClient, links: dict[str, str]) -> set[int]:
    """Tap until every code redirects where it should; every status seen on the way."""
    seen: set[int] = set()
    pending = links
    deadline = time.monotonic() + RECOVERY_SECONDS
    while pending:
        assert time.monotonic() < deadline, f"{len(pending)} links still not served"
        statuses = await tap_all(client, pending)
        seen.update(statuses.values())
        pending = {code: links[code] for code, status in statuses.items() if status != 302}
        if pending:
            await asyncio.sleep(0.2)
    return seen


async def interactions(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/v1/interactions", params={"limit": "1000"}, headers=AUTH)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["interactions"]
    return found


async def test_shorten_and_tap(client: httpx.AsyncClient) -> None:
    result = await shorten(client, body="Your order https://shop.example.com/o/1 ships")
    (link,) = result["links"]
    assert result["body"] == f"Your order {link['short_url']} ships"
    response = await tap(client, link["code"])
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example.com/o/1"
    assert (await client.head(f"/{link['code']}")).status_code == 302
    never_issued = await client.get("/AbCdEfGh12")
    assert never_issued.status_code == 404 and "location" not in never_issued.headers


async def test_a_code_past_its_lifetime_is_410(open_app: Opener) -> None:
    client = await open_app(link_ttl_seconds=1)
    await start_of_second()
    code = (await shorten(client, body="https://shop.example.com/old"))["links"][0]["code"]
    assert (await tap(client, code)).status_code == 302
    await asyncio.sleep(1.1)
    response = await tap(client, code)
    assert response.status_code == 410 and "location" not in response.headers


async def test_batches_and_message_id_retries(client: httpx.AsyncClient) -> None:
    messages = [
        {"message_id": f"batch-{i}", "body": f"https://shop.example.com/{i} and ab.co/x{i}"}
        for i in range(200)
    ]
    first = await shorten_batch(client, messages)
    urls = [f"https://shop.example.com/{i}" for i in range(200)]
    assert [result["links"][0]["url"] for result in first] == urls
    # The claims of 200 message ids spread over every master; each retry finds its own.
    assert await shorten_batch(client, messages) == first
    assert await shorten(client, **messages[17]) == first[17]
    conflict = await client.post(
        "/v1/messages/shorten",
        json={"message_id": "batch-17", "body": "https://shop.example.com/other"},
        headers=AUTH,
    )
    assert conflict.status_code == 409
    other_org = await client.post("/v1/messages/shorten", json=messages[17], headers=OTHER_AUTH)
    assert other_org.status_code == 200
    assert other_org.json()["links"][0]["code"] != first[17]["links"][0]["code"]
    for code, url in codes_of(first).items():
        response = await tap(client, code)
        assert response.status_code == 302
        assert response.headers["location"] == (url if "://" in url else f"https://{url}")


async def test_tracked_clicks_consent_and_link_details(client: httpx.AsyncClient) -> None:
    result = await shorten(
        client, message_id="m-7", body="Go https://shop.example.com/p?id=1", recipient=CONSENTED
    )
    link = result["links"][0]
    assert link["tracked"] is True
    for agent in (PHONE, PHONE, BOT):
        assert (await tap(client, link["code"], agent)).status_code == 302
    tracked = await client.get(relative(link["tracking_url"]), headers={"user-agent": PHONE})
    assert tracked.status_code == 302
    assert tracked.headers["location"] == "https://shop.example.com/p?id=1"
    clicks = await interactions(client)
    assert [(c["type"], c["bot"], c["contact_id"]) for c in clicks] == [
        ("click", False, "c-42"),
        ("click", False, "c-42"),
        ("click", True, "c-42"),
        ("click", False, "c-42"),
    ]
    assert all(c["message_id"] == "m-7" and c["code"] == link["code"] for c in clicks)
    opt_out = await client.put("/v1/contacts/c-42/consent", json={"tracking": False}, headers=AUTH)
    assert opt_out.status_code == 204
    assert (await tap(client, link["code"])).status_code == 302
    anonymous = (await interactions(client))[-1]
    assert anonymous["contact_id"] is None and anonymous["message_id"] is None
    assert anonymous["code"] is None and anonymous["link_id"] is None
    assert anonymous["url"] == "https://shop.example.com/p?id=1"
    details = await client.get(f"/v1/links/{link['code']}", headers=AUTH)
    assert details.status_code == 200
    info = details.json()
    assert info["url"] == "https://shop.example.com/p?id=1" and info["status"] == "active"
    # People: two taps, the tracked link and the tap after opting out; the bot apart.
    assert (info["clicks"], info["bot_clicks"]) == (4, 1)
    assert (await client.get(f"/v1/links/{link['code']}", headers=OTHER_AUTH)).status_code == 404


async def test_orgs_domains_and_keys(client: httpx.AsyncClient) -> None:
    contoso = {"domains": ["go.contoso.com"], "fallback_url": "https://contoso.com/x"}
    put = await client.put("/v1/admin/orgs/contoso", json=contoso, headers=ADMIN_AUTH)
    assert put.status_code == 200, put.text
    taken = {"domains": ["go.contoso.com"]}
    assert (
        await client.put("/v1/admin/orgs/fabrikam", json=taken, headers=ADMIN_AUTH)
    ).status_code == 409
    listed = (await client.get("/v1/admin/orgs", headers=ADMIN_AUTH)).json()
    assert [org["org"] for org in listed["orgs"]] == ["contoso", "org-a", "org-b"]
    made = await client.post("/v1/admin/orgs/contoso/keys", headers=ADMIN_AUTH)
    assert made.status_code == 201
    auth = {"Authorization": f"Bearer {made.json()['key']}"}
    assert (await client.get("/v1/interactions", headers=auth)).status_code == 200
    key_id = made.json()["key_id"]
    revoked = await client.delete(f"/v1/admin/orgs/contoso/keys/{key_id}", headers=ADMIN_AUTH)
    assert revoked.status_code == 204
    assert (await client.get("/v1/interactions", headers=auth)).status_code == 401


async def test_branded_domains_fallback_and_the_abuse_desk(client: httpx.AsyncClient) -> None:
    for org, domain in (("org-a", "go.alpha.example"), ("org-b", "go.beta.example")):
        fields = {"domains": [domain], "fallback_url": f"https://{org}.example/gone"}
        put = await client.put(f"/v1/admin/orgs/{org}", json=fields, headers=ADMIN_AUTH)
        assert put.status_code == 200, put.text
    made = await client.post("/v1/admin/orgs/org-c/keys", headers=ADMIN_AUTH)
    assert made.status_code == 404
    assert (await client.put("/v1/admin/orgs/org-c", json={}, headers=ADMIN_AUTH)).is_success
    made = await client.post("/v1/admin/orgs/org-c/keys", headers=ADMIN_AUTH)
    org_c = {"Authorization": f"Bearer {made.json()['key']}"}
    links = {}
    for org, auth in (("org-a", AUTH), ("org-b", OTHER_AUTH), ("org-c", org_c)):
        message = {"body": f"https://shop.example.com/{org}", "recipient": CONSENTED}
        answer = await client.post("/v1/messages/shorten", json=message, headers=auth)
        assert answer.status_code == 200, answer.text
        links[org] = answer.json()["links"][0]
    assert [links[org]["short_url"].split("/")[2] for org in links] == [
        "go.alpha.example",
        "go.beta.example",
        "sho.rt",
    ]
    code_a, code_b, code_c = (links[org]["code"] for org in links)
    on = {"user-agent": PHONE}
    assert (await client.get(f"https://go.alpha.example/{code_a}", headers=on)).status_code == 302
    assert (await client.get(f"{BASE_URL}/{code_a}", headers=on)).status_code == 302
    for code in (code_b, code_c, "AbCdEfGh12"):
        answer = await client.get(f"https://go.alpha.example/{code}", headers=on)
        assert (answer.status_code, answer.headers["location"]) == (
            302,
            "https://org-a.example/gone",
        )
    tracked_b = links["org-b"]["tracking_url"].replace("go.beta.example", "go.alpha.example")
    assert (await client.get(tracked_b, headers=on)).status_code == 400
    assert (await client.get(links["org-b"]["tracking_url"], headers=on)).status_code == 302
    gone = await client.request("DELETE", f"/v1/admin/links/{code_b}", headers=ADMIN_AUTH)
    assert gone.status_code == 204
    answer = await client.get(f"https://go.beta.example/{code_b}", headers=on)
    assert answer.headers["location"] == "https://org-b.example/gone"
    assert (await client.get(links["org-b"]["tracking_url"], headers=on)).status_code == 410
    info = await client.get(f"/v1/links/{code_b}", headers=OTHER_AUTH)
    assert (info.json()["status"], info.json()["short_url"]) == (
        "disabled",
        links["org-b"]["short_url"],
    )


async def test_webhooks_and_erasure(open_app: Opener) -> None:
    client = await open_app(webhook_allow_private=True, webhook_backoff_seconds=0.2)
    receiver = Receiver().start()
    try:
        put = await client.put("/v1/webhooks/crm", json={"url": receiver.url}, headers=AUTH)
        assert put.status_code == 200, put.text
        secret = put.json()["secret"]
        link = (await shorten(client, body="https://shop.example.com/w", recipient=CONSENTED))[
            "links"
        ][0]
        assert (await tap(client, link["code"])).status_code == 302
        (got,) = await receiver.wait_for(lambda events: len(events) >= 1, "the click")
        assert got.verified(secret)["data"]["contact_id"] == CONSENTED["contact_id"]
        contact = CONSENTED["contact_id"]
        erased = await client.delete(f"/v1/contacts/{contact}", headers=AUTH)
        assert erased.json() == {"interactions_erased": 1, "links_erased": 1}
        events = await receiver.wait_for(lambda events: len(events) >= 2, "the erasure")
        assert events[1].verified(secret)["type"] == "contact.erased"
        assert (await interactions(client)) == []
        listed = (await client.get("/v1/webhooks", headers=AUTH)).json()["webhooks"]
        assert (listed[0]["backlog"], listed[0]["failed"]) == (0, 0)
    finally:
        receiver.stop()


async def test_interactions_settle_with_their_messages_judgement(
    client: httpx.AsyncClient,
) -> None:
    """The settler's keys are the org's (one slot), the links' counts another node's."""
    scanned, honeypot = await mail_with_honeypot(client, "m-scanned")
    for url in (scanned[0], honeypot):
        response = await client.get(relative(url), headers={"user-agent": DESKTOP})
        assert response.status_code == 302
    body = "A https://shop.example.com/1 B https://shop.example.com/2"
    burst = await shorten(client, body, recipient=CONSENTED, message_id="m-burst")
    for link in burst["links"]:
        assert (await tap(client, link["code"], DESKTOP)).status_code == 302
    person = await shorten(client, body, recipient=CONSENTED, message_id="m-person")
    assert (await tap(client, person["links"][0]["code"])).status_code == 302
    found = await settled_interactions(client)
    assert [(item["message_id"], item["bot_reason"], item["settled"]) for item in found] == [
        ("m-scanned", "honeypot", True),
        ("m-scanned", "honeypot", True),
        ("m-burst", "burst", True),
        ("m-burst", "burst", True),
        ("m-person", None, True),
    ]
    for item in found:
        info = (await client.get(f"/v1/links/{item['link_id']}", headers=AUTH)).json()
        assert (info["clicks"], info["bot_clicks"]) == ((0, 1) if item["bot"] else (1, 0))
    series = (await client.get("/v1/analytics", params={"interval": "hour"}, headers=AUTH)).json()
    reasons = bot_reasons(series)
    assert (reasons["honeypot"], reasons["burst"]) == ((2, 0), (2, 0))
    assert sum(bucket["clicks"] for bucket in series["series"]) == 1


async def test_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/readyz")).status_code == 200
    assert (await client.get("/healthz")).status_code == 200


async def test_an_unreachable_cluster_is_503_and_the_service_stays_up(open_app: Opener) -> None:
    client = await open_app(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 503
    assert (await client.get("/AbCdEfGh12")).status_code == 503
    response = await client.post("/v1/messages/shorten", json={"body": "x.com"}, headers=AUTH)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_cluster_setting_without_a_url_means_the_embedded_redis(
    open_app: Opener,
) -> None:
    client = await open_app(redis_url=None)
    code = (await shorten(client, body="https://shop.example.com/e"))["links"][0]["code"]
    assert (await tap(client, code)).status_code == 302


async def test_a_burst_of_requests_waits_its_turn(client: httpx.AsyncClient) -> None:
    # More at once than redis-py's cluster client has connections to a node.
    consent = [
        client.put(f"/v1/contacts/c-{i}/consent", json={"tracking": False}, headers=AUTH)
        for i in range(300)
    ]
    reads = [client.get("/v1/interactions", headers=AUTH) for _ in range(300)]
    responses = await asyncio.gather(*consent, *reads)
    assert {response.status_code for response in responses} == {200, 204}


async def test_every_node_gets_the_compact_hash_settings(
    cluster: LocalCluster, open_app: Opener
) -> None:
    for node in cluster.running():
        with node.client() as admin:
            for name in COMPACT_HASH_CONFIG:
                admin.config_set(name, "64")
    await open_app()
    # Replicas too: a replica encodes its copy by its own settings, and may become a master.
    for node in cluster.running():
        with node.client() as admin:
            for name, value in COMPACT_HASH_CONFIG.items():
                assert admin.config_get(name) == {name: value}, node.address


def test_cli_inspect_and_expiring(cluster: LocalCluster, tmp_path: Path) -> None:
    env = service.service_env(
        cluster.url, tmp_path / "data", redis_cluster="1", link_ttl_seconds=str(3 * 86_400)
    )
    with service.running_service(env) as running:
        code = running.shorten("https://shop.example.com/i")["links"][0]["code"]
        for agent in (PHONE, PHONE, BOT):
            response = httpx.get(f"{running.base_url}/{code}", headers={"user-agent": agent})
            assert response.status_code == 302
        for key, count in ((service.API_KEY, 2), (service.OTHER_KEY, 3)):
            running.shorten(" ".join(f"https://shop.example.com/{i}" for i in range(count)), key)
    inspected = service.run_cli(env, "inspect", code, "--json")
    assert inspected.returncode == 0, inspected.stderr
    fields = json.loads(inspected.stdout)
    assert fields["url"] == "https://shop.example.com/i" and fields["status"] == "active"
    assert (fields["clicks"], fields["bot_clicks"]) == (2, 1)
    expiring = service.run_cli(env, "expiring", "--within", "3d", "--json")
    assert expiring.returncode == 0, expiring.stderr
    assert json.loads(expiring.stdout)["orgs"] == {"org-a": 3, "org-b": 3}
    assert json.loads(service.run_cli(env, "expiring", "--within", "1d", "--json").stdout) == {
        "within_seconds": 86_400,
        "total": 0,
        "orgs": {},
    }


async def test_scripts_are_sent_again_where_they_were_forgotten(
    client: httpx.AsyncClient, cluster: LocalCluster
) -> None:
    codes = await issue(client, 1500)
    for master in cluster.master_nodes():
        with master.client() as admin:
            admin.script_flush()
    assert set((await tap_all(client, codes)).values()) == {302}


async def test_keys_spread_over_every_master(
    client: httpx.AsyncClient, cluster: LocalCluster
) -> None:
    await issue(client, 3000)
    sizes = cluster.dbsizes()
    assert len(sizes) == cluster.masters
    assert all(size > 0 for size in sizes.values()), sizes
    # The links themselves, not only the odd counter.
    for master in cluster.master_nodes():
        with master.client() as admin:
            assert next(admin.scan_iter(match="l:*", count=1000), None) is not None


async def test_instances_share_an_orgs_shorten_limit(open_app: Opener) -> None:
    one = await open_app(org_shorten_limit_per_minute=3)
    two = await open_app(org_shorten_limit_per_minute=3)
    # Consenting contacts: the limit's script and the consent read go out together.
    messages = [
        {"body": f"https://shop.example.com/{i}", "recipient": {**CONSENTED, "contact_id": f"c{i}"}}
        for i in range(2)
    ]
    assert len(await shorten_batch(one, messages)) == 2
    await shorten(two, body="https://shop.example.com/third")
    for client in (one, two):
        refused = await client.post(
            "/v1/messages/shorten", json={"body": "https://shop.example.com/4"}, headers=AUTH
        )
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["retry-after"]) <= 60
    other = await one.post(
        "/v1/messages/shorten", json={"body": "https://shop.example.com/4"}, headers=OTHER_AUTH
    )
    assert other.status_code == 200, other.text


def holders(cluster: LocalCluster, codes: list[str]) -> dict[str, ClusterServer]:
    """The master that holds each code's link."""
    with SyncRedisCluster(host="127.0.0.1", port=cluster.nodes[0].port) as admin:
        codec = CodeCodec(admin.get(CODE_MAC_KEY))
    owners = {slot: node for node in cluster.master_nodes() for slot in node.slots()}
    keys = {code: link_key(codec.decode(code) or 0) for code in codes}
    return {code: owners[key_slot(key.encode())] for code, key in keys.items()}


def set_everywhere(cluster: LocalCluster, name: str, value: str) -> None:
    for node in cluster.running():
        with node.client() as admin:
            admin.config_set(name, value)


@pytest.mark.timeout(120)
async def test_a_master_down_without_a_failover(
    client: httpx.AsyncClient, cluster: LocalCluster
) -> None:
    issued = await issue(client, 2500)
    codes = list(issued)
    # Taps in any order, so that each batch of them has links of every master.
    random.Random(7).shuffle(codes)
    links = {code: issued[code] for code in codes}
    victim = cluster.master_nodes()[0]
    unreachable = {code for code, node in holders(cluster, codes).items() if node is victim}
    assert 0 < len(unreachable) < len(codes)
    heir = cluster.replica_of(victim)
    with heir.client() as admin:
        admin.config_set("cluster-replica-no-failover", "yes")
    # The others give the master a minute before they call it failed.
    set_everywhere(cluster, "cluster-node-timeout", "60000")
    cluster.stop_node(victim)
    try:
        # Meanwhile the links it holds are out of reach, and only those.
        statuses = await tap_all(client, links)
        assert {code for code, status in statuses.items() if status != 302} == unreachable
        assert {statuses[code] for code in unreachable} == {503}
        assert (await client.get("/readyz")).status_code == 503
        # Once they do, with no replica to take over, the whole cluster refuses commands (it
        # requires every slot served): every route that needs the store says 503, not 500.
        set_everywhere(cluster, "cluster-node-timeout", "1000")
        wait_until(
            lambda: all(
                node.cluster_info()["cluster_state"] == "fail" for node in cluster.running()
            ),
            RECOVERY_SECONDS,
            "the cluster to call the master failed",
        )
        some = {code: links[code] for code in codes[:300]}
        assert set((await tap_all(client, some)).values()) == {503}
        refused = await client.post(
            "/v1/messages/shorten", json={"body": "https://shop.example.com/x"}, headers=AUTH
        )
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200
    finally:
        set_everywhere(cluster, "cluster-node-timeout", "1000")
        cluster.start_node(victim)
        with heir.client() as admin:
            admin.config_set("cluster-replica-no-failover", "no")
    cluster.wait_ok()
    assert await until_all_served(client, links) <= {302, 503}
    assert (await client.get("/readyz")).status_code == 200


@pytest.mark.timeout(120)
async def test_a_master_fails_over_and_every_link_is_served_again(
    client: httpx.AsyncClient, cluster: LocalCluster
) -> None:
    codes = await issue(client, 2500)
    tracked = await shorten(client, body="https://shop.example.com/t", recipient=CONSENTED)
    tracked_code = tracked["links"][0]["code"]
    assert (await tap(client, tracked_code)).status_code == 302
    # Replication is asynchronous: writes a master acknowledged but had not passed on die
    # with it. That is Redis' promise, not the service's, so the test waits for them.
    cluster.sync_replicas()
    victim = cluster.master_nodes()[0]
    heir = cluster.replica_of(victim)
    # A replica is sent what a script wrote, not the script, so a promoted one may not know
    # the scripts; make sure this one does not.
    with heir.client() as admin:
        admin.script_flush()
    cluster.stop_node(victim)
    try:
        seen = await until_all_served(client, {**codes, tracked_code: "https://shop.example.com/t"})
        # While the cluster elected the heir, the service said so, and never anything else.
        assert seen <= {302, 503}, seen
        cluster.wait_ok()
        assert heir.role() == "master"
        assert (await client.get("/readyz")).status_code == 200
        fresh = await issue(client, 600)
        statuses = await tap_all(client, fresh)
        assert set(statuses.values()) == {302}
        clicks = await interactions(client)
        assert [click["code"] for click in clicks] == [tracked_code, tracked_code]
    finally:
        # Back as a replica of its heir, so that the cluster is whole again.
        cluster.start_node(victim)
        cluster.wait_ok()
