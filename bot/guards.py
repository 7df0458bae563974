"""Limits on what one client can send: request size (413) and request rate (429 with Retry-After).

Plain ASGI middleware, so they act before a route runs. Rates count per client address with the
`limits` library: in memory, or in Redis so that all replicas share the count."""

from __future__ import annotations

import json
import math
import time

from limits import parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

LIMITED_PREFIXES = ("/api/", "/webhooks/")


async def _send_error(send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """413 for a body over `max_bytes`: refused unread when its declared length is over, else read up to
    the limit first (a streamed body has no length to check) and handed on only if it stays under."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = f"request body over {self.max_bytes} bytes"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit():
            if int(declared) > self.max_bytes:
                return await _send_error(send, 413, too_large)
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await _send_error(send, 413, too_large)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _limits_storage_uri(redis_url: str | None) -> str:
    if not redis_url:
        return "async+memory://"
    return "async+" + redis_url


class RateLimit:
    """429 with Retry-After once a client address exceeds any of the configured rates."""

    def __init__(self, app, rates: str, redis_url: str | None = None):
        self.app = app
        self.rates = [] if rates.strip().lower() in ("", "0", "off", "none") else parse_many(rates)
        options = {"implementation": "redispy"} if redis_url else {}
        self.limiter = SlidingWindowCounterRateLimiter(storage_from_string(_limits_storage_uri(redis_url),
                                                                           **options))

    async def __call__(self, scope, receive, send):
        if not self.rates or scope["type"] != "http" or not scope["path"].startswith(LIMITED_PREFIXES):
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown",))[0]
        for rate in self.rates:
            if not await self.limiter.hit(rate, "client", client):
                stats = await self.limiter.get_window_stats(rate, "client", client)
                retry = max(1, math.ceil(stats.reset_time - time.time()))
                return await _send_error(send, 429, f"too many requests: the limit is {rate}; retry in {retry} s",
                                         {"Retry-After": str(retry)})
        await self.app(scope, receive, send)
