"""No parameter of any route can break the service: a property test over a real socket.

Every route of the app, with every method it answers, is sent hostile values in one place at a
time (a path parameter, a query parameter, a header, the JSON body or one of its fields) while
everything else stays ordinary. The requests go to `shortener serve` over a socket, written byte
by byte, so that a dropped connection or a hang shows as such. Whatever the input, the answer is
below 500, and an error is problem+json with its fields, or a page for people where the client
asked for HTML on a route people reach from a message.

The routes come from the app itself and their parameters from the OpenAPI document it serves,
so a new route or parameter is fuzzed without a change here, and a route this module cannot
build a request for fails `test_every_route_has_a_strategy`.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from redis import Redis as SyncRedis
from starlette.routing import Route

from shortener.config import Settings
from shortener.http.app import create_app
from shortener.http.dashboard.routes import is_dashboard
from shortener.http.endpoints import openapi_document
from shortener.http.problems import MEDIA_TYPE as PROBLEM_JSON
from tests.support import service
from tests.support.apps import PHONE
from tests.support.redis_servers import RedisServer

# Per place, modest: with the sweeps of known odd values, some 6000 requests, a few seconds
# per thousand.
EXAMPLES_PER_PARAMETER = 30
EXAMPLES_PER_HEADER = 12
ANSWER_TIMEOUT_SECONDS = 10
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
PUBLIC_PATHS = {
    "/",
    "/{code}",
    "/api/orgs/{org_hash}/r/{link_id}",
    "/api/orgs/{org_hash}/o/{link_id}",
}
ADMIN_PATHS = "/v1/admin/"
# A domain of an org other than the one whose links the requests name.
BRANDED_DOMAIN = "go.hostile.example"
HEADERS = (
    "content-type",
    "content-length",
    "accept",
    "authorization",
    "user-agent",
    "x-request-id",
)
PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")
# Bodies stay below what the server reads ahead (64 KiB), so that one it answers before reading
# (413) is never cut off by a reset of the connection.
MAX_BODY_BYTES = 60_000

# Text callers mean as numbers, that only look like numbers, or that break naive parsers.
ODD_TEXTS = [
    "",
    "0",
    "-1",
    "1",
    str(10**30),
    "9" * 400,
    "²",
    "١٢",
    "９",
    "1\n",
    "1\r\n",
    " 1",
    "1 ",
    "+1",
    "0x10",
    "1e3",
    "1_0",
    "NaN",
    "1-2\n",
    "18446744073709551616-0",
    "18446744073709551615-18446744073709551615",
    "%",
    "%2F",
    "%252F",
    "/",
    "..",
    "\x00",
    "\ufeff",
    "\u202e",
    "null",
    "true",
    "[]",
    "{}",
    "<script>",
    "'; DROP",
]
ANY_CHARACTER = st.characters(exclude_categories=("Cs",))
hostile_text = st.one_of(
    st.sampled_from(ODD_TEXTS),
    st.text(ANY_CHARACTER, max_size=40),
    st.text(st.characters(codec="ascii"), max_size=40),
    # Oversized: far beyond any field's limit, still a request the server reads whole.
    st.builds(lambda char, count: char * count, ANY_CHARACTER, st.integers(300, 5000)),
)
ODD_NUMBERS: list[Any] = [0, -1, 1, 10**30, -(10**30), 2**63, 2**64, 1.5, -0.0, 1e308]
# What a JSON field may hold instead of what it should: each field is sent each of these.
WRONG_JSON: list[Any] = [
    *ODD_NUMBERS,
    None,
    True,
    "",
    "²",
    "x" * 50_000,
    [],
    [None],
    {},
    {"": None},
]
absurd_numbers = st.one_of(
    st.sampled_from(ODD_NUMBERS),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
)
any_json = st.recursive(
    st.none() | st.booleans() | absurd_numbers | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=6,
)
# What HTTP lets a header value hold, and so what reaches the app at all: visible ASCII,
# spaces, tabs and any byte from 0x80 (control bytes make the server refuse the request
# before the app sees it).
FIELD_VALUE_BYTES = [0x09, *range(0x20, 0x7F), *range(0x80, 0x100)]
header_bytes = st.one_of(
    st.sampled_from([text.encode() for text in ODD_TEXTS if text.isprintable()]),
    st.lists(st.sampled_from(FIELD_VALUE_BYTES), max_size=60).map(bytes),
    st.text(ANY_CHARACTER.filter(str.isprintable), max_size=30).map(lambda t: t.encode()),
    st.builds(lambda byte, n: bytes([byte]) * n, st.sampled_from(FIELD_VALUE_BYTES[1:95]),
              st.integers(300, 4000)),
).map(lambda value: value.strip(b" \t"))  # fmt: skip
HEADER_EXTRAS: dict[str, list[bytes]] = {
    "content-type": [b"application/json", b"application/problem+json", b"text/plain",
                     b"application/json; charset=latin-1", b"multipart/form-data; boundary=x",
                     b"APPLICATION/JSON", b"application/x+json", b"*/*"],
    "accept": [BROWSER_ACCEPT.encode(), b"text/html", b"text/*", b"text/html;q=0",
               b"text/html;q=abc", b"text/html;q=1e3", b"application/json, text/html;q=0.5",
               b"*/*;q=0", b",,,;;;", b"text/html;" * 200],
    "authorization": [f"Bearer {service.API_KEY}".encode(), b"Bearer", b"Bearer ", b"bearer x",
                      f"Bearer  {service.API_KEY}".encode(), b"Basic dXNlcjpwYXNz",
                      f"Bearer {service.ADMIN_KEY}".encode()],
    "x-request-id": [b"abc ", b"a" * 65, b"a" * 64, b"-._", b"\xc3\xa9"],
    "host": [BRANDED_DOMAIN.encode(), BRANDED_DOMAIN.upper().encode() + b":443",
             BRANDED_DOMAIN.encode() + b".", b"[::1]:8000", b"[::1]", b"[", b":", b"::::",
             b"127.0.0.1:99999999999999999999", b"." * 300, b"xn--", b"xn--bcher-kva.example"],
}  # fmt: skip


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    document: dict[str, Any]

    @property
    def path_parameters(self) -> list[str]:
        return PARAMETER.findall(self.path)

    @property
    def query_parameters(self) -> list[str]:
        return [p["name"] for p in self.document.get("parameters", []) if p["in"] == "query"]

    @property
    def has_body(self) -> bool:
        return "requestBody" in self.document

    @property
    def public(self) -> bool:
        return self.path in PUBLIC_PATHS


def _document() -> dict[str, Any]:
    return openapi_document("http://127.0.0.1")


def _app_operations() -> list[tuple[str, str]]:
    # Built without its lifespan, so it never connects to this address.
    settings_ = Settings(
        redis_url="redis://127.0.0.1:1/0", api_keys={"k" * 20: "org"}, signing_keys={1: "s" * 20}
    )
    found = []
    for route in create_app(settings_).routes:
        assert isinstance(route, Route), route
        if is_dashboard(route.path):
            # Pages for people, not the API: tests/system/test_dashboard_input.py fuzzes them.
            continue
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        found += [(method, path) for method in sorted(route.methods or ())]
    return found


def _operations() -> list[Operation]:
    paths = _document()["paths"]
    operations = []
    for method, path in _app_operations():
        item = paths.get(path, {})
        # Starlette answers HEAD on every GET route; the document may list only the GET.
        documented = item.get(method.lower()) or (item.get("get") if method == "HEAD" else None)
        operations.append(Operation(method, path, documented or {}))
    return operations


OPERATIONS = _operations()


def _places(operation: Operation) -> list[str]:
    places = [f"path:{name}" for name in operation.path_parameters]
    places += [f"query:{name}" for name in operation.query_parameters]
    places.append("query:*")
    places += [f"header:{name}" for name in HEADERS]
    if operation.public:
        # Which org's links resolve hangs on the host.
        places.append("header:host")
    if operation.has_body:
        places += ["body", "body:raw"]
    return places


CASES = [
    pytest.param(operation, place, id=f"{operation.method} {operation.path} {place}")
    for operation in OPERATIONS
    for place in _places(operation)
]


# The running service, and ordinary values for every place not under test


@dataclass
class Api:
    base_url: str
    port: int
    served: dict[str, Any]
    path_values: dict[str, str]
    query_values: dict[str, dict[str, str]]
    # What a DELETE takes down instead, so that every other route still finds its link live.
    takedown_values: dict[str, str]


def _seed(
    base_url: str, running: service.Service
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    recipient = {"contact_id": "c-hostile", "tracking_consent": True}
    link = running.shorten(
        "See https://example.com/a?b=c", recipient=recipient, message_id="m-hostile"
    )["links"][0]
    tracked = urlsplit(link["tracking_url"])
    org_hash, _, link_id = tracked.path.split("/")[-3:]
    query = {name: values[0] for name, values in parse_qs(tracked.query).items()}
    values = {"code": link["code"], "org_hash": org_hash, "link_id": link_id}
    values["contact_id"] = "c-hostile"
    values["org"] = "org-a"
    values["key_id"] = _new_key_id(base_url)
    values["message_id"] = "m-hostile"
    branded = {"domains": [BRANDED_DOMAIN], "fallback_url": "https://hostile.example/gone"}
    put = httpx.put(f"{base_url}/v1/admin/orgs/org-b", json=branded, headers=service.ADMIN_AUTH)
    assert put.status_code == 200, put.text
    doomed = running.shorten("See https://example.com/d", message_id="m-hostile-doomed")
    takedown = {
        "code": doomed["links"][0]["code"],
        "message_id": "m-hostile-doomed",
        "contact_id": "c-hostile-doomed",
        "name": "hostile-doomed",
    }
    values["name"] = "hostile"
    for name in ("hostile", "hostile-doomed"):
        # A name that does not resolve: accepted, and never reached.
        endpoint = {"url": f"https://{name}.invalid/hook"}
        put = httpx.put(f"{base_url}/v1/webhooks/{name}", json=endpoint, headers=service.AUTH)
        assert put.status_code == 200, put.text
    return values, query, takedown


def _new_key_id(base_url: str) -> str:
    made = httpx.post(f"{base_url}/v1/admin/orgs/org-a/keys", headers=service.ADMIN_AUTH)
    assert made.status_code == 201, made.text
    key_id: str = made.json()["key_id"]
    return key_id


@pytest.fixture(scope="module")
def api(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with SyncRedis.from_url(redis_server.url) as client:
        client.flushall()
    data_dir: Path = tmp_path_factory.mktemp("hostile")
    env = service.service_env(redis_server.url, data_dir)
    with service.running_service(env) as running:
        path_values, tracked_query, takedown_values = _seed(running.base_url, running)
        served = json.loads(_exchange(_port(running.base_url), "GET", b"/openapi.json").body)
        yield Api(
            running.base_url,
            _port(running.base_url),
            served,
            path_values,
            {"/api/orgs/{org_hash}/r/{link_id}": tracked_query},
            takedown_values,
        )
    # Nothing the requests did may have been logged as an error of the service.
    errors = [
        line
        for line in running.logs().splitlines()
        if line.startswith("{") and json.loads(line)["level"] in ("error", "critical")
    ]
    assert not errors, errors[:3]


def _port(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


# Requests over a socket


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def _exchange(
    port: int,
    method: str,
    target: bytes,
    headers: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
    body: bytes = b"",
) -> Answer:
    head = b"%s %s HTTP/1.1\r\nconnection: close\r\n" % (method.encode(), target)
    if not any(name == b"host" for name, _ in headers):
        head += b"host: 127.0.0.1\r\n"
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    received = []
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT_SECONDS) as sock:
        sock.sendall(head + b"\r\n" + body)
        while chunk := sock.recv(65536):
            received.append(chunk)
    raw = b"".join(received)
    assert raw, "the connection was closed without an answer"
    header_block, separator, content = raw.partition(b"\r\n\r\n")
    assert separator, f"an incomplete answer: {raw[:300]!r}"
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    answer_headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        answer_headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split(" ")[1]), answer_headers, content)


def _encoded(value: str) -> str:
    return quote(value, safe="")


@dataclass
class Request:
    path_values: dict[str, str]
    query: list[tuple[str, str]]
    headers: dict[str, bytes]
    body: bytes | None
    extra_query: str = ""


def _ordinary(api: Api, operation: Operation) -> Request:
    known = {**api.path_values, **(api.takedown_values if operation.method == "DELETE" else {})}
    path_values = {name: known[name] for name in operation.path_parameters}
    query = list(api.query_values.get(operation.path, {}).items())
    key = service.ADMIN_KEY if operation.path.startswith(ADMIN_PATHS) else service.API_KEY
    headers = {"authorization": f"Bearer {key}".encode(), "user-agent": PHONE.encode()}
    body = None
    if operation.has_body:
        content = operation.document["requestBody"]["content"]["application/json"]
        example = next(iter(content["examples"].values()))["value"]
        body = json.dumps(example).encode()
        headers["content-type"] = b"application/json"
    return Request(path_values, query, headers, body)


def _send(api: Api, operation: Operation, request: Request) -> Answer:
    path = PARAMETER.sub(lambda m: _encoded(request.path_values[m.group(1)]), operation.path)
    query = "&".join(f"{_encoded(name)}={_encoded(value)}" for name, value in request.query)
    query = "&".join(part for part in (query, request.extra_query) if part)
    target = (path + (f"?{query}" if query else "")).encode("ascii")
    headers = dict(request.headers)
    body = request.body or b""
    if "content-length" not in headers and (body or operation.has_body):
        headers["content-length"] = str(len(body)).encode()
    return _exchange(
        api.port, operation.method, target, [(k.encode(), v) for k, v in headers.items()], body
    )


def _check(operation: Operation, request: Request, answer: Answer) -> None:
    where = f"{operation.method} {operation.path}"
    assert answer.status < 500, (where, answer.status, answer.body[:500])
    if answer.status < 400:
        return
    media_type = answer.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    accept = request.headers.get("accept", b"").decode("latin-1").lower()
    if media_type == "text/html":
        # Only for people, and only where they come from a message.
        assert operation.public and "text/" in accept, (where, accept, answer.status)
        assert operation.method == "HEAD" or answer.body.startswith(b"<!doctype html>")
        return
    assert media_type == PROBLEM_JSON, (where, answer.status, answer.headers, answer.body[:300])
    if operation.method == "HEAD":
        return
    problem = json.loads(answer.body)
    assert {"type", "title", "status", "detail"} <= problem.keys(), problem
    assert problem["status"] == answer.status


# What goes where


def _json_for(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """Values for a JSON schema: mostly of its shape, each field sometimes of any type."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if depth > 4:
        return any_json
    choices = [s for key in ("anyOf", "oneOf") for s in schema.get(key, [])]
    if choices:
        return st.one_of([_json_for(choice, components, depth + 1) for choice in choices])
    kind = schema.get("type")
    if "enum" in schema or "const" in schema:
        shaped: Any = st.sampled_from(schema.get("enum", [schema.get("const")]))
    elif kind == "object":
        properties = {
            name: st.one_of(_json_for(value, components, depth + 1), any_json)
            for name, value in schema.get("properties", {}).items()
        }
        required = set(schema.get("required", []))
        shaped = st.fixed_dictionaries(
            {name: value for name, value in properties.items() if name in required},
            optional={
                **{name: value for name, value in properties.items() if name not in required},
                "unknown_field": any_json,
            },
        )
    elif kind == "array":
        shaped = st.lists(_json_for(schema.get("items", {}), components, depth + 1), max_size=3)
    elif kind == "string":
        shaped = hostile_text
    elif kind in ("integer", "number"):
        shaped = absurd_numbers
    elif kind == "boolean":
        shaped = st.booleans()
    elif kind == "null":
        shaped = st.none()
    else:
        shaped = any_json
    return st.one_of(shaped, any_json) if depth == 0 else shaped


def _strategy(api: Api, operation: Operation, place: str) -> Any:
    """Requests with hostile values in `place` and ordinary ones everywhere else."""
    kind, _, name = place.partition(":")
    ordinary = _ordinary(api, operation)
    if kind == "path":
        return hostile_text.map(
            lambda value: _replace(ordinary, path_values={**ordinary.path_values, name: value})
        )
    if kind == "query" and name == "*":
        return st.text(st.characters(codec="ascii"), max_size=60).map(
            lambda value: _replace(ordinary, extra_query=quote(value, safe="=&"))
        )
    if kind == "query":
        others = [(k, v) for k, v in ordinary.query if k != name]
        values = st.one_of(
            hostile_text.map(lambda value: [value]),
            st.lists(hostile_text, min_size=2, max_size=3),
            st.just([]),
        )
        return values.map(
            lambda listed: _replace(ordinary, query=others + [(name, v) for v in listed])
        )
    if kind == "header" and name == "content-length":
        size = len(ordinary.body or b"")
        declared = st.one_of(
            st.just(str(size)),
            st.integers(1, 5).map(lambda zeros: "0" * zeros + str(size)),
            st.integers(0, max(size - 1, 0)).map(str),
            st.integers(10**7, 10**18).map(str),
        )
        return declared.map(
            lambda value: _replace(ordinary, headers={**ordinary.headers, name: value.encode()})
        )
    if kind == "header":
        values = st.one_of(header_bytes, st.sampled_from(HEADER_EXTRAS.get(name, [b""])))
        return st.one_of(
            values.map(lambda value: _replace(ordinary, headers={**ordinary.headers, name: value})),
            st.just(_replace(ordinary, headers=_without(ordinary.headers, name))),
        )
    schema = operation.document["requestBody"]["content"]["application/json"]["schema"]
    if name == "raw":
        bodies = st.one_of(
            st.binary(max_size=200),
            st.text(ANY_CHARACTER, max_size=200).map(lambda t: t.encode()),
            st.sampled_from([b"", b"{", b"[]", b"null", b"\xff\xfe{}", b'{"a":' * 500]),
        )
    else:
        bodies = _json_for(schema, api.served["components"]["schemas"]).map(_dumped)
    return bodies.filter(lambda body: len(body) <= MAX_BODY_BYTES).map(
        lambda body: _replace(ordinary, body=body)
    )


def _sweep(api: Api, operation: Operation, place: str) -> list[Request]:
    """The known odd values in `place`, each once: what random generation may miss."""
    kind, _, name = place.partition(":")
    ordinary = _ordinary(api, operation)
    if kind == "path":
        return [
            _replace(ordinary, path_values={**ordinary.path_values, name: value})
            for value in ODD_TEXTS
        ]
    if kind == "query" and name != "*":
        others = [(k, v) for k, v in ordinary.query if k != name]
        return [_replace(ordinary, query=[*others, (name, value)]) for value in ODD_TEXTS]
    if kind == "header" and name != "content-length":
        values = [text.encode() for text in ODD_TEXTS if text.isprintable()]
        values += HEADER_EXTRAS.get(name, [])
        return [_replace(ordinary, headers={**ordinary.headers, name: v}) for v in values]
    if place == "body":
        example = json.loads(ordinary.body or b"null")
        return [
            _replace(ordinary, body=_dumped(changed))
            for changed in _each_field_changed(example)
            if len(_dumped(changed)) <= MAX_BODY_BYTES
        ]
    return []


def _each_field_changed(document: Any) -> Iterator[Any]:
    """`document` with one field, at any depth, set to each of WRONG_JSON, or left out."""
    if isinstance(document, dict):
        for key, value in document.items():
            for wrong in WRONG_JSON:
                yield {**document, key: wrong}
            yield {k: v for k, v in document.items() if k != key}
            for changed in _each_field_changed(value):
                yield {**document, key: changed}
    elif isinstance(document, list):
        for index, value in enumerate(document):
            for changed in _each_field_changed(value):
                yield [*document[:index], changed, *document[index + 1 :]]
        for wrong in WRONG_JSON:
            yield [wrong]


def _dumped(value: Any) -> bytes:
    # Python writes NaN and Infinity, which JSON does not have: hostile as well.
    return json.dumps(value).encode()


def _replace(request: Request, **changes: Any) -> Request:
    return Request(**{**request.__dict__, **changes})


def _without(headers: dict[str, bytes], name: str) -> dict[str, bytes]:
    return {key: value for key, value in headers.items() if key != name}


# The tests


def test_every_route_has_a_strategy(api: Api) -> None:
    served_paths = api.served["paths"]
    for operation in OPERATIONS:
        where = f"{operation.method} {operation.path}"
        assert operation.document, f"{where} is not in the OpenAPI document"
        assert served_paths[operation.path], where
        for name in operation.path_parameters:
            assert name in api.path_values, f"{where}: no ordinary value for {{{name}}}"
        if operation.has_body:
            content = operation.document["requestBody"]["content"]
            assert content["application/json"]["examples"], f"{where}: no example body"
    # The operations were read from the document before the service ran: it serves the same.
    assert openapi_document(api.base_url) == api.served


def test_the_ordinary_requests_are_answered(api: Api) -> None:
    # So that each hostile value is the only thing wrong with its request.
    for operation in OPERATIONS:
        if "key_id" in operation.path_parameters:
            # A key revoked by an earlier request is gone: revoke one that is there.
            api.path_values["key_id"] = _new_key_id(api.base_url)
        answer = _send(api, operation, _ordinary(api, operation))
        assert answer.status < 400 or operation.path == "/", (operation, answer)


@pytest.mark.parametrize(("operation", "place"), CASES)
def test_no_input_breaks_the_service(api: Api, operation: Operation, place: str) -> None:
    examples = EXAMPLES_PER_HEADER if place.startswith("header:") else EXAMPLES_PER_PARAMETER

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        # Without shrinking a failing run takes as long as a passing one; the report names the
        # failing request as generated.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )
    @given(request=_strategy(api, operation, place))
    def never_breaks(request: Request) -> None:
        _check(operation, request, _send(api, operation, request))

    for request in _sweep(api, operation, place):
        _check(operation, request, _send(api, operation, request))
    never_breaks()
