"""What operators and orchestrators rely on, through FastAPI's test client on the real distilled demo bot:
readiness (and unreadiness), Prometheus metrics, JSON log lines, and the OpenAPI document."""

from __future__ import annotations

import json
import logging
import logging.config
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from bot import telemetry
from bot.api import create_app
from bot.events import RedisBus
from bot.routes import agent_api, live, operations, rasa_channel, visitor
from bot.settings import Settings
from bot.store import make_sessionmaker

UNREACHABLE_PG = "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=3"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0?socket_connect_timeout=3"
ROUTE_MODULES = (visitor, rasa_channel, agent_api, live, operations)


@pytest.fixture(scope="module")
def settings(demo_registry, tmp_path_factory) -> Settings:
    db = tmp_path_factory.mktemp("operations") / "bot.db"
    return Settings(registry=demo_registry, db_url=f"sqlite:///{db}", rate_limit="off")


@pytest.fixture(scope="module")
def client(settings):
    with TestClient(create_app(settings)) as client:
        yield client


def chat(client, message: str) -> dict:
    response = client.post("/api/chat", json={"message": message})
    assert response.status_code == 200, response.text
    return response.json()


def samples(client) -> list:
    """Every sample of the /metrics page, parsed as Prometheus text."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(response.text) for s in family.samples]


def value(client, name: str, **labels) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when there is none)."""
    return sum(s.value for s in samples(client) if s.name == name and labels.items() <= s.labels.items())


def test_ready_when_the_store_and_the_events_answer(client):
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and body["checks"] == {"store": "ok", "events": "ok"} and body["degraded"] == []
    assert body["model_version"] == client.get("/health").json()["model_version"]


def test_not_ready_while_the_store_cannot_be_reached_and_degraded_while_the_event_bus_cannot(settings):
    """The app migrates its store at start-up, so it cannot even start on an unreachable database; instead the
    running app's store and bus are swapped for ones that point at closed ports (as when PostgreSQL or Redis
    goes away after start-up), then put back."""
    with TestClient(create_app(settings)) as client:
        state = client.app.state
        sessions, bus = state.sessions, state.bus
        broken_engine = create_engine(UNREACHABLE_PG)
        try:
            state.sessions = make_sessionmaker(broken_engine)
            response = client.get("/ready")
            assert response.status_code == 503
            body = response.json()
            assert body["status"] == "not ready"
            assert body["checks"]["store"].startswith("error: ") and body["checks"]["events"] == "ok"
            assert client.get("/health").status_code == 200  # alive, only not ready

            state.sessions, state.bus = sessions, RedisBus(UNREACHABLE_REDIS)
            response = client.get("/ready")  # degraded, still in rotation: chat works without Redis
            assert response.status_code == 200
            assert response.json()["status"] == "degraded" and response.json()["degraded"] == ["redis"]
            assert response.json()["checks"]["store"] == "ok"
            assert response.json()["checks"]["events"].startswith("error: ")
        finally:
            if state.bus is not bus:
                client.portal.call(state.bus.close)
            state.sessions, state.bus = sessions, bus
            broken_engine.dispose()
        assert client.get("/ready").status_code == 200  # ready again once both answer


def test_metrics_count_requests_decisions_intents_and_handoffs(client):
    answers = value(client, "distilbot_decisions_total", decision="answer")
    shipping = value(client, "distilbot_intents_total", intent="shipping_cost")
    timed = value(client, "distilbot_request_seconds_count", method="POST", route="/api/chat", status="200")
    for _ in range(3):
        body = chat(client, "how much does shipping cost?")
        assert body["decision"] == "answer" and body["intent"]["name"] == "shipping_cost"

    assert value(client, "distilbot_decisions_total", decision="answer") == answers + 3
    assert value(client, "distilbot_intents_total", intent="shipping_cost") == shipping + 3
    assert value(client, "distilbot_request_seconds_count", method="POST", route="/api/chat",
                 status="200") == timed + 3
    buckets = [s for s in samples(client) if s.name == "distilbot_request_seconds_bucket"
               and s.labels.get("route") == "/api/chat" and s.labels.get("status") == "200"]
    assert buckets and {s.labels["le"] for s in buckets} >= {"0.1", "1.0", "+Inf"}

    handoffs = value(client, "distilbot_handoffs_total")
    handed = chat(client, "I want to talk to a real person please")
    assert handed["decision"] == "handoff"
    assert value(client, "distilbot_handoffs_total") == handoffs + 1
    assert value(client, "distilbot_decisions_total", decision="handoff") >= 1


def test_request_latency_is_labelled_by_route_template_not_by_conversation(client):
    first = chat(client, "hello")
    history = client.get(f"/api/conversations/{first['session_id']}",
                         headers={"Authorization": f"Bearer {first['session_token']}"})
    assert history.status_code == 200
    routes = {s.labels["route"] for s in samples(client) if s.name == "distilbot_request_seconds_count"}
    assert "/api/conversations/{session_id}" in routes
    assert not any(first["session_id"] in route for route in routes)


def test_metrics_say_which_model_is_served(client):
    health = client.get("/health").json()
    served = [s for s in samples(client) if s.name == "distilbot_model_info"]
    assert [(s.labels, s.value) for s in served] == [
        ({"version": health["model_version"], "backend": health["backend"]}, 1.0)]


@contextmanager
def logging_configured(config: dict):
    """Apply a logging config, then put the touched loggers back as they were (other tests log too)."""
    names = list(config["loggers"])
    saved = {name: (logger.handlers[:], logger.level, logger.propagate, logger.disabled)
             for name in names for logger in [logging.getLogger(name)]}
    logging.config.dictConfig(config)
    try:
        yield
    finally:
        for name, (handlers, level, propagate, disabled) in saved.items():
            logger = logging.getLogger(name)
            for handler in logger.handlers:
                if handler not in handlers:
                    handler.close()
            logger.handlers[:], logger.level, logger.propagate, logger.disabled = handlers, level, propagate, disabled


def test_json_logs_are_one_object_per_line_with_time_level_logger_and_message(capsys):
    capsys.readouterr()
    with logging_configured(telemetry.logging_config("json")):  # its handler writes to the captured stderr
        telemetry.log.info("model %s loaded", "v0042", extra={"conversation_id": "abc123"})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            telemetry.log.exception("unhandled error")
        logging.getLogger("uvicorn.error").warning("shutting down")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]

    assert len(lines) == 3
    info, error, uvicorn = lines
    assert {"time", "level", "logger", "message"} <= set(info)
    assert (info["level"], info["logger"], info["message"]) == ("INFO", "distilbot", "model v0042 loaded")
    assert info["conversation_id"] == "abc123" and info["time"][:2] == "20"
    assert (error["level"], error["message"]) == ("ERROR", "unhandled error")
    assert "RuntimeError: boom" in error["exc_info"]
    assert (uvicorn["level"], uvicorn["logger"], uvicorn["message"]) == ("WARNING", "uvicorn.error", "shutting down")


def test_text_logs_are_plain_lines(capsys):
    capsys.readouterr()
    with logging_configured(telemetry.logging_config("text")):
        telemetry.log.info("plain line")
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("INFO distilbot plain line")


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
                assert response["content"]["application/json"]["schema"], (where, code)
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


def test_the_documented_422_shape_is_the_one_the_api_sends(client):
    schema = client.get("/openapi.json").json()
    documented = schema["paths"]["/api/chat"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    ref = documented["$ref"].rsplit("/", 1)[-1] if "$ref" in documented else None
    shape = schema["components"]["schemas"][ref] if ref else documented
    sent = client.post("/api/chat", json={"message": ""})
    assert sent.status_code == 422 and isinstance(sent.json()["detail"], str)
    assert shape["properties"]["detail"].get("type") == "string"
