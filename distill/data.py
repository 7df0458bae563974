"""Loading and validating training data: intent examples (JSONL, CSV, Rasa nlu.yml) and answer templates.

Every problem is a `DataError` that names the file and the line (or CSV row), so a user can fix it.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from bot.model.domain import FORMS
from bot.model.templates import Template, TemplateBook

LABEL_COLUMNS = ("intent", "label", "category")
_LINE = "__line__"
_VALUE_LINES = "__value_lines__"
_RASA_ENTITY = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


class DataError(ValueError):
    def __init__(self, path: str | Path, line: int | None, message: str):
        self.path, self.line = str(path), line
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    line: int = 0
    """Where it came from (line of the file, or CSV row's line), for error messages."""


class _LineLoader(yaml.SafeLoader):
    """A safe YAML loader that remembers the line of every mapping and of each of its values."""

    def construct_mapping(self, node, deep=False):
        mapping = super().construct_mapping(node, deep=deep)
        mapping[_LINE] = node.start_mark.line + 1
        mapping[_VALUE_LINES] = {self.construct_object(k): v.start_mark.line + 1 for k, v in node.value}
        return mapping


def _strip_lines(value):
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k not in (_LINE, _VALUE_LINES)}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value


def _read_yaml(path: Path):
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise DataError(path, mark.line + 1 if mark else None, f"malformed YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise DataError(path, None, f"malformed YAML: {exc}") from exc


def _check_text(path: Path, line: int, text, what: str = "text") -> str:
    if not isinstance(text, str):
        raise DataError(path, line, f"'{what}' must be a string, not {type(text).__name__}")
    if not text.strip():
        raise DataError(path, line, f"empty '{what}'")
    return text.strip()


def _load_jsonl(path: Path) -> list[Example]:
    examples = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, line_no, f"not valid JSON: {exc.msg}") from exc
        if not isinstance(record, dict):
            raise DataError(path, line_no, 'each line must be an object {"text": ..., "intent": ...}')
        unknown = sorted(set(record) - {"text", "intent"})
        if unknown:
            raise DataError(path, line_no, f"unknown column(s) {unknown}; expected 'text' and 'intent'")
        for key in ("text", "intent"):
            if key not in record:
                raise DataError(path, line_no, f"missing '{key}'")
        examples.append(Example(_check_text(path, line_no, record["text"]),
                                _check_text(path, line_no, record["intent"], "intent"), line_no))
    return examples


def _load_csv(path: Path, label_column: str | None) -> list[Example]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        if "text" not in columns:
            raise DataError(path, 1, f"no 'text' column (columns: {columns})")
        label = label_column or next((c for c in LABEL_COLUMNS if c in columns), None)
        if label is None or label not in columns:
            raise DataError(path, 1, f"no label column (expected {label_column or ' or '.join(LABEL_COLUMNS)})")
        unknown = [c for c in columns if c not in ("text", label)]
        if unknown:
            raise DataError(path, 1, f"unknown column(s) {unknown}; expected 'text' and '{label}'")
        examples = []
        for row in reader:
            line = reader.line_num
            if None in row:
                raise DataError(path, line, "more fields than columns in the header")
            examples.append(Example(_check_text(path, line, row["text"] or ""),
                                    _check_text(path, line, row[label] or "", label), line))
    return examples


def _load_rasa(path: Path) -> list[Example]:
    data = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("nlu"), list):
        raise DataError(path, 1, "a Rasa NLU file needs a top-level 'nlu:' list")
    examples = []
    for item in data["nlu"]:
        if not isinstance(item, dict) or "intent" not in item:
            continue  # synonyms, regexes and lookup tables carry no intent examples
        line = item[_LINE]
        intent = _check_text(path, line, item["intent"], "intent")
        block = item.get("examples") or ""
        if not isinstance(block, str):
            raise DataError(path, line, f"intent '{intent}': 'examples' must be a block of '- ' lines")
        first_line = item[_VALUE_LINES].get("examples", line) + 1
        found = 0
        for offset, raw in enumerate(block.splitlines()):
            if not raw.strip():
                continue
            if not raw.lstrip().startswith("-"):
                raise DataError(path, first_line + offset, "each example must start with '- '")
            text = _RASA_ENTITY.sub(r"\1", raw.lstrip()[1:].strip())
            examples.append(Example(_check_text(path, first_line + offset, text, "example"), intent,
                                    first_line + offset))
            found += 1
        if not found:
            raise DataError(path, line, f"intent '{intent}' has no examples")
    return examples


def load_examples(path: str | Path, label_column: str | None = None) -> list[Example]:
    """Labelled intent examples from `.jsonl`, `.csv` or a Rasa `.yml`/`.yaml` NLU file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "no such file")
    loaders = {".jsonl": _load_jsonl, ".csv": lambda p: _load_csv(p, label_column),
               ".yml": _load_rasa, ".yaml": _load_rasa}
    if path.suffix.lower() not in loaders:
        raise DataError(path, None, f"unknown format '{path.suffix}'; use .jsonl, .csv or Rasa .yml")
    examples = loaders[path.suffix.lower()](path)
    if not examples:
        raise DataError(path, None, "no examples")
    return examples


def load_messages(path: str | Path) -> list[str]:
    """Unlabelled messages (e.g. production logs): `.txt` one per line, or the `text` field/column of
    `.jsonl`/`.csv` (any other fields are ignored)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "no such file")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        messages = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    elif suffix == ".jsonl":
        messages = []
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(path, line_no, f"not valid JSON: {exc.msg}") from exc
                if not isinstance(record, dict) or "text" not in record:
                    raise DataError(path, line_no, "each line needs a 'text' field")
                messages.append(_check_text(path, line_no, record["text"]))
    elif suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if "text" not in (reader.fieldnames or []):
                raise DataError(path, 1, f"no 'text' column (columns: {reader.fieldnames})")
            messages = [row["text"].strip() for row in reader if (row["text"] or "").strip()]
    else:
        raise DataError(path, None, f"unknown format '{path.suffix}'; use .txt, .jsonl or .csv")
    if not messages:
        raise DataError(path, None, "no messages")
    return messages


def check_known_intents(path: str | Path, examples: list[Example], intents: set[str]) -> None:
    """Validation and test examples must name intents that the training data teaches."""
    for example in examples:
        if example.intent not in intents:
            raise DataError(path, example.line, f"intent '{example.intent}' has no training examples")


def load_templates(path: str | Path, intents: set[str] | None = None) -> TemplateBook:
    """Answer templates from YAML; with `intents`, also checks every template names a known intent."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "no such file")
    data = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("templates"), list):
        raise DataError(path, 1, "expected a mapping with a 'templates:' list")
    slots = data.get("slots") or {}
    if not isinstance(slots, dict):
        raise DataError(path, data[_VALUE_LINES].get("slots"), "'slots' must be a mapping of name: default")
    slots = {str(k): str(v) for k, v in _strip_lines(slots).items()}
    templates, seen = [], set()
    for number, raw in enumerate(data["templates"], start=1):
        if not isinstance(raw, dict):
            raise DataError(path, data[_VALUE_LINES]["templates"], f"template {number} is not a mapping")
        line = raw[_LINE]
        try:
            template = Template.model_validate(_strip_lines(raw))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            field = exc.errors()[0]["loc"][0] if exc.errors()[0]["loc"] else None  # e.g. a bad {placeholder}
            raise DataError(path, raw[_VALUE_LINES].get(field, line), f"template {number}: {problems}") from exc
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
