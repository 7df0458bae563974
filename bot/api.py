"""The chat API (FastAPI): visitors' chat endpoint, health, OpenAPI docs."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot import actions
from bot.dialogue import ChatService, SessionForbidden, SessionNotFound
from bot.orders import seed_orders
from bot.served_model import ServedModel
from bot.settings import Settings
from bot.store import make_engine, make_sessionmaker


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: StrictStr = Field(description="What the visitor wrote, or a quick-reply payload such as "
                                           "'/order_status'.")
    session_id: StrictStr | None = Field(None, description="Continue this conversation; omit to start one.")

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty or only whitespace")
        return value


class ButtonOut(BaseModel):
    title: str
    payload: str


class ReplyOut(BaseModel):
    text: str
    buttons: list[ButtonOut]


class IntentOut(BaseModel):
    name: str
    confidence: float


class ChatResponse(BaseModel):
    session_id: str
    session_token: str | None = Field(None, description="Given once, on a conversation's first turn: send it "
                                                        "back as 'Authorization: Bearer …' to continue.")
    replies: list[ReplyOut]
    intent: IntentOut
    ranking: list[IntentOut]
    template: str | None
    decision: str = Field(description="answer, clarify, fallback, handoff, form (a form asked, checked or acted) "
                                      "or silent (a person has the conversation)")
    model_version: str


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.model = ServedModel.load(settings.registry, settings.backend)
        engine = make_engine(settings.db_url)
        sessions = make_sessionmaker(engine)
        if settings.seed_orders is not None:
            seed_orders(sessions, settings.seed_orders)
        actions.configure(lambda: app.state.model.retriever.book, sessions)
        app.state.chat = ChatService(sessions, lambda: app.state.model)
        yield
        engine.dispose()

    app = FastAPI(title="distilbot", version="0.1.0", lifespan=lifespan,
                  description="Customer-service bot served by a distilled student model.")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.post("/api/chat", response_model=ChatResponse, tags=["chat"],
              responses={403: {"description": "wrong or missing session token"},
                         404: {"description": "unknown session id"}})
    def chat(body: ChatRequest, request: Request,
             authorization: Annotated[str | None, Header()] = None) -> ChatResponse:
        """Send the visitor's message; get the bot's replies and what it understood."""
        if len(body.message) > settings.max_message_chars:
            raise HTTPException(422, f"message: is {len(body.message)} characters; "
                                     f"the limit is {settings.max_message_chars}")
        try:
            turn = request.app.state.chat.handle(body.message, body.session_id, _bearer(authorization))
        except SessionNotFound:
            raise HTTPException(404, f"no conversation with id {body.session_id!r}") from None
        except SessionForbidden:
            raise HTTPException(403, "this conversation needs its session token (Authorization: Bearer …)") \
                from None
        top = turn.prediction.top
        return ChatResponse(
            session_id=turn.session_id,
            session_token=turn.session_token,
            replies=[ReplyOut(text=r.text, buttons=[ButtonOut(**b.model_dump()) for b in r.buttons])
                     for r in turn.replies],
            intent=IntentOut(name=top.name, confidence=top.confidence),
            ranking=[IntentOut(name=s.name, confidence=s.confidence) for s in turn.prediction.ranking],
            template=turn.template,
            decision=turn.decision.value,
            model_version=turn.model_version,
        )

    @app.get("/health", tags=["operations"])
    def health(request: Request) -> dict:
        """Up, and which model version it serves and how (int8 ONNX or PyTorch)."""
        model = request.app.state.model
        return {"status": "ok", "model_version": model.version, "backend": model.classifier.backend}

    return app
