"""The answer-template file (YAML, what data/templates.yml holds): read with every problem named by file and
line, and written back (`bot templates export`), so a team can keep its answers in git.

Shared by distill (which distils with the file) and bot (which imports and exports it)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from bot.model.domain import FORMS
from bot.model.templates import Template, TemplateBook

LINE_KEY = "__line__"
VALUE_LINES_KEY = "__value_lines__"


class DataError(ValueError):
    def __init__(self, path: str | Path, line: int | None, message: str):
        self.path, self.line = str(path), line
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


class _LineLoader(yaml.SafeLoader):
    """A safe YAML loader that remembers the line of every mapping and of each of its values."""

    def construct_mapping(self, node, deep=False):
        mapping = super().construct_mapping(node, deep=deep)
        mapping[LINE_KEY] = node.start_mark.line + 1
        mapping[VALUE_LINES_KEY] = {self.construct_object(k): v.start_mark.line + 1 for k, v in node.value}
        return mapping


def _strip_lines(value):
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k not in (LINE_KEY, VALUE_LINES_KEY)}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value


def read_yaml(path: Path):
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise DataError(path, mark.line + 1 if mark else None, f"malformed YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise DataError(path, None, f"malformed YAML: {exc}") from exc


def load_templates(path: str | Path, intents: set[str] | None = None) -> TemplateBook:
    """Answer templates from YAML; with `intents`, also checks every template names a known intent."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "no such file")
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("templates"), list):
        raise DataError(path, 1, "expected a mapping with a 'templates:' list")
    slots = data.get("slots") or {}
    if not isinstance(slots, dict):
        raise DataError(path, data[VALUE_LINES_KEY].get("slots"), "'slots' must be a mapping of name: default")
    slots = {str(k): str(v) for k, v in _strip_lines(slots).items()}
    templates, seen = [], set()
    for number, raw in enumerate(data["templates"], start=1):
        if not isinstance(raw, dict):
            raise DataError(path, data[VALUE_LINES_KEY]["templates"], f"template {number} is not a mapping")
        line = raw[LINE_KEY]
        try:
            template = Template.model_validate(_strip_lines(raw))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            field = exc.errors()[0]["loc"][0] if exc.errors()[0]["loc"] else None  # e.g. a bad {placeholder}
            raise DataError(path, raw[VALUE_LINES_KEY].get(field, line), f"template {number}: {problems}") from exc
        if template.id in seen:
            raise DataError(path, line, f"duplicate template id '{template.id}'")
        seen.add(template.id)
        if any(not q.strip() for q in template.examples):
            raise DataError(path, line, f"template '{template.id}' has an empty example")
        if template.action is not None and template.action not in FORMS:
            raise DataError(path, line, f"template '{template.id}': unknown action '{template.action}' "
                                        f"(known: {', '.join(sorted(FORMS))})")
        missing = template.placeholders() - set(slots)
        if missing:
            raise DataError(path, line, f"template '{template.id}' uses {sorted(missing)} with no default "
                                        "under 'slots'")
        if intents is not None:
            if template.intent not in intents:
                raise DataError(path, line, f"template '{template.id}' is for unknown intent "
                                            f"'{template.intent}' (no training examples)")
            for button in template.buttons:
                target = button.payload.removeprefix("/")
                if button.payload.startswith("/") and target not in intents:
                    raise DataError(path, line, f"template '{template.id}': button payload '{button.payload}' "
                                                "names an unknown intent")
        templates.append(template)
    return TemplateBook(slots=slots, templates=templates)


def dump_templates(book: TemplateBook) -> str:
    """`book` as the YAML that load_templates reads (fields left at their defaults are left out)."""
    data = {"slots": dict(book.slots),
            "templates": [t.model_dump(exclude_defaults=True) for t in book.templates]}
    return ("# Answer templates, exported by `bot templates export`. {slot} placeholders are filled from the\n"
            "# conversation, else from the defaults under `slots`.\n"
            + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120))
