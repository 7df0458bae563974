"""Answer templates: what the bot can say for an intent, and how `{slot}` placeholders are filled."""

from __future__ import annotations

import string

from pydantic import BaseModel, ConfigDict, Field


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

    def placeholders(self) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(self.text) if name}

    def render(self, slots: dict[str, str]) -> str:
        return self.text.format_map(slots)


class TemplateBook(BaseModel):
    """Every template plus the default value of every slot they use."""

    model_config = ConfigDict(extra="forbid")
    slots: dict[str, str] = {}
    templates: list[Template]

    def for_intent(self, intent: str) -> list[Template]:
        return [t for t in self.templates if t.intent == intent]

    def by_id(self, template_id: str) -> Template:
        return next(t for t in self.templates if t.id == template_id)
