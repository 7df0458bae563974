"""Agents' logins against two real replicas that share a store and Redis: failed logins throttled per username
and per client address (counted across replicas), argon2 work that cannot starve /health, and logout,
password change and `bot agent disable` revoking tokens and publishing the revocation on the event bus.

Clients connect from their own loopback addresses (127.x.y.z), so each test has fresh addresses; usernames
are fresh per run too, since Redis keeps the counts for 15 minutes. (The throttle alone, and the CLI without
Redis: tests/unit/test_logins.py.)"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import uuid

import httpx
import pytest
import redis
from typer.testing import CliRunner
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from bot.cli import app
from tests.helpers.constants import AGENT_PASSWORD
from tests.helpers.servers import add_agents, served

TIMEOUT = 30


def address() -> str:
    """A loopback address of its own (Linux routes all of 127/8 to this machine)."""
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


def client_from(source: str, **kwargs) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=TIMEOUT, **kwargs)


def login(url: str, username: str, password: str = AGENT_PASSWORD, source: str = "127.0.0.1") -> httpx.Response:
    with client_from(source) as client:
        return client.post(f"{url}/api/agent/login", json={"username": username, "password": password})


def fresh(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def replicas(demo_registry, tmp_path_factory, redis_url):
    """Two API processes on one store and one Redis, agents created with the CLI."""
    db_url = f"sqlite:///{tmp_path_factory.mktemp('logins') / 'bot.db'}"
    names = {role: fresh(role) for role in ("ana", "ben", "cy", "dee", "eve")}
    add_agents(db_url, *names.values())
    env = {"DISTILBOT_REDIS_URL": redis_url}
    with served(demo_registry, db_url, env) as (first, _), served(demo_registry, db_url, env) as (second, _):
        yield {"urls": (first, second), "db_url": db_url, "names": names, "redis_url": redis_url}


def test_failed_logins_are_throttled_per_username_and_per_address_across_replicas(replicas):
    first, second = replicas["urls"]
    ana, ben = replicas["names"]["ana"], replicas["names"]["ben"]
    attacker = address()
    for attempt in range(5):  # alternating replicas: the counts are shared through Redis
        wrong = login((first, second)[attempt % 2], ana, "not the password", attacker)
        assert wrong.status_code == 401, wrong.text
    throttled = login(first, ana, "not the password", attacker)
    assert throttled.status_code == 429 and "too many failed attempts" in throttled.json()["detail"]
    assert 0 < int(throttled.headers["Retry-After"]) <= 15 * 60
    # per username: even the right password from elsewhere waits (a distributed guess gets no further)
    assert login(second, ana, AGENT_PASSWORD, address()).status_code == 429
    # per address: the same client guessing another account is refused too
    assert login(second, ben, "also wrong", attacker).status_code == 429
    assert login(second, ben, AGENT_PASSWORD, attacker).status_code == 429
    # neither counts against an innocent username from an innocent address
    assert login(first, ben, AGENT_PASSWORD, address()).status_code == 200


def test_successful_logins_do_not_count(replicas):
    first, second = replicas["urls"]
    cy, source = replicas["names"]["cy"], address()
    for attempt in range(6):
        assert login((first, second)[attempt % 2], cy, AGENT_PASSWORD, source).status_code == 200


def test_health_answers_while_a_flood_of_logins_and_chat_turns_is_in_flight(replicas):
    """20 wrong logins (each from its own address and for its own username, so none is throttled: every one
    costs an argon2 hash) and some chat turns at once; /health answers while most logins still wait for
    theirs. Before, logins and /health shared the thread pool, and /health queued behind them."""
    url = replicas["urls"][0]
    count = 20

    async def flood():
        done: list[str] = []

        async def wrong_login(n: int):
            transport = httpx.AsyncHTTPTransport(local_address=address())
            async with httpx.AsyncClient(transport=transport, timeout=120) as client:
                response = await client.post(f"{url}/api/agent/login",
                                             json={"username": f"nobody-{n}-{uuid.uuid4().hex[:6]}",
                                                   "password": "wrong password"})
            assert response.status_code == 401, response.text
            done.append("login")

        async def chat(client: httpx.AsyncClient):
            response = await client.post(f"{url}/api/chat", json={"message": "how long does shipping take?"})
            assert response.status_code == 200, response.text

        async with httpx.AsyncClient(timeout=120) as client:
            logins = [asyncio.create_task(wrong_login(n)) for n in range(count)]
            turns = [asyncio.create_task(chat(client)) for _ in range(4)]
            while not done:  # the server is working through the logins now
                await asyncio.sleep(0.01)
            health = await client.get(f"{url}/health")
            outstanding = count - len(done)
            await asyncio.gather(*logins, *turns)
        return health, outstanding

    health, outstanding = asyncio.run(flood())
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert outstanding >= count // 2, f"/health answered only after {count - outstanding} of {count} logins"


def _revocations(redis_url: str):
    """A subscription to the event bus's agents channel (as every replica listens to it)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("distilbot:agents")
    pubsub.get_message(timeout=5)  # the subscription's confirmation
    return client, pubsub


def _next_revocation(pubsub, agent_id: int) -> dict:
    """The next tokens_revoked event for `agent_id` (other tests' agents may publish on the shared Redis)."""
    for _ in range(100):
        message = pubsub.get_message(timeout=10)
        assert message is not None, "no revocation published"
        event = json.loads(message["data"])
        if event.get("agent_id") == agent_id:
            return event
    raise AssertionError("no revocation for this agent")


def agent_socket(url: str, token: str):
    """The console's live socket, authenticated and listening."""
    socket = connect(url.replace("http", "ws", 1) + "/api/agent/live")
    socket.send(json.dumps({"type": "auth", "token": token}))
    while json.loads(socket.recv(timeout=10))["type"] != "ready":
        pass
    return socket


def close_code(socket) -> int:
    """How the server closed the socket (it must, within seconds: recv gives up after 10 s of silence)."""
    try:
        while True:
            socket.recv(timeout=10)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def me(url: str, token: str) -> httpx.Response:
    return httpx.get(f"{url}/api/agent/me", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)


def test_password_change_and_logout_revoke_tokens_and_publish_it(replicas):
    first, second = replicas["urls"]
    dee = replicas["names"]["dee"]
    kept, other = (login(url, dee).json() for url in (first, second))
    agent_id = kept["agent"]["id"]
    kept, other = kept["token"], other["token"]
    client, pubsub = _revocations(replicas["redis_url"])
    other_socket, kept_socket = agent_socket(second, other), agent_socket(second, kept)
    try:
        change = lambda current, new: httpx.post(  # noqa: E731
            f"{first}/api/agent/password", headers={"Authorization": f"Bearer {kept}"}, timeout=TIMEOUT,
            json={"current_password": current, "new_password": new})
        assert change("not the password", "a new passphrase").status_code == 403
        short = change(AGENT_PASSWORD, "short")
        assert short.status_code == 422 and "new_password" in short.json()["detail"]
        assert change(AGENT_PASSWORD, "a new passphrase").status_code == 204
        assert _next_revocation(pubsub, agent_id) == {"type": "tokens_revoked", "agent_id": agent_id,
                                                      "token_hash": digest(other)}
        assert close_code(other_socket) == 4401  # its socket on the other replica closed
        assert me(second, other).status_code == 401  # every other login ended, on every replica
        assert me(second, kept).status_code == 200  # the one that changed it goes on
        assert login(first, dee, AGENT_PASSWORD, address()).status_code == 401
        assert login(first, dee, "a new passphrase", address()).status_code == 200

        assert httpx.post(f"{second}/api/agent/logout", headers={"Authorization": f"Bearer {kept}"}).status_code == 204
        assert _next_revocation(pubsub, agent_id) == {"type": "tokens_revoked", "agent_id": agent_id,
                                                      "token_hash": digest(kept)}
        assert close_code(kept_socket) == 4401
        assert me(first, kept).status_code == 401
    finally:
        pubsub.close()
        client.close()
        other_socket.close()
        kept_socket.close()


def test_a_disabled_agent_loses_its_tokens_and_cannot_log_in(replicas, monkeypatch):
    first, second = replicas["urls"]
    eve, db_url = replicas["names"]["eve"], replicas["db_url"]
    answer = login(first, eve).json()
    token, agent_id = answer["token"], answer["agent"]["id"]
    client, pubsub = _revocations(replicas["redis_url"])
    socket = agent_socket(second, token)
    try:
        monkeypatch.setenv("DISTILBOT_REDIS_URL", replicas["redis_url"])
        done = CliRunner().invoke(app, ["agent", "disable", eve, "--db", db_url])
        assert done.exit_code == 0 and "told through Redis" in done.output, done.output
        assert _next_revocation(pubsub, agent_id) == {"type": "tokens_revoked", "agent_id": agent_id,
                                                      "token_hash": None}
        assert close_code(socket) == 4401  # closed on the replica the CLI never spoke to
    finally:
        pubsub.close()
        client.close()
        socket.close()
    assert me(second, token).status_code == 401
    refused, wrong = login(second, eve, AGENT_PASSWORD, address()), login(second, eve, "nope-nope", address())
    assert refused.status_code == wrong.status_code == 401 and refused.json() == wrong.json()  # says nothing more
    assert CliRunner().invoke(app, ["agent", "enable", eve, "--db", db_url]).exit_code == 0
    assert login(first, eve, AGENT_PASSWORD, address()).status_code == 200
