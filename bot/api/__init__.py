"""HTTP and WebSockets: the FastAPI app (`app.create_app`), its routes, request and response schemas, typed
dependencies (`deps`), live sockets, security headers, and the static pages (`web/`: shop, widget, console).

May import: every `bot` package below it (`conversation`, `desk`, `infra`, `model`).
"""
