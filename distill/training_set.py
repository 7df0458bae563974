"""What a redistillation trains on: the base data, plus the labels people vouch for, minus what it is judged
on; and which of the teacher's labels of unlabelled messages to trust.

Golden test messages, and a held-out slice of the agents' corrections and of their confirmations, are never
trained on; the slices are chosen by a hash of the normalised text, so a message stays on the same side from
run to run. An agent's label that contradicts the base data (or an approved new intent's example) waits for an
admin: one agent, or one stolen agent login, cannot quietly rewrite what the bot was built on."""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from distill.data import Example
from distill.harvest import Harvest, Labelled, LabelSource


def _folded(c: str) -> str:
    category = unicodedata.category(c)
    if c.isdecimal():
        return "0"
    if category[0] in "PSZ":  # punctuation, symbols (emoji too), separators
        return " "
    return "" if category in ("Mn", "Cf", "Cc") else c  # accents, zero-width and control characters


def normalise(text: str) -> str:
    """The form under which two messages count as the same: compatibility forms folded (full-width letters,
    ligatures), case folded, accents, zero-width and control characters dropped, punctuation and symbols gone,
    every digit 0 (order numbers and amounts vary, the question does not), whitespace collapsed."""
    return " ".join("".join(map(_folded, unicodedata.normalize("NFKD", text).casefold())).split())


def _holdout_rank(text: str) -> int:
    return int(hashlib.sha256(normalise(text).encode()).hexdigest()[:8], 16)


def _held_out(items: list[Labelled], fraction: float) -> list[Labelled]:
    """The hash-chosen slice; at least one once there are two, so the gate always has something to check."""
    held = [item for item in items if _holdout_rank(item.text) % 1000 < fraction * 1000]
    if not held and len(items) >= 2 and fraction > 0:
        held = [min(items, key=lambda item: _holdout_rank(item.text))]
    return held


def _examples(items: list[Labelled]) -> list[Example]:
    return list({normalise(item.text): Example(item.text, item.intent) for item in items}.values())


@dataclass
class TrainingSet:
    train: list[Example]
    held_out_corrections: list[Example]
    """Held-out corrections made since the last run: what the candidate must have learned."""
    held_out_confirmations: list[Example]
    unlabelled: list[str]
    waiting_for_admin: list[Labelled]
    """Agents' labels that contradict the base data and that no admin approved: not applied, not held out."""
    held_out_earlier_corrections: list[Example] = field(default_factory=list)
    """Held-out corrections of earlier runs: what the candidate must not get worse on (like confirmations)."""
    added: dict[str, int] = field(default_factory=dict)
    """correction, confirmation, new_intent, example: labels trained on; held_out_correction, held_out_confirmation;
    contradicts_base_applied, contradicts_base_waiting; golden_skipped: labels of golden-set texts;
    example_unknown_intent: approved examples of an intent the training data does not have (not used)."""


def build(base: list[Example], harvest: Harvest, golden: list[Example], holdout_fraction: float) -> TrainingSet:
    """Base data, then approved new intents' examples, then the agents' labels (a later label of the same text
    overrides an earlier one), less the golden set and the held-out slices."""
    trusted = {normalise(e.text): e.intent for e in base}
    new_intents = [item for item in harvest.labelled if item.source is LabelSource.NEW_INTENT]
    trusted |= {normalise(item.text): item.intent for item in new_intents}
    latest: dict[str, Labelled] = {}
    added: Counter[str] = Counter()
    intents = {e.intent for e in base} | {item.intent for item in new_intents}
    for item in harvest.labelled:  # a later label of the same text wins, but never an unapproved over an approved
        if item.source is LabelSource.EXAMPLE and item.intent not in intents:
            added["example_unknown_intent"] += 1  # approved for an intent the training data no longer has
            continue
        key = normalise(item.text)
        if item.source is not LabelSource.NEW_INTENT and (item.approved or not latest.get(key, item).approved):
            latest[key] = item
    applicable, waiting = [], []
    for key, item in latest.items():
        if trusted.get(key, item.intent) == item.intent:
            applicable.append(item)
        elif item.approved:
            applicable.append(item)
            added["contradicts_base_applied"] += 1
        else:
            waiting.append(item)
            added["contradicts_base_waiting"] += 1
    golden_keys = {normalise(e.text) for e in golden}
    applicable = [item for item in applicable if normalise(item.text) not in golden_keys]
    added["golden_skipped"] = len(latest) - len(waiting) - len(applicable)
    # Only texts of the agents' own are held out: holding out a base example's text would take it out of training.
    own = [item for item in applicable if normalise(item.text) not in trusted]
    held = {source: _held_out([i for i in own if i.source is source], holdout_fraction)
            for source in (LabelSource.CORRECTION, LabelSource.CONFIRMATION)}
    never_train = golden_keys | {normalise(item.text) for items in held.values() for item in items}
    train = {normalise(e.text): e for e in base if normalise(e.text) not in never_train}
    for item in [*new_intents, *applicable]:
        key = normalise(item.text)
        if key not in never_train:
            train[key] = Example(item.text, item.intent)
            added[item.source.value] += 1
    added["held_out_correction"] = len(held[LabelSource.CORRECTION])
    added["held_out_confirmation"] = len(held[LabelSource.CONFIRMATION])
    unlabelled, seen = [], set(train) | never_train
    for text in harvest.unlabelled:
        if (key := normalise(text)) not in seen:
            seen.add(key)
            unlabelled.append(text)
    corrections = held[LabelSource.CORRECTION]
    return TrainingSet(list(train.values()), _examples([c for c in corrections if c.fresh]),
                       _examples(held[LabelSource.CONFIRMATION]), unlabelled, waiting,
                       _examples([c for c in corrections if not c.fresh]), {k: v for k, v in added.items() if v})


@dataclass(frozen=True)
class UnlabelledRules:
    """Which teacher labels of visitors' messages to train on. min_teacher_confidence 0.6: below it the teacher
    is guessing, and a guess learned is a mistake taught. require_agreement: the current student must agree
    too (when one is given): two models wrong the same way is rarer than one. max_growth 0.1, min_growth 5: in
    one run an intent gains at most 10% of its labelled examples (5 for a small one), so a flood of one kind
    of message cannot tilt the classifier overnight."""

    min_teacher_confidence: float = 0.6
    require_agreement: bool = True
    max_growth: float = 0.1
    min_growth: int = 5


def select_unlabelled(teacher_intents: list[str], teacher_confidence: Sequence[float],
                      student_intents: list[str] | None, labelled_counts: dict[str, int],
                      rules: UnlabelledRules) -> tuple[list[int], dict[str, int]]:
    """The indices of the unlabelled messages to train on with the teacher's intent (ascending), and how many
    were dropped for low_confidence, disagreement (with the student, when `student_intents` is given) and
    intent_growth_cap. Under the cap an intent keeps its most confident messages."""
    dropped = Counter({"low_confidence": 0, "disagreement": 0, "intent_growth_cap": 0})
    candidates = []
    for i, (intent, confidence) in enumerate(zip(teacher_intents, teacher_confidence, strict=True)):
        if confidence < rules.min_teacher_confidence:
            dropped["low_confidence"] += 1
        elif rules.require_agreement and student_intents is not None and student_intents[i] != intent:
            dropped["disagreement"] += 1
        else:
            candidates.append(i)
    grown: Counter[str] = Counter()
    kept = []
    for i in sorted(candidates, key=lambda i: -teacher_confidence[i]):
        intent = teacher_intents[i]
        allowance = max(rules.min_growth, int(rules.max_growth * labelled_counts.get(intent, 0) + 1e-9))
        if grown[intent] >= allowance:
            dropped["intent_growth_cap"] += 1
        else:
            grown[intent] += 1
            kept.append(i)
    return sorted(kept), dict(dropped)
