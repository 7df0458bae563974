"""`python -m bot`: run the chat API."""

from __future__ import annotations

import json
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
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: 8000).")] = None,
    backend: Annotated[str | None, typer.Option(help="auto (the int8 ONNX model when the artifact has one), "
                                                       "torch, onnx-int8 or onnx (default: auto).")] = None,
    seed_orders: Annotated[Path | None, typer.Option(help="JSON file of demo orders to load into an empty "
                                                            "orders table (e.g. data/orders.json).")] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the conversation store "
                                                   "(default: sqlite:///var/bot.db).")] = None,
    redis: Annotated[str | None, typer.Option(help="Redis URL for live events and rate limits shared by "
                                                      "replicas (default: REDIS_URL, else in-process).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes on this machine; more than one needs "
                                                     "--redis so live events reach every process.")] = 1,
) -> None:
    """Serve the chat API (POST /api/chat, agents' /api/agent/…, WebSockets, /health, /ready, /metrics,
    docs at /docs). Every other setting comes from DISTILBOT_* environment variables (see bot/infra/settings.py)."""
    import os

    import uvicorn

    from bot.infra.telemetry import logging_config

    settings = _settings(registry=registry, host=host, port=port, db_url=db, backend=backend,
                         seed_orders=seed_orders, redis_url=redis)
    if workers > 1 and not settings.redis_url:
        raise typer.BadParameter("more than one worker needs --redis (or REDIS_URL): live events and rate "
                                 "limits must be shared between the processes", param_hint="--workers")
    if seed_orders is not None:  # once, here, rather than racing in every worker
        from bot.conversation.orders import seed_orders as seed
        from bot.infra.store import make_engine, make_sessionmaker

        engine = make_engine(settings.db_url)
        seed(make_sessionmaker(engine), seed_orders)
        engine.dispose()
    # The workers build their app from the environment: pass the command line's settings on through it.
    for name, value in settings.model_dump(exclude={"seed_orders"}, mode="json").items():
        if value is not None:
            os.environ[f"DISTILBOT_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    os.environ.pop("DISTILBOT_SEED_ORDERS", None)
    # X-Forwarded-For names the client only on requests from a configured proxy (uvicorn takes CIDR ranges);
    # with none, the connecting address is the client, whatever the request says.
    proxies = [str(network) for network in settings.trusted_proxies]
    uvicorn.run("bot.api.app:create_app", factory=True, host=settings.host, port=settings.port, workers=workers,
                log_config=logging_config(settings.log_format), access_log=settings.access_log,
                proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None,
                ws_max_size=settings.socket_max_message_bytes)  # a larger frame closes the socket with 1009


def _settings(**overrides):
    """Settings from the environment, with the options given on the command line on top; the SQLite
    store's folder is created."""
    from bot.infra.settings import Settings

    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    if settings.db_url.startswith("sqlite:///"):
        Path(settings.db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return settings


agent_app = typer.Typer(help="Support-agent accounts (they log in to the console and the agent API). Agents "
                             "work conversations and propose intents; admins also approve or reject proposals. "
                             "Only this CLI makes admins.", no_args_is_help=True)
app.add_typer(agent_app, name="agent")
DbOption = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL of the store "
                                                           "(default: DISTILBOT_DB_URL, else sqlite:///var/bot.db).")]
PasswordOption = Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                             envvar="DISTILBOT_AGENT_PASSWORD",
                                             help="At least 8 characters; asked for when not given (or read "
                                                  "from DISTILBOT_AGENT_PASSWORD).")]


UsernameArgument = Annotated[str, typer.Argument(help="The agent's login name.")]
REVOKED_HELP = ("Its logins end at once. Open sockets close within seconds on every replica when "
                "DISTILBOT_REDIS_URL is set (the revocation is published there); without Redis, at their next "
                "periodic token check (DISTILBOT_SOCKET_RECHECK_S).")


def _agent_store(db: str | None):
    from bot.infra.store import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(_settings(db_url=db).db_url))


def _agent_change(db: str | None, change):
    """Run `change(session)` in one transaction; an AgentError is a bad parameter."""
    from bot.desk.agents import AgentError

    try:
        with _agent_store(db).begin() as session:
            return change(session)
    except AgentError as exc:
        raise typer.BadParameter(str(exc)) from None


def _announce_revocation(agent_id: int) -> str:
    """Publish that all the agent's tokens are revoked, through Redis when there is one (this process runs
    no event bus of its own); what happens to the open sockets, for the operator."""
    import asyncio

    from bot.infra.events import make_bus, publish_revocation

    redis_url = _settings().redis_url
    if not redis_url:
        return "open sockets close at their next token check (DISTILBOT_SOCKET_RECHECK_S; no Redis to tell them now)"

    async def send():
        bus = make_bus(redis_url)
        try:
            await publish_revocation(bus, agent_id, None)
        finally:
            await bus.close()

    asyncio.run(send())
    return "every replica was told through Redis to close its open sockets"


@agent_app.command("add")
def agent_add(
    username: Annotated[str, typer.Argument(help="Login name: 2–64 letters, digits or . _ @ -")],
    password: PasswordOption,
    name: Annotated[str | None, typer.Option(help="Name the visitor sees (default: the username).")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="An admin: may also approve or reject the intents "
                                                        "agents propose.")] = False,
    db: DbOption = None,
) -> None:
    """Create an agent account (the password is stored as an argon2 hash)."""
    from bot.desk.agents import create_agent
    from bot.infra.store import Role

    agent = _agent_change(db, lambda s: create_agent(s, username, password, name, Role.ADMIN if admin else Role.AGENT))
    typer.echo(f"{agent.role.value} {agent.username!r} ({agent.display_name}) created, id {agent.id}")


@agent_app.command("set-password", help="Give an agent a new password. " + REVOKED_HELP)
def agent_set_password(username: UsernameArgument, password: PasswordOption, db: DbOption = None) -> None:
    from bot.desk.agents import set_password

    agent = _agent_change(db, lambda s: set_password(s, username, password))
    typer.echo(f"password of {username!r} changed; {_announce_revocation(agent.id)}")


@agent_app.command("disable", help="Disable an account: it cannot log in (the same refusal as a wrong password) "
                                   "until `enable`. " + REVOKED_HELP)
def agent_disable(username: UsernameArgument, db: DbOption = None) -> None:
    from bot.desk.agents import set_disabled

    agent = _agent_change(db, lambda s: set_disabled(s, username, True))
    typer.echo(f"agent {username!r} disabled; {_announce_revocation(agent.id)}")


@agent_app.command("enable")
def agent_enable(username: UsernameArgument, db: DbOption = None) -> None:
    """Let a disabled account log in again."""
    from bot.desk.agents import set_disabled

    _agent_change(db, lambda s: set_disabled(s, username, False))
    typer.echo(f"agent {username!r} enabled")


@agent_app.command("role")
def agent_role(username: UsernameArgument,
               role: Annotated[str, typer.Argument(help="agent or admin.")],
               db: DbOption = None) -> None:
    """Make an account an admin (approves proposed intents) or a plain agent; it applies to its next request."""
    from bot.desk.agents import set_role
    from bot.infra.store import Role

    if role not in {r.value for r in Role}:
        raise typer.BadParameter(f"{role!r}: agent or admin", param_hint="ROLE")
    _agent_change(db, lambda s: set_role(s, username, Role(role)))
    typer.echo(f"{username!r} is now {'an admin' if role == 'admin' else 'an agent'}")


@agent_app.command("list")
def agent_list(db: DbOption = None) -> None:
    """The accounts: id, username, name, role and whether disabled."""
    from sqlalchemy import select

    from bot.infra.store import Agent

    with _agent_store(db)() as session:
        for agent in session.scalars(select(Agent).order_by(Agent.id)):
            disabled = f"\tdisabled since {agent.disabled_at:%Y-%m-%d %H:%M}" if agent.disabled_at else ""
            typer.echo(f"{agent.id}\t{agent.username}\t{agent.display_name}\t{agent.role.value}{disabled}")


model_app = typer.Typer(help="The model registry's versions: list them, roll out or roll back one (every API "
                             "process picks the change up by itself).", no_args_is_help=True)
app.add_typer(model_app, name="model")
RegistryOption = Annotated[Path | None, typer.Option("--registry", help="Model registry folder (default: "
                                                                         "DISTILBOT_REGISTRY, else var/registry).")]


@model_app.command("list")
def model_list(registry: RegistryOption = None) -> None:
    """Every published version: when it was made, its test-set accuracy, and which one is current (*)."""
    from bot.model.artifact import Artifact, Registry

    store = Registry(_settings(registry=registry).registry)
    current, versions = store.current(), store.versions()
    if not versions:
        raise typer.BadParameter(f"{store.root}: no published version", param_hint="--registry")
    for version in versions:
        artifact = Artifact(store.root / version)
        metrics = artifact.metrics()
        accuracy = metrics.student.accuracy if metrics is not None else None
        mark = "*" if current is not None and current.version == version else " "
        typer.echo(f"{mark} {version}\t{artifact.manifest.get('created_at', '')}\t"
                   f"accuracy {'–' if accuracy is None else f'{100 * accuracy:.2f}%'}")


@model_app.command("use")
def model_use(version: Annotated[str, typer.Argument(help="The version to serve, e.g. v0007 (see `model list`).")],
              registry: RegistryOption = None) -> None:
    """Make VERSION current (a rollout or a rollback): one atomic switch, under the registry's lock so no
    redistillation publishes over it at the same moment. Only a published version's name (v0007) is
    accepted: `current`, paths and unknown names are refused (exit 2) and change nothing."""
    import os

    from bot.model.artifact import CURRENT, ArtifactError, Registry, RegistryBusy

    store = Registry(_settings(registry=registry).registry)
    link = store.root / CURRENT
    try:
        store.check_version(version)  # before the lock, whose file a bad name must not create either
        with store.lock():
            before = os.readlink(link) if link.is_symlink() else None  # even when it does not load
            store.switch(version)
    except RegistryBusy as exc:
        typer.echo(f"error: {exc}; try again when it is done", err=True)
        raise typer.Exit(5) from None
    except ArtifactError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"current: {version} (was {before or 'none'}); the API processes reload it "
               "within DISTILBOT_RELOAD_INTERVAL_S")


templates_app = typer.Typer(help="The answers as a templates file (the data/templates.yml format), so a team can keep "
                                 "them in git: export what is served, or import a file as the served answers. "
                                 "The console's answer history records every import.", no_args_is_help=True)
app.add_typer(templates_app, name="templates")


def _served_seed(registry: Path | None):
    """The registry's current version: its own templates and its intents (the model itself is not loaded)."""
    from bot.desk.answers import Rules
    from bot.model.artifact import ArtifactError, resolve
    from bot.model.templates import TemplateBook

    try:
        artifact = resolve(_settings(registry=registry).registry)
        own = TemplateBook.model_validate_json((artifact.path / "templates.json").read_text())
        return own, Rules(frozenset(artifact.labels()), frozenset(own.slots))
    except (ArtifactError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--registry") from None


@templates_app.command("export")
def templates_export(
        out: Annotated[Path | None, typer.Option("--out", help="Write the file here (default: standard output).")
                       ] = None,
        registry: RegistryOption = None, db: DbOption = None) -> None:
    """The answers as served now: the current model's templates with the console's approved changes (retired
    answers left out)."""
    from bot.desk.answers import served_edits
    from bot.model.template_file import dump_templates

    own, _rules = _served_seed(registry)
    with _agent_store(db)() as session:
        text = dump_templates(served_edits(session).apply(own))
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)


@templates_app.command("import")
def templates_import(
        path: Annotated[Path, typer.Argument(help="A templates file (data/templates.yml's format).")],
        retire_missing: Annotated[bool, typer.Option(help="Retire the served answers the file does not have.")
                                  ] = False,
        registry: RegistryOption = None, db: DbOption = None) -> None:
    """Serve the file's answers: each one that differs from what is served becomes an approved revision (no
    redistillation; every API process picks it up within DISTILBOT_ANSWERS_INTERVAL_S). The file's `slots`
    are not imported: an answer may use only the slots the served model's templates define. A problem in the
    file is reported with its line, and nothing is changed."""
    from bot.desk import answers
    from bot.desk.desk import DeskError
    from bot.model.template_file import DataError, load_templates

    own, rules = _served_seed(registry)
    try:
        book = load_templates(path, intents=set(rules.intents))
        with _agent_store(db).begin() as session:
            changed, retired = answers.import_book(session, own, rules, book, retire_missing)
    except DataError as exc:
        raise typer.BadParameter(str(exc), param_hint="PATH") from None
    except DeskError as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint="PATH") from None
    typer.echo(f"{len(changed)} answers changed or added, {len(retired)} retired, "
               f"{len(book.templates) - len(changed)} unchanged")
    for answer_id in changed:
        typer.echo(f"  changed\t{answer_id}")
    for answer_id in retired:
        typer.echo(f"  retired\t{answer_id}")


@app.command()
def actions(
    port: Annotated[int, typer.Option(help="Port of the action server.")] = 5055,
    registry: Annotated[Path | None, typer.Option(help="Registry (or artifact) whose answer templates "
                                                          "action_answer uses (default: var/registry).")] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store holding the orders "
                                                   "(default: sqlite:///var/bot.db).")] = None,
) -> None:
    """Serve the bot's rasa-sdk actions (POST /webhook) to a Rasa assistant; the same as
    `python -m rasa_sdk --actions bot.conversation.actions`."""
    import os

    from rasa_sdk.endpoint import run
    from rasa_sdk.executor import ActionExecutor

    for name, value in (("DISTILBOT_REGISTRY", registry), ("DISTILBOT_DB_URL", db)):
        if value is not None:
            os.environ[name] = str(value)
    executor = ActionExecutor()
    executor.register_package("bot.conversation.actions")
    run(executor, port=port)


@app.command("settings")
def settings_reference() -> None:
    """Print every runtime setting as a Markdown table: environment variable, default, meaning (the
    configuration reference in deploy/README.md is this output)."""
    from bot.infra.settings import Settings

    typer.echo(settings_table(Settings))


def settings_table(settings_class) -> str:
    rows = ["| environment variable | default | meaning |", "|---|---|---|"]
    for name, field in settings_class.model_fields.items():
        variable = f"`DISTILBOT_{name.upper()}`"
        if name == "redis_url":
            variable += " or `REDIS_URL`"
        default = "" if field.default is None else f"`{field.default}`"
        rows.append(f"| {variable} | {default} | {field.description or ''} |")
    return "\n".join(rows)
