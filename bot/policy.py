"""What the bot does with a prediction: answer, ask to clarify, fall back, or hand off to a human."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bot.nlu import Prediction


class Decision(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    FALLBACK = "fallback"
    HANDOFF = "handoff"
    FORM = "form"
    """A form (track an order, cancel one) asked for, checked or acted on a slot."""
    SILENT = "silent"
    """A person has the conversation (or it waits for one): the bot says nothing."""


@dataclass(frozen=True)
class PolicyConfig:
    threshold: float
    """Below this out-of-scope score (calibrated confidence or energy, as the artifact says) a message
    counts as not understood."""
    clarify_margin: float
    """When the top two intents are closer than this, ask which one the visitor means."""
    handoff_intent: str = "contact_human"
    intent_thresholds: dict[str, float] = field(default_factory=dict)
    """Per intent, a confidence below which that intent is not trusted either (from the artifact)."""


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
