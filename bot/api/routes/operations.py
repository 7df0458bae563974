"""For operators and orchestrators: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from bot.api.deps import ModelDep, ServicesDep

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health(model: ModelDep) -> dict:
    """Alive (liveness probe), and which model version it serves and how (int8 ONNX or PyTorch). Async and
    touching nothing but memory, so it never waits behind chat turns or logins in the thread pool."""
    return {"status": "ok", "model_version": model.version, "backend": model.classifier.backend}


@router.get("/ready", responses={503: {"description": "the store cannot be reached; the body says why"}})
async def ready(services: ServicesDep) -> JSONResponse:
    """Ready for traffic (readiness probe): the model is loaded and the store answers (503 if not).

    Redis down is "degraded", still 200: every replica shares the one Redis, so failing readiness would take
    them all out of rotation at once, while each can still chat and store turns on its own (events then
    reach only its own sockets, and the rate limit counts per replica). The body lists what is degraded."""
    checks = {}

    def store_answers():
        with services.sessions() as db:
            db.execute(text("SELECT 1"))

    try:
        await run_in_threadpool(store_answers)
        checks["store"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["store"] = f"error: {exc.__class__.__name__}"
    try:
        await services.bus.ping()
        checks["events"] = "ok"
    except Exception as exc:
        checks["events"] = f"error: {exc.__class__.__name__}"
    degraded = [] if checks["events"] == "ok" else ["redis"]
    ok = checks["store"] == "ok"
    body = {"status": ("degraded" if degraded else "ready") if ok else "not ready", "degraded": degraded,
            "model_version": services.holder.model.version, "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response)
def metrics() -> Response:
    """Prometheus text format (see bot/infra/telemetry.py for what each metric means)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
