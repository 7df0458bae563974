"""Runs the rasa-sdk actions in-process, the way a Rasa server would call an action server: it builds
the tracker state (slots, latest message, events, active form) and hands it to the SDK's ActionExecutor,
the same entry point the SDK's own `/webhook` uses. Also drives the forms: validate the slot just
answered, ask for the next missing one, run the form's submit action when all are filled."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from dataclasses import dataclass, field

import rasa_sdk
from rasa_sdk.executor import ActionExecutor

from bot.model.domain import DOMAIN, FORMS, RESPONSES, required_slots


@dataclass
class ActionResult:
    events: list[dict] = field(default_factory=list)
    responses: list[dict] = field(default_factory=list)

    def extend(self, other: ActionResult) -> None:
        self.events += other.events
        self.responses += other.responses

    @property
    def paused(self) -> bool:
        """The action asked to pause the bot (hand the conversation to a person)."""
        return any(e.get("event") == "pause" for e in self.events)


@dataclass
class FormState:
    """A conversation's slots and active form, changed in place as actions run."""

    slots: dict
    active_form: str | None = None


class ActionRunner:
    def __init__(self):
        self.executor = ActionExecutor()
        self.executor.register_package("bot.conversation.actions")
        self._loops = threading.local()

    def _await(self, coroutine):
        """Run the SDK's coroutine on this thread's own event loop, made once (a loop per call costs more
        than most actions), in the caller's context: the turn's templates and transaction (bot/conversation/actions.py)
        are context variables, and a runner would otherwise keep the context of its first call."""
        runner = getattr(self._loops, "runner", None)
        if runner is None:
            runner = self._loops.runner = asyncio.Runner()
        return runner.run(coroutine, context=contextvars.copy_context())

    def run(self, action: str, sender: str, state: FormState, latest_message: dict,
            candidates: dict | None = None) -> ActionResult:
        """Run one action; `candidates` are slot values just extracted, for a validation action to check."""
        candidates = candidates or {}
        events = [{"event": "user", "timestamp": time.time(), "text": latest_message.get("text"),
                   "parse_data": latest_message}]
        events += [{"event": "slot", "timestamp": time.time(), "name": k, "value": v} for k, v in candidates.items()]
        tracker = {"sender_id": sender, "slots": {**state.slots, **candidates}, "latest_message": latest_message,
                   "events": events, "paused": False, "followup_action": None,
                   "active_loop": {"name": state.active_form} if state.active_form else {},
                   "latest_action_name": "action_listen"}
        call = {"next_action": action, "sender_id": sender, "tracker": tracker, "domain": DOMAIN,
                "version": rasa_sdk.__version__}
        result = self._await(self.executor.run(call))
        for event in result.events:
            if event.get("event") == "slot":
                state.slots[event["name"]] = event["value"]
        return ActionResult(list(result.events), list(result.responses))

    def continue_form(self, sender: str, state: FormState, latest_message: dict,
                      candidates: dict) -> ActionResult:
        """Validate `candidates` for the active form, then ask for the next missing slot or submit."""
        assert state.active_form is not None, "continue_form is called only while a form is active"
        form = FORMS[state.active_form]
        required = required_slots(state.active_form, state.slots)
        result = ActionResult()
        wanted = {k: v for k, v in candidates.items() if k in required}
        if wanted:
            result.extend(self.run(f"validate_{state.active_form}", sender, state, latest_message, wanted))
        if result.paused:  # the validation handed the conversation to a person
            state.active_form, state.slots["requested_slot"] = None, None
            return result
        missing = [slot for slot in required if state.slots.get(slot) is None]
        if missing:
            state.slots["requested_slot"] = missing[0]
            for response in RESPONSES[f"utter_ask_{missing[0]}"]:
                result.responses.append({**response, "text": response["text"].format(**state.slots)})
            return result
        state.active_form, state.slots["requested_slot"] = None, None
        result.extend(self.run(form["submit"], sender, state, latest_message))
        return result

    def start_form(self, form: str, sender: str, state: FormState, latest_message: dict) -> ActionResult:
        """Activate `form`; slot values the visitor already gave are validated straight away."""
        state.active_form = form
        known = {slot: state.slots[slot] for slot in required_slots(form, state.slots)
                 if state.slots.get(slot) is not None}
        for slot in known:
            state.slots[slot] = None  # filled again only once validated
        return self.continue_form(sender, state, latest_message, known)
