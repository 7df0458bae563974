"""The web pages, served by the API itself (no front-end server, no build step): the demo shop with the
chat widget on it at `/`, the widget's script at `/widget.js`, the agents' console at `/console`."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

WEB = Path(__file__).resolve().parents[1] / "web"
router = APIRouter(include_in_schema=False)


@router.get("/")
def shop() -> FileResponse:
    return FileResponse(WEB / "shop.html")


@router.get("/widget.js")
def widget() -> FileResponse:
    return FileResponse(WEB / "widget.js", media_type="text/javascript")


@router.get("/console")
def console_redirect() -> RedirectResponse:
    return RedirectResponse("/console/")


@router.get("/console/")
def console() -> FileResponse:
    """Its Content-Security-Policy (its own scripts and styles only, sockets to this server only) comes from
    bot/api/security_headers.py, like every page's."""
    return FileResponse(WEB / "console" / "index.html")


def mount_static(app) -> None:
    """The console's scripts, styles and vendored libraries."""
    app.mount("/console/static", StaticFiles(directory=WEB / "console"), name="console-static")
