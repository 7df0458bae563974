"""The console in Chinese in a real browser against a real server: a browser set to Chinese gets every page in
Chinese (no English left in the console's own text, no string the dictionary lacks), server errors it knows
are translated, and the language picker's choice sticks and switches back. (The dictionary against the
sources: tests/unit/test_console_strings.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.helpers.clients import Visitor, login
from tests.helpers.console import row
from tests.helpers.constants import AGENT_PASSWORD, CHROMIUM, SCREENSHOTS

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
expect.set_options(timeout=10_000)

HANDOFF = "I want to talk to a real person please"

# Every visible text of the page and its translated attributes, except what the server wrote (messages,
# intents, answers, names, versions, reports), which stays as written.
VISIBLE_TEXTS = """() => {
  const content = `.bubble, .preview, .chip, .answer-id, .answer-text, .diff, .report-text, .example, dd, .version,
    .quick, #intent-answer-examples, kbd, option, [translate='no'], #me, #conv-title, #answer-editor-title,
    #intent-detail-title, #report-title, .ranking, .tile-value, .axis text, .x-tick, .y-tick`;
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, parent = node.parentElement;
    if (!/[A-Za-z]/.test(node.data) || parent.closest(content) || !parent.checkVisibility()) continue;
    texts.push(node.data.trim());
  }
  for (const element of document.querySelectorAll("[placeholder], [title], [aria-label]")) {
    if (element.closest(content) || !element.checkVisibility()) continue;
    for (const name of ["placeholder", "title", "aria-label"]) {
      const value = element.getAttribute(name);
      if (value && /[A-Za-z]/.test(value)) texts.push(value);
    }
  }
  return texts;
}"""
WORD = re.compile(r"(?<![\w-])[A-Za-z][\w-]*")  # a word starts with a letter: in "101bcb" there is none
PLACEHOLDER = re.compile(r"\{\w+\}")
# Names that stay as they are in a Chinese interface too.
KEPT = {"API", "CPU", "CSAT", "CSV", "JSON", "Lines", "ONNX", "PyTorch", "UTC", "Ctrl", "Enter"}


def english_left(page: Page, data: set[str]) -> list[str]:
    """Visible texts with a word of three letters or more that is neither data the server sent (an intent, an
    answer's id, a name) nor a kept name. Codes with digits (v0001, p50, int8, a visitor's id) and {placeholders}
    are not words."""
    return [text for text in page.evaluate(VISIBLE_TEXTS)
            if any(len(word) >= 3 and not re.search(r"\d", word) and word not in KEPT and word not in data
                   for word in WORD.findall(PLACEHOLDER.sub("", text)))]


def test_a_chinese_browser_gets_every_console_page_in_chinese(browser, admin_server):
    url = admin_server
    visitor = Visitor(url)
    answer = visitor.say("how much does shipping cost?")
    assert visitor.put(f"/messages/{answer['replies'][0]['id']}/feedback", {"value": "down"}).status_code == 204
    visitor.say(HANDOFF)
    ada = login(url, "ada")
    data = {intent["name"] for intent in ada.get("/intents/overview").json()}
    data |= {answer["template"]["id"] for answer in ada.get("/answers").json()}
    data |= {"Ada", "Alice", "Bob", "alice", "bob", "ada"}

    context = browser.new_context(locale="zh-CN", viewport={"width": 1440, "height": 900})
    warnings, errors = [], []
    try:
        page = context.new_page()
        page.on("console", lambda message: warnings.append(message.text) if message.type == "warning" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{url}/console/")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page).to_have_title("客服控制台")
        page.get_by_label("用户名").fill("ada")
        page.get_by_label("密码", exact=True).fill("not the password")
        page.get_by_role("button", name="登录").click()
        expect(page.locator("#login-error")).to_have_text("用户名或密码错误")  # the server's error, translated
        assert english_left(page, data) == []
        page.get_by_label("密码", exact=True).fill(AGENT_PASSWORD)
        page.get_by_role("button", name="登录").click()
        expect(page.locator("#live-status")).to_have_text("已连接")

        row(page, visitor.session).click()
        expect(page.locator("#owner")).to_contain_text("访客正在等待客服")
        page.get_by_role("button", name="接管").click()
        expect(page.locator("#owner")).to_contain_text("由您处理")
        page.get_by_label("回复访客").fill("您好！")
        page.get_by_role("button", name="发送").click()
        expect(page.locator("#transcript")).to_contain_text("您好！")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "console-zh-inbox.png"))
        left = {"收件箱": english_left(page, data)}

        page.get_by_role("tab", name="审核").click()
        expect(page.locator("#review-list .review-item").first).to_be_visible()
        left["审核"] = english_left(page, data)
        page.get_by_role("tab", name="提议").click()
        expect(page.locator("#proposals-empty")).to_have_text("没有提议。")
        left["提议"] = english_left(page, data)
        page.get_by_role("tab", name="意图").click()
        page.locator('tr[data-intent="shipping_cost"]').get_by_role("button", name="shipping_cost").click()
        expect(page.locator("#intent-detail")).to_contain_text("客服提议的示例")
        left["意图"] = english_left(page, data)
        page.get_by_role("tab", name="回答").click()
        page.locator(".answer-row").first.click()
        expect(page.locator("#answer-state")).to_contain_text("修订 0")
        left["回答"] = english_left(page, data)
        page.get_by_role("tab", name="快捷回复").click()
        page.get_by_role("button", name="新建回复").click()
        expect(page.get_by_label("快捷词")).to_be_visible()
        left["快捷回复"] = english_left(page, data)
        page.get_by_role("tab", name="模型").click()
        expect(page.locator("#models-table")).to_contain_text("已上线")
        left["模型"] = english_left(page, data)
        page.get_by_role("tab", name="仪表盘").click()
        expect(page.locator("#chart-conversations .axis-title").first).to_have_text("日期（UTC）")
        left["仪表盘"] = english_left(page, data)
        page.screenshot(path=str(SCREENSHOTS / "console-zh.png"), full_page=True)

        assert {tab: texts for tab, texts in left.items() if texts} == {}
        assert [w for w in warnings if w.startswith("untranslated")] == []
        assert errors == []

        page.locator("#app .language-picker").select_option("en")  # the choice reloads and sticks
        expect(page.get_by_role("tab", name="Inbox")).to_be_visible()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.reload()
        expect(page.get_by_role("tab", name="Dashboard")).to_be_visible()
    finally:
        context.close()


def test_an_english_browser_gets_english_until_chinese_is_chosen(browser, admin_server):
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        page.goto(f"{admin_server}/console/")
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        assert "Log in" in english_left(page, set())  # what the Chinese test asserts away can be seen
        page.locator(".login-card .language-picker").select_option("zh")
        expect(page.get_by_role("button", name="登录")).to_be_visible()
        expect(page.get_by_label("用户名")).to_be_visible()
        page.reload()  # the choice is kept, over the browser's English
        expect(page.get_by_role("button", name="登录")).to_be_visible()
    finally:
        context.close()
