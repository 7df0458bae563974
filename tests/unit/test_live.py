"""A live socket's task that fails for a reason other than the client leaving is an error of ours: it is
raised (and logged), not taken for a disconnect."""

from __future__ import annotations

from fastapi import WebSocketDisconnect
from starlette.websockets import WebSocketDisconnected

from bot.api.routes.live import client_left


def test_only_a_closed_or_broken_connection_counts_as_the_client_leaving():
    assert client_left(WebSocketDisconnect(1001))
    assert client_left(WebSocketDisconnected('Cannot call "send" once a close message has been sent.'))
    assert client_left(ConnectionResetError())
    assert not client_left(RuntimeError("a bug of ours"))
    assert not client_left(ValueError("another"))
    assert not client_left(None)
