"""What operators watch: Prometheus metrics and JSON log lines.

Metrics (GET /metrics):
    distilbot_request_seconds{method,route,status}  request latency histogram
    distilbot_decisions_total{decision}             answer, clarify, fallback, handoff, form, silent
    distilbot_intents_total{intent}                 top intent of each visitor message
    distilbot_handoffs_total                        conversations handed to a person
    distilbot_model_info{version,backend}           1 for the model being served      (these three are the
    distilbot_model_reloads_total{outcome}          hot reloads done or failed         model's own: defined
    distilbot_model_fallbacks_total                 start-ups on an older version:     in bot/model/reload.py)
                                                    `current` failed to load
    distilbot_live_connections{kind}                open WebSockets (visitor, agent)
    distilbot_live_closed_total{reason}             WebSockets the server refused or closed: a cap on open
                                                    sockets (per_client, per_conversation, per_agent), too
                                                    many frames (frame_rate), a frame over the size limit
                                                    (too_big), a token revoked (revoked) or no longer valid
                                                    (recheck), a bad auth message (unauthorized)
    distilbot_live_frames_dropped_total             typing frames sent faster than they are forwarded
    distilbot_events_dropped_total{reason}          live events that did not reach every replica because
                                                    Redis was unreachable (redis_unavailable), or a slow
                                                    socket's oldest queued events (slow_subscriber)
    distilbot_event_bus_up                          1 while the Redis subscription is up, 0 while it is not
    distilbot_rate_limit_redis_errors_total{outcome}  requests whose rate limit could not be counted in
                                                    Redis: counted in memory instead (open) or refused (closed)
    distilbot_client_capped_total{cap}              new conversations or hand-offs refused by a client's hourly cap
    distilbot_client_cap_store_errors_total         cap checks let through because the caps' store failed
"""

from __future__ import annotations

import logging
import logging.config
import time

from prometheus_client import Counter, Gauge, Histogram

REQUEST_SECONDS = Histogram("distilbot_request_seconds", "HTTP request latency", ["method", "route", "status"],
                            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
DECISIONS = Counter("distilbot_decisions", "The policy's decisions", ["decision"])
INTENTS = Counter("distilbot_intents", "Top intent of each visitor message", ["intent"])
HANDOFFS = Counter("distilbot_handoffs", "Conversations handed to a person")
LIVE_CONNECTIONS = Gauge("distilbot_live_connections", "Open WebSockets", ["kind"])
LIVE_CLOSED = Counter("distilbot_live_closed", "WebSockets refused or closed by the server", ["reason"])
LIVE_FRAMES_DROPPED = Counter("distilbot_live_frames_dropped", "Typing frames dropped for coming too often")
EVENTS_DROPPED = Counter("distilbot_events_dropped", "Live events not delivered everywhere", ["reason"])
EVENT_BUS_UP = Gauge("distilbot_event_bus_up", "1 while the event bus's Redis subscription is up")
RATE_LIMIT_REDIS_ERRORS = Counter("distilbot_rate_limit_redis_errors", "Requests whose rate limit could not be "
                                  "counted in Redis", ["outcome"])
CAPPED = Counter("distilbot_client_capped", "New conversations or hand-offs refused by a client's hourly cap",
                 ["cap"])
CAP_STORE_ERRORS = Counter("distilbot_client_cap_store_errors",
                           "Cap checks let through because the caps' store (Redis) failed")


class RequestTimer:
    """ASGI middleware: each HTTP request's latency, labelled by its route template (not its raw path,
    which would make a time series per conversation id)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500

        async def recording_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            REQUEST_SECONDS.labels(scope["method"], getattr(route, "path", "unmatched"),
                                   str(status)).observe(time.perf_counter() - start)


def logging_config(log_format: str) -> dict:
    """One config for our loggers and uvicorn's, so every line has the same shape."""
    formatter = ({"()": "pythonjsonlogger.json.JsonFormatter",
                  "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                  "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}}
                 if log_format == "json" else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"})
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "stream": "ext://sys.stderr"}},
        "loggers": {name: {"handlers": ["default"], "level": "INFO", "propagate": False}
                    for name in ("distilbot", "uvicorn", "uvicorn.error", "uvicorn.access")},
    }


log = logging.getLogger("distilbot")
