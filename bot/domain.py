"""The dialogue domain in Rasa's shape: slots, forms with their required slots, and the questions the
bot asks for each slot. It is sent with every action call, in-process or to an action server."""

from __future__ import annotations

ASK_ORDER_ID = "What's your order number? It starts with NW and six digits, like NW123456."
ASK_CONFIRM_CANCEL = "Shall I cancel order {order_id}? Please answer yes or no."

# `intents`: messages of these intents always go to the form; a confident message of another intent that
# does not answer the form's question interrupts it (the visitor changed the subject).
FORMS = {
    "track_order_form": {"required_slots": ["order_id"], "submit": "action_track_order",
                         "intents": ["order_status"]},
    "cancel_order_form": {"required_slots": ["order_id", "confirm_cancel"], "submit": "action_cancel_order",
                          "intents": ["cancel_order"]},
}

RESPONSES = {
    "utter_ask_order_id": [{"text": ASK_ORDER_ID}],
    "utter_ask_confirm_cancel": [{"text": ASK_CONFIRM_CANCEL,
                                  "buttons": [{"title": "Yes, cancel it", "payload": "yes"},
                                              {"title": "No, keep it", "payload": "no"}]}],
}

DOMAIN = {
    "version": "3.1",
    "slots": {
        "order_id": {"type": "text", "mappings": [{"type": "from_text"}]},
        "email": {"type": "text", "mappings": [{"type": "custom"}]},
        "confirm_cancel": {"type": "bool", "mappings": [{"type": "from_text"}]},
        "requested_slot": {"type": "text", "mappings": [{"type": "custom"}]},
    },
    "forms": {name: {"required_slots": form["required_slots"]} for name, form in FORMS.items()},
    "responses": RESPONSES,
    "actions": ["action_answer", "action_handoff", "action_track_order", "action_cancel_order",
                "validate_track_order_form", "validate_cancel_order_form"],
}
