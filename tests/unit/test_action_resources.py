"""The rasa-sdk actions reach the store of the app whose turn runs them: no module global that the last app
to start overwrites (two apps in one process keep their own databases)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from bot.conversation import actions
from bot.infra.store import Order, make_engine, make_sessionmaker


def test_two_apps_turns_each_reach_their_own_store(tmp_path):
    stores = {name: make_sessionmaker(make_engine(f"sqlite:///{tmp_path / name}.db")) for name in ("a", "b")}
    with stores["a"].begin() as db:
        db.add(Order(id="NW000001", email="a@example.com", status="shipped", items=[], total=1.0,
                     placed_at=datetime.now(UTC)))
    seen: dict[str, bool] = {}
    barrier = threading.Barrier(2)

    def turn(name: str) -> None:
        with stores[name].begin() as db, actions.in_turn(None, db):
            barrier.wait()  # both turns are open at once
            with actions.resources().store() as store:
                seen[name] = store.get(Order, "NW000001") is not None

    threads = [threading.Thread(target=turn, args=(name,)) for name in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"a": True, "b": False}
    assert actions.current_turn.get() is None  # nothing left behind once the turns ended
