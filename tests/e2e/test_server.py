"""The real thing: `python -m bot serve` as its own uvicorn process, talked to over HTTP."""

from __future__ import annotations

import httpx

from tests.helpers.servers import free_port, start_server, stop


def test_served_bot_answers_and_remembers_across_restarts(demo_registry, tmp_path):
    db_url, port = f"sqlite:///{tmp_path / 'bot.db'}", free_port()
    url = f"http://127.0.0.1:{port}/api/chat"
    server = start_server(demo_registry, db_url, port)
    try:
        first = httpx.post(url, json={"message": "where is my order?"}, timeout=30).json()
        assert first["intent"]["name"] == "order_status" and first["decision"] == "form"
        bad = httpx.post(url, json={"message": ""}, timeout=30)
        assert bad.status_code == 422 and "empty" in bad.json()["detail"]
    finally:
        stop(server)
    server = start_server(demo_registry, db_url, port)
    try:
        headers = {"Authorization": f"Bearer {first['session_token']}"}
        again = httpx.post(url, json={"message": "thank you!", "session_id": first["session_id"]},
                           headers=headers, timeout=30)
        assert again.status_code == 200 and again.json()["intent"]["name"] == "thanks"
    finally:
        stop(server)
    import sqlalchemy

    with sqlalchemy.create_engine(db_url).connect() as db:
        rows = db.execute(sqlalchemy.text("select role, text from messages order by id")).all()
    assert [r.role for r in rows] == ["user", "bot", "user", "bot"]
    assert rows[0].text == "where is my order?" and rows[2].text == "thank you!"
