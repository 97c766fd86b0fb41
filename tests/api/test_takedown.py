"""Taking links down: one code, a whole message; what a tap, a tracked link and a pixel then
answer; what ops see; and that the tap path pays nothing for it."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis.asyncio as aioredis

from tests.support.apps import (
    ADMIN_AUTH,
    AUTH,
    CONSENTED,
    OTHER_AUTH,
    command_calls,
    cut_short,
    interactions,
    link_fields,
    relative,
    shorten,
    tap,
)

BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
PIXEL = re.compile(r'src="([^"]+/o/[^"]+)"')


async def _link(client: httpx.AsyncClient, link_id: str, auth: dict[str, str] = AUTH) -> Any:
    response = await client.get(f"/v1/links/{link_id}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def _disabled_page(response: httpx.Response) -> None:
    assert response.status_code == 410, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "disabled" in response.text
    assert "location" not in response.headers


def _disabled_problem(response: httpx.Response) -> None:
    assert response.status_code == 410, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "disabled" in response.json()["detail"]
    assert "location" not in response.headers


async def test_a_disabled_code_answers_410_and_its_tracked_link_stops_redirecting(
    client: httpx.AsyncClient,
) -> None:
    link = (await shorten(client, "See https://shop.example.com/a", recipient=CONSENTED))["links"][
        0
    ]
    code = link["code"]
    before = await _link(client, code)
    assert (before["status"], before["disabled_at"], before["disabled_reason"]) == (
        "active",
        None,
        None,
    )
    assert (await tap(client, link["tracking_url"])).status_code == 302
    clicks = len(await interactions(client))

    response = await client.request(
        "DELETE", f"/v1/links/{code}", json={"reason": "phishing report"}, headers=AUTH
    )
    assert response.status_code == 204, response.text

    _disabled_page(await client.get(f"/{code}", headers=BROWSER))
    _disabled_problem(await client.get(f"/{code}"))
    _disabled_page(await client.get(relative(link["tracking_url"]), headers=BROWSER))
    _disabled_problem(await tap(client, link["tracking_url"]))
    _disabled_problem(await tap(client, cut_short(link["tracking_url"])))
    assert len(await interactions(client)) == clicks

    after = await _link(client, code)
    assert after["status"] == "disabled"
    assert after["disabled_reason"] == "phishing report"
    assert after["disabled_at"] is not None
    assert after["clicks"] == before["clicks"] + 1


async def test_takedown_is_idempotent_and_keeps_the_first_reason(
    client: httpx.AsyncClient,
) -> None:
    code = (await shorten(client, "See https://shop.example.com/b"))["links"][0]["code"]
    first = await client.request(
        "DELETE", f"/v1/links/{code}", json={"reason": "first"}, headers=AUTH
    )
    assert first.status_code == 204
    disabled = await _link(client, code)
    assert (await client.delete(f"/v1/links/{code}", headers=AUTH)).status_code == 204
    again = await client.request(
        "DELETE", f"/v1/links/{code}", json={"reason": "second"}, headers=AUTH
    )
    assert again.status_code == 204
    assert await _link(client, code) == disabled
    assert disabled["disabled_reason"] == "first"


async def test_a_code_without_a_reason_is_disabled_with_none(client: httpx.AsyncClient) -> None:
    code = (await shorten(client, "See https://shop.example.com/c"))["links"][0]["code"]
    assert (await client.delete(f"/v1/links/{code}", headers=AUTH)).status_code == 204
    info = await _link(client, code)
    assert (info["status"], info["disabled_reason"]) == ("disabled", None)


async def test_another_org_cannot_take_a_link_down(client: httpx.AsyncClient) -> None:
    code = (await shorten(client, "See https://shop.example.com/d"))["links"][0]["code"]
    response = await client.delete(f"/v1/links/{code}", headers=OTHER_AUTH)
    assert response.status_code == 404
    assert response.json() == (await client.get(f"/v1/links/{code}", headers=OTHER_AUTH)).json()
    assert (await _link(client, code))["status"] == "active"
    assert (await client.get(f"/{code}")).status_code == 302
    unknown = await client.delete("/v1/links/Zz9Zz9Z", headers=AUTH)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


async def test_a_bad_reason_is_refused_and_disables_nothing(client: httpx.AsyncClient) -> None:
    code = (await shorten(client, "See https://shop.example.com/e"))["links"][0]["code"]
    for body in ({"reason": ""}, {"reason": "x" * 501}, {"why": "x"}, {"reason": 3}):
        response = await client.request("DELETE", f"/v1/links/{code}", json=body, headers=AUTH)
        assert response.status_code == 422, (body, response.text)
    not_json = await client.request("DELETE", f"/v1/links/{code}", content=b"spam", headers=AUTH)
    assert not_json.status_code == 415
    assert (await _link(client, code))["status"] == "active"
    assert (await client.get(f"/{code}")).status_code == 302


async def test_a_disabled_record_keeps_its_size(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    code = (await shorten(client, "See https://shop.example.com/f"))["links"][0]["code"]
    (key,) = await redis.keys("l:*")
    (field,) = await link_fields(redis)
    active = await redis.hget(key, field)
    assert (await client.delete(f"/v1/links/{code}", headers=AUTH)).status_code == 204
    disabled = await redis.hget(key, field)
    assert active is not None and disabled is not None
    assert len(disabled) == len(active)
    assert disabled != active


async def test_a_disabled_pixel_and_e_mail_link_record_nothing(
    client: httpx.AsyncClient,
) -> None:
    result = await shorten(
        client,
        '<p><a href="https://shop.example.com/g">shop</a></p>',
        content_type="html",
        recipient=CONSENTED,
        message_id="mail-1",
    )
    tracking_url = result["links"][0]["tracking_url"]
    pixel_url = PIXEL.search(result["body"])
    assert pixel_url is not None
    pixel_id = pixel_url.group(1).rsplit("/", 1)[-1]
    link_id = tracking_url.split("?")[0].rsplit("/", 1)[-1]
    for issued in (pixel_id, link_id):
        assert (await client.delete(f"/v1/links/{issued}", headers=AUTH)).status_code == 204
        assert (await _link(client, issued))["status"] == "disabled"
    pixel = await client.get(relative(pixel_url.group(1).replace("&amp;", "&")))
    assert pixel.status_code == 200
    assert pixel.headers["content-type"] == "image/gif"
    _disabled_problem(await tap(client, tracking_url))
    assert await interactions(client) == []


async def test_a_whole_message_is_taken_down(client: httpx.AsyncClient) -> None:
    message_id = "campaign 7/recipient 42"
    path = f"/v1/messages/{quote(message_id, safe='')}"
    result = await shorten(
        client,
        "A https://shop.example.com/h and B https://shop.example.com/i",
        recipient=CONSENTED,
        message_id=message_id,
    )
    other = (await shorten(client, "See https://shop.example.com/j"))["links"][0]["code"]

    stored = await client.get(path, headers=AUTH)
    assert stored.status_code == 200, stored.text
    assert stored.json() == {
        **result,
        "links": [{**link, "status": "active"} for link in result["links"]],
    }

    first = result["links"][0]["code"]
    assert (await client.delete(f"/v1/links/{first}", headers=AUTH)).status_code == 204
    statuses = [link["status"] for link in (await client.get(path, headers=AUTH)).json()["links"]]
    assert statuses == ["disabled", "active"]

    response = await client.request("DELETE", path, json={"reason": "spam"}, headers=AUTH)
    assert response.status_code == 204, response.text
    assert (await client.delete(path, headers=AUTH)).status_code == 204
    statuses = [link["status"] for link in (await client.get(path, headers=AUTH)).json()["links"]]
    assert statuses == ["disabled", "disabled"]
    for link in result["links"]:
        _disabled_problem(await client.get(f"/{link['code']}"))
        _disabled_problem(await tap(client, link["tracking_url"]))
    # The first link's takedown came first, without a reason; the second's is the message's.
    reasons = [(await _link(client, link["code"]))["disabled_reason"] for link in result["links"]]
    assert reasons == [None, "spam"]
    assert (await client.get(f"/{other}")).status_code == 302


async def test_another_orgs_message_and_an_unknown_one_are_404(
    client: httpx.AsyncClient,
) -> None:
    result = await shorten(client, "See https://shop.example.com/k", message_id="m-1")
    code = result["links"][0]["code"]
    for method in ("GET", "DELETE"):
        for auth, message_id in ((OTHER_AUTH, "m-1"), (AUTH, "m-unknown")):
            response = await client.request(method, f"/v1/messages/{message_id}", headers=auth)
            assert response.status_code == 404, response.text
            assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/{code}")).status_code == 302


@pytest.mark.usefixtures("quiet_settler")
async def test_the_tap_path_still_makes_one_script_call(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    active, disabled = [
        (await shorten(client, f"See https://shop.example.com/{name}"))["links"][0]["code"]
        for name in ("l", "m")
    ]
    assert (await client.delete(f"/v1/links/{disabled}", headers=AUTH)).status_code == 204
    for code, status in ((active, 302), (disabled, 410)):
        await redis.config_resetstat()
        assert (await client.get(f"/{code}")).status_code == status
        calls = await command_calls(redis)
        assert calls["evalsha"] == 1, calls
        assert calls["hget"] == 1, calls
        # Everything else ran inside that one script.
        assert set(calls) <= {"evalsha", "hget", "bitfield", "pttl", "pexpire"}, calls
        # A disabled code's tap is counted nowhere.
        assert ("bitfield" in calls) == (status == 302), calls


async def test_taking_an_e_mail_down_takes_its_pixel_too(client: httpx.AsyncClient) -> None:
    result = await shorten(
        client,
        '<p><a href="https://shop.example.com/n">shop</a></p>',
        content_type="html",
        recipient=CONSENTED,
        message_id="mail-2",
    )
    pixel_url = PIXEL.search(result["body"])
    assert pixel_url is not None
    pixel_id = pixel_url.group(1).rsplit("/", 1)[-1]
    assert (await client.delete("/v1/messages/mail-2", headers=AUTH)).status_code == 204
    assert (await _link(client, pixel_id))["status"] == "disabled"
    stored = (await client.get("/v1/messages/mail-2", headers=AUTH)).json()
    assert [link["status"] for link in stored["links"]] == ["disabled"]
    await client.get(relative(pixel_url.group(1)))
    assert await interactions(client) == []


async def test_the_abuse_desk_takes_any_orgs_link_down(client: httpx.AsyncClient) -> None:
    link = (await shorten(client, "See https://shop.example.com/a", recipient=CONSENTED))["links"][
        0
    ]
    code = link["code"]
    path = f"/v1/admin/links/{code}"
    for auth, status in ((AUTH, 403), (OTHER_AUTH, 403), ({}, 401)):
        refused = await client.request("DELETE", path, json={"reason": "x"}, headers=auth)
        assert refused.status_code == status, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert (await tap(client, link["short_url"])).status_code == 302

    reason = {"reason": "reported to the abuse desk"}
    response = await client.request("DELETE", path, json=reason, headers=ADMIN_AUTH)
    assert response.status_code == 204, response.text
    again = await client.request("DELETE", path, json={"reason": "later"}, headers=ADMIN_AUTH)
    assert again.status_code == 204

    _disabled_page(await client.get(f"/{code}", headers=BROWSER))
    _disabled_problem(await tap(client, link["tracking_url"]))
    _disabled_problem(await tap(client, cut_short(link["tracking_url"])))
    after = await _link(client, code)
    assert (after["status"], after["disabled_reason"]) == ("disabled", reason["reason"])


async def test_the_abuse_desk_gets_404_for_an_id_never_issued(client: httpx.AsyncClient) -> None:
    for link_id in ("Zz9Zz9Z", "nope"):
        response = await client.request("DELETE", f"/v1/admin/links/{link_id}", headers=ADMIN_AUTH)
        assert response.status_code == 404, response.text
        assert link_id in response.json()["detail"]
