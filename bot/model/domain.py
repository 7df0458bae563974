"""The dialogue domain in Rasa's shape: slots, forms with their required slots, and the questions the
bot asks for each slot. It is sent with every action call, in-process or to an action server."""

from __future__ import annotations

from typing import Any, TypedDict

ASK_ORDER_ID = "What's your order number? It starts with NW and six digits, like NW123456."
ASK_EMAIL = ("To keep your orders private, I need the e-mail address you used for order {order_id}. "
             "What is it?")
ASK_CONFIRM_CANCEL = "Shall I cancel order {order_id}? Please answer yes or no."

# `required_slots`: an anonymous visitor proves an order is theirs with its e-mail address; a visitor the host
# site vouched for (the `customer_id` slot) needs no e-mail (see bot/conversation/ownership.py).
# `intents`: messages of these intents always go to the form; a confident message of another intent that
# does not answer the form's question interrupts it (the visitor changed the subject).
class Form(TypedDict):
    required_slots: list[str]
    submit: str
    intents: list[str]


FORMS: dict[str, Form] = {
    "track_order_form": {"required_slots": ["order_id", "email"], "submit": "action_track_order",
                         "intents": ["order_status"]},
    "cancel_order_form": {"required_slots": ["order_id", "email", "confirm_cancel"], "submit": "action_cancel_order",
                          "intents": ["cancel_order"]},
}

RESPONSES: dict[str, list[dict[str, Any]]] = {
    "utter_ask_order_id": [{"text": ASK_ORDER_ID}],
    "utter_ask_email": [{"text": ASK_EMAIL}],
    "utter_ask_confirm_cancel": [{"text": ASK_CONFIRM_CANCEL,
                                  "buttons": [{"title": "Yes, cancel it", "payload": "yes"},
                                              {"title": "No, keep it", "payload": "no"}]}],
}

DOMAIN = {
    "version": "3.1",
    "slots": {
        "order_id": {"type": "text", "mappings": [{"type": "from_text"}]},
        "email": {"type": "text", "mappings": [{"type": "from_text"}]},
        "customer_id": {"type": "text", "influence_conversation": False, "mappings": [{"type": "custom"}]},
        "confirm_cancel": {"type": "bool", "mappings": [{"type": "from_text"}]},
        "requested_slot": {"type": "text", "mappings": [{"type": "custom"}]},
    },
    "forms": {name: {"required_slots": form["required_slots"]} for name, form in FORMS.items()},
    "responses": RESPONSES,
    "actions": ["action_answer", "action_handoff", "action_track_order", "action_cancel_order",
                "validate_track_order_form", "validate_cancel_order_form"],
}


def required_slots(form: str, slots: dict) -> list[str]:
    """The slots `form` still needs from this visitor: a verified customer is not asked for an e-mail."""
    needed = FORMS[form]["required_slots"]
    return [slot for slot in needed if not (slot == "email" and slots.get("customer_id"))]
