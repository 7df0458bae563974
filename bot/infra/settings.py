"""Every setting of the bot runtime, read from the environment (prefix DISTILBOT_) or given by the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, IPvAnyNetwork, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.infra.office_hours import OfficeHours, OfficeHoursError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DISTILBOT_")

    registry: Path = Field(Path("var/registry"), description="Model registry folder (or one artifact) to serve.")
    backend: Literal["auto", "torch", "onnx-int8", "onnx"] = Field(
        "auto", description="How the student runs: 'auto' uses the artifact's int8 ONNX model when it has one, "
                            "else its fp32 ONNX model, else PyTorch.")
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
    threads: int = Field(4, ge=1, description="Chat turns doing their database work at once in one server process "
                                              "(the rest queue in arrival order; waiting for the model holds no "
                                              "thread), and the store connections this needs.")
    max_batch: int = Field(32, ge=1, description="Most messages the model runs in one call when requests "
                                                  "arrive together (micro-batching).")
    max_message_chars: int = Field(2000, description="Longest accepted chat message, in characters.")
    max_body_bytes: int = Field(64 * 1024, description="Largest accepted request body, in bytes (413 above).")
    redis_max_connections: int = Field(20, ge=2, description="Most connections each Redis pool of a process "
                                       "opens (one for the event bus, whose subscription holds one of them, "
                                       "one for the rate limiter); callers wait for a free one.")
    rate_limit_fail_open: bool = Field(True, description="While Redis cannot be reached, count the rate limit in "
                                       "this process's memory (each replica then limits on its own; logged and "
                                       "counted) rather than refusing every limited request with 503.")
    max_sockets_per_client: int = Field(50, ge=1, description="Open WebSockets per client address and server "
                                        "process; more are closed with code 4429.")
    max_sockets_per_conversation: int = Field(5, ge=1, description="Open WebSockets per visitor conversation "
                                              "(its tabs) and server process; more are closed with code 4429.")
    max_sockets_per_agent: int = Field(10, ge=1, description="Open WebSockets per agent and server process; "
                                       "more are closed with code 4429.")
    socket_max_message_bytes: int = Field(4096, ge=256, description="Largest frame a client may send on a "
                                          "WebSocket; a larger one closes it with code 1009.")
    socket_message_rate: str = Field("5/second;60/minute", description="Frames (typing, ping) one WebSocket may "
                                     "send, in the `limits` notation; above it the socket is closed with code "
                                     "4429. Typing is passed on at most once a second; more is dropped.")
    socket_recheck_s: float = Field(30, gt=0, description="How often open WebSockets' tokens and conversations "
                                    "are checked again; one no longer valid is closed with code 4401.")
    rate_limit: str = Field("20/second;600/minute", description="Requests per client address to /api and "
                            "/webhooks, in the `limits` notation; '0' or 'off' turns rate limiting off.")
    cors_origins: list[str] = Field([], description="Origins (scheme://host:port) whose pages may call the "
                                                    "API from a browser, as a JSON list; '*' allows any.")
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        [], description="Addresses or CIDR ranges of the reverse proxies in front of the API (comma-separated): only "
                        "a request from one of them may name its client in X-Forwarded-For. Empty: nobody; the "
                        "rate limit and every per-client cap count the connecting address. '*' is refused.")
    clarify_margin: float | None = Field(None, ge=0, lt=1, description="Ask which intent the visitor means when "
                                         "the top two are closer than this; unset: the model artifact's.")
    handoff_after_failures: int = Field(3, ge=1, description="Fallbacks in a row before the bot hands the "
                                                             "conversation to a person.")
    assignment: Literal["off", "round_robin"] = Field("off", description="'round_robin': a conversation that "
                                                      "starts waiting for a person is offered to the online agent "
                                                      "(console open) who was offered one longest ago; it shows "
                                                      "under their 'Mine' and any agent may still take it.")
    jobs_dir: Path = Field(Path("var/jobs"), description="Where redistillations started from the console keep their "
                                                         "output and outcome (one folder per API replica).")
    redistill_args: list[str] = Field([], description="Options added to `python -m distill redistill --registry "
                                                      "…` when an admin starts one from the console, as a JSON list "
                                                      "(e.g. [\"--work-dir\", \"var/redistill\"]).")
    office_hours: str = Field("", description="When agents take hand-offs, e.g. 'Mon-Fri 09:00-18:00; Sat "
                                              "10:00-14:00'; outside them a hand-off asks for an e-mail address and "
                                              "leaves an offline message in the inbox. Empty: always.")
    office_timezone: str = Field("UTC", description="The time zone of DISTILBOT_OFFICE_HOURS (IANA name, e.g. "
                                                    "Europe/Berlin).")
    low_confidence: float = Field(0.5, ge=0, le=1, description="Visitor messages understood with less "
                                                               "confidence than this count as low confidence.")
    identity_secret: str | None = Field(
        None, description="Secret shared with the shop's server for identity verification: the shop's page passes "
                          "its logged-in customer to the widget with data-user-hash = hex HMAC-SHA256 of the "
                          "customer id under this secret. Unset: every visitor is anonymous and proves an order "
                          "is theirs with its e-mail address.")
    new_conversation_cap: str = Field("60/hour", description="New conversations one client address may start, in "
                                      "the `limits` notation (429 above); 'off' turns the cap off.")
    handoff_cap: str = Field("10/hour", description="Hand-offs to a person one client address may cause, in the "
                             "`limits` notation (above it the bot says the team cannot take more); 'off' turns "
                             "the cap off.")
    agent_token_hours: float = Field(12, gt=0, description="How long an agent's login token lasts.")
    login_limit: str = Field("5/15minutes", description="Failed agent logins (or password changes) allowed per "
                             "username and per client address, in the `limits` notation; above it /api/agent/login "
                             "answers 429 with Retry-After. Shared through Redis when set. 'off' turns it off.")
    reload_interval_s: float = Field(2.0, ge=0, description="How often to check the registry's `current` for "
                                                            "a new model version; 0 turns hot reload off.")
    answers_interval_s: float = Field(2.0, gt=0, description="How often each replica checks the store for answers "
                                                             "changed in the console (the replica where one was "
                                                             "changed serves it at once).")
    log_format: Literal["json", "text"] = Field("json", description="Log lines as JSON objects or plain text.")
    access_log: bool = Field(True, description="Log every HTTP request.")

    def office(self) -> OfficeHours | None:
        return OfficeHours.parse(self.office_hours, self.office_timezone)

    @model_validator(mode="after")
    def _office_hours_readable(self) -> Settings:
        try:
            self.office()
        except OfficeHoursError as exc:
            raise ValueError(f"office_hours: {exc}") from None
        return self

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value):
        """Comma-separated in the environment (or the JSON list the CLI passes on to its workers); '*' would
        let any client choose the address its limits count, so it is refused."""
        if isinstance(value, str):
            value = json.loads(value) if value.lstrip().startswith("[") else value.split(",")
        entries = [str(entry).strip() for entry in value if str(entry).strip()]
        if "*" in entries:
            raise ValueError("'*' would trust any client's own X-Forwarded-For; list the proxies' addresses or "
                             "CIDR ranges (e.g. 10.0.0.0/8)")
        return entries
