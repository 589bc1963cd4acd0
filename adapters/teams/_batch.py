"""A batch of fan-out events (`bot/batch.py`) as one Adaptive Card: its counts, the first few events
with their context, Approve all / Reject all for yes/no events, and the form's list page to review
them one by one.

Pure functions, like `_cards`. The bulk actions carry `hitl.batch` (the batch id) and `hitl.all`
(true or false) under their own verb, so no event's answer can be mistaken for them.
"""

from __future__ import annotations

from typing import Any

from hitl_chatops.bot.answers import context_rows
from hitl_chatops.bot.batch import BatchView
from hitl_chatops.bot.text import clip

from ._elements import Card, Element, Row, card, prose, rows, sentence

BATCH_VERB = "hitl.batch"
BATCH_KEY = "hitl.batch"
ALL_KEY = "hitl.all"
_FIELDS_SHOWN = 4
_PROMPT_LIMIT = 1000


def batch_card(view: BatchView, list_url: str | None, *, notice: str | None = None) -> Card:
    """The batch: heading, prompt, counts, the first waiting events, and the controls left."""
    request = view.request
    body: list[Element] = [
        prose(request, clip(request.heading, 300), size="large", weight="bolder"),
        prose(request, clip(request.prompt, _PROMPT_LIMIT)),
        sentence(f"**{view.counts}**"),
    ]
    if notice:
        body.append(sentence(clip(notice, 500), color="accent"))
    for item in view.shown:
        body.append(prose(item, clip(item.details or item.prompt, 300), separator=True))
        body += rows(list[Row](context_rows(item)[:_FIELDS_SHOWN]))
    if view.more:
        body.append(sentence(f"…and {view.more} more waiting.", isSubtle=True))
    actions: list[Element] = []
    if view.bulk:
        actions += [_all(view, "Approve all", True, "positive"), _all(view, "Reject all", False, "destructive")]
    if list_url and view.waiting:
        actions.append({"type": "Action.OpenUrl", "title": "Review one by one", "url": list_url})
    return card(body, actions)


def batch_payload(data: object) -> tuple[str, bool] | None:
    """The batch id and the choice (Approve all: True) in a bulk action's data, if it is one."""
    if not isinstance(data, dict):
        return None
    batch, choice = data.get(BATCH_KEY), data.get(ALL_KEY)
    return (batch, choice) if isinstance(batch, str) and isinstance(choice, bool) else None


def _all(view: BatchView, title: str, choice: bool, style: str) -> Element:
    """`Action.Execute` with an `Action.Submit` fallback, as an event's own buttons."""
    data: dict[str, Any] = {BATCH_KEY: view.batch_id, ALL_KEY: choice}
    submit: Element = {"type": "Action.Submit", "title": title, "data": data, "style": style}
    return {
        "type": "Action.Execute",
        "title": title,
        "verb": BATCH_VERB,
        "data": data,
        "style": style,
        "fallback": submit,
    }
