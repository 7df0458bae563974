"""How a visitor's turn reads and writes its conversation: one locked read, then one UPDATE of what the turn
changed (or one INSERT of a new conversation) and one INSERT of its messages, as Core statements built once.
The turn knows every value it writes, so the ORM's unit of work would add only cost (a chat turn's CPU is
what this module exists to keep low: tests/bench/load.py)."""

from __future__ import annotations

from typing import cast

from sqlalchemy import JSON, CursorResult, Table, bindparam, insert, inspect, select, update
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from bot.infra.store import Conversation, ConversationStatus, Message


class ConversationChanged(Exception):
    """Someone else (an agent taking over) changed the conversation while this turn was worked on."""


# What a visitor's turn may change of its conversation, and what it writes of a message.
_TURN_COLUMNS = ("status", "slots", "active_form", "failures", "agent_id", "customer_id", "customer_email",
                 "language", "updated_at")
_MESSAGE_COLUMNS = ("conversation_id", "role", "text", "intent", "confidence", "ranking", "template", "decision",
                    "model_version", "buttons", "created_at")


# A turn's statements, built once: building one costs more than running it on SQLite.
_CONVERSATIONS, _MESSAGES = cast(Table, Conversation.__table__), cast(Table, Message.__table__)
_BY_ID, _BY_SENDER = (select(Conversation).where(column == bindparam("key")).with_for_update(of=Conversation)
                      .options(lazyload(Conversation.agent)) for column in (Conversation.id, Conversation.sender))
_INSERT_CONVERSATION = insert(_CONVERSATIONS)
# the SET clause is the columns the parameters name (_TURN_COLUMNS)
_UPDATE_CONVERSATION = update(_CONVERSATIONS).where(_CONVERSATIONS.c.id == bindparam("where_id"),
                                                    _CONVERSATIONS.c.status == bindparam("where_status"))
_INSERT_MESSAGES = (insert(_MESSAGES)  # no ranking or buttons: SQL NULL, not JSON null
                    .values(ranking=bindparam("ranking", type_=JSON(none_as_null=True)),
                            buttons=bindparam("buttons", type_=JSON(none_as_null=True)))
                    .returning(_MESSAGES.c.id, sort_by_parameter_order=True))


def _new_row(conversation: Conversation) -> dict:
    return {"id": conversation.id, "token_hash": conversation.token_hash, "sender": conversation.sender,
            "client_hash": conversation.client_hash, "reviewed": conversation.reviewed,
            "created_at": conversation.created_at}


def load_for_turn(db: Session, key: str, by_sender: bool = False) -> Conversation | None:
    """The conversation with this id (or sender id), its row locked until the turn's transaction ends (PostgreSQL;
    SQLite writes one transaction at a time) and read as it is after any wait for the lock. Read without its
    agent (a visitor's turn shows none: the bot or nobody has the conversation whenever a turn changes its
    status) and detached, because the turn writes it back with one statement (`save_turn`), not through
    the session."""
    conversation = db.scalar(_BY_SENDER if by_sender else _BY_ID, {"key": key})
    if conversation is not None:
        db.expunge(conversation)
        set_committed_value(conversation, "agent", None)
    return conversation


def save_turn(db: Session, conversation: Conversation, status_before: ConversationStatus | None,
              messages: list[Message]) -> None:
    """Write the turn: the conversation (inserted when new: `status_before` None; else updated only if it still
    has the status the turn started from, or someone took it over meanwhile and the turn is worked again), then
    its messages, which get their ids. On PostgreSQL the row lock taken by `load_for_turn` already holds agents
    off; on SQLite this first write takes the database's write lock."""
    connection = db.connection()
    if status_before is None:
        values = {column: getattr(conversation, column) for column in _TURN_COLUMNS}
        connection.execute(_INSERT_CONVERSATION, [{**_new_row(conversation), **values}])
    else:
        # Only what the turn changed, as the ORM's flush would: on SQLite the turn read the row before it
        # took the write lock, and a column another turn changed meanwhile must keep that turn's value.
        attributes = inspect(conversation).attrs
        values = {column: getattr(conversation, column) for column in _TURN_COLUMNS
                  if column == "updated_at" or attributes[column].history.has_changes()}
        saved = cast(CursorResult, connection.execute(
            _UPDATE_CONVERSATION, {"where_id": conversation.id, "where_status": status_before, **values}))
        if saved.rowcount != 1:
            raise ConversationChanged(conversation.id)
    rows = [{column: getattr(message, column) for column in _MESSAGE_COLUMNS} for message in messages]
    for message, message_id in zip(messages, connection.execute(_INSERT_MESSAGES, rows).scalars(), strict=True):
        message.id = message_id
