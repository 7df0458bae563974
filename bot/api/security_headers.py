"""Security headers on every HTTP response: a Content-Security-Policy for each kind of page, `nosniff`, a
referrer kept on this site, and no framing by other sites.

Why: the console shows visitors' text to agents and the shop page runs the widget. Should some text ever be
rendered as markup, the policy stops it from running scripts, loading anything, or sending data anywhere but
this server. The pages load nothing from elsewhere, so `'self'` is enough, plus the WebSocket form of the
page's own origin for the live sockets (Safari does not count ws:/wss: as `'self'`; GitLab and Coder add
them the same way). `/docs` loads Swagger UI from the CDN FastAPI uses: its policy allows exactly that host
and the page's inline start-up script by its hash, nothing else (and `/redoc` what ReDoc needs). JSON,
scripts and other files get the strictest policy (a browser that opens one directly runs nothing). Plain
ASGI middleware, so it sees every response: errors, 429s and static files too."""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Every response: nothing loads, no <base>, no form posts, never inside another site's frame.
STRICT = {"default-src": "'none'", "base-uri": "'none'", "form-action": "'none'", "frame-ancestors": "'none'"}
# The demo shop with the widget: scripts only from here; the widget styles its shadow root with a <style>
# element, which needs 'unsafe-inline' for styles (what Intercom and Zendesk ask of host pages too).
SHOP = STRICT | {"script-src": "'self'", "style-src": "'self' 'unsafe-inline'", "img-src": "'self' data:",
                 "connect-src": "'self' {sockets}"}
# The agents' console: its own scripts and style sheets only, no inline code at all.
CONSOLE = STRICT | {"script-src": "'self'", "style-src": "'self'", "img-src": "'self' data:",
                    "connect-src": "'self' {sockets}"}
# Swagger UI from FastAPI's CDN, with the page's inline script allowed by hash (filled in per response).
DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS = STRICT | {"script-src": f"{DOCS_CDN} {{hashes}}", "style-src": DOCS_CDN,
                 "img-src": "'self' data: https://fastapi.tiangolo.com", "connect-src": "'self'"}
# ReDoc from the same CDN: its styles are injected at run time ('unsafe-inline' styles), its search runs in a
# worker started from a blob: URL, its fonts come from Google Fonts (as FastAPI's page links them) and its
# logo from its own CDN.
REDOC = STRICT | {"script-src": DOCS_CDN, "style-src": "'unsafe-inline' https://fonts.googleapis.com",
                  "font-src": "https://fonts.gstatic.com", "worker-src": "blob:",
                  "img-src": "'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly", "connect-src": "'self'"}

OTHER_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}

HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def render(directives: dict[str, str], **values: str) -> str:
    """The header's value, with {sockets} or {hashes} filled in."""
    return "; ".join(f"{name} {value.format(**values)}".strip() for name, value in directives.items())


def policy_for(path: str) -> dict[str, str]:
    """Which policy a path's response gets."""
    if path == "/":
        return SHOP
    if path == "/console" or path.startswith("/console/"):
        return CONSOLE
    if path == "/docs" or path.startswith("/docs/"):
        return DOCS
    if path == "/redoc":
        return REDOC
    return STRICT


def sockets(host: str | None) -> str:
    """ws:// and wss:// of the page's own host (its Host header, if it is a plain host[:port])."""
    return f"ws://{host} wss://{host}" if host and HOST.match(host) else ""


def script_hashes(body: bytes) -> str:
    """CSP hash sources of the inline <script> elements of an HTML page."""
    digests = (base64.b64encode(hashlib.sha256(script).digest()).decode() for script in INLINE_SCRIPT.findall(body))
    return " ".join(f"'sha256-{digest}'" for digest in digests)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        directives = policy_for(scope["path"])
        if directives is not DOCS:
            policy = render(directives, sockets=sockets(Headers(scope=scope).get("host")))

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    add_headers(message, policy)
                await send(message)

            await self.app(scope, receive, send_with_headers)
            return

        # The docs pages: the policy names their inline scripts' hashes, so hold the start until the body is in.
        start: Message | None = None
        body: list[bytes] = []

        async def send_docs(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] == "http.response.body" and start is not None:
                body.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                whole = b"".join(body)
                add_headers(start, render(directives, hashes=script_hashes(whole)))
                await send(start)
                start = None
                await send({"type": "http.response.body", "body": whole})
                return
            await send(message)

        await self.app(scope, receive, send_docs)


def add_headers(start: Message, policy: str) -> None:
    headers = MutableHeaders(scope=start)
    headers["Content-Security-Policy"] = policy
    for name, value in OTHER_HEADERS.items():
        headers[name] = value
