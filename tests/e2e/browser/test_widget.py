"""The embeddable chat widget (`/widget.js` on the demo shop at `/`) in a real Chromium against a real server
with the real student: answers with quick replies, history across reloads, the hand-off to a live agent,
ratings, the socket's fallbacks, text that must never become HTML, locales and keyboard use."""

from __future__ import annotations

import json

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect
from websockets.sync.client import connect

from tests.helpers.constants import AGENT_PASSWORD, SCREENSHOTS
from tests.helpers.widget import (
    TIMEOUT_MS,
    W,
    bubbles,
    launcher,
    message_box,
    open_widget,
    panel,
    say,
    session,
    shop,
    wait_until_live,
)

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def context(browser):
    """A fresh browser profile per test (its own localStorage, so its own conversation); no page may throw."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    errors = []
    context.on("weberror", lambda web_error: errors.append(web_error.error))
    yield context
    context.close()
    assert not errors, errors


@pytest.fixture
def url(web_server) -> str:
    return web_server[0]


def agent(url: str, username: str = "alice") -> httpx.Client:
    """An agent logged in through the REST API."""
    response = httpx.post(f"{url}/api/agent/login", json={"username": username, "password": AGENT_PASSWORD})
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    client = httpx.Client(base_url=f"{url}/api/agent", timeout=30, headers={"Authorization": f"Bearer {token}"})
    client.token = token
    return client


def test_answers_quick_replies_and_history_after_a_reload(context, url):
    page = shop(context, url)
    open_widget(page)
    typing = page.locator(f"{W} .typing")
    seen_while_waiting = []

    def look_while_the_request_waits(route):  # the request is paused here, before it reaches the server
        seen_while_waiting.append(typing.inner_text() if typing.is_visible() else None)
        route.continue_()

    page.route("**/api/chat", look_while_the_request_waits)
    say(page, "how much does shipping cost?")
    expect(bubbles(page, "bot").last).to_contain_text("€4.95")
    assert seen_while_waiting == ["Typing…"]
    expect(typing).to_be_hidden()
    page.unroute("**/api/chat")
    quick = page.locator(f"{W} .quick").last
    expect(quick.get_by_role("button")).to_have_text(["Delivery times", "Shipping abroad"])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "widget.png")

    # The shop's global `button {}` and `p {}` rules stop at the shadow root, in both directions.
    assert quick.get_by_role("button").first.evaluate("b => getComputedStyle(b).textTransform") == "none"
    assert bubbles(page, "bot").last.evaluate("p => getComputedStyle(p).fontStyle") == "normal"
    assert page.locator("main button").first.evaluate("b => getComputedStyle(b).textTransform") == "uppercase"

    quick.get_by_role("button", name="Delivery times").click()
    expect(bubbles(page, "user")).to_have_text(["how much does shipping cost?", "Delivery times"])
    expect(bubbles(page, "bot")).to_have_count(2)
    expect(bubbles(page, "bot").last).to_contain_text("working days")
    expect(page.get_by_role("button", name="Delivery times")).to_be_hidden()  # only the newest replies are live
    conversation = bubbles(page).all_inner_texts()
    stored = session(page, url)
    assert len(stored["id"]) >= 16 and stored["token"]

    page.reload()
    expect(panel(page)).to_be_hidden()
    open_widget(page)
    expect(bubbles(page)).to_have_text(conversation)  # the payload is shown as its button's title again
    assert session(page, url) == stored

    another_tab = context.new_page()  # the same profile: the same conversation
    another_tab.goto(f"{url}/")
    open_widget(another_tab)
    expect(bubbles(another_tab)).to_have_text(conversation)


def test_hand_off_to_an_agent_live_and_rating(context, url):
    page = shop(context, url)
    open_widget(page)
    say(page, "I want to talk to a real person please")
    banner = page.locator(f"{W} .banner")
    expect(banner).to_have_text("Connecting you to an agent…")
    conversation = session(page, url)["id"]
    wait_until_live(page)

    alice = agent(url)
    assert alice.post(f"/conversations/{conversation}/take").json()["status"] == "with_agent"
    expect(banner).to_have_text("Alice joined the chat")
    typing = page.locator(f"{W} .typing")
    with connect(f"{url.replace('http', 'ws', 1)}/api/agent/live") as desk:  # Alice's console
        desk.send(json.dumps({"type": "auth", "token": alice.token}))
        assert json.loads(desk.recv(timeout=10))["type"] == "ready"
        desk.send(json.dumps({"type": "typing", "conversation_id": conversation}))
        expect(typing).to_have_text("Alice is typing…")
    sent = alice.post(f"/conversations/{conversation}/messages", json={"text": "Hi, I'm Alice. How can I help?"})
    assert sent.status_code == 201, sent.text
    reply = page.locator(f"{W} .msg.agent").last
    expect(reply.locator(".bubble")).to_have_text("Hi, I'm Alice. How can I help?")
    expect(reply.locator(".who")).to_have_text("Alice")
    expect(typing).to_be_hidden()  # her message ends her typing

    assert alice.post(f"/conversations/{conversation}/resolve").json()["status"] == "resolved"
    expect(page.get_by_text("How would you rate this conversation?")).to_be_visible()
    page.get_by_role("button", name="Rate 4 out of 5").click()
    expect(banner).to_contain_text("Thanks for your feedback!")
    expect(page.get_by_role("button", name="Rate 4 out of 5")).to_be_hidden()
    assert alice.get(f"/conversations/{conversation}").json()["csat"] == 4


def test_agent_messages_arrive_after_the_socket_drops(context, url):
    page = shop(context, url)
    open_widget(page)
    say(page, "hello")
    expect(bubbles(page, "bot")).to_have_count(1)
    wait_until_live(page)
    conversation = session(page, url)["id"]

    page.evaluate("window.DistilbotWidget._socket.close()")
    alice = agent(url)
    text = "Sent while your socket was down."
    assert alice.post(f"/conversations/{conversation}/messages", json={"text": text}).status_code == 201
    expect(bubbles(page, "agent")).to_have_text([text], timeout=10_000)  # by the reconnect's catch-up or polling
    wait_until_live(page)  # and it is live again
    alice.post(f"/conversations/{conversation}/messages", json={"text": "And this one live."})
    expect(bubbles(page, "agent")).to_have_text([text, "And this one live."], timeout=10_000)


def test_without_websockets_polling_delivers_agent_messages(context, url):
    # A proxy that kills every WebSocket: each one closes before it opens.
    context.add_init_script("""
        window.WebSocket = class extends EventTarget {
            constructor() { super(); this.readyState = 3; setTimeout(() => this.onclose && this.onclose({}), 0); }
            send() {}
            close() {}
        };
        window.WebSocket.OPEN = 1;
    """)
    page = shop(context, url)
    open_widget(page)
    say(page, "hello")
    expect(bubbles(page, "bot")).to_have_count(1)
    conversation = session(page, url)["id"]
    bob = agent(url, "bob")
    sent = bob.post(f"/conversations/{conversation}/messages", json={"text": "Bob here, by polling."})
    assert sent.status_code == 201, sent.text
    expect(bubbles(page, "agent")).to_have_text(["Bob here, by polling."], timeout=10_000)
    expect(page.locator(f"{W} .banner")).to_have_text("Bob joined the chat")


def test_message_text_is_never_html(context, url):
    page = shop(context, url)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_widget(page)
    attacks = ["<img src=x onerror=alert(1)>", "<script>alert(1)</script>"]
    for text in attacks:
        say(page, text)
        expect(bubbles(page, "user").last).to_have_text(text)
    expect(bubbles(page, "bot")).to_have_count(2)  # both turns went through the server

    conversation = session(page, url)["id"]
    alice = agent(url)
    agent_text = ('<b onmouseover=alert(2)>bold</b> javascript:alert(3) see northwind.example/returns, '
                  'or https://example.com/help?a=1&b=2.')
    assert alice.post(f"/conversations/{conversation}/messages", json={"text": agent_text}).status_code == 201
    expect(bubbles(page, "agent")).to_have_text([agent_text])

    def check():
        log = page.locator(f"{W} .log")
        expect(log.locator("img, script, b, iframe")).to_have_count(0)
        expect(bubbles(page, "user")).to_have_text(attacks)
        links = bubbles(page, "agent").locator("a")
        expect(links).to_have_text(["northwind.example/returns", "https://example.com/help?a=1&b=2"])
        expect(links.first).to_have_attribute("href", "https://northwind.example/returns")
        for i in range(2):
            expect(links.nth(i)).to_have_attribute("rel", "noopener noreferrer")
            expect(links.nth(i)).to_have_attribute("target", "_blank")

    check()
    page.reload()  # the history is drawn the same way
    open_widget(page)
    check()
    assert dialogs == []


def test_thumbs_down_is_stored(context, url):
    page = shop(context, url)
    open_widget(page)
    say(page, "how much does shipping cost?")
    answer = page.locator(f"{W} .msg.bot").last
    expect(answer.locator(".bubble")).to_contain_text("€4.95")
    answer.get_by_role("button", name="Not helpful").click()
    expect(answer.get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "true")
    expect(answer.get_by_role("button", name="Helpful", exact=True)).to_have_attribute("aria-pressed", "false")

    transcript = agent(url).get(f"/conversations/{session(page, url)['id']}").json()["transcript"]
    bot = [m for m in transcript if m["role"] == "bot"]
    assert [m["feedback"] for m in bot] == ["down"] and "€4.95" in bot[0]["text"]


def embedding_page(context: BrowserContext, url: str, body: str) -> Page:
    """A page of the server's origin that is not the shop, so the test chooses the embedding tag itself."""
    page = context.new_page()
    page.route(f"{url}/embedded.html", lambda route: route.fulfill(
        content_type="text/html; charset=utf-8", body=f"<!doctype html><meta charset=utf-8><body>{body}</body>"))
    page.goto(f"{url}/embedded.html")
    return page


def test_chinese_strings_and_site_overrides(context, url):
    page = embedding_page(context, url, f"""
        <h1>北风商店</h1>
        <script src="{url}/widget.js" data-api="{url}" data-locale="zh" data-color-primary="#00aa00"></script>""")
    expect(launcher(page)).to_have_attribute("aria-label", "打开聊天")
    assert launcher(page).evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(0, 170, 0)"
    launcher(page).click()
    expect(message_box(page)).to_have_attribute("placeholder", "请输入消息…")
    expect(message_box(page)).to_have_attribute("aria-label", "您的消息")
    expect(page.locator(f"{W} .send")).to_have_attribute("aria-label", "发送")
    expect(page.locator(f"{W} .close")).to_have_attribute("aria-label", "关闭聊天")
    expect(launcher(page)).to_have_attribute("aria-label", "关闭聊天")
    expect(page.locator(f"{W} h2")).to_have_text("在线客服")

    page = embedding_page(context, url, f"""
        <script>window.DistilbotWidgetConfig = {{strings: {{title: "北风客服", placeholder: "问我吧"}},
                                                 colors: {{primary: "#aa0000"}}}};</script>
        <script src="{url}/widget.js" data-locale="zh" data-color-primary="#00aa00"></script>""")
    launcher(page).click()
    expect(page.locator(f"{W} h2")).to_have_text("北风客服")
    expect(message_box(page)).to_have_attribute("placeholder", "问我吧")
    expect(message_box(page)).to_have_attribute("aria-label", "您的消息")  # what was not overridden stays Chinese
    assert launcher(page).evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(170, 0, 0)"  # config wins
    say(page, "how much does shipping cost?")  # data-api left out: the script's own origin
    expect(bubbles(page, "bot").last).to_contain_text("€4.95")


def test_keyboard_and_unread_badge(context, url):
    page = shop(context, url)
    for _ in range(40):  # Tab through the shop's links and buttons to the launcher, which comes last
        page.keyboard.press("Tab")
        if launcher(page).evaluate("b => b.getRootNode().activeElement === b"):
            break
    expect(launcher(page)).to_be_focused()
    assert launcher(page).evaluate("b => getComputedStyle(b).outlineStyle") == "solid"  # a visible focus ring

    page.keyboard.press("Enter")
    expect(panel(page)).to_be_visible()
    expect(message_box(page)).to_be_focused()
    page.keyboard.type("where is my order?")
    page.keyboard.press("Enter")
    expect(bubbles(page, "user")).to_have_text(["where is my order?"])
    expect(bubbles(page, "bot").last).to_contain_text("order number")
    page.keyboard.press("Escape")
    expect(panel(page)).to_be_hidden()
    expect(launcher(page)).to_be_focused()

    badge = page.locator(f"{W} .badge")
    expect(badge).to_be_hidden()
    conversation = session(page, url)["id"]
    assert agent(url).post(f"/conversations/{conversation}/messages",
                           json={"text": "Hello from Alice"}).status_code == 201
    expect(badge).to_have_text("1")
    expect(badge).to_be_visible()
    expect(launcher(page)).to_have_attribute("aria-label", "Open chat (1 unread)")
    page.keyboard.press("Enter")
    expect(panel(page)).to_be_visible()
    expect(badge).to_be_hidden()
    expect(bubbles(page, "agent")).to_have_text(["Hello from Alice"])
