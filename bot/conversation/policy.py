"""What the bot does with a prediction: answer, ask to clarify, fall back, or hand off to a human."""

from __future__ import annotations

from enum import StrEnum

from bot.model.nlu import Prediction
from bot.model.served_model import PolicyConfig


class Decision(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    FALLBACK = "fallback"
    HANDOFF = "handoff"
    FORM = "form"
    """A form (track an order, cancel one) asked for, checked or acted on a slot."""
    SILENT = "silent"
    """A person has the conversation (or it waits for one): the bot says nothing."""


def decide(prediction: Prediction, config: PolicyConfig, explicit: bool = False) -> Decision:
    """`explicit` is true when the visitor pressed a quick-reply button naming the intent."""
    top = prediction.top
    if explicit:
        return Decision.HANDOFF if top.name == config.handoff_intent else Decision.ANSWER
    if prediction.scope_score < config.threshold:
        return Decision.FALLBACK
    if prediction.margin < config.clarify_margin:
        return Decision.CLARIFY
    if top.confidence < config.intent_thresholds.get(top.name, 0.0):
        return Decision.FALLBACK
    if top.name == config.handoff_intent:
        return Decision.HANDOFF
    return Decision.ANSWER
