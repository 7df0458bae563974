"""Real API servers for tests: `python -m bot serve` as its own uvicorn process, talked to over HTTP."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time

import httpx
import pytest

from tests.helpers.constants import AGENT_PASSWORD, DATA, ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


UNLIMITED = {"DISTILBOT_RATE_LIMIT": "off", "DISTILBOT_NEW_CONVERSATION_CAP": "off", "DISTILBOT_HANDOFF_CAP": "off"}
"""Tests play many visitors from one address; the limits have tests of their own."""


def client_limits(connections: int = 100) -> httpx.Limits:
    """A load-making test client's pool. Its idle connections expire before uvicorn's keep-alive (5 s) closes
    them, as nginx's do (deploy/nginx/compose.conf): httpx's default expiry is also 5 s, so a connection the
    pool rarely picks can be reused at the instant the server closes it, and that request fails (ReadError)."""
    return httpx.Limits(max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=4.0)


def start_server(registry, db_url: str, port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start and wait until /ready answers; the server's log goes to a temporary file (a full pipe would
    block it)."""
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--registry", str(registry), "--port", str(port), "--db", db_url,
         "--seed-orders", str(DATA / "orders.json")],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **UNLIMITED, "DISTILBOT_ACCESS_LOG": "false", **(env or {})})
    process.log = log
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"server exited: {log.read()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    pytest.fail("server did not become ready in 120 s")


def server_log(process: subprocess.Popen) -> str:
    process.log.seek(0)
    return process.log.read()


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@contextlib.contextmanager
def served(registry, db_url: str, env: dict[str, str] | None = None):
    """A running server's base URL; stopped afterwards."""
    port = free_port()
    process = start_server(registry, db_url, port, env)
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        stop(process)


def compose_api_env() -> dict[str, str]:
    """The API replicas' settings in deploy/compose.yaml (its `environment`) and the serving image's
    (DISTILBOT_BACKEND), so that tests of several replicas run them configured as compose does. The trusted
    proxy is this machine's nginx (or the test itself, playing it) on 127.0.0.1 instead of compose's network."""
    import re

    import yaml

    api = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]["api"]
    dockerfile = (ROOT / "deploy" / "docker" / "serve.Dockerfile").read_text()
    return {**{name: str(value) for name, value in api["environment"].items()},
            "DISTILBOT_BACKEND": re.search(r"DISTILBOT_BACKEND=(\S+)", dockerfile)[1],
            "DISTILBOT_TRUSTED_PROXIES": "127.0.0.1"}


def add_agent(db_url: str, username: str, name: str, password: str = AGENT_PASSWORD) -> None:
    """Create an agent account with the real CLI."""
    done = subprocess.run([sys.executable, "-m", "bot", "agent", "add", username, "--name", name, "--db", db_url],
                          cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "DISTILBOT_AGENT_PASSWORD": password})
    assert done.returncode == 0, done.stderr
    assert f"agent {username!r} ({name}) created" in done.stdout


def add_agents(db_url: str, *names: str) -> None:
    """Agent accounts made in-process, with AGENT_PASSWORD and the name title-cased as display name (`bot agent
    add` is tested elsewhere; a process each costs seconds)."""
    from bot.desk.agents import create_agent
    from bot.infra.store import make_engine, make_sessionmaker

    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as db:
        for name in names:
            create_agent(db, name, AGENT_PASSWORD, name.title())
    engine.dispose()


def add_admins(db_url: str, *names: str) -> None:
    """Admin accounts, as add_agents makes agents (`bot agent add --admin` is tested in test_proposals.py)."""
    from bot.desk.agents import set_role
    from bot.infra.store import Role, make_engine, make_sessionmaker

    add_agents(db_url, *names)
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as db:
        for name in names:
            set_role(db, name, Role.ADMIN)
    engine.dispose()


def metric(url: str, name: str, **labels: str) -> float | None:
    """One sample's value from a server's /metrics (labels in any order), None when there is no such sample."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None
