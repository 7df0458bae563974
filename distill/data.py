"""Loading and validating training data: intent examples (JSONL, CSV, Rasa nlu.yml); answer templates are read
by bot.model.template_file (re-exported here).

Every problem is a `DataError` that names the file and the line (or CSV row), so a user can fix it.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from bot.model.template_file import LINE_KEY, VALUE_LINES_KEY, read_yaml
from bot.model.template_file import DataError as DataError  # re-exported: the loaders' one error type
from bot.model.template_file import load_templates as load_templates  # re-exported beside the other loaders

LABEL_COLUMNS = ("intent", "label", "category")
_RASA_ENTITY = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    line: int = 0
    """Where it came from (line of the file, or CSV row's line), for error messages."""


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
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("nlu"), list):
        raise DataError(path, 1, "a Rasa NLU file needs a top-level 'nlu:' list")
    examples = []
    for item in data["nlu"]:
        if not isinstance(item, dict) or "intent" not in item:
            continue  # synonyms, regexes and lookup tables carry no intent examples
        line = item[LINE_KEY]
        intent = _check_text(path, line, item["intent"], "intent")
        block = item.get("examples") or ""
        if not isinstance(block, str):
            raise DataError(path, line, f"intent '{intent}': 'examples' must be a block of '- ' lines")
        first_line = item[VALUE_LINES_KEY].get("examples", line) + 1
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
