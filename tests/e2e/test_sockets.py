"""Live WebSockets under a hostile client, against real servers (`python -m bot serve`, the real student):
caps on open sockets per client address, conversation and agent (close code 4429), the 4 KB frame limit
(1009), the frame rate and typing throttle, sockets closed (4401) when their token or conversation goes
away, and across two replicas on PostgreSQL + Redis when an agent's tokens are revoked on the bus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource

import httpx
import pytest
from sqlalchemy import create_engine, text
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from bot.desk.agents import token_digest
from bot.infra.events import RedisBus, publish_revocation
from tests.helpers.clients import Live, Visitor, login
from tests.helpers.servers import add_agents, served

PER_CLIENT, PER_CONVERSATION, PER_AGENT = 40, 3, 3
FLOOD = 1000
CAPS = {"DISTILBOT_MAX_SOCKETS_PER_CLIENT": str(PER_CLIENT),
        "DISTILBOT_MAX_SOCKETS_PER_CONVERSATION": str(PER_CONVERSATION),
        "DISTILBOT_MAX_SOCKETS_PER_AGENT": str(PER_AGENT),
        "DISTILBOT_NEW_CONVERSATION_CAP": "off"}  # this module starts many conversations from one address
WAIT_S = 10.0
FLOOD_ADDRESS = "127.0.0.2"  # loopback too: the flood's address, so its cap is not shared with other tests


def raise_open_files(wanted: int = 4096) -> None:
    """Room for 1,000 sockets in this process and in the servers it starts (they inherit the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 2 * FLOOD + 200, "raise the hard limit on open files"


@pytest.fixture(scope="module")
def server(demo_registry, tmp_path_factory):
    """One server with small caps, re-checking open sockets' credentials every half second."""
    raise_open_files()
    db_url = f"sqlite:///{tmp_path_factory.mktemp('sockets') / 'bot.db'}"
    add_agents(db_url, "dana")
    with served(demo_registry, db_url, {**CAPS, "DISTILBOT_SOCKET_RECHECK_S": "0.5"}) as (url, process):
        yield url, db_url
        assert process.poll() is None


def ws(url: str) -> str:
    return url.replace("http", "ws", 1)


def closed_with(socket, timeout: float = WAIT_S) -> tuple[int, str]:
    """The close code and reason the server ends the socket with (events before it are skipped); fails if
    it stays open for `timeout` seconds."""
    try:
        while True:
            socket.recv(timeout=timeout)
    except ConnectionClosed as closed:
        return closed.rcvd.code, closed.rcvd.reason


def refused(url: str, token: str) -> tuple[dict, int, str]:
    """Open a socket, authenticate, and expect the server to refuse it: its error event and close frame."""
    with connect(url) as socket:
        socket.send(json.dumps({"type": "auth", "token": token}))
        error = json.loads(socket.recv(timeout=WAIT_S))
        return (error, *closed_with(socket))


def answers_ping(live: Live) -> bool:
    live.socket.send(json.dumps({"type": "ping"}))
    return live.next("pong") == {"type": "pong"}


def test_a_conversation_holds_at_most_its_cap_of_sockets_and_a_closed_one_frees_its_place(server):
    url, _ = server
    visitor = Visitor(url)
    visitor.say("hello")
    path = f"{ws(url)}/api/conversations/{visitor.session}/live"
    tabs = [Live(path, visitor.token) for _ in range(PER_CONVERSATION)]
    try:
        error, code, reason = refused(path, visitor.token)
        assert code == 4429
        assert reason == f"too many live sockets for this conversation (the limit is {PER_CONVERSATION})"
        assert error == {"type": "error", "detail": reason}
        assert all(answers_ping(tab) for tab in tabs)  # the open ones are untouched
        tabs.pop().close()
        tabs.append(Live(path, visitor.token))  # its place is free again (Live waits for "ready")
    finally:
        for tab in tabs:
            tab.close()


def test_an_agent_holds_at_most_its_cap_of_sockets(server):
    url, _ = server
    dana = login(url, "dana")
    consoles = [Live(f"{ws(url)}/api/agent/live", dana.token) for _ in range(PER_AGENT)]
    try:
        _error, code, reason = refused(f"{ws(url)}/api/agent/live", dana.token)
        assert (code, reason) == (4429, f"too many live sockets for this agent (the limit is {PER_AGENT})")
        assert all(answers_ping(console) for console in consoles)
    finally:
        for console in consoles:
            console.close()
        dana.close()


def test_1000_sockets_from_one_address_get_the_cap_and_4429_while_the_server_keeps_answering(server):
    """The first PER_CLIENT sockets from one address are served; the rest of 1,000, opened all at once, are
    closed with 4429 before they authenticate; meanwhile HTTP and other addresses are served as usual."""
    from websockets.asyncio.client import connect as connect_async

    url, _ = server
    visitors = [Visitor(url) for _ in range(PER_CLIENT)]
    for visitor in visitors:
        visitor.say("hello")

    async def open_socket(visitor: Visitor | None):
        socket = await connect_async(f"{ws(url)}/api/conversations/{visitor.session if visitor else '0' * 32}/live",
                                     local_addr=(FLOOD_ADDRESS, 0), open_timeout=60)
        if visitor is not None:
            await socket.send(json.dumps({"type": "auth", "token": visitor.token}))
            assert json.loads(await asyncio.wait_for(socket.recv(), WAIT_S)) == {"type": "ready"}
        return socket

    async def refusal(socket) -> tuple[int, str]:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.wait_for(socket.recv(), WAIT_S)
        return socket.close_code, socket.close_reason

    async def scenario():
        held = [await open_socket(visitor) for visitor in visitors]  # the first PER_CLIENT, each served
        try:
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                flood = [open_socket(None) for _ in range(FLOOD - PER_CLIENT)]
                results = await asyncio.gather(*flood, client.get("/health"),
                                               client.post("/api/chat", json={"message": "how much is shipping?"}))
                sockets, health, chat = results[:-2], results[-2], results[-1]
                assert health.status_code == 200 and chat.status_code == 200, (health.text, chat.text)
                closes = await asyncio.gather(*(refusal(socket) for socket in sockets))
                reason = f"too many live sockets from your address (the limit is {PER_CLIENT})"
                assert closes == [(4429, reason)] * (FLOOD - PER_CLIENT)

                for socket in held:  # the first ones are still served
                    await socket.send(json.dumps({"type": "ping"}))
                    assert json.loads(await asyncio.wait_for(socket.recv(), WAIT_S)) == {"type": "pong"}
                metrics = (await client.get("/metrics")).text
                assert 'distilbot_live_closed_total{reason="per_client"}' in metrics
        finally:
            await asyncio.gather(*(socket.close() for socket in held))

    asyncio.run(scenario())
    # another address was never limited, and the flood's own address is served again once its sockets closed
    other = Visitor(url)
    other.say("hello")
    Live(f"{ws(url)}/api/conversations/{other.session}/live", other.token).close()


def test_a_frame_over_4_kb_closes_the_socket_with_1009(server):
    url, _ = server
    visitor = Visitor(url)
    visitor.say("hello")
    live = Live(f"{ws(url)}/api/conversations/{visitor.session}/live", visitor.token)
    try:
        live.socket.send(json.dumps({"type": "typing", "padding": "x" * 4000}))  # just under: fine
        assert answers_ping(live)
        live.socket.send(json.dumps({"type": "typing", "padding": "x" * 4096}))
        code, _reason = closed_with(live.socket)
        assert code == 1009
    finally:
        live.close()


def test_typing_is_passed_on_at_most_once_a_second_and_a_flood_of_frames_closes_the_socket(server):
    url, _ = server
    dana = login(url, "dana")
    inbox = Live(f"{ws(url)}/api/agent/live", dana.token)
    visitor = Visitor(url)
    visitor.say("hello")
    live = Live(f"{ws(url)}/api/conversations/{visitor.session}/live", visitor.token)
    try:
        for _ in range(3):
            live.socket.send(json.dumps({"type": "typing"}))
        visitor.say("how much does shipping cost?")  # its message event comes after any typing event
        typing = 0
        while (event := json.loads(inbox.socket.recv(timeout=WAIT_S)))["type"] != "message" or \
                event["message"]["text"] != "how much does shipping cost?":
            typing += event["type"] == "typing" and event["conversation_id"] == visitor.session
        assert typing == 1

        for _ in range(20):  # over 5 frames a second
            with contextlib.suppress(ConnectionClosed):
                live.socket.send(json.dumps({"type": "ping"}))
        assert closed_with(live.socket) == (4429, "too many messages on this socket; slow down")
        assert answers_ping(inbox)  # other sockets are not affected
    finally:
        live.close()
        inbox.close()
        dana.close()


def test_an_agent_socket_is_closed_within_seconds_once_its_token_is_deleted_or_expires(server):
    url, db_url = server
    engine = create_engine(db_url)
    try:
        for change in ("DELETE FROM agent_tokens WHERE token_hash = :hash",
                       "UPDATE agent_tokens SET expires_at = '2000-01-01 00:00:00' WHERE token_hash = :hash"):
            dana = login(url, "dana")
            inbox = Live(f"{ws(url)}/api/agent/live", dana.token)
            try:
                with engine.begin() as db:
                    assert db.execute(text(change), {"hash": token_digest(dana.token)}).rowcount == 1
                assert closed_with(inbox.socket) == (4401, "this token or conversation is no longer valid")
            finally:
                inbox.close()
                dana.close()
    finally:
        engine.dispose()


def test_a_visitor_socket_is_closed_within_seconds_once_its_conversation_is_gone(server):
    url, db_url = server
    visitor, other = Visitor(url), Visitor(url)
    visitor.say("hello")
    other.say("hello")
    live = Live(f"{ws(url)}/api/conversations/{visitor.session}/live", visitor.token)
    staying = Live(f"{ws(url)}/api/conversations/{other.session}/live", other.token)
    engine = create_engine(db_url)
    try:
        with engine.begin() as db:
            db.execute(text("DELETE FROM messages WHERE conversation_id = :id"), {"id": visitor.session})
            db.execute(text("DELETE FROM conversations WHERE id = :id"), {"id": visitor.session})
        assert closed_with(live.socket) == (4401, "this token or conversation is no longer valid")
        assert answers_ping(staying)
    finally:
        engine.dispose()
        live.close()
        staying.close()


@pytest.fixture(scope="module")
def replicas(demo_registry, pg_url, redis_url):
    """Two replicas on one PostgreSQL and one Redis, checking sockets' tokens only hourly: a socket closed
    within seconds was closed by the revocation event."""
    add_agents(pg_url, "erin", "frank")
    env = {**CAPS, "DISTILBOT_REDIS_URL": redis_url, "DISTILBOT_SOCKET_RECHECK_S": "3600"}
    with served(demo_registry, pg_url, env) as (url_a, _), served(demo_registry, pg_url, env) as (url_b, _):
        yield url_a, url_b, redis_url


def test_revoking_an_agents_tokens_on_one_replica_closes_their_sockets_on_another(replicas):
    url_a, url_b, redis_url = replicas
    erin_first, erin_second, frank = login(url_a, "erin"), login(url_a, "erin"), login(url_a, "frank")
    erin_id = erin_first.get("/me").json()["id"]
    sockets = {name: Live(f"{ws(url_b)}/api/agent/live", client.token)  # on replica B
               for name, client in (("first", erin_first), ("second", erin_second), ("frank", frank))}

    async def revoke(token_hash: str | None):
        bus = RedisBus(redis_url)  # as replica A's logout does, through the shared Redis
        try:
            await publish_revocation(bus, erin_id, token_hash)
        finally:
            await bus.close()

    try:
        asyncio.run(revoke(token_digest(erin_first.token)))  # one token (a logout)
        assert closed_with(sockets["first"].socket) == (4401, "the agent's token was revoked; log in again")
        assert answers_ping(sockets["second"]) and answers_ping(sockets["frank"])

        asyncio.run(revoke(None))  # every token of the agent (password change, disable)
        assert closed_with(sockets["second"].socket) == (4401, "the agent's token was revoked; log in again")
        assert answers_ping(sockets["frank"])
    finally:
        for live in sockets.values():
            live.close()
        for client in (erin_first, erin_second, frank):
            client.close()
