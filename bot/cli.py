"""`python -m bot`: run the chat API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The distilbot runtime: serves the chat API over a published student model.",
                  no_args_is_help=True, add_completion=False)


@app.callback()
def _main() -> None:
    """Commands of the bot runtime."""


@app.command()
def serve(
    registry: Annotated[Path | None, typer.Option(help="Model registry folder (serves its current "
                                                          "version) or one artifact folder.")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on [default: 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [default: 8000].")] = None,
    backend: Annotated[str | None, typer.Option(help="auto (the int8 ONNX model when the artifact has one), "
                                                       "torch, onnx-int8 or onnx [default: auto].")] = None,
    seed_orders: Annotated[Path | None, typer.Option(help="JSON file of demo orders to load into an empty "
                                                            "orders table (e.g. data/orders.json).")] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the conversation store "
                                                   "[default: sqlite:///var/bot.db].")] = None,
) -> None:
    """Serve the chat API (POST /api/chat, GET /health, docs at /docs)."""
    import uvicorn

    from bot.api import create_app
    from bot.settings import Settings

    overrides = {k: v for k, v in {"registry": registry, "host": host, "port": port, "db_url": db,
                                       "backend": backend, "seed_orders": seed_orders}.items()
                 if v is not None}
    settings = Settings(**overrides)
    if settings.db_url.startswith("sqlite:///"):
        Path(settings.db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


@app.command()
def actions(
    port: Annotated[int, typer.Option(help="Port of the action server.")] = 5055,
    registry: Annotated[Path | None, typer.Option(help="Registry (or artifact) whose answer templates "
                                                          "action_answer uses [default: var/registry].")] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store holding the orders "
                                                   "[default: sqlite:///var/bot.db].")] = None,
) -> None:
    """Serve the bot's rasa-sdk actions (POST /webhook) to a Rasa assistant; the same as
    `python -m rasa_sdk --actions bot.actions`."""
    import os

    from rasa_sdk.endpoint import run
    from rasa_sdk.executor import ActionExecutor

    for name, value in (("DISTILBOT_REGISTRY", registry), ("DISTILBOT_DB_URL", db)):
        if value is not None:
            os.environ[name] = str(value)
    executor = ActionExecutor()
    executor.register_package("bot.actions")
    run(executor, port=port)
