"""The intents page: each intent's figures, traffic, review items and examples; agents propose examples for an
intent the model knows, admins approve them (the next redistillation learns approved ones)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from bot.api.deps import CurrentAdmin, CurrentAgent, ServicesDep
from bot.api.routes.common import in_transaction
from bot.api.schemas import ExamplesRequest, Responses, error
from bot.desk import intents
from bot.desk.intents import ExampleOut, IntentRow
from bot.infra.store import Role

router = APIRouter(prefix="/api/agent", tags=["intents"])
UNAUTHORIZED: Responses = {401: error("missing, invalid or expired agent token")}
ExampleId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/intents/overview", response_model=list[IntentRow], responses=UNAUTHORIZED)
def intents_overview(me: CurrentAgent, services: ServicesDep) -> list[IntentRow]:
    """Every intent of the served model: golden-set precision and recall, the intents its validation messages
    were confused with, visitors' messages of the last 14 days, review-queue items, answers and examples."""
    model = services.holder.model
    return in_transaction(services.sessions, lambda db: intents.overview(
        db, list(model.classifier.labels), model.metrics, model.retriever.book, services.settings.low_confidence))


@router.post("/intents/{name}/examples", response_model=list[ExampleOut], status_code=201,
             responses={**UNAUTHORIZED, 404: error("an intent the served model does not know")})
def propose_examples(name: Annotated[str, Path(max_length=128)], body: ExamplesRequest, me: CurrentAgent,
                     services: ServicesDep) -> list[ExampleOut]:
    """Example messages of this intent; an admin approves them (an admin's own are approved at once), and the
    next redistillation learns the approved ones as labels."""
    labels = list(services.holder.model.classifier.labels)
    return in_transaction(services.sessions, lambda db: intents.propose(db, labels, name, body.texts, me.id,
                                                                me.role is Role.ADMIN))


@router.post("/examples/{example_id}/approve", response_model=ExampleOut,
             responses={**UNAUTHORIZED, 403: error("only an admin may do this"), 404: error("no such example")})
def approve_example(example_id: ExampleId, me: CurrentAdmin, services: ServicesDep) -> ExampleOut:
    """Admins only: the next redistillation learns this example."""
    labels = list(services.holder.model.classifier.labels)
    return in_transaction(services.sessions, lambda db: intents.decide(db, labels, example_id, True, me.id))


@router.post("/examples/{example_id}/reject", response_model=ExampleOut,
             responses={**UNAUTHORIZED, 403: error("only an admin may do this"), 404: error("no such example")})
def reject_example(example_id: ExampleId, me: CurrentAdmin, services: ServicesDep) -> ExampleOut:
    """Admins only: the example is not learned (an approved one is withdrawn before the next redistillation)."""
    labels = list(services.holder.model.classifier.labels)
    return in_transaction(services.sessions, lambda db: intents.decide(db, labels, example_id, False, me.id))
