"""A read-only route's database session is closed when the route returns, before the response is sent: a
client that reads its response slowly (or never) must not hold one of the pool's few connections."""

from __future__ import annotations

from types import SimpleNamespace

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from bot.api.deps import SessionDep
from bot.infra.store import make_engine, make_sessionmaker


def test_the_session_is_back_in_the_pool_before_the_response_is_sent(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}", pool_size=1, max_overflow=0)
    app = FastAPI()
    app.state.services = SimpleNamespace(sessions=make_sessionmaker(engine))
    seen: list[int] = []

    @app.get("/read")
    def read(db: SessionDep) -> dict:
        db.execute(text("SELECT 1"))
        return {"ok": True}

    @app.middleware("http")
    async def checked_out_when_sending(request, call_next):
        response = await call_next(request)
        seen.append(engine.pool.checkedout())  # the route has returned; the body is not sent yet
        return response

    with TestClient(app) as client:
        assert client.get("/read").json() == {"ok": True}
    assert seen == [0]
    engine.dispose()
