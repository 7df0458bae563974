"""What the desk hands to its callers: typed views of conversations, messages, notes and corrections.

The API returns them as they are (they are its response models) and the live events carry their JSON, so a
console sees the same shape from a request and from a socket."""

from __future__ import annotations

from pydantic import BaseModel, Field

from bot.infra.store import ConversationStatus


class ButtonOut(BaseModel):
    title: str
    payload: str


class IntentOut(BaseModel):
    name: str
    confidence: float


class MessageOut(BaseModel):
    """What the visitor may see of a message."""

    id: int
    role: str = Field(description="user, bot or agent")
    text: str = Field(description="Exactly as written: render it as text, never as HTML.")
    buttons: list[ButtonOut]
    agent: str | None = Field(description="The agent's display name, on agents' messages.")
    feedback: str | None
    created_at: str


class CorrectionOut(BaseModel):
    intent: str
    agent_id: int | None
    created_at: str


class TranscriptMessage(MessageOut):
    """What an agent sees of a message: also what the model understood and what the policy decided."""

    intent: str | None
    confidence: float | None
    ranking: list[IntentOut]
    template: str | None
    decision: str | None
    model_version: str | None
    low_confidence: bool = Field(description="A visitor's message understood with less confidence than the "
                                             "server's low-confidence setting.")
    correction: CorrectionOut | None


class NoteOut(BaseModel):
    id: int
    text: str
    agent_id: int | None
    agent: str | None = Field(description="The author's display name.")
    created_at: str


class ConversationOut(BaseModel):
    """One row of the inbox."""

    id: str
    status: ConversationStatus
    agent: str | None
    agent_id: int | None
    csat: int | None
    reviewed: bool
    created_at: str
    updated_at: str
    messages: int = Field(description="How many messages the visitor wrote.")
    last_message: MessageOut | None
    lowest_confidence: float | None
    low_confidence: bool
    thumbs_down: bool
    customer_id: str | None = Field(None, description="The shop's customer, when the host site vouched for the "
                                                      "visitor (identity verification).")
    customer_email: str | None = Field(None, description="The e-mail address the shop's page gave for that "
                                                         "customer (shown to agents; never used as proof).")
    offline_message: bool = Field(False, description="The hand-off came outside office hours: the visitor was asked "
                                                     "for an e-mail address (slot contact_email).")
    language: str | None = Field(None, description="The visitor's language (ISO 639-1) when the model was not trained "
                                                   "on it: the bot handed the conversation over at once.")


class TranscriptOut(ConversationOut):
    slots: dict[str, object]
    active_form: str | None
    transcript: list[TranscriptMessage]
    notes: list[NoteOut]


class ReviewItem(TranscriptMessage):
    conversation_id: str


class RelabelOut(BaseModel):
    message_id: int
    text: str
    intent: str
    predicted_intent: str | None
    confirmed: bool = Field(description="True when the agent kept the predicted intent.")


class CorrectionItem(RelabelOut):
    conversation_id: str
    agent_id: int | None
    agent: str | None = Field(description="The display name of the agent who labelled it last.")
    created_at: str
    approved_by: int | None = Field(description="The admin who approved it; until one does, a correction that "
                                                "contradicts the base training data is not learned.")
    approver: str | None = Field(description="That admin's display name.")
    approved_at: str | None
