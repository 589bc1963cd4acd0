"""Render events, answers and lists as Block Kit, built with slack_sdk's models (validated on `to_dict`).

Pure functions: no I/O, no decisions. Action values are `<request id>|<pick>`, where the pick is
`true`/`false` for a bool, `c<index>` for a choice, or empty for the Respond… button.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    InteractiveElement,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from hitl_chatops.bot.answers import MAX_TEXT_LENGTH, display, number_hint
from hitl_chatops.bot.conditions import flyte_note
from hitl_chatops.bot.protocol import Request, Response, format_time
from hitl_chatops.bot.text import VIA_NAMES, format_number

ANSWER_ACTION = "hitl_answer"  # + "_<n>": ids must be unique within a block
SELECT_ACTION = "hitl_select"
MODAL_ACTION = "hitl_modal"
FORM_ACTION = "hitl_form"
MODAL_CALLBACK = "hitl_submit"
VALUE_BLOCK = "hitl_value"
VALUE_ACTION = "value"
MAX_BUTTONS = 5
MAX_OPTIONS = 100
PENDING_SHOWN = 20
_SECTION_LIMIT = 3000
_SURFACES = VIA_NAMES  # how people read each `via` (bot/text.py)


# -- values carried by actions ---------------------------------------------------------------


def action_value(request_id: str, pick: str = "") -> str:
    return f"{request_id}|{pick}"


def parse_action_value(value: str) -> tuple[str, str]:
    """`(request id, pick)`; the core checks the id, so nothing here trusts it."""
    request_id, _, pick = value.partition("|")
    return request_id, pick


def choice_pick(index: int) -> str:
    return f"c{index}"


def choice_index(pick: str) -> int | None:
    if pick.startswith("c") and pick[1:].isdigit():
        return int(pick[1:])
    return None


# -- text helpers ----------------------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Text from outside the workflow author (names, values) must not form mentions or links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def date_token(moment: datetime) -> str:
    """A Slack date token: each reader sees their own time zone; the fallback is UTC."""
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{format_time(moment)}>"


def mention(entry: str) -> str:
    """A responder entry as Slack shows it: users and user groups as mentions, others as text."""
    ident = entry.removeprefix("slack:")
    if ident[:1] in ("U", "W") and ident[1:].isalnum() and ident.isupper():
        return f"<@{ident}>"
    if ident[:1] == "S" and ident[1:].isalnum() and ident.isupper():
        return f"<!subteam^{ident}>"
    return escape(entry)


def who_may_answer(request: Request) -> str:
    if not request.responders or "*" in request.responders:
        return "anyone"
    return ", ".join(mention(entry) for entry in request.responders)


def responder_text(response: Response) -> str:
    person = response.responder
    if person is None:
        return escape(response.responder_label)
    if person.platform == "slack" and person.user_id:
        return f"<@{person.user_id}>"
    return f"{escape(person.label)} ({_SURFACES.get(person.platform, person.platform)})"


def answered_text(response: Response) -> str:
    """What was answered, by whom, when and where: "*Approve* by <@U1> at … via Slack"."""
    when = date_token(response.responded_at) if response.responded_at else "an unknown time"
    via = _SURFACES.get(response.via or "", "another surface")
    return f"*{clip(escape(display(response.value)), 500)}* by {responder_text(response)} at {when} via {via}"


def event_text(request: Request) -> str:
    """The notification text (and the fallback where blocks cannot be shown)."""
    return clip(f"Input needed: {request.event_name}: {request.prompt}", _SECTION_LIMIT)


# -- the event message -----------------------------------------------------------------------


def event_blocks(request: Request, form_url: str | None) -> list[Block]:
    return [
        HeaderBlock(text=PlainTextObject(text=clip(request.event_name, 150))),
        *_body(request),
        _context(request),
        actions(request, form_url),
    ]


def _body(request: Request) -> list[Block]:
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=clip(request.prompt, _SECTION_LIMIT)))]
    if request.details:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(request.details, _SECTION_LIMIT))))
    return blocks


def _context(request: Request) -> ContextBlock:
    parts = []
    run = request.run
    if run.url:
        parts.append(f"Run: <{run.url}|{escape(run.run_name or 'open in Flyte')}>")
    elif run.run_name:
        parts.append(f"Run: {escape(run.run_name)}")
    parts.append(f"Answer by {date_token(request.deadline)}")
    parts.append(f"Who may answer: {who_may_answer(request)}")
    if note := flyte_note(request):
        parts.append(note)
    return ContextBlock(elements=[MarkdownTextObject(text=clip(" · ".join(parts), _SECTION_LIMIT))])


def actions(request: Request, form_url: str | None) -> ActionsBlock:
    """The controls of an event; the web form link only where the core accepts web answers."""
    elements = controls(request)
    if form_url and not request.responders:
        elements.append(ButtonElement(text="Open web form", action_id=FORM_ACTION, url=form_url))
    return ActionsBlock(block_id=f"hitl|{request.request_id}", elements=elements)


def controls(request: Request) -> list[InteractiveElement]:
    rid = request.request_id
    if request.data_type == "bool":
        return [
            ButtonElement(
                text="Approve", action_id=f"{ANSWER_ACTION}_0", value=action_value(rid, "true"), style="primary"
            ),
            ButtonElement(
                text="Reject", action_id=f"{ANSWER_ACTION}_1", value=action_value(rid, "false"), style="danger"
            ),
        ]
    choices = request.choices or []
    if choices and len(choices) <= MAX_BUTTONS:
        return [
            ButtonElement(
                text=clip(display(choice), 75),
                action_id=f"{ANSWER_ACTION}_{i}",
                value=action_value(rid, choice_pick(i)),
            )
            for i, choice in enumerate(choices)
        ]
    if choices and len(choices) <= MAX_OPTIONS:
        return [
            StaticSelectElement(
                action_id=SELECT_ACTION, placeholder="Choose…", options=_options(rid, choices, with_id=True)
            )
        ]
    return [ButtonElement(text="Respond…", action_id=MODAL_ACTION, value=action_value(rid), style="primary")]


def _options(request_id: str, choices: Sequence[Any], *, with_id: bool) -> list[Option]:
    return [
        Option(
            text=PlainTextObject(text=clip(display(choice), 75)),
            value=action_value(request_id, choice_pick(i)) if with_id else choice_pick(i),
        )
        for i, choice in enumerate(choices)
    ]


# -- after the event -------------------------------------------------------------------------


def answered_blocks(request: Request, response: Response) -> list[Block]:
    return [
        HeaderBlock(text=PlainTextObject(text=clip(request.event_name, 150))),
        *_body(request),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Answer*\n{clip(escape(display(response.value)), 1900)}"),
                MarkdownTextObject(text=f"*By*\n{responder_text(response)}"),
                MarkdownTextObject(
                    text=f"*When*\n{date_token(response.responded_at) if response.responded_at else 'unknown'}"
                ),
                MarkdownTextObject(text=f"*Via*\n{_SURFACES.get(response.via or '', 'another surface')}"),
            ]
        ),
    ]


def answered_summary(request: Request, response: Response) -> str:
    return clip(
        f"{request.event_name}: answered {display(response.value)} by {response.responder_label} "
        f"at {response.responded_text}",
        _SECTION_LIMIT,
    )


def expired_blocks(request: Request) -> list[Block]:
    return [
        HeaderBlock(text=PlainTextObject(text=clip(request.event_name, 150))),
        *_body(request),
        SectionBlock(
            text=MarkdownTextObject(
                text=f":hourglass: *Expired* at {date_token(request.deadline)} without an answer; "
                "the workflow no longer waits."
            )
        ),
    ]


def expired_summary(request: Request) -> str:
    return clip(f"{request.event_name}: expired at {format_time(request.deadline)}", _SECTION_LIMIT)


# -- the modal -------------------------------------------------------------------------------


def modal(request: Request) -> View:
    """Entry for int, float and str events (and many choices); `private_metadata` is the request id."""
    return View(
        type="modal",
        callback_id=MODAL_CALLBACK,
        private_metadata=request.request_id,
        title=PlainTextObject(text="Answer event"),
        submit=PlainTextObject(text="Submit"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(text=clip(f"*{escape(request.event_name)}*\n{request.prompt}", _SECTION_LIMIT))
            ),
            _input(request),
        ],
    )


def _input(request: Request) -> InputBlock:
    choices = request.choices or []
    if choices and len(choices) <= MAX_OPTIONS:
        element: Any = StaticSelectElement(
            action_id=VALUE_ACTION, placeholder="Choose…", options=_options(request.request_id, choices, with_id=False)
        )
        return InputBlock(block_id=VALUE_BLOCK, label="Your answer", element=element)
    if request.data_type in ("int", "float"):
        whole = request.data_type == "int"
        low, high = request.min_value, request.max_value
        element = NumberInputElement(
            action_id=VALUE_ACTION,
            is_decimal_allowed=not whole,
            min_value=_bound(low, math.ceil if whole else None),
            max_value=_bound(high, math.floor if whole else None),
        )
        return InputBlock(
            block_id=VALUE_BLOCK,
            label="A whole number" if whole else "A number",
            element=element,
            hint=number_hint(request.data_type, low, high),
        )
    element = PlainTextInputElement(action_id=VALUE_ACTION, max_length=MAX_TEXT_LENGTH, multiline=False)
    return InputBlock(block_id=VALUE_BLOCK, label="Your answer", element=element)


def _bound(value: float | None, rounding: Any) -> str | None:
    if value is None:
        return None
    return format_number(rounding(value) if rounding else value)


BOOL_PICKS = {"true": True, "false": False}


def chosen(pick: str, choices: Sequence[Any] | None) -> object:
    """The raw answer a control's pick stands for; the core validates it like any other input."""
    if pick in BOOL_PICKS:
        return BOOL_PICKS[pick]
    index = choice_index(pick)
    if index is not None and choices and index < len(choices):
        return choices[index]
    return pick


# -- the slash command -----------------------------------------------------------------------


def pending_blocks(requests: Sequence[Request], form_url: Any) -> list[Block]:
    """The newest `PENDING_SHOWN` events with their controls (2 blocks each, under Slack's 50)."""
    if not requests:
        return [SectionBlock(text=MarkdownTextObject(text="Nothing is waiting for your answer. :tada:"))]
    shown = requests[:PENDING_SHOWN]
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=f"*{pending_text(requests)}*"))]
    for request in shown:
        text = f"*{escape(request.event_name)}*\n{clip(request.prompt, 500)}\nAnswer by {date_token(request.deadline)}"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(text, _SECTION_LIMIT))))
        blocks.append(actions(request, form_url(request.request_id)))
    if len(requests) > len(shown):
        more = len(requests) - len(shown)
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=f"…and {more} more (newest {len(shown)} shown).")])
        )
    return blocks


def pending_text(requests: Sequence[Request]) -> str:
    """The list's headline, and its notification text."""
    if not requests:
        return "Nothing is waiting for your answer."
    return f"{len(requests)} {'event waits' if len(requests) == 1 else 'events wait'} for your answer"


def help_text(command: str) -> str:
    return (
        f"*{command}* answers human-in-the-loop questions from Flyte workflows.\n"
        f"• `{command}` or `{command} pending`: the events you may answer, newest first, with their buttons.\n"
        f"• `{command} help`: this text.\n"
        "Questions also arrive as messages in their channels; click a button there, or *Respond…* to type a value."
    )
