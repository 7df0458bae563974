"""The rasa-sdk actions behind the SDK's own action server, called with a real Rasa action-server request; and
the in-process form cases (tests/helpers/cases/actions.py) on PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from bot.conversation import actions
from bot.conversation.orders import seed_orders
from bot.infra.store import make_engine, make_sessionmaker
from bot.model.artifact import resolve
from bot.model.templates import TemplateBook
from tests.helpers.cases import OnPostgreSQL
from tests.helpers.cases.actions import ActionsCases
from tests.helpers.constants import DATA, ROOT


class TestActionsOnPostgreSQL(OnPostgreSQL, ActionsCases):
    """The form cases on a fresh PostgreSQL database each."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rasa_request(action: str, slots: dict, candidates: dict, text: str, intent: str) -> dict:
    """What Rasa Open Source posts to an action server's /webhook."""
    events = [{"event": "action", "name": "action_listen"},
              {"event": "user", "text": text, "parse_data": {"intent": {"name": intent, "confidence": 0.97}}}]
    events += [{"event": "slot", "name": k, "value": v} for k, v in candidates.items()]
    from bot.model.domain import DOMAIN

    return {"next_action": action, "sender_id": "rasa-user", "version": "3.6.20", "domain": DOMAIN,
            "tracker": {"sender_id": "rasa-user", "slots": {**slots, **candidates},
                        "latest_message": {"text": text, "intent": {"name": intent, "confidence": 0.97},
                                           "intent_ranking": [], "entities": []},
                        "latest_event_time": time.time(), "followup_action": None, "paused": False,
                        "events": events, "latest_input_channel": "rest",
                        "active_loop": {"name": "track_order_form"}, "latest_action_name": "action_listen"}}


@pytest.mark.parametrize("launcher", [["-m", "rasa_sdk", "--actions", "bot.conversation.actions"],
                                      ["-m", "bot", "actions"]], ids=["rasa_sdk", "our-cli"])
def test_the_actions_are_a_standard_rasa_action_server(tmp_path, demo_registry, launcher):
    db_url = f"sqlite:///{tmp_path / 'orders.db'}"
    seed_orders(make_sessionmaker(make_engine(db_url)), DATA / "orders.json")
    port = _free_port()
    env = {**os.environ, "DISTILBOT_REGISTRY": str(demo_registry), "DISTILBOT_DB_URL": db_url}
    server = subprocess.Popen([sys.executable, *launcher, "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert sorted(a["name"] for a in httpx.get(f"{url}/actions").json()) == sorted(
            ["action_answer", "action_cancel_order", "action_handoff", "action_track_order",
             "validate_cancel_order_form", "validate_track_order_form"])
        bad = httpx.post(f"{url}/webhook", json=_rasa_request("validate_track_order_form", {}, {"order_id": "12"},
                                                             "12", "order_status"), timeout=30).json()
        assert {"event": "slot", "name": "order_id", "value": None} in [
            {k: e.get(k) for k in ("event", "name", "value")} for e in bad["events"]]
        assert "doesn't look like an order number" in bad["responses"][0]["text"]
        stranger = httpx.post(f"{url}/webhook", json=_rasa_request("action_track_order", {"order_id": "NW340018"},
                                                                   {}, "NW340018", "order_status"), timeout=30).json()
        assert stranger["responses"][0]["text"] == actions.NOT_FOUND_TEXT
        claimed = httpx.post(f"{url}/webhook", json=_rasa_request(  # a caller's own slots vouch for nobody
            "action_track_order", {"order_id": "NW482913", "customer_id": "cust-1001"}, {}, "NW482913",
            "order_status"), timeout=30).json()
        assert claimed["responses"][0]["text"] == actions.NOT_FOUND_TEXT
        tracked = httpx.post(f"{url}/webhook", json=_rasa_request(
            "action_track_order", {"order_id": "NW340018", "email": "dora.novak@example.com"}, {}, "NW340018",
            "order_status"), timeout=30).json()
        assert tracked["responses"][0]["text"].startswith("Order NW340018 was delivered")
        answer = httpx.post(f"{url}/webhook", json=_rasa_request("action_answer", {"order_id": None}, {},
                                                                "do you ship abroad", "international_shipping"),
                            timeout=30).json()
        book = TemplateBook.model_validate_json((resolve(demo_registry).path / "templates.json").read_text())
        first = book.for_intent("international_shipping")[0]
        assert answer["responses"][0]["text"] == first.render(book.slots)
    finally:
        server.terminate()
        server.wait(timeout=30)
