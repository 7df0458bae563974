"""One turn of a conversation: find the session, understand the message, decide, reply, remember."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from bot.conversation.action_runner import ActionResult, ActionRunner, FormState
from bot.conversation.actions import SLOT_PARSERS, answer_message, in_turn
from bot.conversation.client_caps import Cap, ClientCaps
from bot.conversation.ownership import identity_is_valid
from bot.conversation.policy import Decision, decide
from bot.conversation.turn_store import ConversationChanged, load_for_turn, save_turn
from bot.desk import assignment
from bot.desk.agents import token_digest
from bot.desk.desk import message_events, status_event
from bot.infra.events import Event
from bot.infra.guards import client_hash
from bot.infra.office_hours import CONTACT_EMAIL_SLOT as CONTACT_EMAIL
from bot.infra.office_hours import OFFLINE_SLOT as OFFLINE
from bot.infra.office_hours import OfficeHours
from bot.infra.store import Conversation, ConversationStatus, Message, utcnow
from bot.model.domain import FORMS, required_slots
from bot.model.language import foreign_language
from bot.model.nlu import IntentScore, Prediction
from bot.model.served_model import ServedModel
from bot.model.templates import Button

FALLBACK_TEXT = "Sorry, I didn't quite get that. Could you say it in other words?"
FALLBACK_AGAIN_TEXT = "I'm still not sure what you need. Would you like to talk to a person?"
FALLBACK_HANDOFF_TEXT = "I'm sorry, I can't work this out. I'm passing you to a person."
CLARIFY_TEXT = "Just to be sure, which of these do you mean?"
HANDOFF_CAPPED_TEXT = ("Our team can't take more requests from your connection right now. Please try again "
                       "later, or write to us by e-mail.")
FOREIGN_HANDOFF_TEXT = {  # the widget's languages first (en, zh), then a few common in European shops
    "en": "Sorry, I can't answer in your language yet. I'm passing you to a person from our team.",
    "zh": "抱歉，我暂时无法用您的语言回答。正在为您转接人工客服…",
    "de": "Leider kann ich noch nicht in Ihrer Sprache antworten. Ich verbinde Sie mit einer Person aus unserem Team.",
    "fr": "Désolé, je ne peux pas encore répondre dans votre langue. Je vous mets en relation avec une personne de "
          "notre équipe.",
    "es": "Lo siento, todavía no puedo responder en su idioma. Le paso con una persona de nuestro equipo.",
}
OFFLINE_TEXT = ("Our team is offline right now (we are there {hours}). Leave your e-mail address and your "
                "question here, and we will write back as soon as we are in.")
OFFLINE_THANKS_TEXT = "Thank you! We will write to {email} as soon as we are back."
HUMAN_BUTTON = Button(title="Talk to a person", payload="/contact_human")
TURN_ATTEMPTS = 3

_SLOT_PATTERNS = {
    "order_id": re.compile(r"\b(?:#\s*)?nw[\s-]*(\d{6})\b", re.IGNORECASE),
    "email": re.compile(r"\b([\w.+-]+@[\w-]+\.[\w.-]+)\b"),
}
_INTENT_PAYLOAD = re.compile(r"^/([A-Za-z0-9_]+)$")


class SessionNotFound(Exception):
    pass


class SessionForbidden(Exception):
    pass


class NotAllowedNow(Exception):
    """Something the visitor cannot do in the conversation's present state (the message says why)."""


class IdentityRefused(Exception):
    """The host site's identity for the visitor could not be verified (the message says why)."""


class TooManyConversations(Exception):
    """This client address started as many conversations as an hour allows."""


@dataclass(frozen=True)
class Identity:
    """The host site's word for who its logged-in visitor is: the customer id and the HMAC-SHA256 of it,
    keyed with the secret the shop and the bot share (DISTILBOT_IDENTITY_SECRET)."""

    user_id: str
    user_hash: str
    email: str | None = None
    """Given by the shop's page beside the id; not covered by the hash, so shown to agents, never proof."""


@dataclass(frozen=True)
class Understood:
    """What the model made of a message, worked out before the turn's transaction (no lock held meanwhile),
    and the model that did it (a hot reload cannot pair one model's prediction with another's templates)."""

    model: ServedModel
    prediction: Prediction


@dataclass
class Reply:
    text: str
    buttons: list[Button] = field(default_factory=list)


@dataclass
class TurnResult:
    session_id: str
    session_token: str | None
    """Only on the first turn: the secret the visitor must present to continue the session."""
    replies: list[Reply]
    prediction: Prediction
    template: str | None
    decision: Decision
    model_version: str
    status: ConversationStatus
    """The conversation's status after the turn."""
    status_changed: bool
    message_id: int
    """The stored id of the visitor's message."""
    reply_ids: list[int]
    """The stored ids of `replies` (a visitor gives feedback on one by its id)."""
    events: list[Event]
    """What the visitor's other tabs and the agents' consoles are told about this turn."""


def extract_slots(text: str) -> dict[str, str]:
    """Values the visitor gave in passing (an order number, an e-mail address)."""
    slots = {}
    if match := _SLOT_PATTERNS["order_id"].search(text):
        slots["order_id"] = f"NW{match.group(1)}"
    if match := _SLOT_PATTERNS["email"].search(text):
        slots["email"] = match.group(1)
    return slots


def intent_title(intent: str) -> str:
    return intent.replace("_", " ").capitalize()


class ChatService:
    def __init__(self, sessions: sessionmaker, model_source, actions: ActionRunner | None = None,
                 handoff_after_failures: int = 3, predict=None, identity_secret: str | None = None,
                 caps: ClientCaps | None = None, predict_async=None, office: OfficeHours | None = None,
                 clock: Callable[[], datetime] = utcnow, offer_every_s: float | None = None):
        """`model_source()` returns the ServedModel to use now (so a reload swaps it between turns).
        Fallbacks in a row: the first asks to rephrase, the second also offers a person, the
        `handoff_after_failures`-th hands the conversation to one. `predict(classifier, text)` runs the
        model (by default directly; the API passes its micro-batcher), `predict_async` likewise for
        `understand` (by default `predict` in a thread). `identity_secret` verifies the host site's
        identities; `caps` limits new conversations and hand-offs per client address. Outside `office`
        hours (None: always open, by `clock`) a hand-off asks for an e-mail address instead of promising a
        person soon. With `offer_every_s` (the sockets' re-check interval, which keeps agents online), a
        conversation that starts waiting is offered to an online agent in turn (bot.desk.assignment)."""
        self.sessions = sessions
        self.identity_secret = identity_secret
        self.caps = caps or ClientCaps("off", "off")
        self.model_source = model_source
        self.predict = predict or (lambda classifier, text: classifier.predict(text))
        self.predict_async = predict_async or (lambda classifier, text: asyncio.to_thread(self.predict, classifier,
                                                                                          text))
        self.actions = actions or ActionRunner()
        self.handoff_after_failures = handoff_after_failures
        self.office, self.clock, self.offer_every_s = office, clock, offer_every_s
        # SQLite has one writer at a time: taking turns here is a precise hand-over, where waiting on the
        # database's lock means sleeping and retrying. PostgreSQL needs no such thing.
        is_sqlite = sessions.kw["bind"].dialect.name == "sqlite"
        self.commit_lock = threading.Lock() if is_sqlite else contextlib.nullcontext()

    @staticmethod
    def _new(client: str | None, sender: str | None = None) -> tuple[Conversation, str]:
        """A new conversation, not yet written (the turn inserts it with its first messages: `save_turn`). It keeps
        a hash of the client's address (`client`, as the caps count it), by which the harvest caps what one
        client teaches."""
        token = secrets.token_urlsafe(24)
        now = utcnow()
        conversation = Conversation(id=uuid.uuid4().hex, token_hash=token_digest(token), slots={}, sender=sender,
                                    client_hash=client_hash(client), status=ConversationStatus.BOT, failures=0,
                                    reviewed=False, created_at=now, updated_at=now, agent=None)
        return conversation, token

    def _new_capped(self, client: str | None, sender: str | None = None) -> tuple[Conversation, str]:
        if not self.caps.allow(Cap.NEW_CONVERSATION, client):
            raise TooManyConversations("too many new conversations from your address this hour; continue an "
                                       "open one or try again later")
        return self._new(client, sender)

    def _open(self, db, session_id: str | None, token: str | None,
              client: str | None) -> tuple[Conversation, str | None]:
        if session_id is None:
            return self._new_capped(client)
        return self.visitor_conversation(db, session_id, token, lock=True), None

    @classmethod
    def visitor_conversation(cls, db, session_id: str, token: str | None, lock: bool = False) -> Conversation:
        """The conversation, if `token` is its secret: a visitor reaches only their own."""
        conversation = load_for_turn(db, session_id) if lock else db.get(Conversation, session_id)
        if conversation is None:
            raise SessionNotFound(f"no conversation with id {session_id!r}")
        if token is None or not hmac.compare_digest(conversation.token_hash, token_digest(token)):
            raise SessionForbidden("this conversation needs its session token (Authorization: Bearer …)")
        return conversation

    def _by_sender(self, db, sender: str, client: str | None) -> tuple[Conversation, str | None]:
        """Rasa's REST channel names a conversation by the client's sender id and has no secret."""
        conversation = load_for_turn(db, sender, by_sender=True)
        return (conversation, None) if conversation is not None else self._new_capped(client, sender)

    def verified_customer(self, identity: Identity | None) -> str | None:
        """The customer id the host site vouched for, or None for an anonymous visitor."""
        if identity is None:
            return None
        if not self.identity_secret:
            raise IdentityRefused("identity: identity verification is not enabled on this server "
                                  "(DISTILBOT_IDENTITY_SECRET is not set)")
        if not identity_is_valid(self.identity_secret, identity.user_id, identity.user_hash):
            raise IdentityRefused("identity: user_hash is not the HMAC-SHA256 of user_id with the shop's secret")
        return identity.user_id

    async def understand(self, text: str) -> Understood:
        """Run the model on `text` without holding a thread while it waits (the API's way; `handle` then takes
        the result)."""
        model = self.model_source()
        return Understood(model, await self.predict_async(model.classifier, text))

    @staticmethod
    def _explicit(model: ServedModel, text: str, prediction: Prediction) -> tuple[Prediction, bool]:
        """A button's payload (`/intent`) names the intent outright."""
        payload = _INTENT_PAYLOAD.match(text.strip())
        if payload and payload.group(1) in model.classifier.labels:
            return Prediction([IntentScore(payload.group(1), 1.0)], prediction.embedding), True
        return prediction, False

    def handle(self, text: str, session_id: str | None = None, token: str | None = None,
               sender: str | None = None, identity: Identity | None = None,
               client: str | None = None, understood: Understood | None = None) -> TurnResult:
        """One visitor message: by session id and token (our API) or by sender id (Rasa REST channel).
        `identity` is the host site's verified customer; `client` the visitor's address (for the caps);
        `understood` what `understand` made of `text` (None: the model runs here, before the transaction)."""
        if understood is None:
            model = self.model_source()
            understood = Understood(model, self.predict(model.classifier, text))
        model = understood.model
        prediction, explicit = self._explicit(model, text, understood.prediction)
        decision = decide(prediction, model.policy, explicit)
        foreign = None if explicit else foreign_language(text, model.languages)
        customer = identity if self.verified_customer(identity) else None
        for attempt in range(TURN_ATTEMPTS):
            try:
                return self._turn(model, text, prediction, decision, foreign, session_id, token, sender, customer,
                                  client)
            except ConversationChanged:
                if attempt == TURN_ATTEMPTS - 1:
                    raise NotAllowedNow("the conversation changed while this message was handled; "
                                        "send it again") from None
        raise AssertionError("unreachable")

    def _turn(self, model: ServedModel, text: str, prediction: Prediction, decision: Decision, foreign: str | None,
              session_id: str | None, token: str | None, sender: str | None, customer: Identity | None,
              client: str | None) -> TurnResult:
        """The turn's one transaction: read the conversation, respond, store, commit."""
        with self.sessions() as db, db.no_autoflush:  # nothing written until the commit below
            conversation, new_token = (self._by_sender(db, sender, client) if sender is not None
                                       else self._open(db, session_id, token, client))
            if conversation.customer_id is not None and customer is None:  # signed out, or someone else
                raise SessionForbidden("this conversation belongs to a signed-in customer: send their identity, "
                                       "or start a new conversation")
            if customer is not None:
                if conversation.customer_id not in (None, customer.user_id):
                    raise SessionForbidden("this conversation belongs to another signed-in customer")
                conversation.customer_id = customer.user_id
                conversation.customer_email = customer.email or conversation.customer_email
            status_before = conversation.status
            if conversation.status == ConversationStatus.RESOLVED:  # the visitor writes again: the bot takes it up
                conversation.status, conversation.agent_id = ConversationStatus.BOT, None
            if conversation.status == ConversationStatus.BOT:
                with in_turn(model.retriever.book, db):
                    decision, template, replies = self._respond(model, conversation, text, prediction, decision,
                                                                foreign)
                waiting = conversation.status == ConversationStatus.WAITING_FOR_AGENT
                if waiting and not self.caps.allow(Cap.HANDOFF, client):
                    conversation.status = ConversationStatus.BOT
                    decision, replies = Decision.FALLBACK, [Reply(HANDOFF_CAPPED_TEXT)]
                elif waiting and self.office is not None and not self.office.open_at(self.clock()):
                    conversation.slots = {**(conversation.slots or {}), OFFLINE: True, CONTACT_EMAIL: None}
                    replies = [Reply(OFFLINE_TEXT.format(hours=self.office.text))]
                elif waiting and (conversation.slots or {}).get(OFFLINE):  # an earlier hand-off was offline
                    conversation.slots = {**conversation.slots, OFFLINE: False}
                if (self.offer_every_s is not None and conversation.status == ConversationStatus.WAITING_FOR_AGENT
                        and not (conversation.slots or {}).get(OFFLINE)):  # waiting from now, while the team is in
                    self._offer(db, conversation)
            elif self._leaves_address(conversation, text):  # a slot collected, as a form's step would
                decision, template, replies = Decision.FORM, None, [
                    Reply(OFFLINE_THANKS_TEXT.format(email=conversation.slots[CONTACT_EMAIL]))]
            else:
                decision, template, replies = Decision.SILENT, None, []
            top, now = prediction.top, utcnow()
            stored = [Message(conversation_id=conversation.id, role="user", text=text, intent=top.name,
                              confidence=top.confidence,
                              ranking=[{"name": s.name, "confidence": s.confidence} for s in prediction.ranking],
                              model_version=model.version, created_at=now, agent=None)]
            stored += [Message(conversation_id=conversation.id, role="bot", text=reply.text,
                               buttons=[b.model_dump() for b in reply.buttons] or None,
                               template=template, decision=decision.value, model_version=model.version,
                               created_at=now, agent=None)
                       for reply in replies]
            conversation.updated_at = now
            with self.commit_lock:
                db.flush()  # what the actions changed (an order cancelled, a failed ownership proof)
                save_turn(db, conversation, None if new_token is not None else status_before, stored)
                changed = conversation.status != status_before
                events = message_events(conversation.id, stored) + (status_event(conversation) if changed else [])
                db.commit()
            return TurnResult(conversation.id, new_token, replies, prediction, template, decision, model.version,
                              conversation.status, changed, stored[0].id, [m.id for m in stored[1:]], events)

    def _offer(self, db, conversation: Conversation) -> None:
        assert self.offer_every_s is not None, "called only with round-robin assignment on"
        agent = assignment.offer(db, self.offer_every_s)
        if agent is not None:
            conversation.agent_id = agent.id
            set_committed_value(conversation, "agent", agent)  # for the status event; the turn writes agent_id

    @staticmethod
    def _leaves_address(conversation: Conversation, text: str) -> bool:
        """An offline message's e-mail address, the first time the visitor gives one: kept as a slot."""
        slots = conversation.slots or {}
        if conversation.status != ConversationStatus.WAITING_FOR_AGENT or not slots.get(OFFLINE):
            return False
        email = extract_slots(text).get("email")
        if email is None or slots.get(CONTACT_EMAIL):
            return False
        conversation.slots = {**slots, CONTACT_EMAIL: email}
        return True

    def history(self, session_id: str, token: str | None) -> tuple[Conversation, list[Message]]:
        with self.sessions() as db:
            conversation = self.visitor_conversation(db, session_id, token)
            return conversation, list(conversation.messages)

    def feedback(self, session_id: str, token: str | None, message_id: int, value: str | None) -> Message:
        """A visitor's thumbs up or down (or None to take it back) on one of the bot's messages."""
        with self.sessions.begin() as db:
            conversation = self.visitor_conversation(db, session_id, token)
            message = db.get(Message, message_id)
            if message is None or message.conversation_id != conversation.id:
                raise SessionNotFound(f"no message {message_id} in this conversation")
            if message.role != "bot":
                raise NotAllowedNow(f"message {message_id} is not the bot's; only the bot's answers take feedback")
            message.feedback = value
            return message

    def rate(self, session_id: str, token: str | None, score: int) -> Conversation:
        """Customer satisfaction, 1–5, once the conversation is resolved (a later rating replaces it)."""
        with self.sessions.begin() as db:
            conversation = self.visitor_conversation(db, session_id, token)
            if conversation.status != ConversationStatus.RESOLVED:
                raise NotAllowedNow(f"the conversation is {conversation.status.value!r}; it can be rated once resolved")
            conversation.csat = score
            return conversation

    @staticmethod
    def _answers_form(state: FormState, text: str) -> bool:
        """The message reads as an answer to the form's question (an order number, an address, yes or no)."""
        requested = state.slots.get("requested_slot")
        return requested in SLOT_PARSERS and SLOT_PARSERS[requested](text) is not None

    def _changes_subject(self, state: FormState, text: str, prediction: Prediction, decision: Decision) -> bool:
        """A confident message of another intent that does not answer the form's question."""
        answers = self._answers_form(state, text)
        assert state.active_form is not None, "asked only while a form is active"
        own_intent = prediction.top.name in FORMS[state.active_form]["intents"]
        return decision is Decision.ANSWER and not answers and not own_intent

    def _respond(self, model: ServedModel, conversation: Conversation, text: str, prediction: Prediction,
                 decision: Decision, foreign: str | None) -> tuple[Decision, str | None, list[Reply]]:
        """Run the policy's decision: business actions through rasa-sdk, fallback and clarify here. A message in
        a language the model was not trained on (`foreign`) goes to a person at once, answered in that language."""
        if foreign is not None:
            conversation.language, conversation.failures = foreign, 0
            conversation.status, conversation.active_form = ConversationStatus.WAITING_FOR_AGENT, None
            conversation.slots = {**(conversation.slots or {}), "requested_slot": None}
            return Decision.HANDOFF, None, [Reply(FOREIGN_HANDOFF_TEXT.get(foreign, FOREIGN_HANDOFF_TEXT["en"]))]
        extracted = extract_slots(text)
        # The verified customer comes from the conversation, never from what the visitor writes.
        slots = {**(conversation.slots or {}), "customer_id": conversation.customer_id}
        state = FormState(slots, conversation.active_form)
        latest: dict[str, Any] = {
            "text": text, "intent": {"name": prediction.top.name, "confidence": prediction.top.confidence},
            "intent_ranking": [{"name": s.name, "confidence": s.confidence} for s in prediction.ranking],
            "metadata": {}}
        template, result = None, None
        if state.active_form and self._changes_subject(state, text, prediction, decision):
            state.active_form, state.slots["requested_slot"] = None, None
        if not state.active_form:  # kept until a form needs them, and validated then
            state.slots.update(extracted)
        if state.active_form and (decision is not Decision.HANDOFF or self._answers_form(state, text)):
            requested = state.slots.get("requested_slot")
            # Values given in passing are checked like answers: none enters a form's slot unvalidated.
            given = {k: v for k, v in extracted.items() if k in required_slots(state.active_form, state.slots)}
            result = self.actions.continue_form(conversation.id, state, latest,
                                                {**given, requested: text} if requested else given)
            decision = Decision.FORM
        elif decision is Decision.HANDOFF:
            state.active_form, state.slots["requested_slot"] = None, None
            result = self.actions.run("action_handoff", conversation.id, state, latest)
        elif decision is Decision.ANSWER:
            chosen = model.retriever.best_for_intent(prediction.embedding, prediction.top.name)
            if chosen is None:
                decision = Decision.FALLBACK  # an intent the knowledge base has no answer for
            elif chosen.action in FORMS:
                template, decision = chosen.id, Decision.FORM
                result = self.actions.start_form(chosen.action, conversation.id, state, latest)
            else:  # action_answer's reply, without the SDK's executor around it
                template = chosen.id
                result = ActionResult(responses=[answer_message(model.retriever.book, chosen, state.slots)])
        state.slots.pop("customer_id", None)
        if conversation.sender is not None and not state.active_form:
            # Rasa's REST channel names a conversation by its sender id alone, which a client may choose
            # guessably: the e-mail address proves an order only for the form it was given in.
            state.slots["email"] = None
        conversation.slots, conversation.active_form = state.slots, state.active_form
        if decision is Decision.FALLBACK:
            conversation.failures += 1
            if conversation.failures >= self.handoff_after_failures:
                conversation.status, conversation.failures = ConversationStatus.WAITING_FOR_AGENT, 0
                conversation.active_form, conversation.slots["requested_slot"] = None, None
                return Decision.HANDOFF, None, [Reply(FALLBACK_HANDOFF_TEXT)]
            if conversation.failures >= 2:
                return decision, None, [Reply(FALLBACK_AGAIN_TEXT, [HUMAN_BUTTON])]
            return decision, None, [Reply(FALLBACK_TEXT)]
        conversation.failures = 0
        if decision is Decision.CLARIFY:
            options = [s.name for s in prediction.ranking[:3]]
            buttons = [Button(title=intent_title(i), payload=f"/{i}") for i in options]
            return decision, None, [Reply(CLARIFY_TEXT, buttons)]
        assert result is not None, "every decision left here (answer, form, handoff) ran an action"
        if result.paused:
            conversation.status = ConversationStatus.WAITING_FOR_AGENT
        return decision, template, [Reply(r.get("text") or "", [Button(**b) for b in r.get("buttons") or []])
                                    for r in result.responses if r.get("text")]
