"""The App Home tab: each person's inbox, with the controls the channel messages have, and what they
decided lately.

`Home.publish` asks the core what waits for the person (`HitlService.inbox`, most urgent first) and
what they decided (`HitlService.recent`, the outcome history searched by responder), lays both out
here (`home_view`, pure) and publishes them (`views.publish`). It runs when the person opens the tab,
after their own action there, and after one they take elsewhere while this replica shows them a Home.
A Home tab has no channel for an ephemeral note, so what a click there did (saved, refused) is a line
at the top of the view it republishes. What tasks and people wrote is rich text, shown as written.

Within Slack's limits by design: 100 blocks a view (`HOME_SHOWN` events of at most `_ITEM_BLOCKS`
blocks each, the rest counted), 3,000 characters a section and 75 a button (`_blocks`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    RichTextElementParts,
    SectionBlock,
)
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from hitl_chatops.bot.answers import context_rows, display, field_text
from hitl_chatops.bot.errors import UserError
from hitl_chatops.bot.history import Search, Span
from hitl_chatops.bot.inbox import Inbox
from hitl_chatops.bot.protocol import OutcomeRecord, Responder, utcnow
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.text import clip, via_name
from hitl_chatops.bot.view import EventView

from . import _blocks, _rich
from ._platform import PLATFORM, api_error
from ._rich import Rich
from ._text import escape

log = logging.getLogger(__name__)
HOME_BLOCKS = 100  # Slack's limit for a Home tab view
HOME_SHOWN = 20  # events shown: 4 blocks each at most, leaving room for the headings and the recent list
RECENT_SHOWN = 5
RECENT_DAYS = 30
_ITEM_BLOCKS = 4
_CONTEXT_SHOWN = 3  # context fields in an event's summary line; the message and the form show them all
_PROMPT_LIMIT = 500
_KEPT = 10_000  # people whose Home this replica published, refreshed after their actions elsewhere


def from_home(body: dict[str, Any]) -> bool:
    """Whether a click came from a Home tab (no message, no channel: `container.type` is "view")."""
    return (body.get("view") or {}).get("type") == "home"


# -- the view --------------------------------------------------------------------------------


def home_view(
    inbox: Inbox,
    recent: Sequence[OutcomeRecord],
    form_url: Callable[[str], str],
    command: str,
    notice: Rich | None = None,
) -> dict[str, Any]:
    """The Home tab: a notice (what the last click did), the events that wait (most urgent first, each
    with its controls), how many more, and what the person decided lately."""
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text="Waiting for you"))]
    if notice:
        blocks.append(
            _rich.block([RichTextElementParts.Emoji(name="information_source"), *_rich.literal(" "), *notice])
        )
    blocks.append(_section(_headline(inbox)))
    for view in inbox.shown:
        blocks += _item(view, form_url(view.request.request_id))
    if inbox.more:
        blocks.append(_line(_more(inbox.more, command)))
    blocks += [DividerBlock(), HeaderBlock(text=PlainTextObject(text="Decided recently"))]
    if recent:
        blocks.append(_rich.block(*map(_decided, recent)))
    else:
        blocks.append(_section(f"Nothing in the last {RECENT_DAYS} days."))
    assert len(blocks) <= HOME_BLOCKS, "HOME_SHOWN leaves room for everything else"
    return View(type="home", blocks=blocks).to_dict()


def note_view(text: str) -> dict[str, Any]:
    """A Home tab that only says `text` (storage could not be read: nothing to list)."""
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text="Waiting for you")), _rich.block(_rich.literal(text))]
    return View(type="home", blocks=blocks).to_dict()


def _headline(inbox: Inbox) -> str:
    if not inbox.total:
        return "Nothing is waiting for your answer. :tada:"
    waits = "event waits" if inbox.total == 1 else "events wait"
    return f"*{inbox.total} {waits} for your answer*, the most urgent first."


def _more(count: int, command: str) -> str:
    return (
        f"…and {count} more, due later: they move up here as you answer these. "
        f"`{escape(command)}` lists your events in any channel."
    )


def _item(view: EventView, form_url: str) -> list[Block]:
    """One event: its heading, prompt and a summary of its context; when it is due (and a team
    decision's progress); its controls, as in its channel message."""
    request = view.request
    due = [*_rich.literal("Answer by "), _rich.date(request.deadline)]
    if view.tally is not None:
        due += [*_rich.literal(" · "), *_rich.say(view.words.status, 300)]
    return [
        *_blocks.listed(request, _PROMPT_LIMIT, _context_summary(view), due),
        _blocks.actions(request, form_url, view.controls),
        DividerBlock(),
    ]


def _context_summary(view: EventView) -> Rich:
    rows = context_rows(view.request)
    shown: Rich = []
    for label, text in rows[:_CONTEXT_SHOWN]:
        shown += [*_rich.literal(" · " if shown else ""), *_rich.literal(f"{clip(label, 40)}:", bold=True)]
        shown += _rich.literal(f" {clip(text, 120)}")
    if len(rows) > _CONTEXT_SHOWN:
        shown += _rich.literal(f" · +{len(rows) - _CONTEXT_SHOWN} more")
    return shown


def _decided(record: OutcomeRecord) -> Rich:
    """One line of the recent list: the event, what was decided, when and where."""
    answer = "Rejected" if record.outcome == "rejected" else _value_text(record.value)
    return [
        *_rich.literal(clip(record.event_name, 100), bold=True),
        *_rich.literal(": "),
        *_rich.literal(clip(answer, 200), bold=True),
        *_rich.literal(" · "),
        _rich.date(record.at),
        *_rich.literal(f" · via {via_name(record.via)}"),
    ]


def _value_text(value: object) -> str:
    """An answer as the history keeps it (no schema with it): a scalar as people read it, fields as pairs."""
    if isinstance(value, dict):
        return " · ".join(f"{key}: {field_text(item)}" for key, item in value.items())
    return display(value)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, _blocks.SECTION_LIMIT), verbatim=True))


def _line(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, _blocks.SECTION_LIMIT), verbatim=True)])


# -- publishing ------------------------------------------------------------------------------


class Home:
    """Publishes people's Home tabs: one publish at a time per person (asked for again meanwhile: one
    more after it, with the latest notice), so a view published last is never an older one."""

    def __init__(self, service: HitlService, command: str) -> None:
        self.service = service
        self.command = command
        self._publishing: set[str] = set()
        self._again: dict[str, Rich | None] = {}
        self._published: OrderedDict[str, None] = OrderedDict()

    async def publish(self, client: AsyncWebClient, user_id: str, notice: Rich | None = None) -> None:
        """Publish `user_id`'s Home now, with `notice` at its top."""
        if user_id in self._publishing:
            if notice is not None or user_id not in self._again:
                self._again[user_id] = notice
            return
        self._publishing.add(user_id)
        try:
            await self._publish(client, user_id, notice)
            while user_id in self._again:
                await self._publish(client, user_id, self._again.pop(user_id))
        finally:
            self._publishing.discard(user_id)

    async def refresh(self, client: AsyncWebClient, user_id: str) -> None:
        """After the person acted elsewhere: republish their Home if this replica has published it."""
        if user_id in self._published:
            await self.publish(client, user_id)

    async def _publish(self, client: AsyncWebClient, user_id: str, notice: Rich | None) -> None:
        person = Responder(platform=PLATFORM, user_id=user_id)
        shown: int | None = None
        try:
            inbox, recent = await asyncio.gather(self.service.inbox(person, shown=HOME_SHOWN), self._recent(person))
            view, shown = home_view(inbox, recent, self.service.form_url, self.command, notice), len(inbox.shown)
        except UserError as error:  # storage unreachable: say so, rather than an empty list
            view = note_view(str(error))
        try:
            await client.views_publish(user_id=user_id, view=view)
        except SlackApiError as error:
            log.warning("slack home not published", extra={"user": user_id, "error": api_error(error)})
            return
        self._published[user_id] = None
        self._published.move_to_end(user_id)
        if len(self._published) > _KEPT:
            self._published.popitem(last=False)
        log.info("slack home published", extra={"user": user_id, "shown": shown})

    async def _recent(self, person: Responder) -> list[OutcomeRecord]:
        """What `person` decided in the last `RECENT_DAYS` days, newest first (answers, then vetoes merged)."""
        search = Search(responder=person, span=Span(since=utcnow() - timedelta(days=RECENT_DAYS)))
        pages = await asyncio.gather(
            *(self.service.recent(kind, limit=RECENT_SHOWN, search=search) for kind in ("completed", "rejected"))
        )
        found = [record for records, _ in pages for record in records]
        return sorted(found, key=lambda record: record.at, reverse=True)[:RECENT_SHOWN]
