"""Answer templates: what the bot can say for an intent, and how `{slot}` placeholders are filled.

A placeholder is only ever `{name}`: no format spec, conversion, attribute or index access. Agents write
answers, so their text must never reach `str.format` (`{x:>99999}` would build a huge string, `{x.__class__}`
would read attributes); `{{` and `}}` stay literal braces."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

_PIECE = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")
_BAD_FIELD = re.compile(r"\{[^{}]*\}?")


class PlaceholderError(ValueError):
    """A brace that is not a plain `{name}` placeholder (nor an escaped `{{` / `}}`)."""


def _pieces(text: str):
    """(literal text, placeholder name or None) pairs; PlaceholderError on anything but `{name}`."""
    start = 0
    for match in _PIECE.finditer(text):
        literal = text[start:match.start()]
        piece = match.group(0)
        if match.group(1):
            yield literal, match.group(1)
        elif piece in ("{{", "}}"):
            yield literal + piece[0], None
        elif piece == "}":
            raise PlaceholderError(f"unmatched '}}' at character {match.start() + 1}: write }}}} for a literal brace")
        else:
            bad = _BAD_FIELD.match(text, match.start())
            assert bad is not None, "the piece here is a lone '{', which _BAD_FIELD always matches"
            shown = bad.group(0)
            raise PlaceholderError(f"placeholder {shown!r} at character {match.start() + 1}: only {{name}} "
                                   "(letters, digits, _) is allowed, with no format spec, !conversion, "
                                   ".attribute or [index]; write {{ or }} for a literal brace")
        start = match.end()
    yield text[start:], None


def placeholders(text: str) -> set[str]:
    """The `{name}` placeholders of `text`; PlaceholderError if it has any other kind."""
    return {name for _, name in _pieces(text) if name}


def render(text: str, values: dict[str, str]) -> str:
    """`text` with each `{name}` replaced by `values[name]` (left as written when there is none)."""
    return "".join(literal + (str(values.get(name, f"{{{name}}}")) if name else "")
                   for literal, name in _pieces(text))


class Button(BaseModel):
    """A quick reply: the visitor sees `title`; sending `payload` (e.g. "/order_status") picks that intent."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1)
    payload: str = Field(min_length=1)


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    intent: str = Field(min_length=1)
    examples: list[str] = Field(min_length=1)
    text: str = Field(min_length=1)
    buttons: list[Button] = []
    action: str | None = None

    @field_validator("text")
    @classmethod
    def _plain_placeholders(cls, value: str) -> str:
        placeholders(value)
        return value

    def placeholders(self) -> set[str]:
        return placeholders(self.text)

    def render(self, slots: dict[str, str]) -> str:
        return render(self.text, slots)


class TemplateBook(BaseModel):
    """Every template plus the default value of every slot they use."""

    model_config = ConfigDict(extra="forbid")
    slots: dict[str, str] = {}
    templates: list[Template]

    def for_intent(self, intent: str) -> list[Template]:
        return [t for t in self.templates if t.intent == intent]

    def by_id(self, template_id: str) -> Template:
        return next(t for t in self.templates if t.id == template_id)


@dataclass(frozen=True)
class AnswerEdits:
    """The answers admins changed in the console since the model was distilled, laid over the model's own
    template book when it is served (no redistillation needed): each approved revision replaces the template
    of its id (or adds one), and a retired id is left out."""

    version: tuple[int, int] = (0, 0)
    """(approved revisions, highest approved revision id) in the store: grows whenever an answer changes."""
    templates: tuple[Template, ...] = ()
    retired: frozenset[str] = field(default_factory=frozenset)

    def apply(self, book: TemplateBook) -> TemplateBook:
        changed = {t.id: t for t in self.templates}
        kept = [changed.pop(t.id, t) for t in book.templates if t.id not in self.retired]
        added = [t for t in self.templates if t.id in changed and t.id not in self.retired]
        return TemplateBook(slots=book.slots, templates=kept + added)
