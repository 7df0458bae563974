"""What a redistillation trains on: agents' labels win over earlier ones but overturn the base data only with
an admin's approval; golden texts and held-out slices of corrections and confirmations are never trained on;
the teacher's labels of unlabelled messages are trusted only when confident, agreed and in measure."""

from __future__ import annotations

from distill.data import Example
from distill.harvest import Harvest, Labelled, LabelSource
from distill.training_set import UnlabelledRules, build, normalise, select_unlabelled

CORRECTION, CONFIRMATION = LabelSource.CORRECTION, LabelSource.CONFIRMATION
BASE = [Example("where is my order", "order_status"), Example("my money back?", "return_item"),
        Example("golden question", "greeting")]


def train_of(built) -> dict[str, str]:
    return {e.text: e.intent for e in built.train}


def test_normalise_collapses_case_space_punctuation_and_digits():
    assert normalise("  Where's my ORDER #NW123456?? ") == normalise("where s my order nw654321") == \
        "where s my order nw000000"
    assert normalise("Hi,there") == normalise("hi there")


def test_agents_labels_win_and_golden_and_held_out_labels_are_never_trained_on():
    corrections = [Labelled(f"korrektur {c}", "refund_status", CORRECTION, "greeting", fresh=True)
                   for c in "abcdefghijklmnopqrst"]
    harvest = Harvest(labelled=[Labelled("my money back?", "refund_status", CORRECTION, "return_item", approved=True),
                                Labelled("golden question", "thanks", CORRECTION, "greeting", approved=True),
                                *corrections],
                      unlabelled=["where is my order", "brand new message", "Brand new message!", "golden question"])
    golden = [Example("Golden  Question", "greeting")]
    built = build(BASE, harvest, golden, holdout_fraction=0.0)
    train = train_of(built)
    assert train["my money back?"] == "refund_status"  # the approved label overrides the base data
    assert "golden question" not in train and train["korrektur a"] == "refund_status"  # golden: never trained on
    assert built.unlabelled == ["brand new message"] and built.held_out_corrections == []
    assert built.added["contradicts_base_applied"] == 2 and built.added["golden_skipped"] == 1

    built = build(BASE, harvest, golden, holdout_fraction=0.2)
    train, held = {e.text for e in built.train}, {e.text for e in built.held_out_corrections}
    assert 1 <= len(held) < 21 and not held & train  # held-out corrections are never trained on
    assert held == {e.text for e in build(BASE, harvest, [], 0.2).held_out_corrections}  # the same, run to run


def test_a_contradicting_correction_waits_for_an_admin_and_an_approved_one_is_applied():
    waiting = Labelled("where is my order", "cancel_order", CORRECTION, "order_status")
    harvest = Harvest(labelled=[waiting, Labelled("new phrasing", "cancel_order", CORRECTION, "order_status")])
    built = build(BASE, harvest, [], holdout_fraction=0.0)
    assert train_of(built)["where is my order"] == "order_status"  # the base data stands
    assert train_of(built)["new phrasing"] == "cancel_order"  # contradicts nothing: applied
    assert built.waiting_for_admin == [waiting]
    assert built.added == {"contradicts_base_waiting": 1, "correction": 1}

    harvest.labelled[0] = Labelled("Where is my order?", "cancel_order", CORRECTION, "order_status", approved=True)
    built = build(BASE, harvest, [], holdout_fraction=0.0)
    assert train_of(built)["Where is my order?"] == "cancel_order" and "where is my order" not in train_of(built)
    assert built.waiting_for_admin == [] and built.added["contradicts_base_applied"] == 1


def test_a_waiting_correction_is_not_held_out_either():
    """Held out, it would take the base example out of training and judge the candidate by an unvetted label."""
    waiting = [Labelled("where is my order", "cancel_order", CORRECTION, "order_status"),
               Labelled("my money back?", "cancel_order", CORRECTION, "return_item")]
    built = build(BASE, Harvest(labelled=waiting), [], holdout_fraction=1.0)
    assert built.held_out_corrections == [] and built.waiting_for_admin == waiting
    assert train_of(built) == {e.text: e.intent for e in BASE}


def test_a_later_label_of_the_same_text_overrides_an_earlier_one():
    harvest = Harvest(labelled=[Labelled("hello there", "thanks", CORRECTION, "greeting"),
                                Labelled("Hello there!", "greeting", CONFIRMATION, "greeting"),
                                Labelled("bye now", "greeting", CONFIRMATION, "greeting"),
                                Labelled("bye now", "goodbye", CORRECTION, "greeting")])
    train = train_of(build(BASE, harvest, [], holdout_fraction=0.0))
    assert train["Hello there!"] == "greeting" and "hello there" not in train and train["bye now"] == "goodbye"


def test_confirmations_have_their_own_held_out_slice():
    confirmations = [Labelled(f"confirmed {c}", "greeting", CONFIRMATION, "greeting") for c in "abcdefghijklmnopqrst"]
    corrections = [Labelled(f"corrected {c}", "thanks", CORRECTION, "greeting", fresh=c < "k")
                   for c in "abcdefghijklmnopqrst"]
    harvest = Harvest(labelled=[*confirmations, *corrections])
    built = build(BASE, harvest, [], holdout_fraction=0.2)
    held_confirmations = {e.text for e in built.held_out_confirmations}
    held_corrections = {e.text for e in built.held_out_corrections}  # new since the last run: must be learned
    earlier = {e.text for e in built.held_out_earlier_corrections}  # from earlier runs: must not get worse
    assert held_confirmations and all(t.startswith("confirmed") for t in held_confirmations)
    assert held_corrections | earlier and all(t.startswith("corrected") for t in held_corrections | earlier)
    assert all(t[-1] < "k" for t in held_corrections) and all(t[-1] >= "k" for t in earlier)
    assert not (held_confirmations | held_corrections | earlier) & {e.text for e in built.train}
    assert built.added["held_out_confirmation"] == len(held_confirmations)
    assert built.added["confirmation"] == 20 - len(held_confirmations)
    two = build(BASE, Harvest(labelled=confirmations[:2]), [], holdout_fraction=0.01)
    assert len(two.held_out_confirmations) == 1  # at least one once there are two


def test_approved_new_intents_are_trained_and_never_held_out():
    harvest = Harvest(labelled=[Labelled(f"gift wrap {c}", "gift_wrapping", LabelSource.NEW_INTENT, approved=True)
                                for c in "abcde"])
    built = build(BASE, harvest, [], holdout_fraction=0.5)
    assert built.added == {"new_intent": 5} and built.held_out_corrections == built.held_out_confirmations == []


def test_unlabelled_needs_a_confident_teacher():
    kept, dropped = select_unlabelled(["a", "a", "b"], [0.9, 0.59, 0.6], None, {"a": 100, "b": 100},
                                      UnlabelledRules())
    assert kept == [0, 2] and dropped == {"low_confidence": 1, "disagreement": 0, "intent_growth_cap": 0}


def test_unlabelled_needs_the_student_to_agree_when_there_is_one():
    teacher, confidence = ["a", "b", "b"], [0.9, 0.9, 0.9]
    kept, dropped = select_unlabelled(teacher, confidence, ["a", "a", "b"], {"a": 100, "b": 100}, UnlabelledRules())
    assert kept == [0, 2] and dropped["disagreement"] == 1
    lenient = UnlabelledRules(require_agreement=False)
    assert select_unlabelled(teacher, confidence, ["a", "a", "b"], {}, lenient)[0] == [0, 1, 2]
    assert select_unlabelled(teacher, confidence, None, {}, UnlabelledRules())[0] == [0, 1, 2]  # no student


def test_an_intent_grows_from_unlabelled_data_by_a_bounded_amount_keeping_its_most_confident():
    teacher = ["big"] * 20 + ["small"] * 10
    confidence = [0.7] * 10 + [0.95] * 10 + [0.8 + i / 100 for i in range(10)]
    kept, dropped = select_unlabelled(teacher, confidence, None, {"big": 120, "small": 3}, UnlabelledRules())
    assert [i for i in kept if i < 20] == [0, 1, *range(10, 20)]  # 10% of 120: 12, the most confident first
    assert [i for i in kept if i >= 20] == list(range(25, 30))  # a small intent: min_growth
    assert dropped == {"low_confidence": 0, "disagreement": 0, "intent_growth_cap": 13}


def test_an_agents_label_of_a_base_text_is_never_held_out_so_it_cannot_take_the_example_out_of_training():
    confirmed = [Labelled(e.text, e.intent, CONFIRMATION, e.intent, fresh=True) for e in BASE]
    built = build(BASE, Harvest(labelled=confirmed), [], holdout_fraction=0.99)
    assert not built.held_out_confirmations and {e.text for e in built.train} == {e.text for e in BASE}


def test_an_approved_label_is_not_undone_by_a_later_unapproved_one_of_the_same_text():
    approved = Labelled("where is my order", "cancel_order", CORRECTION, "order_status", approved=True)
    later = Labelled("Where is my order!!", "greeting", CORRECTION, "order_status")
    built = build(BASE, Harvest(labelled=[approved, later]), [], holdout_fraction=0.0)
    assert {e.text: e.intent for e in built.train}["where is my order"] == "cancel_order"
    assert not built.waiting_for_admin


def test_disguised_duplicates_normalise_alike():
    plain = normalise("cancel my card 1234")
    for disguised in ("Cancel my card\u200b 9876", "ｃａｎｃｅｌ my card 0000", "cancél my card 5555!!",
                      "can\u00adcel my card 1111", "cancel my card 🙂 4321"):
        assert normalise(disguised) == plain, disguised
