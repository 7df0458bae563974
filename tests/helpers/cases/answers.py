"""Answers as content (bot/desk/answers.py) on a real store: revisions, approval, conflicts, restore, import,
and how the served book follows them (tests/unit/test_answers.py on SQLite, tests/e2e/test_answers.py on
PostgreSQL)."""

from __future__ import annotations

import pytest

from bot.desk import answers
from bot.desk.answers import AnswerState, Rules
from bot.desk.desk import DeskError
from bot.infra.store import Agent, ProposalStatus, make_engine, make_sessionmaker
from bot.model.templates import AnswerEdits, Template, TemplateBook

OWN = TemplateBook(slots={"shop_name": "Northwind", "support_email": "help@example.com"}, templates=[
    Template(id="greeting", intent="greet", examples=["hi", "hello"], text="Hello from {shop_name}!"),
    Template(id="shipping", intent="shipping_cost", examples=["how much is shipping"], text="Shipping is €4.95."),
])
RULES = Rules(intents=frozenset({"greet", "shipping_cost", "order_status"}), slots=frozenset(OWN.slots))


def shipping(text: str, **changes) -> Template:
    fields = {"id": "shipping", "intent": "shipping_cost", "examples": ["how much is shipping"], "text": text}
    return Template.model_validate({**fields, **changes})


def served(db) -> dict[str, str]:
    return {t.id: t.text for t in answers.served_edits(db).apply(OWN).templates}


class AnswerCases:
    @pytest.fixture
    def store(self, db_url):
        engine = make_engine(db_url)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as db:
            db.add_all([Agent(id=1, username="ada", display_name="Ada", password_hash="-"),
                        Agent(id=2, username="bob", display_name="Bob", password_hash="-")])
        yield sessions
        engine.dispose()

    def test_an_admins_edit_is_served_and_its_history_shows_author_and_diff(self, store):
        with store.begin() as db:
            before = answers.edits_version(db)
            answers.edit(db, OWN, RULES, shipping("Shipping is free over €50."), 0, 1, approve=True)
        with store() as db:
            assert answers.edits_version(db) != before
            assert served(db)["shipping"] == "Shipping is free over €50."
            history = answers.history(db, OWN, "shipping")
        assert history.answer.state is AnswerState.SERVED and history.answer.revision == history.revisions[0].id
        revision = history.revisions[0]
        assert revision.author == "Ada" and revision.decider == "Ada" and revision.status is ProposalStatus.APPROVED
        assert "-text: Shipping is €4.95." in revision.diff and "+text: Shipping is free over €50." in revision.diff

    def test_an_agents_edit_waits_for_an_admin(self, store):
        with store.begin() as db:
            proposal = answers.edit(db, OWN, RULES, shipping("Ask bob."), 0, 2, approve=False).id
        with store() as db:
            assert served(db)["shipping"] == "Shipping is €4.95."
            assert next(a for a in answers.answers(db, OWN) if a.template.id == "shipping").pending == 1
        with store.begin() as db:
            answers.decide(db, OWN, RULES, proposal, True, 1)
        with store() as db:
            assert served(db)["shipping"] == "Ask bob."

    def test_a_change_over_a_stale_revision_is_refused_and_changes_nothing(self, store):
        with store.begin() as db:
            first = answers.edit(db, OWN, RULES, shipping("First."), 0, 1, approve=True).id
            proposal = answers.edit(db, OWN, RULES, shipping("Proposed over the first."), first, 2, approve=False).id
        with store.begin() as db, pytest.raises(DeskError) as stale:
            answers.edit(db, OWN, RULES, shipping("Written over the seed."), 0, 1, approve=True)
        assert stale.value.status == 409
        with store.begin() as db:
            answers.edit(db, OWN, RULES, shipping("Second."), first, 1, approve=True)
        with store.begin() as db, pytest.raises(DeskError) as outdated:
            answers.decide(db, OWN, RULES, proposal, True, 1)
        assert outdated.value.status == 409
        with store() as db:
            assert served(db)["shipping"] == "Second."

    def test_retire_and_restore_including_the_models_own_version(self, store):
        with store.begin() as db:
            edited = answers.edit(db, OWN, RULES, shipping("Edited."), 0, 1, approve=True).id
            retired = answers.retire(db, OWN, "shipping", edited, 1, approve=True).id
        with store() as db:
            assert "shipping" not in served(db)
            assert next(a for a in answers.answers(db, OWN) if a.template.id == "shipping").state is AnswerState.RETIRED
        with store.begin() as db:
            restored = answers.restore(db, OWN, RULES, "shipping", edited, retired, 1, approve=True).id
        with store() as db:
            assert served(db)["shipping"] == "Edited."
        with store.begin() as db:
            answers.restore(db, OWN, RULES, "shipping", answers.SEED, restored, 1, approve=True)
        with store() as db:
            assert served(db)["shipping"] == "Shipping is €4.95."
            assert [r.restored_from for r in answers.history(db, OWN, "shipping").revisions][:2] == [0, edited]

    @pytest.mark.parametrize(("change", "message"), [
        ({"intent": "cancel_everything"}, "does not know"),
        ({"text": "Mail {ceo_email}"}, "unknown placeholders"),
        ({"action": "action_delete_orders"}, "unknown"),
        ({"buttons": [{"title": "Go", "payload": "/nuke"}]}, "unknown intent"),
    ])
    def test_an_answer_the_model_cannot_serve_is_refused(self, store, change, message):
        with store.begin() as db, pytest.raises(DeskError) as refused:
            answers.edit(db, OWN, RULES, shipping(**{"text": "Shipping is free.", **change}), 0, 1, approve=True)
        assert refused.value.status == 422 and message in str(refused.value)
        with store() as db:
            assert answers.served_edits(db) == AnswerEdits()

    def test_a_new_answer_is_added_after_the_models_own_and_its_id_is_taken_once(self, store):
        express = Template(id="express", intent="shipping_cost", examples=["express delivery price"],
                           text="Express is €9.95.")
        with store.begin() as db:
            answers.create(db, OWN, RULES, express, 1, approve=True)
        with store.begin() as db, pytest.raises(DeskError) as taken:
            answers.create(db, OWN, RULES, express, 1, approve=True)
        assert taken.value.status == 409
        with store() as db:
            assert [a.template.id for a in answers.answers(db, OWN)] == ["greeting", "shipping", "express"]
            assert served(db)["express"] == "Express is €9.95."

    def test_an_import_changes_only_what_differs_and_can_retire_the_rest(self, store):
        book = TemplateBook(slots=OWN.slots, templates=[OWN.templates[0], shipping("Imported.")])
        with store.begin() as db:
            assert answers.import_book(db, OWN, RULES, book, retire_missing=False) == (["shipping"], [])
        with store.begin() as db:
            assert answers.import_book(db, OWN, RULES, book, retire_missing=False) == ([], [])
        only_greeting = TemplateBook(slots=OWN.slots, templates=[OWN.templates[0]])
        with store.begin() as db:
            assert answers.import_book(db, OWN, RULES, only_greeting, retire_missing=True) == ([], ["shipping"])
        with store() as db:
            assert set(served(db)) == {"greeting"}
            assert all(r.author is None for r in answers.history(db, OWN, "shipping").revisions)

    def test_two_approvals_over_the_same_revision_cannot_both_win(self, store):
        """The unique index: the second of two concurrent saves (both past the base check) is refused."""
        with store.begin() as db:
            one = answers.edit(db, OWN, RULES, shipping("One."), 0, 2, approve=False).id
            two = answers.edit(db, OWN, RULES, shipping("Two."), 0, 2, approve=False).id
        with store.begin() as db:
            answers.decide(db, OWN, RULES, one, True, 1)
        with store.begin() as db:
            row = db.get_one(answers.AnswerRevision, two)
            row.status = ProposalStatus.APPROVED  # as if its base check had run before the first commit
            with pytest.raises(DeskError) as lost:
                answers._flush_once_per_base(db, "shipping")
        assert lost.value.status == 409
        with store() as db:
            assert served(db)["shipping"] == "One."

    def test_an_answer_never_served_cannot_be_retired_and_a_rejected_one_keeps_its_history(self, store):
        new = Template(id="yyy", intent="greet", examples=["yo"], text="Yo!")
        with store.begin() as db:
            proposal = answers.create(db, OWN, RULES, new, 2, approve=False).id
        with store.begin() as db, pytest.raises(DeskError) as nothing:
            answers.retire(db, OWN, "yyy", 0, 1, approve=True)
        assert nothing.value.status == 409
        with store.begin() as db:
            retirement = answers.retire(db, OWN, "shipping", 0, 2, approve=False).id
            answers.decide(db, OWN, RULES, proposal, False, 1)
        with store() as db:
            assert answers.history(db, OWN, "yyy").answer.state is AnswerState.REJECTED
            assert [a.template.id for a in answers.answers(db, OWN)] == ["greeting", "shipping"]
        with store.begin() as db:
            answers.retire(db, OWN, "shipping", 0, 1, approve=True)
        with store.begin() as db, pytest.raises(DeskError) as retired:
            answers.decide(db, OWN, RULES, retirement, True, 1)  # retired already (and over another base)
        assert retired.value.status == 409
