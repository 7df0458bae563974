"""The shapes of the API's requests and responses (what the OpenAPI docs show)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from bot.desk.views import (  # noqa: F401 (response models the desk returns)
    ButtonOut,
    ConversationOut,
    CorrectionItem,
    CorrectionOut,
    IntentOut,
    MessageOut,
    NoteOut,
    RelabelOut,
    ReviewItem,
    TranscriptMessage,
    TranscriptOut,
)
from bot.infra.store import ConversationStatus
from bot.model.templates import Button, Template, placeholders


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


class ErrorOut(BaseModel):
    """Every error the API sends."""

    detail: str = Field(description="What is wrong, for a person to read.")


Responses = dict[int | str, dict[str, Any]]
"""Documented responses of a route, as FastAPI's `responses=` takes them."""


def error(description: str) -> dict[str, Any]:
    """An error response for the OpenAPI document."""
    return {"model": ErrorOut, "description": description}


COMMON_ERRORS: Responses = {413: error("request body too large"),
                            422: error("invalid request: the message says which field"),
                            429: error("too many requests: retry after the Retry-After header's seconds")}


class IdentityIn(Strict):
    """The shop's logged-in customer, vouched for by the shop's server (identity verification)."""

    user_id: StrictStr = Field(min_length=1, max_length=128, description="The shop's id for the customer.")
    user_hash: StrictStr = Field(pattern=r"^[0-9a-fA-F]{64}$", description="Hex HMAC-SHA256 of user_id, keyed "
                                 "with the secret the shop's server and the bot share (DISTILBOT_IDENTITY_SECRET).")
    email: StrictStr | None = Field(None, max_length=256, pattern=r"^[^@\s]+@[^@\s]+$",
                                    description="The customer's e-mail address, shown to agents (not covered by "
                                                "the hash, so never used as proof).")


class ChatRequest(Strict):
    message: StrictStr = Field(description="What the visitor wrote, or a quick-reply payload such as "
                                           "'/order_status'.")
    session_id: StrictStr | None = Field(None, description="Continue this conversation; omit to start one.")
    identity: IdentityIn | None = Field(None, description="The shop's logged-in customer (the widget's "
                                        "data-user-id and data-user-hash): such a visitor may act on their own "
                                        "orders without giving an e-mail address. A hash that does not verify is "
                                        "refused with 403.")

    _check_message = field_validator("message")(_not_blank)




class ReplyOut(BaseModel):
    id: int = Field(description="The stored message's id (for feedback).")
    text: str
    buttons: list[ButtonOut]




class ChatResponse(BaseModel):
    session_id: str
    session_token: str | None = Field(None, description="Given once, on a conversation's first turn: send it "
                                                        "back as 'Authorization: Bearer …' to continue.")
    message_id: int = Field(description="The stored id of the visitor's message.")
    replies: list[ReplyOut]
    intent: IntentOut
    ranking: list[IntentOut]
    template: str | None
    decision: str = Field(description="answer, clarify, fallback, handoff, form (a form asked, checked or acted) "
                                      "or silent (a person has the conversation)")
    status: ConversationStatus
    model_version: str




class HistoryOut(BaseModel):
    session_id: str
    status: ConversationStatus
    agent: str | None
    csat: int | None
    messages: list[MessageOut]


class FeedbackRequest(Strict):
    value: Literal["up", "down"] | None = Field(description="Thumbs up or down; null takes it back.")


class CsatRequest(Strict):
    score: StrictInt = Field(ge=1, le=5, description="1 (very unhappy) to 5 (very happy).")


class RasaMessage(Strict):
    sender: StrictStr = Field(min_length=1, max_length=128, description="The client's id for the visitor.")
    message: StrictStr
    metadata: dict | None = None

    _check_message = field_validator("message")(_not_blank)


class RasaReply(BaseModel):
    recipient_id: str
    text: str
    buttons: list[ButtonOut] | None = None


class LoginRequest(Strict):
    username: StrictStr = Field(max_length=64)
    password: StrictStr = Field(max_length=256)


class AgentOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: Literal["agent", "admin"] = Field(description="Admins may also approve or reject proposed intents.")
    low_confidence: float | None = Field(None, description="The server's low-confidence threshold (on /me).")


class LoginOut(BaseModel):
    token: str = Field(description="Send as 'Authorization: Bearer …' on every agent request.")
    expires_in_s: int
    agent: AgentOut


class PasswordChange(Strict):
    current_password: StrictStr = Field(max_length=256)
    new_password: StrictStr = Field(min_length=8, max_length=256, description="At least 8 characters.")


class TextRequest(Strict):
    text: StrictStr = Field(description="Plain text, stored and shown verbatim.")

    _check_text = field_validator("text")(_not_blank)


class RelabelRequest(Strict):
    intent: StrictStr = Field(description="The intent the visitor's message really had (one the model knows); "
                                          "the predicted intent confirms the prediction.")


class ApproveCorrectionRequest(Strict):
    intent: StrictStr = Field(description="The intent the admin saw and approves: if an agent has relabelled the "
                                          "message since, nothing is approved (409).")


class ReviewedRequest(Strict):
    reviewed: bool = True




class ConversationPage(BaseModel):
    total: int
    counts: dict[ConversationStatus, int] = Field(description="Conversations per status, all filters aside.")
    conversations: list[ConversationOut]
















class DayStats(BaseModel):
    day: str = Field(description="YYYY-MM-DD (UTC)")
    conversations: int = Field(description="Conversations started that day.")
    visitor_messages: int
    bot_messages: int
    handoffs: int
    handoff_rate: float | None = Field(description="Handoffs per conversation started.")
    fallback_rate: float | None = Field(description="Share of the bot's messages that were fallbacks.")
    average_confidence: float | None = Field(description="Mean confidence of the top intent of visitors' messages.")
    csat: float | None = Field(description="Mean rating (1–5) of the conversations started that day.")
    rated: int


class ModelSide(BaseModel):
    model: str | None
    accuracy: float | None
    params: int | None
    disk_mb: float | None
    latency_ms_p50: float | None


class ModelSummary(BaseModel):
    version: str
    backend: str
    teacher: ModelSide
    student: ModelSide
    speedup_same_runtime: float | None = Field(
        None, description="Teacher p50 / student p50 latency, one message, CPU, both int8 ONNX: what distillation "
                          "buys (None when the student is not served in int8).")
    speedup_p50: float | None = Field(description="Teacher in PyTorch fp32 p50 / served student p50 latency, one "
                                                  "message, CPU: distillation and the runtime together.")
    test_messages: int | None


class StatsOut(BaseModel):
    days: list[DayStats]
    model: ModelSummary


class NewIntentRequest(Strict):
    name: StrictStr = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$", description="snake_case, not an intent the model "
                                                                            "knows or one already added.")
    answer: StrictStr = Field(min_length=1, max_length=2000, description="The bot's answer; `{slot}` placeholders "
                                                                         "must be slots the templates define.")
    examples: list[StrictStr] = Field(min_length=5, max_length=500, description="Visitor messages of this intent "
                                                                                "(at least 5; a dozen or more "
                                                                                "learns well).")
    buttons: list[ButtonOut] = Field([], max_length=6)

    @field_validator("answer")
    @classmethod
    def _plain_placeholders(cls, value: str) -> str:
        placeholders(value)  # only {name}: no format spec, conversion, attribute or index
        return value

    @field_validator("examples")
    @classmethod
    def _distinct_and_filled(cls, value: list[str]) -> list[str]:
        cleaned = list(dict.fromkeys(v.strip() for v in value))
        if any(not v for v in cleaned):
            raise ValueError("an example is empty")
        if len(cleaned) < 5:
            raise ValueError("needs at least 5 different examples")
        return cleaned


class NewIntentOut(BaseModel):
    name: str
    answer: str
    buttons: list[ButtonOut]
    examples: list[str]
    agent_id: int | None
    agent: str | None = Field(description="The proposer's display name.")
    created_at: str
    status: Literal["proposed", "approved", "rejected"] = Field(description="Only approved intents are learned "
                                                                            "by redistillation.")
    decided_by: int | None = Field(description="The admin who approved or rejected it.")
    decider: str | None = Field(description="That admin's display name.")
    decided_at: str | None


class ButtonIn(Strict):
    title: StrictStr = Field(min_length=1, max_length=80)
    payload: StrictStr = Field(min_length=1, max_length=200, description="`/intent`, or text sent as the visitor's.")


class AnswerIn(Strict):
    """An answer as an admin writes it in the console (bot.model.templates.Template, with limits)."""

    id: StrictStr = Field(pattern=r"^[a-z][a-z0-9_]{1,127}$", description="snake_case; fixed once created.")
    intent: StrictStr = Field(min_length=1, max_length=128, description="An intent the served model knows.")
    examples: list[Annotated[StrictStr, Field(min_length=1, max_length=500)]] = Field(
        min_length=1, max_length=200, description="Visitor questions this answer fits (the retriever matches them).")
    text: StrictStr = Field(min_length=1, max_length=2000, description="`{slot}` placeholders: slots the templates "
                                                                       "define.")
    buttons: list[ButtonIn] = Field([], max_length=6)
    action: StrictStr | None = Field(None, max_length=64, description="A form to start instead of answering (e.g. "
                                                       "order_status_form).")

    @field_validator("text")
    @classmethod
    def _plain_placeholders(cls, value: str) -> str:
        placeholders(value)  # only {name}: no format spec, conversion, attribute or index
        return value

    def template(self) -> Template:
        return Template(id=self.id, intent=self.intent, examples=[e.strip() for e in self.examples], text=self.text,
                        buttons=[Button(title=b.title, payload=b.payload) for b in self.buttons], action=self.action)


class AnswerWrite(Strict):
    answer: AnswerIn
    base: int = Field(ge=0, description="The revision the change was made over (an answer's `revision`): a 409 "
                                        "tells that someone changed it since.")


class AnswerBase(Strict):
    base: int = Field(ge=0, description="The revision served when the change was made (409 if it changed since).")


class ErasureRequest(Strict):
    """Exactly one: whose conversations to erase."""

    conversation_id: StrictStr | None = Field(None, max_length=64, description="One conversation (an anonymous "
                                                                               "visitor's).")
    customer_id: StrictStr | None = Field(None, max_length=128, description="Every conversation of this verified "
                                                                            "customer.")
    email: StrictStr | None = Field(None, max_length=256, description="Every conversation of the verified customer "
                                                                      "with this e-mail address.")


class CannedRequest(Strict):
    shortcut: StrictStr = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="Typed after `/` in the reply "
                                                                                    "box: lower-case letters, "
                                                                                    "digits, - and _.")
    text: StrictStr = Field(min_length=1, max_length=2000, description="`{slot}` placeholders are filled from the "
                                                                       "conversation; `{agent}` is your name.")
    shared: bool = Field(False, description="For every agent (admins only); else your own. Fixed once made.")

    @field_validator("text")
    @classmethod
    def _plain_placeholders(cls, value: str) -> str:
        placeholders(value)  # only {name}: no format spec, conversion, attribute or index
        return value


class ExamplesRequest(Strict):
    texts: list[Annotated[StrictStr, Field(min_length=1, max_length=500)]] = Field(
        min_length=1, max_length=50, description="Messages a visitor could write for this intent.")

    @field_validator("texts")
    @classmethod
    def _distinct_and_filled(cls, value: list[str]) -> list[str]:
        cleaned = list(dict.fromkeys(v.strip() for v in value))
        if any(not v for v in cleaned):
            raise ValueError("an example is empty")
        return cleaned
