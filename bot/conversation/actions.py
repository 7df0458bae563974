"""The bot's business actions, written as rasa-sdk `Action` and `FormValidationAction` classes.

The runtime runs them in-process (bot/conversation/action_runner.py) with the SDK's Tracker and CollectingDispatcher;
`python -m rasa_sdk --actions bot.conversation.actions` serves the very same classes to a Rasa assistant. They reach
the answer templates and the orders table through `resources()`: the turn's own when the runtime runs them
(`in_turn`), else what a standalone action server builds from the DISTILBOT_ settings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session, sessionmaker

from bot.conversation import ownership
from bot.conversation.ownership import Owner, normalise_email
from bot.infra.store import Order
from bot.model.domain import required_slots
from bot.model.templates import Template, TemplateBook

HANDOFF_TEXT = "I'm connecting you with a member of our team. Someone will be with you shortly."
NOT_FOUND_TEXT = ("I couldn't find an order with that number for you. Please check the order number and the "
                  "e-mail address in your order confirmation.")
LOCKED_OUT_TEXT = ("I can't check that order here. I'm passing you to a member of our team, who can help you "
                   "with it.")
_ORDER_ID = re.compile(r"^\s*#?\s*(?:nw)?[\s-]*(\d{6})\s*[.!]?\s*$", re.IGNORECASE)
_ORDER_ID_IN_TEXT = re.compile(r"\b(?:#\s*)?nw[\s-]*(\d{6})\b", re.IGNORECASE)
_YES = re.compile(r"^\s*(yes|yeah|yep|sure|ok|okay|please do|do it|cancel it|y)\b", re.IGNORECASE)
_NO = re.compile(r"^\s*(no|nope|don't|do not|keep it|n)\b", re.IGNORECASE)
_STATUS_TEXT = {
    "processing": "Order {id} is being prepared in our warehouse; we expect to hand it to {carrier} soon "
                  "and it should arrive by {expected}.",
    "shipped": "Order {id} is on its way with {carrier} (tracking code {tracking}) and should arrive by "
               "{expected}.",
    "delivered": "Order {id} was delivered on {expected}. If it isn't there, check with neighbours or your "
                 "mailbox, or ask me for a person.",
    "cancelled": "Order {id} was cancelled on {cancelled}; the refund goes back to your original payment method.",
}


@dataclass(frozen=True)
class Turn:
    """What the runtime gives one turn's actions: the templates of the model the turn runs on (a hot reload
    mid-turn cannot pair one model's choice of template with another's templates) and the turn's transaction
    (what an action changes commits or rolls back with the turn)."""

    book: TemplateBook | None
    session: Session


current_turn: ContextVar[Turn | None] = ContextVar("current_turn", default=None)


@contextmanager
def in_turn(book: TemplateBook | None, session: Session) -> Iterator[None]:
    """Run actions within a turn of this app: its templates, its database (two apps in one process keep theirs)."""
    token = current_turn.set(Turn(book, session))
    try:
        yield
    finally:
        current_turn.reset(token)


@dataclass(frozen=True)
class Standalone:
    """The templates and store of a standalone action server (`python -m rasa_sdk --actions ...`): one
    process, one store, and its actions run outside any turn of ours."""

    book_source: Callable[[], TemplateBook | None]
    sessions: sessionmaker


_standalone: Standalone | None = None


def configure(book_source: Callable[[], TemplateBook | None], sessions: sessionmaker) -> None:
    """Set a standalone action server's templates and store. The API never calls this: its turns bring
    their own (`in_turn`)."""
    global _standalone
    _standalone = Standalone(book_source, sessions)


def _standalone_resources() -> Standalone:
    """What `configure` set, else the store and templates named by the DISTILBOT_ settings."""
    global _standalone
    if _standalone is None:
        from bot.infra.settings import Settings
        from bot.infra.store import make_engine, make_sessionmaker
        from bot.model.artifact import resolve

        settings = Settings()
        artifact = resolve(settings.registry)
        book = (TemplateBook.model_validate_json((artifact.path / "templates.json").read_text())
                if artifact.has_templates else None)
        _standalone = Standalone(lambda: book, make_sessionmaker(make_engine(settings.db_url)))
    return _standalone


class Resources:
    """What an action reaches: the current turn's templates and transaction, or a standalone server's."""

    @property
    def book(self) -> TemplateBook | None:
        turn = current_turn.get()
        return turn.book if turn is not None else _standalone_resources().book_source()

    @contextmanager
    def store(self) -> Iterator[Session]:
        turn = current_turn.get()
        if turn is not None:
            yield turn.session
            return
        with _standalone_resources().sessions.begin() as session:
            yield session


_RESOURCES = Resources()


def resources() -> Resources:
    return _RESOURCES


def normalise_order_id(value: Any) -> str | None:
    """'NW123456', 'nw-123456', '#123456' or a sentence naming NW123456 → 'NW123456'; else None."""
    if not isinstance(value, str):
        return None
    match = _ORDER_ID.match(value) or _ORDER_ID_IN_TEXT.search(value)
    return f"NW{match.group(1)}" if match else None


def parse_yes_no(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and _YES.match(value):
        return True
    if isinstance(value, str) and _NO.match(value):
        return False
    return None


SLOT_PARSERS = {"order_id": normalise_order_id, "email": normalise_email, "confirm_cancel": parse_yes_no}
"""How each form slot is read from a message: None when the message does not answer it."""


def verified_customer(tracker: Tracker) -> str | None:
    """The customer the host site vouched for. Only the runtime may say so: it sets the `customer_id` slot from
    the conversation, never from what the visitor writes. A caller of the standalone action server writes its
    own slots, so there the slot proves nothing and visitors prove orders with their e-mail address."""
    return tracker.get_slot("customer_id") if current_turn.get() is not None else None


def owner(tracker: Tracker) -> Owner:
    """Who the visitor proved to be: a verified customer, else whoever knows the e-mail address they gave."""
    return Owner(customer_id=verified_customer(tracker), email=normalise_email(tracker.get_slot("email")))


def _date(value: datetime | None) -> str:
    return value.strftime("%-d %B") if value else "soon"


def answer_message(book: TemplateBook, template: Template, slots: dict[str, Any]) -> dict[str, Any]:
    """What `action_answer` says for `template`: its text with the {slots} filled from the conversation's slots
    and the book's defaults, and its buttons. The runtime calls this directly for the template it chose (the
    SDK's executor would add only cost to a pure rendering); a Rasa assistant reaches it through the action."""
    values = {**book.slots, **{k: v for k, v in slots.items() if v is not None}}
    return {"text": template.render(values), "buttons": [b.model_dump() for b in template.buttons]}


class ActionAnswer(Action):
    """Answer with a template: the one the retriever chose (message metadata) or the intent's first,
    its {slots} filled from the conversation and the template book's defaults."""

    def name(self) -> str:
        return "action_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict]:
        book = resources().book
        message = tracker.latest_message or {}
        chosen = (message.get("metadata") or {}).get("template")
        intent = (message.get("intent") or {}).get("name")
        template = next((t for t in book.templates if t.id == chosen), None) if book and chosen else None
        if template is None and book is not None and intent:
            candidates = book.for_intent(intent)
            template = candidates[0] if candidates else None
        if template is None:
            dispatcher.utter_message(text="Sorry, I have no answer for that yet. Would you like to talk to a person?")
            return []
        assert book is not None, "a template was found, so there is a template book"
        dispatcher.utter_message(**answer_message(book, template, tracker.current_slot_values()),
                                 json_message={"template": template.id})
        return []


class ActionHandoff(Action):
    """Hand the conversation to a person: the bot pauses until an agent hands it back."""

    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict]:
        dispatcher.utter_message(text=HANDOFF_TEXT)
        return [ConversationPaused()]


def prove_order(db: Session, order_id: str | None, shown: Owner, dispatcher: CollectingDispatcher,
                tracker: Tracker, lock: bool = False) -> Order | None:
    """The order if `shown` owns it; else None, the visitor told so (the same words whether the order exists
    or not) and the failure counted. Nothing is checked once the visitor has run out of tries."""
    if ownership.locked_out(db, tracker.sender_id, order_id, per_order=shown.customer_id is None):
        dispatcher.utter_message(text=LOCKED_OUT_TEXT)
        return None
    order = ownership.owned_order(db, order_id, shown, lock=lock)
    if order is None:
        last_try = ownership.record_failure(db, tracker.sender_id, order_id or "")
        dispatcher.utter_message(text=LOCKED_OUT_TEXT if last_try else NOT_FOUND_TEXT)
    return order


def paused_if_locked_out(tracker: Tracker, order_id: str | None) -> list[dict]:
    """Pause the bot (a person takes over) once the visitor has run out of tries. A verified customer is never
    locked out of an order by strangers' failed tries on it, only by their own."""
    with resources().store() as db:
        if ownership.locked_out(db, tracker.sender_id, order_id, per_order=verified_customer(tracker) is None):
            return [ConversationPaused()]
    return []


class _OrderOwnershipValidation:
    """An order number must look like one (NW and six digits); then the visitor must prove the order is
    theirs (bot/conversation/ownership.py) before anything about it is said or done. Unknown orders and orders of
    someone else get the same reply; after too many failed tries the bot hands the conversation off."""

    form_name: Callable[[], str]  # FormValidationAction's, which the concrete forms below also inherit

    def validate_order_id(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                          domain: dict) -> dict[str, Any]:
        order_id = normalise_order_id(value)
        if order_id is None:
            dispatcher.utter_message(text=f"“{str(value).strip()[:40]}” doesn't look like an order number: it "
                                          "starts with NW followed by six digits, like NW123456. Which is it?")
            return {"order_id": None}
        if verified_customer(tracker) is None and (tracker.get_slot("email") is None
                                                   or "email" in tracker.slots_to_validate()):
            return {"order_id": order_id}  # the e-mail address comes next and is checked with it
        return self._prove(order_id, dispatcher, tracker)

    def validate_email(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                       domain: dict) -> dict[str, Any]:
        email = normalise_email(value)
        if email is None:
            dispatcher.utter_message(text="That doesn't look like an e-mail address. Which address did you use "
                                          "for the order?")
            return {"email": None}
        order_id = normalise_order_id(tracker.get_slot("order_id"))
        return {"email": email, **self._prove(order_id, dispatcher, tracker, Owner(email=email))}

    @staticmethod
    def _prove(order_id: str | None, dispatcher: CollectingDispatcher, tracker: Tracker,
               shown: Owner | None = None) -> dict[str, Any]:
        with resources().store() as db:
            if prove_order(db, order_id, shown or owner(tracker), dispatcher, tracker) is not None:
                return {"order_id": order_id}
        return {"order_id": None, "email": None}

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: dict) -> list[str]:
        verified = {"customer_id": verified_customer(tracker)}
        return [slot for slot in domain_slots if slot in required_slots(self.form_name(), verified)]

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict]:
        """Validate; when the visitor has run out of tries, pause the bot so a person takes over."""
        named = normalise_order_id(tracker.get_slot("order_id"))  # before validation may clear it
        # mixin: FormValidationAction (untyped rasa_sdk) follows it in the concrete forms' MRO
        events = await super().run(dispatcher, tracker, domain)  # type: ignore[misc]
        paused = paused_if_locked_out(tracker, named)
        if paused and not any(m.get("text") == LOCKED_OUT_TEXT for m in dispatcher.messages):
            dispatcher.utter_message(text=LOCKED_OUT_TEXT)  # locked before anything was checked this turn
        return [*events, *paused]


class ValidateTrackOrderForm(_OrderOwnershipValidation, FormValidationAction):
    def name(self) -> str:
        return "validate_track_order_form"


class ValidateCancelOrderForm(_OrderOwnershipValidation, FormValidationAction):
    def name(self) -> str:
        return "validate_cancel_order_form"

    def validate_confirm_cancel(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: dict) -> dict[str, Any]:
        answer = parse_yes_no(value)
        if answer is not None:
            return {"confirm_cancel": answer}
        dispatcher.utter_message(text="Please answer yes to cancel the order, or no to keep it.")
        return {"confirm_cancel": None}


class ActionTrackOrder(Action):
    """Tell the visitor where their order is, from the orders table."""

    def name(self) -> str:
        return "action_track_order"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict]:
        with resources().store() as db:  # proved again here: a slot may have changed since it was checked
            order = prove_order(db, tracker.get_slot("order_id"), owner(tracker), dispatcher, tracker)
            if order is None:
                return [SlotSet("order_id", None), *paused_if_locked_out(tracker, tracker.get_slot("order_id"))]
            dispatcher.utter_message(text=_STATUS_TEXT[order.status].format(
                id=order.id, carrier=order.carrier or "the courier", tracking=order.tracking_code or "-",
                expected=_date(order.expected_at), cancelled=_date(order.cancelled_at)))
        return []


class ActionCancelOrder(Action):
    """Cancel a confirmed order that has not left the warehouse, in the transaction of the turn that
    confirmed it (the order's row locked meanwhile)."""

    def name(self) -> str:
        return "action_cancel_order"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict]:
        order_id = tracker.get_slot("order_id")
        done = [SlotSet("confirm_cancel", None)]
        if not tracker.get_slot("confirm_cancel"):
            dispatcher.utter_message(text=f"All right, order {order_id} stays as it is.")
            return done
        with resources().store() as db:
            order = prove_order(db, order_id, owner(tracker), dispatcher, tracker, lock=True)
            if order is None:
                return [*done, SlotSet("order_id", None), *paused_if_locked_out(tracker, order_id)]
            if order.status != "processing":
                dispatcher.utter_message(text=f"Order {order.id} has already been {order.status}, so it can't be "
                                              "cancelled any more; you can return it for free once it arrives.")
            else:
                order.status, order.cancelled_at = "cancelled", datetime.now(UTC)
                dispatcher.utter_message(text=f"Done: order {order.id} is cancelled. The refund of "
                                              f"€{order.total:.2f} goes back to your original payment method "
                                              "within 5 working days.")
        return done
