"""The store (the unit tier's SQLite, the e2e tier's PostgreSQL: tests/unit/test_store.py, tests/e2e/test_store.py):
migrations, upgrades of an older database, the tables' use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text

from bot.infra.store import (
    Agent,
    Base,
    Conversation,
    Correction,
    Message,
    NewIntent,
    Order,
    ProposalStatus,
    Role,
    make_engine,
    make_sessionmaker,
    upgrade,
)


def migrations_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from bot.infra.store import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


class StoreCases:
    """The store that `db_url` names, from its migrations up."""

    def test_migrations_build_exactly_the_models_schema(self, db_url):
        engine = make_engine(db_url)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            assert connection.execute(text("select version_num from alembic_version")).scalar() == migrations_head()
        make_engine(db_url).dispose()  # a second start finds nothing to do
        engine.dispose()

    def test_a_first_release_database_is_upgraded_and_keeps_its_conversations(self, db_url):
        """The first release made its tables with create_all and had no alembic_version table."""
        from alembic import command
        from alembic.config import Config

        from bot.infra.store import MIGRATIONS

        engine = create_engine(db_url)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
            connection.execute(text("DROP TABLE alembic_version"))
            connection.execute(text("INSERT INTO conversations (id, token_hash, status, slots, failures, created_at, "
                                    "updated_at) VALUES ('c1', 'h', 'bot', '{}', 0, :now, :now)"),
                               {"now": datetime.now(UTC)})
        upgrade(engine)
        assert "corrections" in inspect(engine).get_table_names()
        with make_sessionmaker(engine)() as db:
            kept = db.get(Conversation, "c1")
            assert kept.status == "bot" and kept.reviewed is False and kept.active_form is None
        engine.dispose()

    def test_conversations_corrections_and_orders_round_trip(self, db_url):
        engine = make_engine(db_url)
        sessions = make_sessionmaker(engine)
        now = datetime.now(UTC)
        with sessions.begin() as db:
            conversation = Conversation(token_hash="x" * 64, slots={"order_id": "NW100001"}, active_form="track_order")
            db.add(conversation)
            db.flush()
            message = Message(conversation_id=conversation.id, role="user", text="<b>'; DROP TABLE orders; --</b>",
                              intent="order_status", confidence=0.41)
            db.add(message)
            db.flush()
            db.add(Correction(message_id=message.id, text=message.text, intent="cancel_order",
                              predicted_intent="order_status"))
            db.add(Order(id="NW100001", email="ana@example.com", status="shipped", items=[{"sku": "LAMP-2", "qty": 1}],
                         total=49.9, placed_at=now - timedelta(days=2), expected_at=now + timedelta(days=1)))
        with sessions() as db:
            stored = db.scalars(select(Message)).one()
            assert stored.text == "<b>'; DROP TABLE orders; --</b>"  # kept verbatim, as text
            assert db.scalars(select(Correction)).one().intent == "cancel_order"
            order = db.get(Order, "NW100001")
            assert order.items == [{"sku": "LAMP-2", "qty": 1}] and order.expected_at > order.placed_at
            assert db.scalars(select(Conversation)).one().slots == {"order_id": "NW100001"}
        engine.dispose()

    def test_upgrading_keeps_accounts_as_agents_and_makes_earlier_intents_proposals(self, db_url):
        from alembic import command
        from alembic.config import Config

        from bot.infra.store import MIGRATIONS

        engine = create_engine(db_url)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0005")
            now = datetime.now(UTC)
            connection.execute(text("INSERT INTO agents (username, display_name, password_hash, created_at) "
                                    "VALUES ('old', 'Old', 'x', :now)"), {"now": now})
            connection.execute(text("INSERT INTO new_intents (name, answer, buttons, examples, created_at) "
                                    "VALUES ('older', 'hi', '[]', '[\"a\"]', :now)"), {"now": now})
        upgrade(engine)
        with make_sessionmaker(engine)() as db:
            old = db.query(Agent).one()
            assert old.role is Role.AGENT and old.disabled_at is None
            assert db.get(NewIntent, "older").status is ProposalStatus.PROPOSED
        engine.dispose()
