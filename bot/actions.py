"""The bot's business actions, written as rasa-sdk `Action` and `FormValidationAction` classes.

The runtime runs them in-process (bot/action_runner.py) with the SDK's Tracker and CollectingDispatcher;
`python -m rasa_sdk --actions bot.actions` serves the very same classes to a Rasa assistant. They reach
the answer templates and the orders table through `resources()`, which the runtime sets and a standalone
action server builds from the DISTILBOT_ settings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import sessionmaker

from bot.store import Order
from bot.templates import TemplateBook

HANDOFF_TEXT = "I'm connecting you with a member of our team. Someone will be with you shortly."
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


@dataclass
class Resources:
    book_source: Callable[[], TemplateBook | None]
    """The templates of the model served now (a hot reload swaps them)."""
    sessions: sessionmaker

    @property
    def book(self) -> TemplateBook | None:
        """The templates of the model the current turn runs on, else of the one served now."""
        return turn_book.get() or self.book_source()


_resources: Resources | None = None
turn_book: ContextVar[TemplateBook | None] = ContextVar("turn_book", default=None)
"""Set for a turn by the runtime, so a hot reload mid-turn cannot pair one model's choice of template
with another model's templates."""


def configure(book_source: Callable[[], TemplateBook | None], sessions: sessionmaker) -> None:
    """Give the actions the templates and the store (the runtime does this at start-up)."""
    global _resources
    _resources = Resources(book_source, sessions)


def resources() -> Resources:
    """What `configure` set, or (in a standalone action server) the store and templates named by the
    DISTILBOT_ settings."""
    global _resources
    if _resources is None:
        from bot.artifact import resolve
        from bot.settings import Settings
        from bot.store import make_engine, make_sessionmaker

        settings = Settings()
        artifact = resolve(settings.registry)
        book = (TemplateBook.model_validate_json((artifact.path / "templates.json").read_text())
                if artifact.has_templates else None)
        _resources = Resources(lambda: book, make_sessionmaker(make_engine(settings.db_url)))
    return _resources


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


SLOT_PARSERS = {"order_id": normalise_order_id, "confirm_cancel": parse_yes_no}
"""How each form slot is read from a message: None when the message does not answer it."""


def find_order(order_id: str) -> Order | None:
    with resources().sessions() as db:
        return db.get(Order, order_id)


def _date(value: datetime | None) -> str:
    return value.strftime("%-d %B") if value else "soon"


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
        values = {**book.slots, **{k: v for k, v in tracker.current_slot_values().items() if v is not None}}
        dispatcher.utter_message(text=template.render(values),
                                 buttons=[b.model_dump() for b in template.buttons],
                                 json_message={"template": template.id})
        return []


class ActionHandoff(Action):
    """Hand the conversation to a person: the bot pauses until an agent hands it back."""

    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict]:
        dispatcher.utter_message(text=HANDOFF_TEXT)
        return [ConversationPaused()]


class _OrderNumberValidation:
    """An order number must look like one (NW and six digits) and exist in the orders table."""

    def validate_order_id(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                          domain: dict) -> dict[str, Any]:
        order_id = normalise_order_id(value)
        if order_id is None:
            dispatcher.utter_message(text=f"“{str(value).strip()[:40]}” doesn't look like an order number: it "
                                          "starts with NW followed by six digits, like NW123456. Which is it?")
            return {"order_id": None}
        if find_order(order_id) is None:
            dispatcher.utter_message(text=f"I can't find an order {order_id}. Could you check the number in your "
                                          "confirmation email?")
            return {"order_id": None}
        return {"order_id": order_id}


class ValidateTrackOrderForm(_OrderNumberValidation, FormValidationAction):
    def name(self) -> str:
        return "validate_track_order_form"


class ValidateCancelOrderForm(_OrderNumberValidation, FormValidationAction):
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
        order = find_order(tracker.get_slot("order_id") or "")
        if order is None:
            dispatcher.utter_message(text="I couldn't look that order up. Would you like to talk to a person?")
            return []
        dispatcher.utter_message(text=_STATUS_TEXT[order.status].format(
            id=order.id, carrier=order.carrier or "the courier", tracking=order.tracking_code or "-",
            expected=_date(order.expected_at), cancelled=_date(order.cancelled_at)))
        return []


class ActionCancelOrder(Action):
    """Cancel a confirmed order that has not left the warehouse."""

    def name(self) -> str:
        return "action_cancel_order"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict]:
        order_id = tracker.get_slot("order_id")
        done = [SlotSet("confirm_cancel", None)]
        if not tracker.get_slot("confirm_cancel"):
            dispatcher.utter_message(text=f"All right, order {order_id} stays as it is.")
            return done
        with resources().sessions.begin() as db:
            order = db.get(Order, order_id or "")
            if order is None:
                dispatcher.utter_message(text="I couldn't find that order any more. Would you like to talk to "
                                              "a person?")
            elif order.status != "processing":
                dispatcher.utter_message(text=f"Order {order.id} has already been {order.status}, so it can't be "
                                              "cancelled any more; you can return it for free once it arrives.")
            else:
                order.status, order.cancelled_at = "cancelled", datetime.now(UTC)
                dispatcher.utter_message(text=f"Done: order {order.id} is cancelled. The refund of "
                                              f"€{order.total:.2f} goes back to your original payment method "
                                              "within 5 working days.")
        return done
