"""`/metrics` is public unless SHORTENER_METRICS_KEY is set; then only that key opens it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shortener.config import Settings, SettingsError, load_settings
from tests.support.apps import API_KEY

METRICS_KEY = "metrics-scraper-key-0123456789"


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def is_scrape(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert "shortener_requests_total" in response.text


async def test_without_a_metrics_key_metrics_are_public(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    client: httpx.AsyncClient = await client_for(make_settings())
    await client.get("/healthz")
    is_scrape(await client.get("/metrics"))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("metrics-scraper-key-012345678"),
        bearer(METRICS_KEY + "0"),
        bearer(API_KEY),
        {"authorization": f"Basic {METRICS_KEY}"},
        {"authorization": METRICS_KEY},
        bearer(""),
    ],
)
async def test_with_a_metrics_key_nothing_else_opens_metrics(
    headers: dict[str, str],
    client_for: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
) -> None:
    client: httpx.AsyncClient = await client_for(make_settings(metrics_key=METRICS_KEY))
    refused = await client.get("/metrics", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["status"] == 401
    assert "shortener_" not in refused.text


async def test_with_a_metrics_key_that_key_opens_metrics(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    client: httpx.AsyncClient = await client_for(make_settings(metrics_key=METRICS_KEY))
    await client.get("/healthz")
    is_scrape(await client.get("/metrics", headers=bearer(METRICS_KEY)))
    is_scrape(await client.get("/metrics", headers={"authorization": f"bearer {METRICS_KEY}"}))
    # The other routes are not affected.
    assert (await client.get("/healthz")).status_code == 200


async def test_an_org_key_equal_to_the_metrics_key_opens_metrics(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    client: httpx.AsyncClient = await client_for(make_settings(metrics_key=API_KEY))
    is_scrape(await client.get("/metrics", headers=bearer(API_KEY)))


@pytest.mark.parametrize("value", ["too-short-key", "a metrics key with spaces", "ключ" * 8])
def test_a_metrics_key_must_be_16_printable_characters(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHORTENER_METRICS_KEY", value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "SHORTENER_METRICS_KEY" in str(raised.value)
    assert value not in str(raised.value)


def test_an_empty_metrics_key_leaves_metrics_public(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().metrics_key is None
    monkeypatch.setenv("SHORTENER_METRICS_KEY", "")
    assert load_settings().metrics_key is None
    monkeypatch.setenv("SHORTENER_METRICS_KEY", METRICS_KEY)
    assert load_settings().metrics_key == METRICS_KEY
