"""Every setting of the bot runtime, read from the environment (prefix DISTILBOT_) or given by the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DISTILBOT_")

    registry: Path = Field(Path("var/registry"), description="Model registry folder (or one artifact) to serve.")
    backend: Literal["auto", "torch", "onnx-int8", "onnx"] = Field(
        "auto", description="How the student runs: 'auto' uses the artifact's int8 ONNX model when it has one, "
                            "else PyTorch.")
    db_url: str = Field("sqlite:///var/bot.db", description="SQLAlchemy URL of the conversation store.")
    redis_url: str | None = Field(
        None, validation_alias=AliasChoices("DISTILBOT_REDIS_URL", "REDIS_URL"),
        description="Redis for live events (pub/sub) and rate limits shared by all replicas; unset: in-process. "
                    "Also read from REDIS_URL.")
    seed_orders: Path | None = Field(None, description="JSON file of demo orders loaded into an empty orders "
                                                       "table at start-up (e.g. data/orders.json).")
    host: str = Field("127.0.0.1", description="Address the API listens on.")
    port: int = Field(8000, description="Port the API listens on.")
    model_threads: int = Field(0, ge=0, description="CPU threads the ONNX model uses per process; 0: one per core "
                               "of the machine. Set it to the CPUs a container may use (its Kubernetes CPU "
                               "request), else every replica on a node starts one thread per node core.")
    threads: int = Field(4, ge=1, description="Requests worked on at once by one server process (the rest queue in "
                                              "arrival order).")
    max_batch: int = Field(32, ge=1, description="Most messages the model runs in one call when requests "
                                                  "arrive together (micro-batching).")
    max_message_chars: int = Field(2000, description="Longest accepted chat message, in characters.")
    max_body_bytes: int = Field(64 * 1024, description="Largest accepted request body, in bytes (413 above).")
    rate_limit: str = Field("20/second;600/minute", description="Requests per client address to /api and "
                            "/webhooks, in the `limits` notation; '0' or 'off' turns rate limiting off.")
    cors_origins: list[str] = Field([], description="Origins (scheme://host:port) whose pages may call the "
                                                    "API from a browser, as a JSON list; '*' allows any.")
    clarify_margin: float | None = Field(None, ge=0, lt=1, description="Ask which intent the visitor means when "
                                         "the top two are closer than this; unset: the model artifact's.")
    handoff_after_failures: int = Field(3, ge=1, description="Fallbacks in a row before the bot hands the "
                                                             "conversation to a person.")
    low_confidence: float = Field(0.5, ge=0, le=1, description="Visitor messages understood with less "
                                                               "confidence than this count as low confidence.")
    agent_token_hours: float = Field(12, gt=0, description="How long an agent's login token lasts.")
    reload_interval_s: float = Field(2.0, ge=0, description="How often to check the registry's `current` for "
                                                            "a new model version; 0 turns hot reload off.")
    log_format: Literal["json", "text"] = Field("json", description="Log lines as JSON objects or plain text.")
    access_log: bool = Field(True, description="Log every HTTP request.")
