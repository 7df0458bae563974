"""The models page: the registry's versions with their figures, the redistillation reports, and (admins) serving
another version, pinning the drift baseline and starting a redistillation, whose progress the page follows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from starlette.concurrency import run_in_threadpool

from bot.api.deps import CurrentAdmin, CurrentAgent, ServicesDep
from bot.api.redistill_job import JobOut, JobUnavailable
from bot.api.schemas import Responses, error
from bot.model import versions
from bot.model.artifact import ArtifactError, RegistryBusy
from bot.model.versions import RegistryOut, ReportOut

router = APIRouter(prefix="/api/agent", tags=["models"])
Version = Annotated[str, Path(pattern=r"^v\d{4,}$", description="A published version, e.g. v0007.")]
UNAUTHORIZED: Responses = {401: error("missing, invalid or expired agent token")}
CHANGE_ERRORS: Responses = {**UNAUTHORIZED, 403: error("only an admin may do this"), 404: error("no such version"),
                            409: error("a run is writing to the registry, or this API may not write it")}


@router.get("/models", response_model=RegistryOut, responses=UNAUTHORIZED)
def registry(me: CurrentAgent, services: ServicesDep) -> RegistryOut:
    """Every version (newest first) with its figures, which one is served and which is the drift baseline, and
    the redistillation reports."""
    return versions.overview(services.settings.registry)


@router.get("/models/reports/{name}", response_model=ReportOut,
            responses={**UNAUTHORIZED, 404: error("no such report")})
def redistillation_report(name: Annotated[str, Path(max_length=64)], me: CurrentAgent, services: ServicesDep
                          ) -> ReportOut:
    """One redistillation: its decision, and every gate check in words (Markdown) and as figures (JSON)."""
    try:
        return versions.report(services.settings.registry, name)
    except ArtifactError as exc:
        raise HTTPException(404, str(exc)) from None


def _registry_change(change, services, version: str) -> RegistryOut:
    root = services.settings.registry
    try:
        change(root, version)
    except ArtifactError as exc:
        raise HTTPException(404, str(exc)) from None
    except RegistryBusy as exc:
        raise HTTPException(409, f"{exc}; try again when it is done") from None
    except OSError as exc:  # e.g. the registry is mounted read-only for the API
        raise HTTPException(409, f"this API may not write the registry ({exc.strerror}); use `bot model use` "
                                 "where it can") from None
    return versions.overview(root)


@router.post("/models/{version}/serve", response_model=RegistryOut, responses=CHANGE_ERRORS)
async def serve_version(version: Version, me: CurrentAdmin, services: ServicesDep) -> RegistryOut:
    """Admins only: serve this version (a rollout or a rollback), as `bot model use` does; this API process loads
    it at once, every other within DISTILBOT_RELOAD_INTERVAL_S."""
    result = await run_in_threadpool(_registry_change, versions.serve, services, version)
    await services.holder.check()
    return result


@router.post("/models/{version}/baseline", response_model=RegistryOut, responses=CHANGE_ERRORS)
def pin_baseline(version: Version, me: CurrentAdmin, services: ServicesDep) -> RegistryOut:
    """Admins only: the next redistillations also compare their candidate with this version (drift)."""
    return _registry_change(versions.pin_baseline, services, version)


@router.post("/redistillations", response_model=JobOut, status_code=202,
             responses={**UNAUTHORIZED, 403: error("only an admin may do this"),
                        409: error("one is running already, or redistillation cannot run here")})
def start_redistillation(me: CurrentAdmin, services: ServicesDep) -> JobOut:
    """Admins only: run a redistillation now, in its own process (GET …/{id} follows it). It harvests, trains,
    gates and publishes only if the gate passes, as the scheduled job does."""
    try:
        return services.jobs.start(me.display_name)
    except JobUnavailable as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/redistillations/latest", response_model=JobOut,
            responses={**UNAUTHORIZED, 404: error("none was started from this API process's console")})
def latest_redistillation(me: CurrentAgent, services: ServicesDep) -> JobOut:
    """The last redistillation started from the console on this replica."""
    job = services.jobs.latest()
    if job is None:
        raise HTTPException(404, "no redistillation was started here")
    return job


@router.get("/redistillations/{job_id}", response_model=JobOut,
            responses={**UNAUTHORIZED, 404: error("no such redistillation")})
def redistillation(job_id: Annotated[str, Path(max_length=32)], me: CurrentAgent, services: ServicesDep) -> JobOut:
    """A redistillation started from the console: running (with its last line of output) or how it ended."""
    job = services.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no redistillation {job_id!r}")
    return job
