"""For operators and orchestrators: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

router = APIRouter(tags=["operations"])


@router.get("/health")
def health(request: Request) -> dict:
    """Alive (liveness probe), and which model version it serves and how (int8 ONNX or PyTorch)."""
    model = request.app.state.holder.model
    return {"status": "ok", "model_version": model.version, "backend": model.classifier.backend}


@router.get("/ready", responses={503: {"description": "the store or the event bus cannot be reached; the body "
                                                   "says which"}})
async def ready(request: Request):
    """Ready for traffic (readiness probe): the model is loaded and the store and event bus answer."""
    checks = {}

    def store_answers():
        with request.app.state.sessions() as db:
            db.execute(text("SELECT 1"))

    try:
        await run_in_threadpool(store_answers)
        checks["store"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["store"] = f"error: {exc.__class__.__name__}"
    redis = getattr(request.app.state.bus, "redis", None)
    try:
        if redis is not None:
            await redis.ping()
        checks["events"] = "ok"
    except Exception as exc:
        checks["events"] = f"error: {exc.__class__.__name__}"
    ok = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ok else "not ready", "model_version": request.app.state.holder.model.version,
            "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response)
def metrics() -> Response:
    """Prometheus text format (see bot/telemetry.py for what each metric means)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
