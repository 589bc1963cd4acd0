"""The Adaptive Card pieces every card is built from, and the one rule for showing text.

Text from a task or a person (titles, prompts, context, choices, answers, names, reasons) goes in
a `RichTextBlock` of `TextRun`s, which Teams never reads as markdown: shown exactly as given, on
every client (an escaped `TextBlock` shows its backslashes on Teams mobile, AdaptiveCards#5590),
and never a link or an `<at>` mention. Only an event that asked for `prompt_type="markdown"` gets
its title, prompt and details in a `TextBlock`, rewritten by `teams_markdown` to what we allow.
A `TextBlock` otherwise carries only our own sentences.
"""

from __future__ import annotations

import json
from typing import Any

from hitl_chatops.bot.protocol import Request
from hitl_chatops.bot.text import clip

from ._markdown import teams_markdown

# Teams refuses a message past about 28 KB (HTTP 413): a card keeps room for the activity around it,
# measured as the Bot Connector client sends it (JSON with non-ASCII characters escaped).
CARD_LIMIT_BYTES = 24 * 1024
VALUE_LIMIT = 300  # a value in a row; the web form shows all of it
_VERSION = "1.5"

Card = dict[str, Any]
Element = dict[str, Any]
Row = tuple[str, str | Element]  # a label and its value: text, or a ready `TextRun` (a link)


def card(body: list[Element], actions: list[Element]) -> Card:
    found: Card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": _VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if actions:
        found["actions"] = actions
    return found


def fits(built: Card) -> bool:
    """Whether Teams takes `built` as a message."""
    return len(json.dumps(built, separators=(",", ":")).encode()) <= CARD_LIMIT_BYTES


def prose(request: Request, text: str, **style: Any) -> Element:
    """The event's title, prompt or details, as its `prompt_type` says: literal, or our markdown subset."""
    if request.prompt_type == "markdown":
        return sentence(teams_markdown(text), **style)
    return literal(run(text, **style))


def sentence(text: str, **style: Any) -> Element:
    """Our own words, in a `TextBlock` (read as markdown by Teams)."""
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def run(text: str, **style: Any) -> Element:
    return {"type": "TextRun", "text": text, **style}


def link(text: str, url: str) -> Element:
    """A `TextRun` people can follow: its text stays literal, whatever it holds."""
    return run(text, selectAction={"type": "Action.OpenUrl", "url": url})


def literal(*runs: Element) -> Element:
    return {"type": "RichTextBlock", "inlines": list(runs)}


def rows(pairs: list[Row]) -> list[Element]:
    """Label/value rows laid out like a FactSet (which Teams reads as markdown), in `TextRun`s."""
    return [
        {
            "type": "ColumnSet",
            "spacing": "none" if i else "default",
            "columns": [
                {"type": "Column", "width": 1, "items": [literal(run(clip(label, 100), weight="bolder"))]},
                {"type": "Column", "width": 2, "items": [literal(_value(value))]},
            ],
        }
        for i, (label, value) in enumerate(pairs)
    ]


def _value(value: str | Element) -> Element:
    return run(clip(value, VALUE_LIMIT)) if isinstance(value, str) else value
