"""Every setting of the bot runtime, read from the environment (prefix DISTILBOT_) or given by the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DISTILBOT_")

    registry: Path = Field(Path("var/registry"), description="Model registry folder (or one artifact) to serve.")
    backend: Literal["auto", "torch", "onnx-int8", "onnx"] = Field(
        "auto", description="How the student runs: 'auto' uses the artifact's int8 ONNX model when it has one, "
                            "else PyTorch.")
    db_url: str = Field("sqlite:///var/bot.db", description="SQLAlchemy URL of the conversation store.")
    seed_orders: Path | None = Field(None, description="JSON file of demo orders loaded into an empty orders "
                                                       "table at start-up (e.g. data/orders.json).")
    host: str = Field("127.0.0.1", description="Address the API listens on.")
    port: int = Field(8000, description="Port the API listens on.")
    max_message_chars: int = Field(2000, description="Longest accepted chat message, in characters.")
