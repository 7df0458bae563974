"""Placeholders in answers (bot/model/templates.py) are only ever `{name}`: anything else is refused, in a
template and, with file and line, in data/; rendering never formats what it fills in. (At the API, against a
real server: tests/e2e/test_proposals.py.)"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.model.templates import PlaceholderError, Template, placeholders, render
from distill.data import DataError, load_templates
from tests.helpers.constants import HOSTILE_PLACEHOLDERS as HOSTILE
from tests.helpers.constants import ROOT


@pytest.mark.parametrize("answer", HOSTILE)
def test_a_placeholder_is_only_a_plain_name(answer):
    with pytest.raises(PlaceholderError, match="only {name}"):
        placeholders(f"Write to {answer} please")
    with pytest.raises(ValidationError, match="only {name}"):
        Template(id="t", intent="i", examples=["x"], text=answer)


def test_rendering_never_formats_what_it_fills_in():
    assert placeholders("Mail {support_email} or {{literally}}") == {"support_email"}
    assert render("Mail {support_email} {{x}}", {"support_email": "{0.__class__}"}) == "Mail {0.__class__} {x}"
    assert render("{shop_name}", {}) == "{shop_name}"  # no value: left as written, no KeyError
    with pytest.raises(PlaceholderError, match="unmatched"):
        placeholders("a } alone")


def test_a_bad_placeholder_in_the_data_templates_names_file_and_line(tmp_path):
    path = tmp_path / "templates.yml"
    path.write_text('slots:\n  shop: Northwind\ntemplates:\n  - id: hello\n    intent: greeting\n'
                    '    examples: ["hi"]\n    text: "Welcome to {shop:>99999}!"\n')
    with pytest.raises(DataError, match=r"template 1: text: .*placeholder '\{shop:>99999\}'.*only \{name\}") as info:
        load_templates(path)
    assert info.value.line == 7 and str(info.value).startswith(f"{path}:7: ")
    assert load_templates(ROOT / "data" / "templates.yml").templates  # the shipped templates are all plain
