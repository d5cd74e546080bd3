"""The service's OpenAPI document: each route's error answers, its key, and typed bodies.

FastAPI documents a route's success and, for a route with parameters, a 422; the answers the
service's dependencies and middleware give it cannot see. This adds them from what each route
depends on: 401 (no key, an unknown one, a session that ended) for every route that asks who
calls, 403 for those that check a role (`allowed(permission)`), 413 for a body over
serving.max_body_bytes, and a 422 for every route that reads a body or parameters. A route's
own answers (400, 404, 409) are declared where it is (`responses=`). Every error is the one
shape the service sends, `{"detail": text or a list}`. Routes that need a key carry the
`ApiKey` security scheme (the `X-API-Key` header), so that a client or a fuzzer sends it, and
the permission of config/access.yaml a route needs is its `x-permission` (none: any key).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import _get_api_route_for_openapi, get_openapi
from fastapi.routing import _APIRouteLike, iter_route_contexts

SECURITY = {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                       "description": "A key of config/access.yaml; its role decides what it may use."}}
ERROR = {"type": "object", "required": ["detail"], "properties": {"detail": {
    "description": "What went wrong and what to change: a text, or one item per bad field.",
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}}}
ANSWERS = {
    401: "No API key, an unknown one, or a browser session that ended (sign in again).",
    403: "The key's role may not use this route (config/access.yaml).",
    413: "The request body is larger than serving.max_body_bytes.",
    422: "The request does not validate: the detail names each bad field and what to change.",
}


def service_openapi(app: FastAPI, identifies: set[Callable], permission_of: Callable[[Callable], str | None],
                    extensions: list[Callable[[dict], None]]) -> dict:
    """The document of `app`, made once: `identifies` are the dependencies that know the caller
    (their routes answer 401), `permission_of(call)` the permission a dependency checks, if it
    checks one (403; the route's `x-permission`); each of `extensions` completes the document
    in place (segments/api.py's typed body)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes)
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {}).update(SECURITY)
        components.setdefault("schemas", {})["Error"] = ERROR
        for route in _api_routes(app):
            for method in route.methods:
                _document(schema["paths"][route.path_format][method.lower()], route, identifies,
                          permission_of)
        for extend in extensions:
            extend(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def _document(operation: dict, route: _APIRouteLike, identifies: set[Callable],
              permission_of: Callable[[Callable], str | None]) -> None:
    calls = set(_calls(route.dependant))
    answers = operation.setdefault("responses", {})
    statuses = []
    if calls & identifies:
        operation["security"] = [{"ApiKey": []}]
        statuses.append(401)
        permission = next(filter(None, map(permission_of, calls)), operation.get("x-permission"))
        if permission:
            operation["x-permission"] = permission
            statuses.append(403)
    if route.body_field is not None or "requestBody" in operation:
        statuses.append(413)
    if route.body_field is not None or operation.get("parameters"):
        statuses.append(422)
    for status in statuses:
        answers.setdefault(str(status), {"description": ANSWERS[status]})
    for status, answer in answers.items():
        if status.startswith("4"):
            answer["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _api_routes(app: FastAPI) -> Iterator[_APIRouteLike]:
    """The routes in the document, those of included routers too (FastAPI keeps those apart and
    resolves each as get_openapi does)."""
    for context in iter_route_contexts(app.routes):
        route = _get_api_route_for_openapi(context)
        if route is not None and route.include_in_schema:
            yield route


def _calls(dependant: Dependant) -> Iterator[Callable]:
    """Every dependency of a route, however deep."""
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)
