"""Conversations as customers hold them, for the load benchmark: a greeting now and then, one to three
questions the knowledge base answers, an order looked up or a cancellation (a form: the order number, then the
e-mail address that proves the order is theirs), now and then something the bot cannot understand, and either
thanks or a request for a person (after which the bot is silent, so the conversation ends there).

The questions are the demo test set's messages (data/test.jsonl), the orders the demo's (data/orders.json);
the out-of-scope messages are written here. A cancellation is always declined at the last step ("no"), so a
run changes no order."""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SMALL_TALK = ("greeting", "thanks", "goodbye")
FORM_INTENTS = ("order_status", "cancel_order")
HANDOFF_INTENT = "contact_human"
ORDER_NUMBER = re.compile(r"nw[\s#-]*\d{6}", re.IGNORECASE)
OUT_OF_SCOPE = [
    "what's the weather like in Lisbon tomorrow?", "can you recommend a good film for tonight?",
    "who won the football match yesterday?", "asdf qwerty zxcv", "tell me a joke about penguins",
    "what is the capital of Australia?", "how many calories are in a banana?", "play some jazz please",
    "is it a good time to buy bitcoin?", "translate good morning into Japanese",
]

# How often a conversation has each part (fixed, so that every run sends the same mix).
GREETING_SHARE = 0.5
QUESTIONS_PER_CONVERSATION = (1, 1, 2, 3)
TRACK_ORDER_SHARE = 0.30
CANCEL_ORDER_SHARE = 0.10
OUT_OF_SCOPE_SHARE = 0.15
HANDOFF_SHARE = 0.10


@dataclass(frozen=True)
class Corpus:
    by_intent: dict[str, list[str]]
    orders: list[tuple[str, str]]
    """(order id, the e-mail address it was placed with) of orders a visitor can still cancel."""

    @classmethod
    def load(cls) -> Corpus:
        by_intent: dict[str, list[str]] = defaultdict(list)
        for line in (ROOT / "data" / "test.jsonl").read_text().splitlines():
            if line.strip():
                example = json.loads(line)
                if not ORDER_NUMBER.search(example["text"]):  # the script gives the order number when asked
                    by_intent[example["intent"]].append(example["text"])
        orders = [(o["id"], o["email"]) for o in json.loads((ROOT / "data" / "orders.json").read_text())
                  if o["status"] in ("processing", "shipped")]
        return cls(dict(by_intent), orders)

    @property
    def questions(self) -> list[str]:
        """Messages of the intents the bot answers from its templates."""
        skip = (*SMALL_TALK, *FORM_INTENTS, HANDOFF_INTENT)
        return [text for intent, texts in sorted(self.by_intent.items()) if intent not in skip for text in texts]


def conversation(corpus: Corpus, rng: random.Random) -> list[str]:
    """One customer's messages, in order."""
    questions = corpus.questions
    messages = [rng.choice(corpus.by_intent["greeting"])] if rng.random() < GREETING_SHARE else []
    messages += [rng.choice(questions) for _ in range(rng.choice(QUESTIONS_PER_CONVERSATION))]
    order_id, email = rng.choice(corpus.orders)
    form = rng.random()
    if form < TRACK_ORDER_SHARE:
        messages += [rng.choice(corpus.by_intent["order_status"]), order_id, email]
    elif form < TRACK_ORDER_SHARE + CANCEL_ORDER_SHARE:
        messages += [rng.choice(corpus.by_intent["cancel_order"]), order_id, email, "no"]
    if rng.random() < OUT_OF_SCOPE_SHARE:
        messages.append(rng.choice(OUT_OF_SCOPE))
    if rng.random() < HANDOFF_SHARE:
        messages.append(rng.choice(corpus.by_intent[HANDOFF_INTENT]))
    else:
        messages.append(rng.choice(corpus.by_intent[rng.choice(("thanks", "goodbye"))]))
    return messages


MIX = (f"conversations: greeting {GREETING_SHARE:.0%}; questions answered from templates "
       f"{'/'.join(map(str, QUESTIONS_PER_CONVERSATION))} (equally likely); order tracked (form: order number, "
       f"e-mail) {TRACK_ORDER_SHARE:.0%}; cancellation declined at the last step (form) {CANCEL_ORDER_SHARE:.0%}; "
       f"an out-of-scope message {OUT_OF_SCOPE_SHARE:.0%}; ends with a request for a person {HANDOFF_SHARE:.0%}, "
       "else thanks or goodbye")
