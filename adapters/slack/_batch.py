"""A batch of fan-out events (`bot/batch.py`) as one Slack message: its counts, the first few events
with their context, Approve all / Reject all for yes/no events, and Review one by one.

Pure functions, like `_blocks`: the core's `BatchView` laid out as Block Kit. Action values are
`<batch id>|<pick>` (`true`/`false` for the bulk buttons, empty for Review one by one).
"""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InteractiveElement,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from hitl_chatops.bot.answers import context_rows
from hitl_chatops.bot.batch import BatchView
from hitl_chatops.bot.protocol import Request
from hitl_chatops.bot.text import clip

from . import _blocks, _rich
from ._text import escape, fit, link, mrkdwn, plain

BULK_ACTION = "hitl_batch_all"  # + "_0" (Approve all) / "_1" (Reject all)
REVIEW_ACTION = "hitl_batch_review"
FIELDS_SHOWN = 4  # context fields of each event shown in the message


def batch_blocks(view: BatchView, list_url: str | None) -> list[Block]:
    """The batch's message: heading, prompt, counts, the first events, and the controls left."""
    request = view.request
    heading = clip(plain(request.heading, request.prompt_type), _blocks.HEADER_LIMIT)
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=heading))]
    blocks += _blocks.said(request, request.prompt, list_url)
    blocks.append(SectionBlock(text=MarkdownTextObject(text=f"*{view.counts}*", verbatim=True)))
    for item in view.shown:
        blocks += [DividerBlock(), *_item(item)]
    if view.more:
        blocks.append(_line(f"…and {view.more} more waiting."))
    blocks.append(_line(_about(view, list_url)))
    if view.waiting:
        blocks.append(ActionsBlock(block_id=f"hitl_batch|{view.batch_id}", elements=_controls(view, list_url)))
    return blocks


def batch_text(view: BatchView) -> str:
    """The notification text: "<heading>: 38 waiting, 12 decided"."""
    request = view.request
    return fit(f"Input needed: {plain(request.heading, request.prompt_type)}: {view.counts}", _blocks.SECTION_LIMIT)


def _item(item: Request) -> list[Block]:
    """One waiting event: its details (or prompt) and its first context rows, shown as written and
    clipped (a `"markdown"` prompt as the author's markdown, in a section of its own)."""
    said = item.details or item.prompt
    rows = _blocks.context_shown(context_rows(item)[:FIELDS_SHOWN])
    if item.prompt_type == "markdown":
        written = SectionBlock(text=MarkdownTextObject(text=mrkdwn(said, item.prompt_type, 500), verbatim=True))
        return [written, _rich.block(*rows)] if rows else [written]
    return [_rich.block(_rich.literal(clip(said, 500)), *rows)]


def _about(view: BatchView, list_url: str | None) -> str:
    run = view.request.run
    parts = []
    if run.url:
        parts.append(f"Run: {link(run.url, run.run_name or 'open in Flyte')}")
    elif run.run_name:
        parts.append(f"Run: {escape(run.run_name)}")
    parts.append(f"Who may answer: {_blocks.who_may_answer(view.request)}")
    if list_url and view.waiting:
        parts.append(link(list_url, "all of them on one page"))
    return " · ".join(parts)


def _controls(view: BatchView, list_url: str | None) -> list[InteractiveElement]:
    bid = view.batch_id
    elements: list[InteractiveElement] = []
    if view.bulk:
        elements += [
            ButtonElement(
                text="Approve all",
                action_id=f"{BULK_ACTION}_0",
                value=_blocks.action_value(bid, "true"),
                style="primary",
            ),
            ButtonElement(
                text="Reject all",
                action_id=f"{BULK_ACTION}_1",
                value=_blocks.action_value(bid, "false"),
                style="danger",
            ),
        ]
    elements.append(ButtonElement(text="Review one by one", action_id=REVIEW_ACTION, value=_blocks.action_value(bid)))
    if list_url:
        elements.append(ButtonElement(text="Open list", action_id=_blocks.FORM_ACTION, url=list_url))
    return elements


def _line(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, _blocks.SECTION_LIMIT), verbatim=True)])
