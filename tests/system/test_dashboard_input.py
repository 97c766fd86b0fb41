"""No input breaks the dashboard: a property test against `shortener serve` over a socket.

Every dashboard route is sent hostile values in one place at a time (a query parameter, a form
field, the session cookie, the form's media type, the Origin header or the raw body), signed
out, signed in with an org's key and with an admin key. Whatever the input, the answer is below
500 and is a page for people (or a redirect to one), and the service logs no error."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from redis import Redis as SyncRedis

from shortener.http.dashboard.routes import ROUTES
from shortener.http.dashboard.sessions import COOKIE
from tests.support import service
from tests.support.redis_servers import RedisServer
from tests.system.test_hostile_input import ODD_TEXTS, hostile_text

EXAMPLES_PER_PLACE = 8
# Too long a request line or headers, too large a body.
PROTOCOL_REFUSALS = (413, 431)
QUERY_NAMES = ("range", "org", "code", "done", "name")
FORM_NAMES = ("csrf", "key", "code", "reason", "name", "org", "key_id", "domains")
ODD_MEDIA_TYPES = [
    "text/plain",
    "application/json",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded; charset=latin-1",
    "APPLICATION/X-WWW-FORM-URLENCODED",
    "",
]


@dataclass
class Dashboard:
    base_url: str
    client: httpx.Client
    # Per who is signed in ("", an org, an admin): the session cookie and its CSRF token.
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)


def _signed_in(base_url: str, key: str | None) -> tuple[str, str]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        page = client.get("/dashboard")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None, page.text
        if key is None:
            return client.cookies[COOKIE], csrf.group(1)
        answer = client.post("/dashboard/sign-in", data={"key": key, "csrf": csrf.group(1)})
        assert answer.status_code == 303, answer.text
        page = client.get("/dashboard/link")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None, page.text
        return client.cookies[COOKIE], token.group(1)


@pytest.fixture(scope="module")
def dashboard(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    with SyncRedis.from_url(redis_server.url) as client:
        client.flushall()
    data_dir: Path = tmp_path_factory.mktemp("dashboard-input")
    env = service.service_env(redis_server.url, data_dir)
    with service.running_service(env) as running:
        running.shorten("See https://example.com/a", campaign="<b>c</b>")
        with httpx.Client(base_url=running.base_url, timeout=10) as client:
            found = Dashboard(running.base_url, client)
            for who, key in (("", None), ("org", service.API_KEY), ("admin", service.ADMIN_KEY)):
                found.sessions[who] = _signed_in(running.base_url, key)
            yield found
    errors = [
        line
        for line in running.logs().splitlines()
        if line.startswith("{") and json.loads(line)["level"] in ("error", "critical")
    ]
    assert not errors, errors[:3]


ROUTE_METHODS = [
    (method, route.path)
    for route in ROUTES
    for method in sorted(getattr(route, "methods", None) or ())
    if method != "HEAD"
]
PLACES = ["query", "cookie", "origin", "media_type", "body", *(f"form:{n}" for n in FORM_NAMES)]
CASES = [
    pytest.param(method, path, who, place, id=f"{method} {path} {who or 'anonymous'} {place}")
    for method, path in ROUTE_METHODS
    for who in ("", "org", "admin")
    for place in PLACES
    if method == "POST" or not place.startswith(("form:", "media_type", "body"))
]


@dataclass(frozen=True)
class Hostile:
    query: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)
    cookie: str | None = None
    origin: str | None = None
    media_type: str | None = None
    body: bytes | None = None


def _strategy(place: str) -> st.SearchStrategy[Hostile]:
    if place == "query":
        return st.builds(
            lambda name, value: Hostile(query={name: value}),
            st.sampled_from(QUERY_NAMES) | hostile_text,
            hostile_text,
        )
    if place == "cookie":
        # What a header may hold at all: visible ASCII and spaces (control bytes make the
        # server refuse the request before the app sees it).
        ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
        return st.builds(Hostile, cookie=st.sampled_from(["", "x" * 5000, "a.b.c"]) | ascii_text)
    if place == "origin":
        return st.builds(Hostile, origin=st.sampled_from(["null", "http://evil.example", "x"]))
    if place == "media_type":
        return st.builds(Hostile, media_type=st.sampled_from(ODD_MEDIA_TYPES))
    if place == "body":
        return st.builds(Hostile, body=st.binary(max_size=2000) | st.just(b"a=b&" * 5000))
    name = place.removeprefix("form:")
    return st.builds(lambda value: Hostile(form={name: value}), hostile_text)


def _send(
    dashboard: Dashboard, method: str, path: str, who: str, hostile: Hostile
) -> httpx.Response:
    cookie, csrf = dashboard.sessions[who]
    url = path.replace("{name}", "dashboard.css")
    headers = {
        "accept": "text/html",
        # Set by hand: the client keeps no cookies of its own between requests.
        "cookie": f"{COOKIE}={cookie if hostile.cookie is None else hostile.cookie}",
    }
    if hostile.origin is not None:
        headers["origin"] = hostile.origin
    client = dashboard.client
    if method == "GET":
        return client.get(url, params=hostile.query, headers=headers)
    form = {"csrf": csrf, "code": "x", "org": "org-a", **hostile.form}
    if hostile.body is not None:
        headers["content-type"] = "application/x-www-form-urlencoded"
        return client.post(url, content=hostile.body, headers=headers)
    if hostile.media_type is not None:
        headers["content-type"] = hostile.media_type
        return client.post(url, content=b"csrf=" + csrf.encode(), headers=headers)
    return client.post(url, params=hostile.query, data=form, headers=headers)


def _check(answer: httpx.Response) -> None:
    assert answer.status_code < 500, answer.text[:500]
    if answer.status_code in (301, 302, 303, 307, 308):
        assert answer.headers["location"].startswith("/dashboard")
        return
    media_type = answer.headers.get("content-type", "")
    if answer.status_code in PROTOCOL_REFUSALS:
        # Refused by the server before any route is known: the API's problem+json.
        assert media_type == "application/problem+json", media_type
        return
    assert media_type.startswith(("text/html", "text/css")), (media_type, answer.text[:300])
    # Whatever came in is shown escaped, if at all.
    assert "<script>" not in answer.text


@pytest.mark.parametrize(("method", "path", "who", "place"), CASES)
def test_no_input_breaks_the_dashboard(
    dashboard: Dashboard, method: str, path: str, who: str, place: str
) -> None:
    @settings(
        max_examples=EXAMPLES_PER_PLACE,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(hostile=_strategy(place))
    def never_breaks(hostile: Hostile) -> None:
        _check(_send(dashboard, method, path, who, hostile))

    # The known odd values, signed in with an org's key: what random generation may miss.
    for text in ODD_TEXTS if who == "org" and place.startswith(("form:", "query")) else ():
        name = place.partition(":")[2] or "code"
        hostile = Hostile(form={name: text}) if place.startswith("form:") else Hostile({name: text})
        _check(_send(dashboard, method, path, who, hostile))
    never_breaks()
