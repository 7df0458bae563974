"""Visitors chatting in a burst against a real server (or nginx in front of several) while something happens
beside them, every reply recorded."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from tests.helpers.servers import client_limits

BURST_DEADLINE_S = 240
QUESTIONS = ["how much does shipping cost?", "how do I return an item?", "do you ship to Canada?",
             "when will I get my refund?", "which payment methods do you accept?", "can I get an invoice?",
             "how long does standard delivery take?", "can I exchange for a bigger size?"]


@dataclass
class Reply:
    started: float
    finished: float
    status: int | None
    version: str | None
    error: str = ""


def burst(url: str, users: int, replies: list[Reply], keep_going, during) -> None:
    """`users` visitors chatting concurrently, each in its own conversation, one request after another, while
    `keep_going(requests_this_visitor_made)` holds, nothing failed and the deadline is not past; every reply
    goes to `replies`. `during(replies)` runs beside them."""
    deadline = time.monotonic() + BURST_DEADLINE_S

    async def visitor(client: httpx.AsyncClient, n: int) -> None:
        session, headers, made = None, {}, 0
        while time.monotonic() < deadline and keep_going(made) and not failures(replies):
            body = {"message": QUESTIONS[(n + made) % len(QUESTIONS)]}
            if session:
                body["session_id"] = session
            started = time.monotonic()
            made += 1
            try:
                response = await client.post("/api/chat", json=body, headers=headers)
            except httpx.HTTPError as exc:
                replies.append(Reply(started, time.monotonic(), None, None, repr(exc)))
                return
            if response.status_code != 200:
                replies.append(Reply(started, time.monotonic(), response.status_code, None, response.text))
                return
            reply = response.json()
            replies.append(Reply(started, time.monotonic(), 200, reply["model_version"]))
            session = reply["session_id"]
            headers = headers or {"Authorization": f"Bearer {reply['session_token']}"}

    async def run():
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=client_limits(users + 4)) as client:
            await asyncio.gather(during(replies), *(visitor(client, n) for n in range(users)))

    asyncio.run(asyncio.wait_for(run(), BURST_DEADLINE_S + 60))


async def wait_for_replies(replies: list[Reply], count: int) -> None:
    deadline = time.monotonic() + BURST_DEADLINE_S
    while len(replies) < count and time.monotonic() < deadline and not failures(replies):
        await asyncio.sleep(0.05)


def failures(replies: list[Reply]) -> list[Reply]:
    return [r for r in replies if r.status != 200]
