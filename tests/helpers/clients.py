"""A visitor, an agent and a live socket talking to a real server over HTTP and WebSockets."""

from __future__ import annotations

import json

import httpx
from websockets.sync.client import connect

from tests.helpers.constants import AGENT_PASSWORD


class Live:
    """A WebSocket that authenticates, waits until it listens, and finds the next event of a kind."""

    def __init__(self, url: str, token: str):
        self.socket = connect(url.replace("http", "ws", 1))
        self.socket.send(json.dumps({"type": "auth", "token": token}))
        assert self.next("ready")

    def next(self, kind: str, text: str | None = None, timeout: float = 10.0) -> dict:
        """The next event of `kind` (for messages: with this text), skipping others."""
        while True:
            event = json.loads(self.socket.recv(timeout=timeout))
            if event["type"] == kind and (text is None or event["message"]["text"] == text):
                return event

    def close(self):
        self.socket.close()


class Visitor:
    def __init__(self, url: str):
        self.url, self.session, self.token = url, None, None

    def say(self, text: str) -> dict:
        body = {"message": text} if self.session is None else {"message": text, "session_id": self.session}
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = httpx.post(f"{self.url}/api/chat", json=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        reply = response.json()
        self.session, self.token = reply["session_id"], self.token or reply["session_token"]
        return reply

    def put(self, path: str, body: dict) -> httpx.Response:
        return httpx.put(f"{self.url}/api/conversations/{self.session}{path}", json=body,
                         headers={"Authorization": f"Bearer {self.token}"}, timeout=30)

    def history(self) -> dict:
        response = httpx.get(f"{self.url}/api/conversations/{self.session}",
                             headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()


def login(url: str, username: str) -> httpx.Client:
    response = httpx.post(f"{url}/api/agent/login", json={"username": username, "password": AGENT_PASSWORD})
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    client = httpx.Client(base_url=f"{url}/api/agent", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client.token = token
    return client
