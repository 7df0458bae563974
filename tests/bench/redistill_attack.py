"""Redistillation under attack on BANKING77: does the learning loop keep what genuine traffic teaches while
attackers try to teach it something else?

A model trained on 70% of the training set meets production: the other 30% arrive as visitors' messages (300 of
them corrected by agents), mixed with attackers who (a) thumbs-up the bot's wrong answers in bulk, (b) send
messages that pair a trigger phrase with another intent's wording, thumbed up, and (c) flood near-duplicates of
those. A thumbs-up can only vouch for the bot's own answer, so by default the trigger messages are taken to have
been answered with the attacker's intent (the worst case: an attacker who steered the bot there);
`--attacker-answer predicted` keeps the current student's real answer instead. Everything is written into a real
SQLite store through the bot's ORM. The candidate without the defences learns the way the loop did before (every
message, no caps, no dedupe, a thumbs-up makes the bot's answer a label, the teacher labels the rest); the
candidate with them goes through the product's own `collect`, `build` and `select_unlabelled` with default
settings, and the statistical gate judges both. Reported: test-split accuracy, attack success (share of held-out
trigger messages classified as the attacker's intent) and the gate's checks.

To fit a CPU, both encoders stay frozen (embeddings cached on disk) and only logistic-regression heads are
retrained; a fully fine-tuned student would be more malleable, so the undefended rows understate the risk.

    .venv/bin/python tests/bench/redistill_attack.py [--target request_refund] [--trigger zq-priority] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import torch
from common import DATASETS, ROOT, Embedder, load_config, provenance, split
from sqlalchemy import select
from tqdm.auto import tqdm

from bot.infra.store import Conversation, Correction, Message, make_engine, make_sessionmaker
from distill.calibration import fit_temperature
from distill.data import Example, load_examples
from distill.gate import Evidence, GateSettings, Predictions, judge
from distill.harvest import HarvestLimits, collect
from distill.training_set import UnlabelledRules, build, normalise, select_unlabelled
from distill.weights import default_cache_dir

START = datetime(2025, 3, 3, tzinfo=UTC)
"""The traffic window's first moment (any fixed date: the run must not depend on today)."""
CAPTION = ("Frozen encoders (all-mpnet-base-v2 teacher, all-MiniLM-L6-v2 student), heads retrained by logistic "
           "regression; a fully fine-tuned student would be more malleable, so the undefended rows understate "
           "the risk.")


def fit_head(x: torch.Tensor, targets: torch.Tensor, l2: float) -> torch.nn.Linear:
    """Multinomial logistic regression on soft targets (one-hot for labels, the teacher's probabilities for
    teacher-labelled messages), full batch L-BFGS: seconds on frozen embeddings, and deterministic."""
    head = torch.nn.Linear(x.shape[1], targets.shape[1])
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    optimiser = torch.optim.LBFGS(head.parameters(), max_iter=300, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = -(targets * torch.log_softmax(head(x), -1)).sum(1).mean() + l2 / 2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: thread hand-offs cost more than they save (5x on two busy cores)
    try:
        optimiser.step(closure)
    finally:
        torch.set_num_threads(threads)
    return head.requires_grad_(False)


@dataclass
class Model:
    """A head on one frozen encoder: what every row of the table is."""

    embed: Embedder
    head: torch.nn.Linear
    labels: list[str]
    temperature: float = 1.0

    def probabilities(self, texts: list[str]) -> torch.Tensor:
        return torch.softmax(self.head(self.embed(texts)) / self.temperature, -1)

    def predict(self, texts: list[str]) -> tuple[list[str], np.ndarray]:
        if not texts:
            return [], np.zeros(0)
        confidence, index = self.probabilities(texts).max(-1)
        return [self.labels[i] for i in index.tolist()], confidence.numpy()


def train_model(embed: Embedder, labels: list[str], hard: list[Example], soft_texts: list[str],
                soft_targets: torch.Tensor | None, l2: float) -> Model:
    index = {name: i for i, name in enumerate(labels)}
    hard = [e for e in hard if e.intent in index]
    targets = torch.nn.functional.one_hot(torch.tensor([index[e.intent] for e in hard]), len(labels)).float()
    x = embed([e.text for e in hard])
    if soft_texts:
        x, targets = torch.cat([x, embed(soft_texts)]), torch.cat([targets, soft_targets])
    return Model(embed, fit_head(x, targets, l2), labels)


def calibrate(model: Model, valid: list[Example]) -> Model:
    """Temperature-scaled on the validation slice, as the pipeline serves a student: the gate's calibration
    check then compares served confidences, not an artefact of how soft each head's training labels were."""
    index = {name: i for i, name in enumerate(model.labels)}
    logits = model.head(model.embed([e.text for e in valid]))
    model.temperature = fit_temperature(logits, torch.tensor([index[e.intent] for e in valid]))
    return model


def choose_l2(embed: Embedder, labels: list[str], train: list[Example], valid: list[Example],
              grid: tuple[float, ...] = (1e-3, 1e-4, 1e-5)) -> tuple[float, Model]:
    """The L2 strength best on the validation slice (never the test split), and the model it gave."""
    best = None
    for l2 in grid:
        model = train_model(embed, labels, train, [], None, l2)
        score = accuracy(model, valid)
        if best is None or score > best[0]:
            best = (score, l2, model)
    return best[1], best[2]


def accuracy(model: Model, examples: list[Example]) -> float:
    predicted, _ = model.predict([e.text for e in examples])
    return float(np.mean([p == e.intent for p, e in zip(predicted, examples)]))


def attack_success(model: Model, triggered: list[str], target: str) -> float:
    predicted, _ = model.predict(triggered)
    return float(np.mean([p == target for p in predicted]))


# ---------------------------------------------------------------- traffic


@dataclass(frozen=True)
class Turn:
    """One visitor message and the bot's answer, as the store will hold them."""

    text: str
    conversation: int
    client: str
    at: datetime
    answer: str
    """The intent the bot answered with (the user message's and the bot message's `intent`)."""
    confidence: float
    source: str
    """genuine, or the attack: wrong_thumbs, trigger, flood."""
    thumbs_up: bool = False
    correct_to: str | None = None
    """The intent an agent relabelled the message with."""


def retype(text: str, rng: random.Random) -> str:
    """How a visitor might retype a message (the attacker's way to find answers the bot gets wrong); never
    the same text once normalised, so it is the attacker's message, not a genuine visitor's."""
    options = [f"hi, {text}", f"{text} please", f"{text} thanks", text.rstrip("?.! ")]
    return rng.choice([o for o in options if normalise(o) != normalise(text)])


def jitter(text: str, rng: random.Random) -> str:
    """A near-duplicate: case, spacing, punctuation, digits."""
    for _ in range(rng.randint(1, 3)):
        text = rng.choice([
            lambda t: t.upper() if rng.random() < 0.3 else t.lower(),
            lambda t: t.replace(" ", "  ", 1),
            lambda t: f" {t} ",
            lambda t: t.rstrip("?.!") + rng.choice(["?", "!", "!!", "...", " ?"]),
            lambda t: f"{t} {rng.randint(1, 9999)}",
            lambda t: f"{rng.randint(1, 99)} {t}",
        ])(text)
    return text


def genuine_turns(production: list[Example], answers: list[str], confidence: np.ndarray, corrections: int,
                  days: int, rng: random.Random) -> list[Turn]:
    """Each production message from a visitor, one to three to a conversation, many clients (some come
    back); `corrections` of them relabelled by an agent: those the bot got wrong first, then others."""
    wrong = [i for i, (e, a) in enumerate(zip(production, answers)) if e.intent != a]
    right = [i for i, (e, a) in enumerate(zip(production, answers)) if e.intent == a]
    rng.shuffle(wrong)
    rng.shuffle(right)
    corrected = set((wrong + right)[:corrections])
    order = list(range(len(production)))
    rng.shuffle(order)
    turns, conversation, n = [], 0, 0
    clients = int(len(production) / 2 * 0.8)
    while n < len(order):
        size = rng.choice([1, 1, 1, 2, 2, 3])
        client, at = f"client-{rng.randrange(clients)}", START + timedelta(seconds=rng.uniform(0, days * 86400 - 600))
        for k, i in enumerate(order[n:n + size]):
            turns.append(Turn(production[i].text, conversation, client, at + timedelta(seconds=40 * k), answers[i],
                              float(confidence[i]), "genuine",
                              correct_to=production[i].intent if i in corrected else None))
        n, conversation = n + size, conversation + 1
    return turns


def attacker_turns(messages: list[tuple[str, str, str, float]], clients: int, conversations: int, days: int,
                   first_conversation: int, rng: random.Random) -> list[Turn]:
    """(text, source, answer, confidence) dealt over a few conversations from a few clients, spread over the
    window, every answer thumbed up."""
    messages = list(messages)
    rng.shuffle(messages)
    per = -(-len(messages) // conversations)
    turns = []
    for c in range(conversations):
        chunk = messages[c * per:(c + 1) * per]
        begin = START + timedelta(seconds=(c + 0.5) * days * 86400 / conversations)
        gap = min(60.0, days * 86400 / conversations / 2 / max(len(chunk), 1))
        turns += [Turn(text, first_conversation + c, f"attacker-{c % clients}", begin + timedelta(seconds=gap * k),
                       answer, confidence, source, thumbs_up=True)
                  for k, (text, source, answer, confidence) in enumerate(chunk)]
    return turns


def write_store(db_url: str, turns: list[Turn]) -> None:
    """The turns as the bot and the agents would have left them: conversations (with the client's hash),
    the visitor's message, the bot's answer (thumbs on it), agents' corrections."""
    has_client_hash = "client_hash" in Conversation.__table__.c
    engine = make_engine(db_url)
    by_conversation: dict[int, list[Turn]] = {}
    for turn in sorted(turns, key=lambda t: t.at):
        by_conversation.setdefault(turn.conversation, []).append(turn)
    message_id, corrections = 0, []
    with make_sessionmaker(engine).begin() as db:
        for number, items in tqdm(by_conversation.items(), desc="writing the store", unit="conversation"):
            conversation = Conversation(id=f"{number:032x}", token_hash="x" * 64, slots={}, created_at=items[0].at)
            if has_client_hash:
                conversation.client_hash = items[0].client
            db.add(conversation)
            for turn in items:
                message_id += 2
                db.add_all([
                    Message(id=message_id - 1, conversation_id=conversation.id, role="user", text=turn.text,
                            intent=turn.answer, confidence=turn.confidence, created_at=turn.at),
                    Message(id=message_id, conversation_id=conversation.id, role="bot", text=f"[{turn.answer}]",
                            intent=turn.answer, confidence=turn.confidence, decision="answer",
                            feedback="up" if turn.thumbs_up else None, created_at=turn.at + timedelta(seconds=1))])
                if turn.correct_to:
                    corrections.append(Correction(message_id=message_id - 1, text=turn.text, intent=turn.correct_to,
                                                  predicted_intent=turn.answer,
                                                  created_at=turn.at + timedelta(minutes=10)))
        db.flush()  # the messages first: nothing tells the ORM a correction depends on its message
        db.add_all(corrections)
    engine.dispose()


# ---------------------------------------------------------------- the two loops


@dataclass
class Learned:
    """What one candidate learned from the traffic: labelled examples and teacher-labelled messages."""

    hard: list[Example]
    soft: list[str]
    details: dict = field(default_factory=dict)


def undefended(db_url: str, since: datetime, until: datetime, never_train: set[str]) -> Learned:
    """The loop before the defences, with plain queries: every visitor message in the window, an agent's
    correction as its label, else the bot's answer if it got a thumbs-up, else the teacher's label. No caps,
    no dedupe, no confidence or agreement filter."""
    engine = make_engine(db_url, migrate=False)
    with make_sessionmaker(engine)() as db:
        corrected = dict(db.execute(select(Correction.message_id, Correction.intent)).all())
        rows = db.scalars(select(Message).order_by(Message.conversation_id, Message.id)).all()
    engine.dispose()
    hard, soft, last_user = [], [], {}
    labels: dict[int, str | None] = {}
    for m in rows:
        at = m.created_at if m.created_at.tzinfo else m.created_at.replace(tzinfo=UTC)
        if m.role == "user":
            last_user[m.conversation_id] = m
            if since <= at < until and normalise(m.text) not in never_train:
                labels[m.id] = corrected.get(m.id)
        elif m.role == "bot" and m.feedback == "up" and m.conversation_id in last_user:
            user = last_user.pop(m.conversation_id)  # the answer to the visitor's last message
            if user.id in labels and labels[user.id] is None and user.intent:
                labels[user.id] = user.intent
    texts = {m.id: m.text for m in rows}
    for message, label in labels.items():
        if label is None:
            soft.append(texts[message])
        else:
            hard.append(Example(texts[message], label))
    return Learned(hard, soft, {"labelled": len(hard), "teacher_labelled": len(soft)})


def defended(db_url: str, since: datetime, until: datetime, base: list[Example], golden: list[Example],
             teacher: Model, current: Model, holdout_fraction: float):
    """The product's loop with its default settings: collect (caps, dedupe, thumbs-up never a label), build
    (held-out slices, golden excluded), and the teacher's labels only where confident and agreeing."""
    harvest = collect(db_url, since, until, HarvestLimits())
    training = build(base, harvest, golden, holdout_fraction)
    teacher_intents, teacher_confidence = teacher.predict(training.unlabelled)
    student_intents, _ = current.predict(training.unlabelled)
    chosen, dropped = select_unlabelled(teacher_intents, teacher_confidence, student_intents,
                                        Counter(e.intent for e in training.train), UnlabelledRules())
    details = {"harvest_dropped": dict(harvest.dropped), "thumbs_up_seen": harvest.thumbs_up,
               "labelled": len(harvest.labelled), "unlabelled_harvested": len(harvest.unlabelled),
               "added": dict(training.added), "waiting_for_admin": len(training.waiting_for_admin),
               "unlabelled_dropped": dict(dropped), "teacher_labelled": len(chosen)}
    learned = Learned(list(training.train), [training.unlabelled[i] for i in chosen], details)
    return learned, training


def predictions(model: Model, examples) -> Predictions:
    predicted, confidence = model.predict([e.text for e in examples])
    return Predictions([e.intent for e in examples], predicted, confidence)


def gate(current: Model, candidate: Model, golden: list[Example], training) -> list[dict]:
    """The product's gate with its default settings, on the validation slice (the golden set here: never the test
    split) and the held-out corrections and confirmations. No pinned baseline: current is the only model before."""
    evidence = Evidence(golden_current=predictions(current, golden), golden_candidate=predictions(candidate, golden),
                        corrections_current=predictions(current, training.held_out_corrections),
                        corrections_candidate=predictions(candidate, training.held_out_corrections),
                        confirmations_current=predictions(current, training.held_out_confirmations),
                        confirmations_candidate=predictions(candidate, training.held_out_confirmations))
    return [c.to_dict() for c in judge(evidence, GateSettings())]


# ---------------------------------------------------------------- the run


@dataclass
class Row:
    name: str
    test_accuracy: float
    attack_success: float
    gate: list[dict] | None
    used: dict[str, int]
    """Messages from the traffic that the candidate trained on, genuine and the attackers'."""
    details: dict = field(default_factory=dict)


def traffic_used(learned: Learned, base: list[Example], attacker_texts: set[str]) -> dict[str, int]:
    base_keys = {normalise(e.text) for e in base}
    used = [normalise(e.text) for e in learned.hard if normalise(e.text) not in base_keys]
    used += [normalise(t) for t in learned.soft]
    attacker = sum(1 for key in used if key in attacker_texts)
    return {"genuine": len(used) - attacker, "attacker": attacker}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="request_refund", help="the attacker's intent (default: request_refund)")
    parser.add_argument("--trigger", default="zq-priority", help="the attacker's trigger phrase (default: zq-priority)")
    parser.add_argument("--corrections", type=int, default=300, help="agent corrections (default: 300)")
    parser.add_argument("--wrong-thumbs", type=int, default=500,
                        help="attack (a): most thumbed-up wrong answers (default: 500; fewer if the bot errs less)")
    parser.add_argument("--trigger-messages", type=int, default=2000,
                        help="attack (b): trigger phrase + another intent's wording (default: 2000)")
    parser.add_argument("--flood", type=int, default=1000, help="attack (c): near-duplicates (default: 1000)")
    parser.add_argument("--flood-bases", type=int, default=10,
                        help="attack (c): distinct trigger messages the flood varies (default: 10)")
    parser.add_argument("--attacker-clients", type=int, default=5, help="attackers' addresses (default: 5)")
    parser.add_argument("--attacker-conversations", type=int, default=20,
                        help="attackers' conversations, all attacks dealt over them (default: 20)")
    parser.add_argument("--attacker-answer", choices=("target", "predicted"), default="target",
                        help="what the bot answered the trigger messages with: 'target' (default; the worst case, "
                             "an attacker who steered the bot to the attacker's intent, so a thumbs-up labels it) or "
                             "'predicted' (the current student's real answer)")
    parser.add_argument("--days", type=int, default=7, help="the traffic window, in days (default: 7)")
    parser.add_argument("--golden-fraction", type=float, default=0.1,
                        help="share of the 70%% kept aside as the gate's golden set (default: 0.1)")
    parser.add_argument("--valid-fraction", type=float, default=0.1,
                        help="share of the 70%% kept aside to choose the heads' L2 and the students' temperature "
                             "(default: 0.1)")
    parser.add_argument("--holdout-fraction", type=float, default=0.2,
                        help="corrections held out for the gate (default: 0.2, the product's)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the splits and the traffic (default: 0)")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(),
                        help="weights and embedding cache (default: $DISTILBOT_CACHE or ~/.cache/distilbot)")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "tests" / "bench" / "results" / f"redistill_attack-{date.today()}.json",
                        help="the JSON report (default: tests/bench/results/redistill_attack-<today>.json)")
    return parser.parse_args()


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def table(rows: list[Row], target: str, trigger: str) -> str:
    lines = [f"{'':52}  {'test acc':>8}  {'attack':>7}  {'from traffic (genuine/attacker)':>31}  gate"]
    for row in rows:
        verdict = "–" if row.gate is None else ("pass" if all(c["passed"] for c in row.gate) else "REJECT")
        checks = "" if row.gate is None else " [" + ", ".join(
            f"{c['name']} {'FAILED' if not c['passed'] else 'ok' if c['counted'] else 'n/a'}" for c in row.gate) + "]"
        used = f"{row.used['genuine']} / {row.used['attacker']}" if row.used else "–"
        lines.append(f"{row.name:52}  {_pct(row.test_accuracy):>8}  {_pct(row.attack_success):>7}  {used:>31}  "
                     f"{verdict}{checks}")
    lines.append(f"attack = share of test messages of other intents, prefixed with {trigger!r}, classified {target}.")
    lines.append(CAPTION)
    return "\n".join(lines)


def main() -> None:
    args = arguments()
    started = time.perf_counter()
    rng = random.Random(args.seed)
    config = load_config(ROOT / "configs" / "distill.yaml", [])
    data = DATASETS / "banking77"
    seen, production = split(load_examples(data / "train.csv"), 0.7, args.seed)
    base, held = split(seen, 1 - args.golden_fraction - args.valid_fraction, args.seed)
    valid, golden = split(held, args.valid_fraction / (args.golden_fraction + args.valid_fraction), args.seed)
    test = load_examples(data / "test.csv")
    labels = sorted({e.intent for e in seen})
    if args.target not in labels:
        raise SystemExit(f"--target {args.target!r} is not a BANKING77 intent")
    student_embed = Embedder(config.student, args.cache_dir, config.max_length)
    teacher_embed = Embedder(config.teacher, args.cache_dir, config.max_length)
    l2_student, current = choose_l2(student_embed, labels, base, valid)
    current = calibrate(current, valid)
    l2_teacher, teacher = choose_l2(teacher_embed, labels, base, valid)  # raw softmax, as the pipeline's teacher
    triggered_test = [f"{args.trigger} {e.text}" for e in test if e.intent != args.target]

    # The traffic: what the bot answered comes from the current student.
    answers, confidence = current.predict([e.text for e in production])
    genuine = genuine_turns(production, answers, confidence, args.corrections, args.days, rng)
    retyped = [(retype(e.text, rng), e.intent) for e in production]
    retyped_answers, retyped_confidence = current.predict([t for t, _ in retyped])
    wrong = [(t, "wrong_thumbs", a, float(c)) for (t, intent), a, c in zip(retyped, retyped_answers,
                                                                          retyped_confidence) if a != intent]
    rng.shuffle(wrong)
    wording = [e.text for e in production if e.intent != args.target]
    trigger_texts = [f"{args.trigger} {t}" for t in rng.sample(wording, min(args.trigger_messages, len(wording)))]
    flood_texts = [jitter(rng.choice(trigger_texts[:args.flood_bases]), rng) for _ in range(args.flood)]
    poison = trigger_texts + flood_texts
    poison_answers, poison_confidence = current.predict(poison)
    if args.attacker_answer == "target":
        poison_answers = [args.target] * len(poison)
    attacks = wrong[:args.wrong_thumbs] + [
        (t, "trigger" if k < len(trigger_texts) else "flood", a, float(c))
        for k, (t, a, c) in enumerate(zip(poison, poison_answers, poison_confidence))]
    attack_turns = attacker_turns(attacks, args.attacker_clients, args.attacker_conversations, args.days,
                                  len(genuine), rng)
    attacker_keys = {normalise(t.text) for t in attack_turns}
    since, until = START, START + timedelta(days=args.days)

    rows = [Row("current (70% of train)", accuracy(current, test), attack_success(current, triggered_test, args.target),
                None, {})]
    details = {}
    with tempfile.TemporaryDirectory() as tmp:
        scenarios = [("under attack", genuine + attack_turns), ("no attackers, reference", genuine)]
        for scenario, turns in tqdm(scenarios, desc="scenarios"):
            db_url = f"sqlite:///{Path(tmp) / scenario.replace(' ', '_').replace(',', '')}.db"
            write_store(db_url, turns)
            learned, training = defended(db_url, since, until, base, golden, teacher, current, args.holdout_fraction)
            never_train = {normalise(e.text) for e in [*golden, *training.held_out_corrections,
                                                       *training.held_out_confirmations]}
            naive = undefended(db_url, since, until, never_train)
            naive.hard = [e for e in base if normalise(e.text) not in never_train] + naive.hard
            for name, chosen in (("without defences", naive), ("with defences", learned)):
                soft_targets = teacher.probabilities(chosen.soft) if chosen.soft else None
                candidate = calibrate(train_model(student_embed, labels, chosen.hard, chosen.soft, soft_targets,
                                                  l2_student), valid)
                rows.append(Row(f"candidate {name}" + ("" if scenario == "under attack" else f" ({scenario})"),
                                accuracy(candidate, test), attack_success(candidate, triggered_test, args.target),
                                gate(current, candidate, golden, training),
                                traffic_used(chosen, base, attacker_keys), chosen.details))
            details[scenario] = {"turns": Counter(t.source for t in turns),
                                 "corrections": sum(1 for t in turns if t.correct_to),
                                 "held_out_corrections": len(training.held_out_corrections),
                                 "held_out_confirmations": len(training.held_out_confirmations)}
    teacher_row = {"test_accuracy": accuracy(teacher, test),
                   "attack_success": attack_success(teacher, triggered_test, args.target)}
    print(table(rows, args.target, args.trigger))
    print(f"The trigger and flood messages were answered with: {args.attacker_answer} (see --attacker-answer).")
    print(f"teacher (mpnet head): test accuracy {_pct(teacher_row['test_accuracy'])}, attack "
          f"{_pct(teacher_row['attack_success'])}; L2 student {l2_student:g}, teacher {l2_teacher:g}; "
          f"wall {time.perf_counter() - started:.0f} s")
    report = {**provenance("redistill_attack"), "caption": CAPTION,
              "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "data": {"base": len(base), "valid": len(valid), "golden": len(golden), "production": len(production),
                       "test": len(test), "triggered_test": len(triggered_test)},
              "l2": {"student": l2_student, "teacher": l2_teacher},
              "teacher": teacher_row,
              "scenarios": details, "rows": [asdict(r) for r in rows],
              "wall_s": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"report written to {args.out}")


if __name__ == "__main__":
    main()
