"""The console's Chinese dictionary (bot/api/web/console/zh.json) against its sources: every string the console
writes through t() and every text of index.html has a translation with the same placeholders, t() is only ever
given a literal (so this check sees every string), and no translation is left over from removed text. (The
console in Chinese in a real browser: tests/e2e/browser/test_console_language.py.)"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import bot

CONSOLE = Path(bot.__file__).parent / "api" / "web" / "console"
PLACEHOLDER = re.compile(r"\{(\w+)\}")
CJK = re.compile(r"[\u4e00-\u9fff]")
T_CALL = re.compile(r"(?<![\w.$])t\(\s*")
LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`')
TRANSLATED_ATTRIBUTES = ("placeholder", "title", "aria-label")
SKIPPED_TAGS = {"script", "style", "kbd"}


def _modules() -> list[Path]:
    return sorted(p for p in CONSOLE.glob("*.js") if p.name != "i18n.js")


def _literal_value(literal: str) -> str:
    if literal.startswith("`"):
        return literal[1:-1]
    if literal.startswith("'"):
        literal = '"' + literal[1:-1].replace('\\"', '"').replace('"', '\\"') + '"'
    return json.loads(literal)


def _t_calls(path: Path) -> tuple[list[str], list[str]]:
    """The literal texts given to t() in a module, and the calls that break the rules (as file:line: text)."""
    source = path.read_text(encoding="utf-8")
    texts, broken = [], []
    for call in T_CALL.finditer(source):
        line = source.count("\n", 0, call.start()) + 1
        literal = LITERAL.match(source, call.end())
        rest = source[literal.end():].lstrip() if literal else ""
        if literal is None or not (rest.startswith(",") or rest.startswith(")")):
            broken.append(f"{path.name}:{line}: t() must be given one string literal")
        elif "${" in literal.group():
            broken.append(f"{path.name}:{line}: interpolate with {{placeholders}}, not ${{}}")
        else:
            texts.append(_literal_value(literal.group()))
    return texts, broken


class _PageTexts(HTMLParser):
    """index.html's texts as i18n.js's translatePage sees them: whitespace collapsed, outside kbd/script/style
    and translate="no"."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        skipped = (bool(self.stack) and self.stack[-1][1]) or tag in SKIPPED_TAGS or values.get("translate") == "no"
        if tag not in {"meta", "link", "input", "br", "img"}:
            self.stack.append((tag, skipped))
        if not skipped:
            self.texts += [" ".join(values[a].split()) for a in TRANSLATED_ATTRIBUTES
                           if re.search("[A-Za-z]", values.get(a) or "")]

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if self.stack and not self.stack[-1][1] and self.stack[-1][0] != "title" and re.search("[A-Za-z]", data):
            self.texts.append(" ".join(data.split()))
        elif self.stack and self.stack[-1][0] == "title":
            self.texts.append(" ".join(data.split()))


def _page_texts() -> list[str]:
    parser = _PageTexts()
    parser.feed((CONSOLE / "index.html").read_text(encoding="utf-8"))
    return parser.texts


@pytest.fixture(scope="module")
def chinese() -> dict[str, str]:
    return json.loads((CONSOLE / "zh.json").read_text(encoding="utf-8"))


def test_t_is_only_given_literals():
    broken = [problem for module in _modules() for problem in _t_calls(module)[1]]
    assert not broken, "\n".join(broken)


def test_every_console_text_has_a_chinese_translation(chinese):
    wanted = {text: module.name for module in _modules() for text in _t_calls(module)[0]}
    wanted |= {text: "index.html" for text in _page_texts()}
    missing = sorted(f"{where}: {text!r}" for text, where in wanted.items() if text not in chinese)
    assert not missing, f"{len(missing)} texts have no Chinese:\n" + "\n".join(missing)


def test_translations_are_chinese_with_the_same_placeholders(chinese):
    wrong = [f"{key!r} → {value!r}" for key, value in chinese.items()
             if not CJK.search(value) or set(PLACEHOLDER.findall(key)) != set(PLACEHOLDER.findall(value))]
    assert not wrong, "\n".join(wrong)


def test_no_translation_is_left_over(chinese):
    """A key must be written by the console, or be a fixed error message of the server (serverText): a whole
    string literal of its Python code."""
    used = {text for module in _modules() for text in _t_calls(module)[0]} | set(_page_texts())
    server = "\n".join(p.read_text(encoding="utf-8") for p in (CONSOLE.parents[2]).rglob("*.py"))
    stale = sorted(key for key in chinese if key not in used and f'"{key}"' not in server)
    assert not stale, "\n".join(stale)
