"""The models page, in a real browser against a real server on a registry of two versions: an admin serves the
older version (a rollback, at once on this server), pins the drift baseline, and runs a real redistillation
from the page, following its progress to its report; an agent sees the page but may change nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.helpers.clients import login
from tests.helpers.console import open_console
from tests.helpers.constants import CHROMIUM, SCREENSHOTS
from tests.helpers.registries import publish_copy
from tests.helpers.servers import add_admins, add_agents, served

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
expect.set_options(timeout=10_000)
REDISTILL_S = 900


@pytest.fixture(scope="module")
def server(demo_registry, tmp_path_factory):
    """Its own registry (v0001, and v0002 served) and store: what this module changes, nobody else sees."""
    folder = tmp_path_factory.mktemp("models")
    registry = folder / "registry"
    shutil.copytree(demo_registry, registry, symlinks=True)
    publish_copy(registry)
    db_url = f"sqlite:///{folder / 'bot.db'}"
    add_admins(db_url, "ada")
    add_agents(db_url, "bob")
    # the demo's golden set (377 messages) can only rule out losses of about 3 points: its gate (README)
    args = ["--work-dir", str(folder / "work"), "--tolerance", "0.03", "--ece-tolerance", "0.03",
            "--set", "onnx_min_agreement=0.99", "--set", "epochs=1"]
    env = {"DISTILBOT_JOBS_DIR": str(folder / "jobs"), "DISTILBOT_REDISTILL_ARGS": json.dumps(args)}
    with served(registry, db_url, env) as (url, _process):
        yield url, registry


def test_an_agent_sees_the_versions_but_changes_nothing(server):
    url, registry = server
    bob = login(url, "bob")
    listed = bob.get("/models").json()
    assert [(v["version"], v["served"]) for v in listed["versions"]] == [("v0002", True), ("v0001", False)]
    for path in ("/models/v0001/serve", "/models/v0001/baseline", "/redistillations"):
        assert bob.post(path).status_code == 403, path
    assert httpx.post(f"{url}/api/agent/models/v0001/serve").status_code == 401
    ada = login(url, "ada")
    assert ada.post("/models/v0009/serve").status_code == 404
    assert ada.post("/models/..%2Fv0001/serve").status_code in (404, 422)
    assert ada.get("/models/reports/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)
    assert (registry / "current").resolve().name == "v0002"


def test_an_admin_rolls_back_pins_the_baseline_and_runs_a_redistillation(server, browser):
    url, registry = server
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = open_console(context, url, "ada")
        page.get_by_role("tab", name="Models").click()
        older = page.locator('tr[data-version="v0001"]')
        older.get_by_role("button", name="Serve v0001").click()
        expect(older).to_contain_text("Served")
        assert httpx.get(f"{url}/health").json()["model_version"] == "v0001"  # loaded at once
        assert (registry / "current").resolve().name == "v0001"
        page.locator('tr[data-version="v0002"]').get_by_role("button", name="Pin v0002 as baseline").click()
        expect(page.locator('tr[data-version="v0002"]')).to_contain_text("Baseline")

        page.get_by_role("button", name="Run a redistillation now").click()
        expect(page.locator("#redistill-state")).to_contain_text("Running · started by Ada")
        expect(page.locator("#redistill-state")).not_to_contain_text("Running", timeout=REDISTILL_S * 1000)
        expect(page.locator("#report-text")).to_contain_text("**Decision:**")
        expect(page.locator("#report-text")).to_contain_text("drift baseline: v0002")
        page.screenshot(path=str(SCREENSHOTS / "console-models.png"), full_page=True)
        job = login(url, "ada").get("/redistillations/latest").json()
        assert job["state"] in ("published", "kept", "nothing_new") and job["report"], job
    finally:
        context.close()
