"""Schemathesis against a running service and the OpenAPI document that service serves.

Every operation of `/openapi.json` gets generated requests, valid ones and (where the document
constrains something) invalid ones, within a fixed budget. Each run draws another seed and prints
it; `SCHEMATHESIS_SEED=<seed>` replays a run. Whatever comes
back must be documented: no 5xx, a documented status code, content type, headers and body, and a
4xx as problem+json, except the HTML pages that the routes people reach from a message answer
browsers with.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from redis import Redis as SyncRedis
from schemathesis import Case, CheckContext, CheckFunction, GenerationMode, Response
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# The type `schemathesis.openapi.from_url` returns. The test extras pin schemathesis to the
# versions this module was written for: should a name move, collecting it fails, as it should.
from schemathesis.specs.openapi.schemas import OpenApiSchema

from shortener.domain.limits import MAX_SMS_CHARACTERS
from shortener.http.endpoints import openapi_document
from shortener.http.problems import MEDIA_TYPE as PROBLEM_JSON
from tests.support import service
from tests.support.redis_servers import RedisServer

# 40 requests per operation and mode keep the whole module to seconds.
MAX_EXAMPLES = 40
# Each run explores other requests; a failure names its seed, and the same seed makes the same
# requests again on any machine.
SEED_VARIABLE = "SCHEMATHESIS_SEED"
SEED = int(os.environ.get(SEED_VARIABLE) or random.SystemRandom().randrange(2**32))
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# The routes people reach from a message answer browsers' errors with HTML pages.
PUBLIC_PATHS = {
    "/",
    "/{code}",
    "/api/orgs/{org_hash}/r/{link_id}",
    "/api/orgs/{org_hash}/o/{link_id}",
}
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# Redis stream IDs are two unsigned 64-bit numbers, and the documented cursor allows 20 digits
# each: cursors Redis would refuse must still be a clear 400, never a 500.
MAX_STREAM_ID_PART = 2**64 - 1
UNSTORABLE_CURSORS = [
    f"{MAX_STREAM_ID_PART + 1}-0",
    f"0-{MAX_STREAM_ID_PART + 1}",
    "99999999999999999999-99999999999999999999",
    # A valid ID, but nothing can come after it.
    f"{MAX_STREAM_ID_PART}-{MAX_STREAM_ID_PART}",
]
# Taps on unknown codes are throttled per client; a limit below the budget of the two tap
# operations lets generation reach both the HTML 404 and the 429.
MISS_LIMIT_PER_MINUTE = 60
# Explicit, so that a schemathesis.toml somewhere up the tree changes nothing. Every call sends
# the API key itself, so generation leaves `Authorization` alone: a negative case that "drops"
# the header would still carry the key, and an accepted request would look like a failure.
# Invalid data may also be refused as too large (413), e.g. a batch over its 1000 messages.
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"with-security-parameters": False},
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 404, 405, 409, 413, 415, 422, 429]
            }
        },
    }
)


def _documented_operations() -> list[tuple[str, dict[str, Any]]]:
    # Parametrization needs the operations before any service runs; the test below checks the
    # served document names the same ones.
    document = openapi_document("http://127.0.0.1")
    return [
        (item[method]["operationId"], item[method])
        for item in document["paths"].values()
        for method in HTTP_METHODS
        if method in item
    ]


def _has_constraints(operation: dict[str, Any]) -> bool:
    """Whether any input can break the document's rules, so negative generation has a target.

    A path segment that is any string cannot be made invalid.
    """
    if "requestBody" in operation:
        return True
    return any(
        parameter["in"] != "path" or parameter["schema"] != {"type": "string"}
        for parameter in operation.get("parameters", [])
    )


OPERATIONS = _documented_operations()
OPERATION_IDS = [operation_id for operation_id, _ in OPERATIONS]


def _cases() -> Iterator[Any]:
    for operation_id, operation in OPERATIONS:
        yield pytest.param(operation_id, GenerationMode.POSITIVE, id=f"{operation_id}-positive")
        if _has_constraints(operation):
            yield pytest.param(operation_id, GenerationMode.NEGATIVE, id=f"{operation_id}-negative")


@dataclass
class Seeded:
    """Real identifiers, so that generation also reaches the answers for issued links."""

    code: str
    org_hash: str
    tracked_link_id: str
    tracked_query: dict[str, str]
    pixel_link_id: str


@dataclass
class Api:
    base_url: str
    schema: OpenApiSchema
    session: requests.Session
    seeded: Seeded


def _seed(base_url: str, session: requests.Session) -> Seeded:
    def shorten(payload: dict[str, Any]) -> dict[str, Any]:
        response = session.post(
            f"{base_url}/v1/messages/shorten", json=payload, headers=service.AUTH, timeout=10
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    recipient = {"contact_id": "c-schemathesis", "tracking_consent": True}
    sms = shorten({"body": "See https://example.com/a?b=c", "recipient": recipient})
    link = sms["links"][0]
    email = shorten(
        {
            "content_type": "html",
            "body": '<p><a href="https://example.com/mail">mail</a></p>',
            "recipient": recipient,
        }
    )
    pixel = re.search(r'/api/orgs/([^/"]+)/o/([^/"?]+)', email["body"])
    assert pixel is not None, email["body"]
    tracked = urlsplit(link["tracking_url"])
    org_hash, _, tracked_link_id = tracked.path.split("/")[-3:]
    query = {name: values[0] for name, values in parse_qs(tracked.query).items()}
    # One click, so that listing interactions has an item to check against the document.
    tap = session.get(link["short_url"], allow_redirects=False, timeout=10)
    assert tap.status_code == 302, tap.text
    return Seeded(link["code"], org_hash, tracked_link_id, query, pixel.group(2))


@pytest.fixture(scope="module")
def api(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with SyncRedis.from_url(redis_server.url) as client:
        client.flushall()
    data_dir: Path = tmp_path_factory.mktemp("schemathesis")
    env = service.service_env(
        redis_server.url, data_dir, miss_limit_per_minute=str(MISS_LIMIT_PER_MINUTE)
    )
    with service.running_service(env) as running:
        schema = schemathesis.openapi.from_url(f"{running.base_url}/openapi.json", config=CONFIG)
        with requests.Session() as session:
            yield Api(running.base_url, schema, session, _seed(running.base_url, session))


def _issued(api: Api, operation_id: str) -> dict[str, Any] | None:
    """Fixed parameters that name something issued, for the operations that look links up."""
    seeded = api.seeded
    if operation_id in {"getLink", "followShortLink", "headShortLink"}:
        return {"path_parameters": {"code": seeded.code}}
    if operation_id in {"followTrackedLink", "headTrackedLink"}:
        return {
            "path_parameters": {"org_hash": seeded.org_hash, "link_id": seeded.tracked_link_id},
            "query": seeded.tracked_query,
        }
    if operation_id in {"fetchOpenPixel", "headOpenPixel"}:
        return {"path_parameters": {"org_hash": seeded.org_hash, "link_id": seeded.pixel_link_id}}
    return None


def problem_details_for_client_errors(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """Every 4xx is RFC 9457 problem+json, except the pages public routes show browsers."""
    status = response.status_code
    if not 400 <= status < 500:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    media_type = content_type.split(";", 1)[0].strip().lower()
    from_browser = response.request.headers.get("accept") == BROWSER_ACCEPT
    if case.path in PUBLIC_PATHS and from_browser:
        assert media_type == "text/html", f"{status} should be an HTML page, got {content_type!r}"
        return None
    assert media_type == PROBLEM_JSON, f"{status} should be {PROBLEM_JSON}, got {content_type!r}"
    if case.method.upper() != "HEAD":
        problem = response.json()
        assert isinstance(problem, dict), problem
        assert problem.get("status") == status, problem
        assert {"type", "title", "status", "detail"} <= problem.keys(), problem
    return None


CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    problem_details_for_client_errors,
]


def test_the_served_document_has_the_tested_operations(api: Api) -> None:
    served = [
        item[method]["operationId"]
        for item in api.schema.raw_schema["paths"].values()
        for method in HTTP_METHODS
        if method in item
    ]
    assert sorted(served) == sorted(OPERATION_IDS)


@pytest.mark.parametrize(("operation_id", "mode"), list(_cases()))
def test_operation_answers_as_documented(api: Api, operation_id: str, mode: GenerationMode) -> None:
    operation = api.schema.find_operation_by_id(operation_id)
    strategy = operation.as_strategy(mode)
    issued = _issued(api, operation_id)
    if issued is not None and mode is GenerationMode.POSITIVE:
        # Made-up codes and signatures only ever reach the error answers.
        strategy = st.one_of(strategy, operation.as_strategy(mode, **issued))

    @seed(SEED)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        # Without shrinking, a failing run takes as long as a passing one; the report names
        # the failing request as generated.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(case=strategy, browser=st.booleans())
    def answers_as_documented(case: Case[Any], browser: bool) -> None:
        auth = service.ADMIN_AUTH if case.path.startswith("/v1/admin/") else service.AUTH
        headers = {**auth, **({"accept": BROWSER_ACCEPT} if browser else {})}
        case.call_and_validate(session=api.session, headers=headers, checks=CHECKS, timeout=10)

    print(f"{SEED_VARIABLE}={SEED}")
    try:
        answers_as_documented()
    # Schemathesis reports its failures as one BaseExceptionGroup.
    except (Exception, BaseExceptionGroup) as failure:
        raise AssertionError(f"{operation_id}: replay with {SEED_VARIABLE}={SEED}") from failure


@pytest.mark.parametrize(
    ("content_type", "characters", "accepted"),
    [
        ("text", MAX_SMS_CHARACTERS, True),
        ("text", MAX_SMS_CHARACTERS + 1, False),
        ("html", MAX_SMS_CHARACTERS + 1, True),
    ],
)
def test_the_documented_body_limit_is_the_services(
    api: Api, content_type: str, characters: int, accepted: bool
) -> None:
    # Generation hardly ever writes bodies this long, so the boundary is checked here.
    payload = {"content_type": content_type, "body": "x" * characters}
    document = api.schema.raw_schema
    request_schema = {"$ref": "#/components/schemas/ShortenRequest", **document}
    assert Draft202012Validator(request_schema).is_valid(payload) is accepted
    response = api.session.post(
        f"{api.base_url}/v1/messages/shorten", json=payload, headers=service.AUTH, timeout=10
    )
    assert response.status_code == (200 if accepted else 422), response.text


@pytest.mark.parametrize("after", UNSTORABLE_CURSORS)
def test_a_cursor_redis_cannot_hold_is_not_a_server_error(api: Api, after: str) -> None:
    # A part over 2**64-1 is no stream ID; after the largest ID, an exclusive start is none.
    response = api.session.get(
        f"{api.base_url}/v1/interactions",
        params={"after": after},
        headers=service.AUTH,
        timeout=10,
    )
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.headers["content-type"] == PROBLEM_JSON


@pytest.mark.parametrize("consent", [1, 0.0, "yes", "false"])
@pytest.mark.parametrize("batch", [False, True], ids=["shorten", "batch"])
def test_a_consent_that_is_no_boolean_is_refused(api: Api, consent: object, batch: bool) -> None:
    # Consent decides whether a person is tracked: only a JSON boolean should count, as for
    # PUT /v1/contacts/{contact_id}/consent.
    message: dict[str, Any] = {
        "body": "See https://example.com/consent",
        "recipient": {"contact_id": "c-lax", "tracking_consent": consent},
    }
    path, payload = ("batch", {"messages": [message]}) if batch else ("shorten", message)
    response = api.session.post(
        f"{api.base_url}/v1/messages/{path}", json=payload, headers=service.AUTH, timeout=10
    )
    if batch:
        # A batch refuses the message in its place, and shortens the others.
        assert response.status_code == 200, response.text
        (result,) = response.json()["results"]
        assert result["error"]["status"] == 422
        return
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
