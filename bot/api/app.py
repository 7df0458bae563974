"""The chat API (FastAPI): one app for visitors, Rasa REST clients, agents, live sockets and operators."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.api import answer_sync
from bot.api.deps import LOGIN_WORKERS, Services
from bot.api.redistill_job import RedistillJobs
from bot.api.routes import (
    agent_api,
    answers,
    canned,
    intents,
    live,
    models,
    operations,
    privacy,
    rasa_channel,
    visitor,
    web,
)
from bot.api.schemas import COMMON_ERRORS
from bot.api.security_headers import SecurityHeaders
from bot.api.sockets import Caps, SocketRegistry
from bot.conversation.client_caps import ClientCaps
from bot.conversation.dialogue import ChatService
from bot.conversation.orders import seed_orders
from bot.infra import telemetry
from bot.infra.events import make_bus
from bot.infra.guards import BodySizeLimit, RateLimit
from bot.infra.settings import Settings
from bot.infra.store import make_engine, make_sessionmaker
from bot.infra.telemetry import RequestTimer
from bot.model.batching import MicroBatcher
from bot.model.reload import ModelHolder


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            position = error["loc"][-1]
            parts.append(f"body: not valid JSON at character {position} ({error.get('ctx', {}).get('error')})")
            continue
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def _http_error_message(exc: StarletteHTTPException) -> tuple[int, str]:
    """FastAPI's own messages for bodies it cannot read, made to say what is wrong."""
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        return 422, "body: not valid UTF-8"
    return exc.status_code, exc.detail


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Turns wait their turn in arrival order rather than as dozens of threads fighting over the GIL,
        # which keeps the slowest requests close to the typical ones under load.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        holder = ModelHolder(settings.registry, settings.backend, settings.clarify_margin, settings.model_threads)
        # One connection per thread that can hold one (chat turns, and logins in their own pool): replicas ×
        # workers × this is what PostgreSQL must allow.
        engine = make_engine(settings.db_url, pool_size=settings.threads + LOGIN_WORKERS)
        sessions = make_sessionmaker(engine)
        if settings.seed_orders is not None:
            seed_orders(sessions, settings.seed_orders)
        batcher = MicroBatcher(settings.max_batch)
        caps = ClientCaps(settings.new_conversation_cap, settings.handoff_cap, settings.redis_url)
        chat = ChatService(sessions, lambda: holder.model, predict=batcher.predict,
                           predict_async=batcher.predict_async,
                           handoff_after_failures=settings.handoff_after_failures,
                           identity_secret=settings.identity_secret, caps=caps, office=settings.office(),
                           offer_every_s=settings.socket_recheck_s if settings.assignment == "round_robin" else None)
        bus = make_bus(settings.redis_url, settings.redis_max_connections)
        sockets = SocketRegistry(Caps(settings.max_sockets_per_client, settings.max_sockets_per_conversation,
                                      settings.max_sockets_per_agent),
                                 settings.socket_message_rate, settings.socket_recheck_s)
        sockets.start(bus, sessions)
        jobs = RedistillJobs(settings.jobs_dir, settings.registry, settings.db_url, settings.redistill_args)
        app.state.services = services = Services(settings, holder, sessions, chat, bus, sockets, jobs)
        answer_sync.load_at_start(services)
        watchers = [asyncio.create_task(answer_sync.watch(services, settings.answers_interval_s))]
        if settings.reload_interval_s:
            watchers.append(asyncio.create_task(holder.watch(settings.reload_interval_s)))
        yield
        for watcher in watchers:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await services.sockets.stop()
        await services.bus.close()
        batcher.close()
        engine.dispose()

    app = FastAPI(title="distilbot", version="0.1.0", lifespan=lifespan,
                  description="Customer-service bot served by a distilled student model. Visitors chat through "
                              "`/api/chat` (or Rasa's REST channel) and follow live events on a WebSocket; agents "
                              "log in and work conversations through `/api/agent/…`. Every error is JSON: "
                              "`{\"detail\": \"what went wrong\"}`.")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException):
        status, message = _http_error_message(exc)
        return JSONResponse({"detail": message}, status_code=status, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception):
        telemetry.log.error("unhandled error", exc_info=exc)
        return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)

    for module in (visitor, rasa_channel, agent_api, answers, canned, intents, models, live, privacy, operations):
        app.include_router(module.router, responses=COMMON_ERRORS)
    app.include_router(web.router)
    web.mount_static(app)
    # Outermost last: timing sees everything, then CORS answers preflights, then limits apply.
    app.add_middleware(RateLimit, rates=settings.rate_limit, redis_url=settings.redis_url,
                       fail_open=settings.rate_limit_fail_open, max_connections=settings.redis_max_connections)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "OPTIONS"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)
    app.add_middleware(SecurityHeaders)  # on every response, 429s and errors included
    app.add_middleware(RequestTimer)
    return app
