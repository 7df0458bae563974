"""The OpenAPI document describes every route, its responses and the error codes clients must handle. The
document comes from the routes alone, so the app is not started (no model). (That the API sends the documented
422 shape: tests/e2e/test_operations.py.)"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bot.api.app import create_app
from bot.api.routes import agent_api, answers, canned, intents, live, models, operations, privacy, rasa_channel, visitor
from bot.infra.settings import Settings

ROUTE_MODULES = (visitor, rasa_channel, agent_api, answers, canned, intents, models, live, privacy, operations)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """The app without its start-up: the document needs no model or store."""
    settings = Settings(registry=tmp_path_factory.mktemp("none"), rate_limit="off")
    return TestClient(create_app(settings))


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, operation


def test_the_openapi_document_describes_every_route_and_its_responses(client):
    schema = client.get("/openapi.json").json()
    app_routes = {(route.path, method.lower()) for module in ROUTE_MODULES for route in module.router.routes
                  for method in getattr(route, "methods", ())}  # WebSockets have no OpenAPI
    assert app_routes == {(path, method) for path, method, _operation in _operations(schema)}
    assert schema["info"]["description"]

    checked = 0
    for path, method, operation in _operations(schema):
        where = f"{method.upper()} {path}"
        assert (operation.get("summary") or "").strip() or (operation.get("description") or "").strip(), where
        successes = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        assert successes, where
        for code, response in successes.items():
            assert response.get("description"), (where, code)
            if code != "204" and path.startswith(("/api", "/webhooks")):
                assert any(media.get("schema") for media in response["content"].values()), (where, code)
        for code, response in operation["responses"].items():
            assert response.get("description"), (where, code)
        checked += path.startswith(("/api", "/webhooks"))
    assert checked >= 20


def test_documented_error_codes_of_the_visitor_and_agent_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"403", "404"} <= set(paths["/api/chat"]["post"]["responses"])
    assert "409" in paths["/api/conversations/{session_id}/csat"]["put"]["responses"]
    for path, method, operation in _operations({"paths": paths}):
        if path.startswith("/api/agent/") and path != "/api/agent/login":
            assert "401" in operation["responses"], f"{method.upper()} {path}"
