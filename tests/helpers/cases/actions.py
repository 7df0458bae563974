"""The rasa-sdk actions' forms, run in-process against a real store (the unit tier's SQLite, the e2e tier's
PostgreSQL: tests/unit/test_actions.py, tests/e2e/test_actions.py)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from bot.conversation import actions
from bot.conversation.action_runner import ActionRunner, FormState
from bot.conversation.orders import seed_orders
from bot.infra.store import Order, make_engine, make_sessionmaker
from tests.helpers.constants import DATA


def _message(text: str, intent: str = "order_status") -> dict:
    return {"text": text, "intent": {"name": intent, "confidence": 0.9}, "intent_ranking": [], "metadata": {}}


def _texts(result) -> list[str]:
    return [r["text"] for r in result.responses]


def _ask_about(runner: ActionRunner, sender: str, order_id: str, email: str, form: str = "track_order_form"):
    state = FormState({"order_id": order_id, "email": email})  # both named in the visitor's first message
    return state, runner.start_form(form, sender, state, _message(f"{order_id} {email}"))


@contextmanager
def in_a_turn(sessions):
    """As the runtime runs actions: inside the turn's transaction (which is what lets the `customer_id` slot,
    set from the conversation, count as verified)."""
    with sessions.begin() as db, actions.in_turn(None, db):
        yield


class ActionsCases:
    """Forms and actions on the store that `db_url` names."""

    @pytest.fixture
    def sessions(self, db_url):
        engine = make_engine(db_url)
        sessions = make_sessionmaker(engine)
        assert seed_orders(sessions, DATA / "orders.json") == 10
        assert seed_orders(sessions, DATA / "orders.json") == 0  # only into an empty table
        actions.configure(lambda: None, sessions)
        yield sessions
        engine.dispose()

    def test_tracking_form_re_asks_for_a_malformed_number_then_asks_for_the_email_and_looks_the_order_up(self,
                                                                                                       sessions):
        runner, state = ActionRunner(), FormState({})
        asked = runner.start_form("track_order_form", "s1", state, _message("where is my order?"))
        assert state.active_form == "track_order_form" and state.slots["requested_slot"] == "order_id"
        assert _texts(asked) == ["What's your order number? It starts with NW and six digits, like NW123456."]
        bad = runner.continue_form("s1", state, _message("it's 4829"), {"order_id": "it's 4829"})
        assert "doesn't look like an order number" in _texts(bad)[0] and _texts(bad)[1].startswith("What's your order")
        number = runner.continue_form("s1", state, _message("nw-482913"), {"order_id": "nw-482913"})
        assert _texts(number) == ["To keep your orders private, I need the e-mail address you used for order NW482913. "
                                  "What is it?"]
        done = runner.continue_form("s1", state, _message("Ana.Costa@example.com"), {"email": "Ana.Costa@example.com"})
        assert state.active_form is None and state.slots["order_id"] == "NW482913"
        assert _texts(done) == [t for t in _texts(done) if "NW482913 is on its way with DHL" in t]

    def test_an_unknown_order_and_a_wrong_email_get_the_same_reply_and_nothing_is_told(self, sessions):
        runner = ActionRunner()
        _, unknown = _ask_about(runner, "s5", "NW000001", "ana.costa@example.com")
        state, wrong = _ask_about(runner, "s6", "NW482913", "mallory@example.com")
        assert _texts(unknown) == _texts(wrong)
        assert _texts(wrong)[0] == actions.NOT_FOUND_TEXT and _texts(wrong)[1].startswith("What's your order number")
        assert state.slots["order_id"] is None and state.slots["email"] is None
        assert not any("DHL" in t or "JD0146" in t for t in _texts(wrong))

    def test_a_verified_customer_needs_no_email_for_their_own_orders_and_gets_nothing_of_others(self, sessions):
        runner = ActionRunner()
        mine = FormState({"customer_id": "cust-1001", "order_id": "NW482913"})
        with in_a_turn(sessions):
            told = runner.start_form("track_order_form", "s7", mine, _message("where is NW482913"))
        assert mine.active_form is None and "NW482913 is on its way with DHL" in _texts(told)[0]
        theirs = FormState({"customer_id": "cust-1001", "order_id": "NW730219"})
        with in_a_turn(sessions):
            refused = runner.start_form("cancel_order_form", "s8", theirs, _message("cancel NW730219", "cancel_order"))
        assert _texts(refused)[0] == actions.NOT_FOUND_TEXT and theirs.slots["order_id"] is None
        with sessions() as db:
            assert db.get(Order, "NW730219").status == "processing"
        outside = FormState({"customer_id": "cust-1001", "order_id": "NW482913"})  # slots a caller wrote itself
        asked = runner.start_form("track_order_form", "s9", outside, _message("where is NW482913"))
        assert _texts(asked) == [actions.NOT_FOUND_TEXT]

    def test_five_wrong_tries_on_one_order_hand_off_even_across_conversations(self, sessions):
        """The lock-out counts per conversation and per order: new conversations do not buy new tries."""
        runner = ActionRunner()
        for attempt in range(4):
            _, result = _ask_about(runner, f"guess-{attempt}", "NW557902", f"guess{attempt}@example.com")
            assert not result.paused and _texts(result)[0] == actions.NOT_FOUND_TEXT
        state, fifth = _ask_about(runner, "guess-4", "NW557902", "guess4@example.com")
        assert fifth.paused and _texts(fifth) == [actions.LOCKED_OUT_TEXT] and state.active_form is None
        # the right address is not even checked any more within the hour
        _, right = _ask_about(runner, "guess-5", "NW557902", "chen.li@example.com")
        assert right.paused and _texts(right) == [actions.LOCKED_OUT_TEXT]

    def test_cancelling_asks_for_confirmation_and_changes_the_order(self, sessions):
        runner = ActionRunner()
        state, confirm = _ask_about(runner, "s2", "NW730219", "ben.okafor@example.com", "cancel_order_form")
        assert _texts(confirm) == ["Shall I cancel order NW730219? Please answer yes or no."]
        assert [b["payload"] for b in confirm.responses[0]["buttons"]] == ["yes", "no"]
        unclear = runner.continue_form("s2", state, _message("hmm"), {"confirm_cancel": "hmm"})
        assert _texts(unclear)[0] == "Please answer yes to cancel the order, or no to keep it."
        done = runner.continue_form("s2", state, _message("yes please"), {"confirm_cancel": "yes please"})
        assert "order NW730219 is cancelled" in _texts(done)[0] and state.slots["confirm_cancel"] is None
        with sessions() as db:
            assert db.get(Order, "NW730219").status == "cancelled"
        shipped, _ = _ask_about(runner, "s3", "NW918273", "fay.morgan@example.com", "cancel_order_form")
        refused = runner.continue_form("s3", shipped, _message("yes"), {"confirm_cancel": "yes"})
        assert "already been shipped, so it can't be cancelled" in _texts(refused)[0]
        with sessions() as db:
            assert db.get(Order, "NW918273").status == "shipped"

    def test_a_number_slipped_into_the_confirmation_is_proved_before_anything_is_cancelled(self, sessions):
        """"yes NW557902" while confirming one's own order must not cancel a stranger's."""
        runner = ActionRunner()
        state, _ = _ask_about(runner, "s9", "NW402155", "eli.haddad@example.com", "cancel_order_form")
        result = runner.continue_form("s9", state, _message("yes NW557902"),
                                      {"order_id": "NW557902", "confirm_cancel": "yes NW557902"})
        assert actions.NOT_FOUND_TEXT in _texts(result)
        with sessions() as db:
            assert db.get(Order, "NW557902").status == "processing" and db.get(Order, "NW402155").status == "processing"

    def test_handoff_pauses_the_conversation(self, sessions):
        result = ActionRunner().run("action_handoff", "s4", FormState({}), _message("a human please", "contact_human"))
        assert result.paused and "connecting you" in _texts(result)[0]
