"""Both pages at once, as people use them: a visitor in the chat widget on the shop, an agent in the console,
each in their own browser context, talking through a real server with the real student."""

from __future__ import annotations

import sqlalchemy
from playwright.sync_api import expect

from tests.helpers.console import open_console, row
from tests.helpers.widget import W, bubbles, open_widget, say, session, shop, wait_until_live

HANDOFF = "I want to talk to a real person please"


def test_visitor_and_agent_meet_live(browser, web_server):
    url, db_url, _process = web_server
    visitor_context = browser.new_context(viewport={"width": 1200, "height": 800})
    agent_context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        visitor = shop(visitor_context, url)
        open_widget(visitor)
        say(visitor, "how much does shipping cost?")
        expect(bubbles(visitor, "bot").last).to_contain_text("€4.95")
        expect(visitor.locator(f"{W} .quick").last.get_by_role("button")).to_have_text(
            ["Delivery times", "Shipping abroad"])

        console = open_console(agent_context, url, "alice")  # logged in, its live feed listening
        say(visitor, HANDOFF)
        banner = visitor.locator(f"{W} .banner")
        expect(banner).to_have_text("Connecting you to an agent…")
        conversation = session(visitor, url)["id"]
        wait_until_live(visitor)

        arrived = row(console, conversation)  # in the agent's inbox without a reload
        expect(arrived).to_contain_text("Waiting")
        arrived.click()
        console.get_by_role("button", name="Take over").click()
        expect(console.locator("#conv-status")).to_have_text("With you")
        expect(banner).to_have_text("Alice joined the chat")  # the visitor is told who joined

        console.get_by_label("Reply to the visitor").fill("Hi, I'm Alice. Let me check that for you.")
        console.get_by_role("button", name="Send").click()
        reply = visitor.locator(f"{W} .msg.agent").last
        expect(reply.locator(".bubble")).to_have_text("Hi, I'm Alice. Let me check that for you.")
        expect(reply.locator(".who")).to_have_text("Alice")

        say(visitor, "thank you, it was order NW482913")
        expect(console.locator("#transcript .msg-user").filter(has_text="it was order NW482913")).to_be_visible()

        console.get_by_role("button", name="Resolve", exact=True).click()
        expect(console.locator("#conv-status")).to_have_text("Resolved")
        visitor.get_by_role("button", name="Rate 5 out of 5").click()
        expect(banner).to_contain_text("Thanks for your feedback!")

        engine = sqlalchemy.create_engine(db_url)
        with engine.connect() as db:
            status, csat = db.execute(sqlalchemy.text("select status, csat from conversations where id = :id"),
                                      {"id": conversation}).one()
        engine.dispose()
        assert (status, csat) == ("resolved", 5)
    finally:
        visitor_context.close()
        agent_context.close()
