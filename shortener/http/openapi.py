"""The OpenAPI 3.1 document of the HTTP API, made from the endpoint table (`endpoints.py`),
the pydantic models and the error catalogue (`errors.py`).

Every JSON shape comes from a model and every error from the catalogue, so the document cannot
describe a field, a route or an error text that the service does not have. `HEAD` is derived
from each `GET`: the same answers, without bodies.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shortener import __version__
from shortener.domain.messages import ShortenRequest
from shortener.http.errors import ApiError
from shortener.http.problems import MEDIA_TYPE as PROBLEM_JSON
from shortener.http.responses import JSON
from shortener.http.schemas import InvalidLinksProblem, Problem

OPENAPI_VERSION = "3.1.0"
HTML = "text/html"
BEARER = "bearerAuth"
ADMIN_BEARER = "adminBearerAuth"
SCHEMA_REF = "#/components/schemas/{model}"
_HEAD_NOTE = " `HEAD` answers with the same status and headers and no body."


@dataclass(frozen=True, slots=True)
class Body:
    """A JSON request body: its model, and examples of it as a caller writes it."""

    model: type[BaseModel]
    description: str
    examples: Callable[[], dict[str, Any]]
    # A body that may be left out altogether.
    required: bool = True


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One operation of the API: what routes it, what documents it, and what it may answer."""

    path: str
    method: str
    handler: Any
    operation_id: str
    tag: str
    summary: str
    description: str
    # The answers that are not errors, by status; given the base URL, for examples.
    answers: Callable[[str], dict[int, Any]]
    errors: tuple[ApiError, ...] = ()
    body: Body | None = None
    parameters: tuple[dict[str, Any], ...] = ()
    # Needs an org's API key.
    authenticated: bool = False
    # Needs an admin key.
    admin: bool = False
    # Reached by people from a message: errors are pages for browsers too.
    public: bool = False
    # Answers 503 when the link store does not.
    needs_store: bool = True
    # What a HEAD means here beyond "headers only".
    head_note: str = ""
    # Answered past routing and middleware (`direct.DirectEndpoint`): gateways call it per
    # message they send.
    direct: bool = False


def json_answer(
    description: str, model: type[BaseModel], examples: dict[str, Any]
) -> dict[str, Any]:
    return {
        "description": description,
        "content": {JSON: {"schema": ref(model), "examples": examples}},
    }


def example(summary: str, value: Any) -> dict[str, Any]:
    return {"summary": summary, "value": value}


def dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json")


def request_dump(model: BaseModel) -> Any:
    # Only the fields a caller would write; the defaults are in the schema.
    return model.model_dump(mode="json", exclude_unset=True)


def path_parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def query_parameter(
    name: str, description: str, schema: dict[str, Any], **more: Any
) -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "required": False, "description": description}
    return {**parameter, "schema": schema, **more}


# Models


def _models(endpoints: Sequence[Endpoint]) -> tuple[tuple[type[BaseModel], JsonSchemaMode], ...]:
    """Requests as the service parses them, responses as it writes them. Each model appears in
    one mode only, so pydantic keeps the plain class names."""
    found: dict[type[BaseModel], JsonSchemaMode] = {}
    for endpoint in endpoints:
        if endpoint.body is not None:
            found[endpoint.body.model] = "validation"
    found[ShortenRequest] = "validation"
    for endpoint in endpoints:
        for answer in endpoint.answers("").values():
            for content in answer.get("content", {}).values():
                model = content.get("schema", {}).get("x-model")
                if model is not None:
                    found.setdefault(model, "serialization")
    found.setdefault(Problem, "serialization")
    found.setdefault(InvalidLinksProblem, "serialization")
    return tuple(found.items())


def ref(model: type[BaseModel]) -> dict[str, Any]:
    """A placeholder for the model's schema, resolved to a `$ref` once the document is made."""
    return {"x-model": model}


def _schemas(
    models: tuple[tuple[type[BaseModel], JsonSchemaMode], ...],
) -> tuple[dict[type[Any], dict[str, Any]], dict[str, Any]]:
    refs, top = models_json_schema(models, ref_template=SCHEMA_REF)
    schemas = top.get("$defs", {})
    # A batch takes any message and answers an error in the place of one that is not a valid
    # `ShortenRequest`, so the envelope constrains its messages no further.
    messages = schemas["BatchRequest"]["properties"]["messages"]
    messages["items"] = {"anyOf": [refs[ShortenRequest, "validation"], {}]}
    return {model: dict(schema) for (model, _mode), schema in refs.items()}, schemas


def _resolve(node: Any, refs: dict[type[Any], dict[str, Any]]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"x-model"}:
            return dict(refs[node["x-model"]])
        return {key: _resolve(value, refs) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(value, refs) for value in node]
    return node


# Errors


def _error_response(errors: Iterable[ApiError], *, body: bool, public: bool) -> dict[str, Any]:
    """The errors of one status as one response: their meanings, the first one's example."""
    errors = list(errors)
    first = errors[0]
    response: dict[str, Any] = {"description": " ".join(error.meaning for error in errors)}
    headers: dict[str, Any] = {}
    for error in errors:
        headers.update(
            {name: {"schema": schema} for name, schema in error.header_schemas().items()}
        )
    if headers:
        response["headers"] = headers
    if body:
        problem = Problem(
            title=HTTPStatus(first.status).phrase, status=first.status, detail=first.example_detail
        )
        shapes = list(dict.fromkeys(error.model for error in errors))
        schema = ref(shapes[0]) if len(shapes) == 1 else {"anyOf": [ref(s) for s in shapes]}
        response["content"] = {PROBLEM_JSON: {"schema": schema, "example": dump(problem)}}
        if public:
            response["description"] += (
                " A client that prefers `text/html` (a browser) gets a short HTML page for people "
                "instead of the problem."
            )
            response["content"][HTML] = {"schema": {"type": "string"}}
    return response


def _errors_of(
    endpoint: Endpoint, common: Callable[[Endpoint], tuple[ApiError, ...]]
) -> dict[int, list[ApiError]]:
    by_status: dict[int, list[ApiError]] = {}
    for error in (*common(endpoint), *endpoint.errors):
        by_status.setdefault(error.status, []).append(error)
    return by_status


# Operations


def _operation(
    endpoint: Endpoint,
    base_url: str,
    common: Callable[[Endpoint], tuple[ApiError, ...]],
    *,
    head: bool,
) -> dict[str, Any]:
    operation_id, summary, description = (
        endpoint.operation_id,
        endpoint.summary,
        endpoint.description,
    )
    answers = endpoint.answers(base_url)
    if head:
        operation_id = re.sub(r"^[a-z]+", "head", operation_id)
        summary += ", headers only"
        description += _HEAD_NOTE + endpoint.head_note
        answers = {status: _without_body(answer) for status, answer in answers.items()}
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [endpoint.tag],
        "summary": summary,
        "description": description,
    }
    if endpoint.parameters:
        operation["parameters"] = list(endpoint.parameters)
    if endpoint.body is not None and not head:
        operation["requestBody"] = {
            "required": endpoint.body.required,
            "description": endpoint.body.description,
            "content": {
                JSON: {"schema": ref(endpoint.body.model), "examples": endpoint.body.examples()}
            },
        }
    if endpoint.authenticated:
        operation["security"] = [{BEARER: []}]
    if endpoint.admin:
        operation["security"] = [{ADMIN_BEARER: []}]
    responses = {str(status): answer for status, answer in answers.items()}
    for status, errors in _errors_of(endpoint, common).items():
        responses[str(status)] = _error_response(errors, body=not head, public=endpoint.public)
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def _without_body(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "content"}


def build_document(
    endpoints: Sequence[Endpoint],
    base_url: str,
    info: dict[str, Any],
    tags: list[dict[str, str]],
    common: Callable[[Endpoint], tuple[ApiError, ...]],
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `endpoints`, served at `base_url`."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        item = paths.setdefault(endpoint.path, {})
        item[endpoint.method.lower()] = _operation(endpoint, base_url, common, head=False)
        if endpoint.method == "GET":
            item["head"] = _operation(endpoint, base_url, common, head=True)
    refs, schemas = _cached_schemas(_models(endpoints))
    return {
        "openapi": OPENAPI_VERSION,
        "info": {**info, "version": __version__},
        "servers": [{"url": base_url}],
        "tags": tags,
        "paths": _resolve(paths, refs),
        "components": {
            "schemas": copy.deepcopy(schemas),
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "An org's API key, sent as `Authorization: Bearer KEY`. The key's org "
                        "scopes everything the call reads and writes."
                    ),
                },
                ADMIN_BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "An admin key (`SHORTENER_ADMIN_KEYS`), sent as `Authorization: Bearer "
                        "KEY`, for the routes under `/v1/admin/`; org keys do not open them."
                    ),
                },
            },
        },
    }


@functools.cache
def _cached_schemas(
    models: tuple[tuple[type[BaseModel], JsonSchemaMode], ...],
) -> tuple[dict[type[Any], dict[str, Any]], dict[str, Any]]:
    return _schemas(models)
