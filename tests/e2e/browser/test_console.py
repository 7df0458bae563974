"""The agents' console in a real browser (Debian's Chromium, driven by Playwright) against a real server with
the real student: logging in, the live inbox, taking over and replying, two agents at once, the review queue,
text that looks like HTML, and the dashboard."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy
from playwright.sync_api import Page, expect

from tests.helpers.clients import Visitor
from tests.helpers.console import log_in, open_console, row
from tests.helpers.constants import AGENT_PASSWORD, CHROMIUM, SCREENSHOTS

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
expect.set_options(timeout=10_000)

HANDOFF = "I want to talk to a real person please"
GIBBERISH = "blorp zxq fnord wibble"
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"


def agent_api(url: str, username: str) -> httpx.Client:
    """The agent API over HTTP, for setting scenes up and checking what the console did."""
    response = httpx.post(f"{url}/api/agent/login", json={"username": username, "password": AGENT_PASSWORD})
    assert response.status_code == 200, response.text
    client = httpx.Client(base_url=f"{url}/api/agent", timeout=30,
                          headers={"Authorization": f"Bearer {response.json()['token']}"})
    client.token = response.json()["token"]
    return client


@pytest.fixture
def server(web_server):
    url, db_url, _process = web_server
    return url, db_url


@pytest.fixture
def new_context(browser):
    """Browser contexts (one per agent: separate session storage); the pages' script errors fail the test."""
    contexts, errors = [], []

    def make():
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        context.on("page", lambda page: page.on("pageerror", lambda error: errors.append(str(error))))
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    assert not errors, errors


def token_in(page: Page):
    return page.evaluate("sessionStorage.getItem('console.token')")


def test_a_wrong_password_cannot_log_in_and_the_api_needs_a_token(server, new_context):
    url, _ = server
    for headers in ({}, {"Authorization": "Bearer forged-token"}):
        response = httpx.get(f"{url}/api/agent/conversations", headers=headers)
        assert response.status_code == 401 and response.json()["detail"]

    page = new_context().new_page()
    log_in(page, url, "alice", "not the password")
    expect(page.locator("#login-error")).to_have_text("wrong username or password")
    expect(page.locator("#app")).to_be_hidden()
    assert token_in(page) is None

    page.get_by_label("Password", exact=True).fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(page.locator("#me")).to_have_text("Alice")
    token = token_in(page)
    assert token and httpx.get(f"{url}/api/agent/me", headers={"Authorization": f"Bearer {token}"}).json()[
        "username"] == "alice"

    page.evaluate("sessionStorage.removeItem('console.token')")  # no token: back to the login screen
    page.reload()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()

    page.evaluate("sessionStorage.setItem('console.token', 'forged-token')")  # the server refuses it: 401
    page.reload()
    expect(page.locator("#login-info")).to_contain_text("log in again")
    expect(page.locator("#app")).to_be_hidden()
    assert token_in(page) is None

    log_in(page, url, "alice")  # logging out ends the token on the server too
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    token = token_in(page)
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#login-info")).to_have_text("You have logged out.")
    assert token_in(page) is None
    assert httpx.get(f"{url}/api/agent/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_an_agent_sees_a_handoff_live_takes_over_replies_notes_hands_back_and_resolves(server, new_context):
    url, _ = server
    alice_api = agent_api(url, "alice")
    page = open_console(new_context(), url, "alice")
    waiting = alice_api.get("/conversations").json()["counts"]["waiting_for_agent"]
    expect(page.locator("#count-waiting_for_agent")).to_have_text(str(waiting))

    visitor = Visitor(url)
    handoff = visitor.say(HANDOFF)
    assert handoff["decision"] == "handoff" and handoff["status"] == "waiting_for_agent"
    conversation = row(page, visitor.session)  # arrives live: no reload
    expect(conversation).to_contain_text("Waiting")
    expect(conversation.locator(".preview")).to_contain_text(handoff["replies"][0]["text"])
    expect(page.locator("#count-waiting_for_agent")).to_have_text(str(waiting + 1))
    expect(page.locator("#tab-waiting")).to_have_text(str(waiting + 1))
    expect(page.locator("#announcer")).to_contain_text("waiting for an agent")

    conversation.click()
    transcript = page.locator("#transcript")
    asked = transcript.locator(".msg-user").filter(has_text=HANDOFF)
    expect(asked.locator(".chip.intent")).to_have_text("contact_human")
    expect(asked.locator(".chip.confidence")).to_have_text(f"{handoff['intent']['confidence']:.2f}")
    answered = transcript.locator(".msg-bot").filter(has_text=handoff["replies"][0]["text"])
    expect(answered.locator(".chip.decision")).to_have_text("handoff")
    expect(page.locator("#conv-status")).to_have_text("Waiting")

    page.get_by_role("button", name="Take over").click()
    expect(page.locator("#conv-status")).to_have_text("With you")
    expect(conversation).to_contain_text("With you")
    expect(page.locator("#count-waiting_for_agent")).to_have_text(str(waiting))

    page.get_by_label("Reply to the visitor").fill("Hi, I'm Alice from support. How can I help?")
    page.get_by_role("button", name="Send").click()
    sent = transcript.locator(".msg-agent").filter(has_text="Hi, I'm Alice from support.")
    expect(sent.locator(".who")).to_have_text("Alice")
    expect(page.get_by_label("Reply to the visitor")).to_have_value("")
    history = visitor.history()
    assert {"role": "agent", "text": "Hi, I'm Alice from support. How can I help?", "agent": "Alice"}.items() <= \
        next(m for m in history["messages"] if m["role"] == "agent").items()
    assert history["status"] == "with_agent" and history["agent"] == "Alice"

    silent = visitor.say("my parcel arrived damaged")  # the bot stays quiet; Alice sees it live
    assert silent["decision"] == "silent"
    damaged = transcript.locator(".msg-user").filter(has_text="my parcel arrived damaged")
    expect(damaged.locator(".chip.intent")).to_have_text(silent["intent"]["name"])
    expect(conversation.locator(".preview")).to_have_text("my parcel arrived damaged")

    page.get_by_label("Private note").fill("VIP customer, offered a replacement")
    page.get_by_role("button", name="Add note").click()
    note = transcript.locator(".note")
    expect(note.locator(".bubble")).to_have_text("VIP customer, offered a replacement")
    expect(note).to_contain_text("Private note")
    expect(note.locator(".who")).to_have_text("Alice")
    assert "VIP" not in json.dumps(visitor.history())  # private: never shown to the visitor

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "console.png"))

    page.get_by_role("button", name="Hand back to the bot").click()
    expect(page.locator("#conv-status")).to_have_text("Bot")
    assert visitor.say("how do I return an item?")["decision"] != "silent"
    page.get_by_role("button", name="Resolve", exact=True).click()
    expect(page.locator("#conv-status")).to_have_text("Resolved")
    expect(page.get_by_role("button", name="Resolve", exact=True)).to_be_disabled()
    page.get_by_role("button", name="Mark reviewed").click()
    expect(page.locator("#act-reviewed")).to_have_attribute("aria-pressed", "true")
    expect(conversation).to_contain_text("Resolved")

    stored = alice_api.get(f"/conversations/{visitor.session}").json()
    assert stored["status"] == "resolved" and stored["reviewed"] and stored["agent"] is None
    assert [n["text"] for n in stored["notes"]] == ["VIP customer, offered a replacement"]


def test_a_second_agent_sees_who_has_a_conversation_and_cannot_take_it(server, new_context):
    url, _ = server
    alice = open_console(new_context(), url, "alice")

    # Bob's live feed can be made to lag: status changes to "with_agent" are held back, as when two agents
    # click at the same moment and the server has to settle who gets the conversation.
    hold = {"with_agent": False}

    def lagging_feed(socket):
        server_side = socket.connect_to_server()

        def deliver(message):
            event = json.loads(message)
            if not (hold["with_agent"] and event.get("type") == "status" and event.get("status") == "with_agent"):
                socket.send(message)

        server_side.on_message(deliver)

    bob_context = new_context()
    bob_context.route_web_socket(re.compile(r"/api/agent/live$"), lagging_feed)
    bob = open_console(bob_context, url, "bob")

    first = Visitor(url)
    first.say(HANDOFF)
    for page in (alice, bob):
        expect(row(page, first.session)).to_contain_text("Waiting")
    row(bob, first.session).click()
    expect(bob.get_by_role("button", name="Take over")).to_be_enabled()

    row(alice, first.session).click()
    alice.get_by_role("button", name="Take over").click()
    expect(alice.locator("#conv-status")).to_have_text("With you")

    expect(row(bob, first.session)).to_contain_text("With Alice")  # live, in Bob's inbox and open view
    expect(bob.locator("#conv-status")).to_have_text("With Alice")
    expect(bob.get_by_role("button", name="Take over")).to_be_disabled()
    expect(bob.locator("#action-explain")).to_contain_text("Alice has this conversation")
    expect(bob.get_by_label("Reply to the visitor")).to_be_disabled()

    hold["with_agent"] = True
    second = Visitor(url)
    second.say(HANDOFF)
    expect(row(bob, second.session)).to_contain_text("Waiting")
    row(bob, second.session).click()
    expect(bob.locator("#conv-status")).to_have_text("Waiting")
    take = bob.get_by_role("button", name="Take over")
    expect(take).to_be_enabled()

    expect(row(alice, second.session)).to_contain_text("Waiting")
    row(alice, second.session).click()
    alice.get_by_role("button", name="Take over").click()
    expect(alice.locator("#conv-status")).to_have_text("With you")

    take.click()  # Bob has not heard yet: the server refuses, and says why
    expect(bob.locator("#action-error")).to_have_text("Alice already has this conversation")
    expect(bob.locator("#conv-status")).to_have_text("With Alice")
    expect(take).to_be_disabled()
    expect(row(bob, second.session)).to_contain_text("With Alice")
    assert agent_api(url, "bob").get(f"/conversations/{second.session}").json()["agent"] == "Alice"


def test_the_inbox_catches_up_after_the_live_connection_drops(server, new_context):
    url, _ = server
    network = {"up": True}
    sockets = []

    def flaky_feed(socket):
        if network["up"]:
            socket.connect_to_server()
            sockets.append(socket)
        else:
            socket.close()  # refused while "offline": the console keeps retrying

    context = new_context()
    context.route_web_socket(re.compile(r"/api/agent/live$"), flaky_feed)
    page = open_console(context, url, "alice")

    network["up"] = False
    sockets[-1].close()
    expect(page.locator("#live-status")).not_to_have_attribute("data-state", "live")
    visitor = Visitor(url)
    visitor.say(HANDOFF)  # happens while the console is offline: no event reaches it
    network["up"] = True
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=15_000)
    expect(row(page, visitor.session)).to_contain_text("Waiting")  # refetched after reconnecting
    assert len(sockets) >= 2


def test_the_review_queue_confirms_and_corrects_intents(server, new_context):
    url, db_url = server
    alice_api = agent_api(url, "alice")
    lost = Visitor(url)
    assert lost.say(GIBBERISH)["decision"] == "fallback"
    unhappy = Visitor(url)
    answer = unhappy.say("how much does shipping cost?")
    assert unhappy.put(f"/messages/{answer['replies'][0]['id']}/feedback", {"value": "down"}).status_code == 204
    queue = {item["text"]: item for item in alice_api.get("/review").json()}
    assert GIBBERISH in queue and "how much does shipping cost?" in queue
    gibberish, shipping = queue[GIBBERISH], queue["how much does shipping cost?"]

    page = open_console(new_context(), url, "alice")
    page.get_by_role("tab", name=re.compile("^Review")).click()
    item = page.locator(f'.review-item[data-message-id="{gibberish["id"]}"]')
    expect(item.locator(".bubble")).to_have_text(GIBBERISH)
    expect(item.locator(".chip.intent")).to_have_text(gibberish["intent"])
    item.get_by_label("Correct intent").select_option("refund_status")
    item.get_by_role("button", name="Save correction").click()
    expect(item).to_have_count(0)
    expect(page.locator("#announcer")).to_contain_text("to refund_status")

    thumbs = page.locator(f'.review-item[data-message-id="{shipping["id"]}"]')
    thumbs.get_by_role("button", name=f"Confirm {shipping['intent']}").click()
    expect(thumbs).to_have_count(0)

    with sqlalchemy.create_engine(db_url).connect() as db:
        stored = set(db.execute(sqlalchemy.text("SELECT text, intent FROM corrections")).all())
    assert {(GIBBERISH, "refund_status"), ("how much does shipping cost?", shipping["intent"])} <= stored
    left = [item["id"] for item in alice_api.get("/review").json()]
    assert gibberish["id"] not in left and shipping["id"] not in left

    page.goto(f"{url}/console/#/inbox/{lost.session}")  # the transcript shows the correction; relabel inline
    message = page.locator(f'.msg-user[data-message-id="{gibberish["id"]}"]')
    expect(message.locator(".chip.correction")).to_have_text("corrected to refund_status")
    message.get_by_role("button", name="Relabel").click()
    message.get_by_label("Intent of this message").select_option("complaint")
    message.get_by_role("button", name="Save").click()
    expect(message.locator(".chip.correction")).to_have_text("corrected to complaint")
    correction = alice_api.get(f"/conversations/{lost.session}").json()["transcript"][0]["correction"]
    assert correction["intent"] == "complaint"


def test_html_in_messages_and_notes_stays_text(server, new_context):
    url, _ = server
    alice_api = agent_api(url, "alice")
    page = open_console(new_context(), url, "alice")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    visitor = Visitor(url)
    visitor.say(HANDOFF)
    assert alice_api.post(f"/conversations/{visitor.session}/take").status_code == 200
    visitor.say(IMG)  # an agent has it: the bot is silent, the visitor's text is the inbox preview
    preview = row(page, visitor.session).locator(".preview")
    expect(preview).to_have_text(IMG)
    row(page, visitor.session).click()
    visitor.say(SCRIPT)
    expect(preview).to_have_text(SCRIPT)

    transcript = page.locator("#transcript")
    expect(transcript.get_by_text(IMG, exact=True)).to_be_visible()
    expect(transcript.get_by_text(SCRIPT, exact=True)).to_be_visible()
    note = "<b>VIP</b> <img src=y onerror=alert(2)> <a href=javascript:alert(3)>x</a>"
    page.get_by_label("Private note").fill(note)
    page.get_by_role("button", name="Add note").click()
    expect(transcript.locator(".note .bubble")).to_have_text(note)
    page.get_by_label("Reply to the visitor").fill("<i>hello</i>")
    page.get_by_role("button", name="Send").click()
    expect(transcript.locator(".msg-agent .bubble")).to_have_text("<i>hello</i>")

    def nothing_injected():
        found = page.evaluate("""() => ({
            elements: document.querySelectorAll(
                'img, iframe, object, embed, #app b, #app i, #app a[href^=javascript]').length,
            scripts: [...document.scripts].map((s) => s.getAttribute('src')),
        })""")
        assert found == {"elements": 0, "scripts": ["static/console.js"]}
        assert dialogs == []

    nothing_injected()
    page.reload()  # the same text through the first render, not the live one
    expect(page.locator("#transcript").get_by_text(SCRIPT, exact=True)).to_be_visible()
    expect(page.locator("#transcript .note .bubble")).to_have_text(note)
    expect(row(page, visitor.session).locator(".preview")).to_contain_text("<i>hello</i>")
    nothing_injected()


def test_the_dashboard_draws_todays_figures_and_the_model_card(server, new_context):
    url, _ = server
    alice_api = agent_api(url, "alice")
    visitor = Visitor(url)
    visitor.say("how much does shipping cost?")
    visitor.say(HANDOFF)
    assert alice_api.post(f"/conversations/{visitor.session}/resolve").status_code == 200
    assert visitor.put("/csat", {"score": 4}).status_code == 204
    stats = alice_api.get("/stats", params={"days": 14}).json()
    today = datetime.now(UTC).date().isoformat()
    assert stats["days"][-1]["day"] == today and stats["days"][-1]["conversations"] >= 1

    page = open_console(new_context(), url, "alice")
    page.get_by_role("tab", name="Dashboard").click()
    bars = page.locator(f'#chart-conversations rect.bar-conversations[data-day="{today}"]')
    expect(bars).to_have_attribute("data-value", str(stats["days"][-1]["conversations"]))
    expect(page.locator("#chart-conversations rect.bar-conversations")).to_have_count(14)
    expect(page.locator(f'#chart-conversations rect.bar-handoffs[data-day="{today}"]')).to_have_attribute(
        "data-value", re.compile(r"^[1-9]\d*$"))
    expect(page.locator(f'#chart-rates circle.point-handoff[data-day="{today}"]')).to_have_count(1)
    confidence = page.locator(f'#chart-confidence circle.point-confidence[data-day="{today}"]')
    expect(confidence).to_have_attribute("data-value", re.compile(r"^(0(\.\d+)?|1)$"))
    expect(page.locator(f'#chart-csat circle.point-csat[data-day="{today}"]')).to_have_count(1)
    for chart, label in (("conversations", "Count"), ("rates", "Rate"), ("confidence", "Confidence"),
                         ("csat", "CSAT (1–5)")):
        expect(page.locator(f"#chart-{chart} .axis-title")).to_have_text(["Day (UTC)", label])
        expect(page.locator(f"#chart-{chart} .x-tick").last).to_have_text(today[5:])

    model = stats["model"]
    card = page.locator("#model-card")
    expect(card.locator(".version")).to_have_text(model["version"])
    expect(card.locator(".model-table")).to_contain_text(f"{model['teacher']['accuracy'] * 100:.1f}%")
    expect(card.locator(".model-table")).to_contain_text(f"{model['student']['accuracy'] * 100:.1f}%")
    expect(card.locator("#model-speedup")).to_have_text(f"{model['speedup_same_runtime']:.1f}×")  # same runtime first
    expect(card.locator("#model-speedup-usual")).to_contain_text(f"{model['speedup_p50']:.1f}× against the teacher "
                                                                 "as usually run (PyTorch fp32)")
    expect(card.locator(".model-table")).to_contain_text(f"{model['student']['disk_mb']:.1f} MB")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
