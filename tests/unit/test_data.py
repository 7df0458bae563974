"""Loading intents and templates, and the errors that name the file and line of a problem."""

from __future__ import annotations

import pytest

from distill.data import DataError, check_known_intents, load_examples, load_templates
from tests.helpers.constants import DATA, SHARED


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_jsonl_csv_and_rasa_give_the_same_examples(tmp_path):
    jsonl = write(tmp_path, "a.jsonl", '{"text": "where is my parcel", "intent": "order_status"}\n\n'
                                       '{"text": "hi there", "intent": "greeting"}\n')
    csv = write(tmp_path, "a.csv", 'text,label\n"where is my parcel",order_status\nhi there,greeting\n')
    rasa = write(tmp_path, "nlu.yml", 'version: "3.1"\nnlu:\n- intent: order_status\n  examples: |\n'
                                      '    - where is my [parcel](item)\n- intent: greeting\n  examples: |\n'
                                      '    - hi there\n- synonym: parcel\n  examples: |\n    - package\n')
    expected = [("where is my parcel", "order_status"), ("hi there", "greeting")]
    for path in (jsonl, csv, rasa):
        assert [(e.text, e.intent) for e in load_examples(path)] == expected


def test_banking77_csv_loads_with_its_category_column():
    examples = load_examples(SHARED / "banking77" / "test.csv")
    assert len(examples) == 3080 and len({e.intent for e in examples}) == 77


@pytest.mark.parametrize("name, text, line, message", [
    ("bad.csv", "text,intent,extra\nhello,greeting,x\n", 1, "unknown column"),
    ("bad.csv", "text,intent\nhello,greeting\n   ,greeting\n", 3, "empty 'text'"),
    ("bad.jsonl", '{"text": "hi", "intent": "greeting"}\n{"text": "", "intent": "greeting"}\n', 2, "empty"),
    ("bad.jsonl", '{"text": "hi", "intent": "greeting", "lang": "en"}\n', 1, "unknown column"),
    ("bad.jsonl", '{"text": "hi", "intent": "greeting"}\n{"text": "hi"\n', 2, "not valid JSON"),
    ("bad.jsonl", '{"text": 3, "intent": "greeting"}\n', 1, "must be a string"),
    ("nlu.yml", "nlu:\n- intent: greeting\n  examples: |\n    - hi\n- intent: thanks\n  examples: ''\n", 5,
     "has no examples"),
    ("nlu.yml", "nlu:\n- intent: greeting\n  examples: |\n    - hi\n    -\n", 5, "empty 'example'"),
    ("nlu.yml", "nlu:\n- intent: greeting\n  examples: [unclosed\n", 4, "malformed YAML"),
])
def test_bad_intent_files_name_file_and_line(tmp_path, name, text, line, message):
    path = write(tmp_path, name, text)
    with pytest.raises(DataError, match=message) as info:
        load_examples(path)
    assert info.value.line == line and str(info.value).startswith(f"{path}:{line}:")


def test_test_data_with_an_intent_missing_from_training_is_refused(tmp_path):
    path = write(tmp_path, "t.jsonl", '{"text": "hi", "intent": "greeting"}\n{"text": "x", "intent": "nope"}\n')
    with pytest.raises(DataError, match="'nope' has no training examples") as info:
        check_known_intents(path, load_examples(path), {"greeting"})
    assert info.value.line == 2


TEMPLATE = """slots:
  shop: Northwind
templates:
  - id: hello
    intent: greeting
    examples: ["hi"]
    text: "Welcome to {shop}!"
    buttons:
      - {title: Track, payload: /order_status}
  - id: where
    intent: order_status
    examples: ["where is my order"]
    text: "Here is {order}"
"""


def test_templates_name_the_line_of_each_problem(tmp_path):
    path = write(tmp_path, "t.yml", TEMPLATE)
    with pytest.raises(DataError, match=r"uses \['order'\] with no default") as info:
        load_templates(path)
    assert info.value.line == 10
    ok = write(tmp_path, "ok.yml", TEMPLATE.replace("{order}", "{shop}"))
    book = load_templates(ok, {"greeting", "order_status"})
    assert book.by_id("hello").render(book.slots) == "Welcome to Northwind!"
    with pytest.raises(DataError, match="'/order_status' names an unknown intent") as info:
        load_templates(ok, {"greeting"})
    assert info.value.line == 4  # the button of 'hello' points at it
    with pytest.raises(DataError, match="malformed YAML") as info:
        load_templates(write(tmp_path, "broken.yml", "templates:\n  - id: x\n   intent: [\n"))
    assert info.value.line == 3
    with pytest.raises(DataError, match="text: Field required") as info:
        load_templates(write(tmp_path, "missing.yml", "templates:\n  - id: x\n    intent: greeting\n"
                                                       "    examples: [hi]\n"))
    assert info.value.line == 2


def test_demo_data_is_complete():
    train, test = load_examples(DATA / "train.jsonl"), load_examples(DATA / "test.jsonl")
    intents = {e.intent for e in train}
    assert len(intents) >= 25
    assert all(sum(e.intent == i for e in train) >= 40 for i in intents)
    assert {e.intent for e in test} == intents
    assert not {e.text.lower() for e in train} & {e.text.lower() for e in test}
    book = load_templates(DATA / "templates.yml", intents)
    assert {t.intent for t in book.templates} == intents
