from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from pydantic import BaseModel
from starlette.routing import Route

from shortener.config import Settings
from shortener.domain import (
    analytics,
    interactions,
    lookup,
    messages,
    org_keys,
    takedown,
    tenancy,
    webhooks,
)
from shortener.http import schemas
from shortener.http.app import create_app
from shortener.http.dashboard.routes import is_dashboard
from shortener.http.endpoints import openapi_document

BASE_URL = "http://sho.rt"
PROBLEM_JSON = "application/problem+json"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Every route of /work/shared/CONTRACT.md; the document may add routes, never leave one out.
CONTRACT_ROUTES = [
    ("POST", "/v1/messages/shorten"),
    ("POST", "/v1/messages/batch"),
    ("PUT", "/v1/contacts/{contact_id}/consent"),
    ("GET", "/v1/contacts/{contact_id}/consent"),
    ("GET", "/v1/interactions"),
    ("GET", "/v1/links/{code}"),
    ("GET", "/{code}"),
    ("HEAD", "/{code}"),
    ("GET", "/api/orgs/{org_hash}/r/{link_id}"),
    ("HEAD", "/api/orgs/{org_hash}/r/{link_id}"),
    ("GET", "/api/orgs/{org_hash}/o/{link_id}"),
    ("HEAD", "/api/orgs/{org_hash}/o/{link_id}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/"),
    ("PUT", "/v1/admin/orgs/{org}"),
    ("GET", "/v1/admin/orgs/{org}"),
    ("GET", "/v1/admin/orgs"),
    ("POST", "/v1/admin/orgs/{org}/keys"),
    ("GET", "/v1/admin/orgs/{org}/keys"),
    ("DELETE", "/v1/admin/orgs/{org}/keys/{key_id}"),
]
# The routes that answer without the link store, and so never answer 503.
WITHOUT_STORE = {"/healthz", "/metrics", "/openapi.json", "/"}
# The routes people reach from a message: their errors are pages for browsers.
PUBLIC = {"/", "/{code}", "/api/orgs/{org_hash}/r/{link_id}", "/api/orgs/{org_hash}/o/{link_id}"}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return openapi_document(BASE_URL)


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def model_of(ref: str) -> type[BaseModel]:
    name = ref.removeprefix("#/components/schemas/")
    # pydantic names a model used both ways `Name-Input` and `Name-Output`.
    name = re.sub(r"-(Input|Output)$", "", name)
    modules = (
        schemas,
        messages,
        lookup,
        interactions,
        tenancy,
        org_keys,
        takedown,
        webhooks,
        analytics,
    )
    owner = next(m for m in modules if hasattr(m, name))
    model = getattr(owner, name)
    assert isinstance(model, type) and issubclass(model, BaseModel), ref
    return model


def test_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": BASE_URL}]
    assert json.loads(json.dumps(doc)) == doc
    ids = [operation["operationId"] for _, _, operation in operations(doc)]
    assert len(ids) == len(set(ids))
    assert openapi_document(BASE_URL) is doc


def test_document_lists_every_contract_route(doc: dict[str, Any]) -> None:
    documented = {(method, path) for method, path, _ in operations(doc)}
    missing = [route for route in CONTRACT_ROUTES if route not in documented]
    assert not missing


def test_v1_operations_need_a_bearer_key(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    for method, path, operation in operations(doc):
        if not path.startswith("/v1/"):
            assert not operation.get("security"), (method, path)
            continue
        requirements = operation.get("security")
        assert requirements, (method, path)
        for requirement in requirements:
            for name in requirement:
                assert schemes[name]["type"] == "http"
                assert schemes[name]["scheme"].lower() == "bearer"
        unauthorized = resolve(doc, operation["responses"]["401"])
        # A HEAD answer has no body: its 401 says so with no content.
        if method == "HEAD":
            assert "content" not in unauthorized, (method, path)
        else:
            assert PROBLEM_JSON in unauthorized["content"], (method, path)


def test_errors_are_problem_details(doc: dict[str, Any]) -> None:
    for method, path, operation in operations(doc):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            response = resolve(doc, response)
            content = response.get("content", {})
            if method == "HEAD":
                assert not content, (method, path, status)
                continue
            if path in PUBLIC:
                assert list(content) == [PROBLEM_JSON, "text/html"], (method, path, status)
            else:
                assert list(content) == [PROBLEM_JSON], (method, path, status)
            schema = content[PROBLEM_JSON]["schema"]
            shapes = [model_of(one["$ref"]) for one in schema.get("anyOf", [schema])]
            assert all(issubclass(shape, schemas.Problem) for shape in shapes), (path, status)
        needs_store = path not in WITHOUT_STORE
        assert ("503" in operation["responses"]) == needs_store, (method, path)


def test_a_refused_destination_is_documented_with_its_invalid_links(doc: dict[str, Any]) -> None:
    refusals = resolve(doc, doc["paths"]["/v1/messages/shorten"]["post"]["responses"]["422"])
    shapes = refusals["content"][PROBLEM_JSON]["schema"]["anyOf"]
    assert {model_of(shape["$ref"]) for shape in shapes} == {
        schemas.Problem,
        schemas.InvalidLinksProblem,
    }
    listed = doc["components"]["schemas"]["InvalidLinksProblem"]
    assert "invalid_links" in listed["required"]
    assert "SHORTENER_BLOCKED_DESTINATIONS" in refusals["description"]


def test_message_routes_document_their_errors(doc: dict[str, Any]) -> None:
    # 403: an admin key on a route of an org, or an org's key on an admin route.
    messages = {"400", "401", "403", "413", "415", "422", "429", "503"}
    body = {"400", "401", "403", "413", "415", "422", "503"}
    expected = {
        ("POST", "/v1/messages/shorten"): messages | {"409"},
        # A reused message_id is an error in the batch's results, not of the whole batch.
        ("POST", "/v1/messages/batch"): messages,
        ("PUT", "/v1/contacts/{contact_id}/consent"): body,
        ("GET", "/v1/contacts/{contact_id}/consent"): {"400", "401", "403", "503"},
        ("GET", "/v1/interactions"): {"400", "401", "403", "503"},
        ("PUT", "/v1/admin/orgs/{org}"): body | {"409"},
        ("GET", "/v1/admin/orgs/{org}"): {"401", "403", "404", "503"},
        ("GET", "/v1/admin/orgs"): {"401", "403", "503"},
        ("POST", "/v1/admin/orgs/{org}/keys"): {"401", "403", "404", "503"},
        ("GET", "/v1/admin/orgs/{org}/keys"): {"401", "403", "404", "503"},
        ("DELETE", "/v1/admin/orgs/{org}/keys/{key_id}"): {"401", "403", "404", "503"},
    }
    for method, path, operation in operations(doc):
        if (method, path) in expected:
            errors = {status for status in operation["responses"] if int(status) >= 400}
            assert errors == expected[method, path], (method, path)


def test_interactions_limit_is_1_to_1000_default_100(doc: dict[str, Any]) -> None:
    parameters = doc["paths"]["/v1/interactions"]["get"]["parameters"]
    limit = next(p for p in parameters if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}
    assert {p["name"] for p in parameters} == {
        "after",
        "limit",
        "campaign",
        "contact_id",
        "message_id",
        "type",
    }


def test_tracked_link_parameters_may_be_cut_off(doc: dict[str, Any]) -> None:
    for method in ("get", "head"):
        parameters = doc["paths"]["/api/orgs/{org_hash}/r/{link_id}"][method]["parameters"]
        query = {p["name"]: p["required"] for p in parameters if p["in"] == "query"}
        assert query == {"targetUrl": False, "digest": False, "secretVersion": False}


def media_types(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every media type object of every request body and response, shared ones included."""
    bodies: list[tuple[str, dict[str, Any]]] = []
    for method, path, operation in operations(doc):
        where = f"{method} {path}"
        if "requestBody" in operation:
            bodies.append((f"{where} request", resolve(doc, operation["requestBody"])))
        for status, response in operation["responses"].items():
            bodies.append((f"{where} {status}", resolve(doc, response)))
    for name, response in doc["components"].get("responses", {}).items():
        bodies.append((f"components/responses/{name}", response))
    for where, body in bodies:
        for media_type, content in body.get("content", {}).items():
            yield f"{where} {media_type}", content


def examples_of(content: dict[str, Any]) -> list[Any]:
    found = [example["value"] for example in content.get("examples", {}).values()]
    if "example" in content:
        found.append(content["example"])
    return found


def test_examples_match_the_models(doc: dict[str, Any]) -> None:
    checked = 0
    for where, content in media_types(doc):
        ref = content.get("schema", {}).get("$ref")
        if ref is None:
            continue
        examples = examples_of(content)
        assert examples, f"{where} has no example"
        model = model_of(ref)
        # Checked against the model and against the schema the document gives for it.
        validator = Draft202012Validator({"$ref": ref, "components": doc["components"]})
        for example in examples:
            model.model_validate(example)
            validator.validate(example)
            checked += 1
    assert checked >= 20


def test_model_examples_carry_over(doc: dict[str, Any]) -> None:
    components = doc["components"]["schemas"]
    assert components["ShortenRequest"]["examples"]
    for name, schema in components.items():
        for example in schema.get("examples", []):
            model_of(f"#/components/schemas/{name}").model_validate(example)


def test_request_and_response_bodies_have_examples(doc: dict[str, Any]) -> None:
    for method, path, operation in operations(doc):
        if "requestBody" in operation:
            content = operation["requestBody"]["content"]["application/json"]
            assert examples_of(content), (method, path)
        for status, response in operation["responses"].items():
            json_content = resolve(doc, response).get("content", {}).get("application/json")
            if status == "200" and json_content and "$ref" in json_content["schema"]:
                assert examples_of(json_content), (method, path)


def test_the_document_lists_exactly_the_routes_the_app_serves(doc: dict[str, Any]) -> None:
    # Built without its lifespan, so it never connects to this address.
    settings = Settings(
        redis_url="redis://127.0.0.1:1/0",
        api_keys={"k" * 20: "org"},
        signing_keys={1: "s" * 20},
    )
    app = create_app(settings)
    served: set[tuple[str, str]] = set()
    for route in app.routes:
        assert isinstance(route, Route), route
        if is_dashboard(route.path):
            # The dashboard's pages are for people, not part of the API.
            continue
        # The document writes `{name}` where a route may write `{name:convertor}`.
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        served |= {(method, path) for method in route.methods or ()}
    documented = {(method, path) for method, path, _ in operations(doc)}
    # Methods included: Starlette answers HEAD wherever it answers GET, and so does the
    # document.
    assert served == documented
    assert ("HEAD", "/healthz") in served


async def test_the_service_serves_its_openapi_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)
