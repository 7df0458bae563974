"""What operators and orchestrators rely on, through FastAPI's test client on the real distilled demo bot:
readiness (and unreadiness), Prometheus metrics, and the 422s the OpenAPI document describes. (The log lines:
tests/unit/test_telemetry.py; the OpenAPI document: tests/unit/test_openapi.py.)"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from bot.api.app import create_app
from bot.infra.events import RedisBus
from bot.infra.settings import Settings
from bot.infra.store import make_sessionmaker

UNREACHABLE_PG = "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=3"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0?socket_connect_timeout=3"


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
        state = client.app.state.services
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


def test_the_documented_422_shape_is_the_one_the_api_sends(client):
    schema = client.get("/openapi.json").json()
    documented = schema["paths"]["/api/chat"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    ref = documented["$ref"].rsplit("/", 1)[-1] if "$ref" in documented else None
    shape = schema["components"]["schemas"][ref] if ref else documented
    sent = client.post("/api/chat", json={"message": ""})
    assert sent.status_code == 422 and isinstance(sent.json()["detail"], str)
    assert shape["properties"]["detail"].get("type") == "string"
