"""Two agents taking the same conversation at the same moment, on a real server over PostgreSQL: the
database decides (a conditional update), so exactly one gets it and the other a 409."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.helpers.constants import AGENT_PASSWORD
from tests.helpers.servers import add_agents, served, server_log

ROUNDS = 12


def login(url: str, username: str) -> dict[str, str]:
    response = httpx.post(f"{url}/api/agent/login", json={"username": username, "password": AGENT_PASSWORD},
                          timeout=30)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_two_agents_taking_at_once_get_exactly_one_200_and_one_409(demo_registry, pg_url):
    add_agents(pg_url, "alice", "bob")
    with served(demo_registry, pg_url) as (url, _process):
        agents = [login(url, "alice"), login(url, "bob")]
        conversations = [httpx.post(f"{url}/api/chat", json={"message": "I want to talk to a person"},
                                    timeout=30).json()["session_id"] for _ in range(ROUNDS)]

        def take(job: tuple[str, dict]) -> int:
            conversation, headers = job
            return httpx.post(f"{url}/api/agent/conversations/{conversation}/take", headers=headers,
                              timeout=30).status_code

        with ThreadPoolExecutor(2) as pool:
            outcomes = [sorted(pool.map(take, [(c, agents[0]), (c, agents[1])])) for c in conversations]
        assert outcomes == [[200, 409]] * ROUNDS, server_log(_process)[-3000:]
        owners = {httpx.get(f"{url}/api/agent/conversations/{c}", headers=agents[0], timeout=30).json()["agent"]
                  for c in conversations}
        assert owners <= {"Alice", "Bob"} and None not in owners
