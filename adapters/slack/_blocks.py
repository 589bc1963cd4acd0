"""Render events, answers and lists as Block Kit, built with slack_sdk's models (validated on `to_dict`).

Pure functions: no I/O, no decisions: an event's state, its words and its controls are the core's
`EventView`, laid out here (its lines and labelled rows as rich text, `_rich`; a team decision's copy
is `_team`'s).
Action values are `<request id>|<pick>`, where the pick is `true`/`false` for a bool, `c<index>` for
a choice, `r<round>` for a team decision's Confirm or Reject, or empty for the Respond… and
Delegate… buttons. Every text from a task or a person is shown as written: rich text (`_rich`),
plain text, or escaped where it stands in a message's `text` (`_text`); every list that could grow
is cut to Slack's limits here, with a line saying what was left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    InteractiveElement,
    MarkdownTextObject,
    Option,
    PlainTextObject,
    RichTextElementParts,
    SectionBlock,
    StaticSelectElement,
)

from hitl_chatops.bot.answers import context_rows, display
from hitl_chatops.bot.protocol import Request, format_time
from hitl_chatops.bot.states import Line, State, text_of
from hitl_chatops.bot.text import clip, flyte_note
from hitl_chatops.bot.view import Controls, EventView, anyone_may_answer, event_view

from . import _rich
from ._rich import Rich
from ._text import escape, fit, fits, link, mrkdwn, plain, shown

ANSWER_ACTION = "hitl_answer"  # + "_<n>": ids must be unique within a block
SELECT_ACTION = "hitl_select"
MODAL_ACTION = "hitl_modal"  # + "_<n>" for Approve/Reject buttons that open the modal with the choice made
FORM_ACTION = "hitl_form"
CONFIRM_ACTION = "hitl_confirm"  # a team decision's proposal confirmed
REJECT_ACTION = "hitl_reject"  # a team decision's Reject: opens the reason dialog (`_team.reason_modal`)
DELEGATE_ACTION = "hitl_delegate"  # opens the hand-over dialog (`_team.delegate_modal`)
MODAL_CALLBACK = "hitl_submit"
VALUE_BLOCK = "hitl_value"
VALUE_ACTION = "value"
MAX_BUTTONS = 5
MAX_RADIO = 5  # more choices than this get a select menu
CONTEXT_SHOWN = 20  # rows; the rest is counted, and the web form shows all of it
PENDING_SHOWN = 20
# Slack's limits (Block Kit reference): what no payload we send may exceed.
MAX_OPTIONS = 100  # options in a select menu
FACT_LIMIT = 900  # one fact of a copy (a list of approvers, a reason): three fit a block's 3,000
SECTION_LIMIT = 3000  # characters in a section's text, a context element, or a message's `text`
HEADER_LIMIT = 150
BUTTON_LIMIT = 75  # a button's or an option's text
MESSAGE_BLOCKS = 50
ERROR_LIMIT = 150  # an input block's inline error, clipped (the modal and the listeners)
ICONS = {  # emoji names
    State.CANCELLED: "no_entry_sign",
    State.DEFAULTED: "hourglass",
    State.EXPIRED: "hourglass",
    State.REJECTED: "x",
}


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


def round_pick(round_: int) -> str:
    return f"r{round_}"


def round_of(pick: str) -> int | None:
    """The round a Confirm or Reject was clicked in (the core refuses a stale one), None if not given."""
    if pick.startswith("r") and pick[1:].isdigit() and len(pick) < 10:
        return int(pick[1:])
    return None


# -- people and times ------------------------------------------------------------------------


def date_token(moment: datetime) -> str:
    """A Slack date token (in our own mrkdwn): each reader sees their own time zone; the fallback is UTC."""
    return f"<!date^{int(moment.timestamp())}^{_rich.DATE_FORMAT}|{format_time(moment)}>"


def mention(entry: str) -> str:
    """A `responders` entry in our own mrkdwn: a Slack user or user group id as a mention (the people
    the event asks), anything else as text."""
    match _rich.slack_id(entry):
        case ("user", ident):
            return f"<@{ident}>"
        case ("usergroup", ident):
            return f"<!subteam^{ident}>"
    return escape(entry)


def who_may_answer(request: Request) -> str:
    """The event's `responders`, and a team decision's rules' people (with rules, only they may answer)."""
    entries = [*request.responders, *(entry for rule in request.rules for entry in rule.responders)]
    if anyone_may_answer(request) and not request.rules:
        return "anyone"
    return ", ".join(mention(entry) for entry in dict.fromkeys(entries))


def receipt(view: EventView) -> Rich:
    """What was answered, by whom, when and where: "**Approve** by @ann at … via Slack"."""
    return _rich.say(view.words.receipt, 500)


def event_text(request: Request) -> str:
    """The notification text (and the fallback where blocks cannot be shown)."""
    heading, prompt = plain(request.heading, request.prompt_type), plain(request.prompt, request.prompt_type)
    return fit(f"Input needed: {heading}: {prompt}", SECTION_LIMIT)


def _line(text: str) -> ContextBlock:
    """One small line of our own mrkdwn (the people and values in it escaped by the caller)."""
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, SECTION_LIMIT), verbatim=True)])


# -- the event message -----------------------------------------------------------------------


def event_blocks(request: Request, form_url: str | None) -> list[Block]:
    return [*top(request, form_url), about(request), actions(request, form_url)]


def top(request: Request, form_url: str | None) -> list[Block]:
    """Heading, prompt, details and context: the part every rendering of the event starts with."""
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=clip(plain(request.heading, request.prompt_type), HEADER_LIMIT)))
    ]
    blocks += said(request, request.prompt, form_url)
    blocks += said(request, request.details or "", form_url)
    return blocks + context_blocks(request)


def said(request: Request, text: str, form_url: str | None) -> list[Block]:
    """The prompt or the details as `request.prompt_type` says; past Slack's 3,000 characters,
    cut, with a line pointing to the web form, which shows all of it. Nothing for blank text
    (Slack refuses an empty text object)."""
    if not text.strip():
        return []
    blocks: list[Block] = [SectionBlock(text=shown(text, request.prompt_type, SECTION_LIMIT))]
    if not fits(text, request.prompt_type, SECTION_LIMIT):
        where = link(form_url, "the web form") if form_url else "the web form"
        blocks.append(_line(f"Slack shows the first {SECTION_LIMIT:,} characters; {where} shows all of it."))
    return blocks


def context_blocks(request: Request) -> list[Block]:
    """The event's context as labelled rows of rich text (shown as written), clipped.

    Past `CONTEXT_SHOWN` rows a line says how many more there are; the web form shows them all.
    """
    rows = context_rows(request)
    blocks = _rich.rows(context_shown(rows[:CONTEXT_SHOWN]), CONTEXT_SHOWN)
    if len(rows) > CONTEXT_SHOWN:
        blocks.append(_line(f"…and {len(rows) - CONTEXT_SHOWN} more context fields, not shown here."))
    return blocks


def context_shown(rows: Sequence[tuple[str, str]], limit: int = 300) -> list[Rich]:
    """Context (or answer) rows as labelled rich text rows, each value cut to `limit`."""
    return [_rich.row(label, _rich.literal(clip(text, limit)), label_limit=100) for label, text in rows]


def about(request: Request) -> ContextBlock:
    """Run, deadline, who may answer, and what Flyte says: one small line under the question."""
    parts = []
    run = request.run
    if run.url:
        parts.append(f"Run: {link(run.url, run.run_name or 'open in Flyte')}")
    elif run.run_name:
        parts.append(f"Run: {escape(run.run_name)}")
    parts.append(f"Answer by {date_token(request.deadline)}")
    parts.append(f"Who may answer: {who_may_answer(request)}")
    if note := flyte_note(request):
        parts.append(note)
    return _line(" · ".join(parts))


def actions(request: Request, form_url: str | None, controls: Controls | None = None) -> ActionsBlock:
    """The `controls` the core leaves open (by default, those of the event as asked); the web form
    link only where it takes the answer."""
    rid = request.request_id
    controls = controls or event_view(request).controls
    assert controls is not None, "a pending event has controls"
    elements = _buttons(rid, controls, team=request.team_event)
    if controls.delegate:
        elements.append(ButtonElement(text="Delegate…", action_id=DELEGATE_ACTION, value=action_value(rid)))
    if form_url and controls.form:
        elements.append(ButtonElement(text="Open web form", action_id=FORM_ACTION, url=form_url))
    return ActionsBlock(block_id=f"hitl|{rid}", elements=elements)


def _buttons(rid: str, controls: Controls, *, team: bool = False) -> list[InteractiveElement]:
    """One click answers a scalar bool or a few choices; anything with more to type opens the modal.

    An "approve, with a reason" answer keeps Approve/Reject: they open the modal with that choice made.
    A team decision's Reject (a veto, or a proposal's rejection) opens a dialog asking why; a
    proposal awaits Confirm / Reject, both carrying the round shown.
    """
    if controls.confirm:
        pick = round_pick(controls.round)
        confirm = ButtonElement(
            text="Confirm", action_id=CONFIRM_ACTION, value=action_value(rid, pick), style="primary"
        )
        return [confirm, _reject_button(rid, pick)]
    if controls.approval is not None and team and not controls.typed:
        approve = _approve_reject(rid, ANSWER_ACTION)[0]
        return [approve, _reject_button(rid, round_pick(controls.round))]
    if controls.approval is not None:
        return _approve_reject(rid, MODAL_ACTION if controls.typed else ANSWER_ACTION)
    picks = controls.picks
    if picks and len(picks) <= MAX_BUTTONS:
        return [
            ButtonElement(
                text=clip(display(choice), BUTTON_LIMIT),
                action_id=f"{ANSWER_ACTION}_{i}",
                value=action_value(rid, choice_pick(i)),
            )
            for i, choice in enumerate(picks)
        ]
    if picks and len(picks) <= MAX_OPTIONS:
        options = [
            Option(text=PlainTextObject(text=clip(display(c), BUTTON_LIMIT)), value=action_value(rid, choice_pick(i)))
            for i, c in enumerate(picks)
        ]
        return [StaticSelectElement(action_id=SELECT_ACTION, placeholder="Choose…", options=options)]
    return [_respond_button(rid)]  # something to type, or more choices than a select holds: the modal


def _reject_button(request_id: str, pick: str) -> ButtonElement:
    return ButtonElement(text="Reject…", action_id=REJECT_ACTION, value=action_value(request_id, pick), style="danger")


def _respond_button(request_id: str) -> ButtonElement:
    return ButtonElement(text="Respond…", action_id=MODAL_ACTION, value=action_value(request_id), style="primary")


def _approve_reject(request_id: str, action: str) -> list[InteractiveElement]:
    return [
        ButtonElement(text="Approve", action_id=f"{action}_0", value=action_value(request_id, "true"), style="primary"),
        ButtonElement(text="Reject", action_id=f"{action}_1", value=action_value(request_id, "false"), style="danger"),
    ]


BOOL_PICKS = {"true": True, "false": False}


def chosen(pick: str, choices: Sequence[Any] | None) -> object:
    """The raw answer a control's pick stands for; the core validates it like any other input."""
    if pick in BOOL_PICKS:
        return BOOL_PICKS[pick]
    index = choice_index(pick)
    if index is not None and choices and index < len(choices):
        return choices[index]
    return pick


# -- after the event -------------------------------------------------------------------------


def ended_blocks(view: EventView, form_url: str | None = None) -> list[Block]:
    """The event once it has ended, with no controls: an answer's fields with who, when and via,
    or the state's status line (who cancelled it and why, the default applied, the expiry)."""
    blocks = top(view.request, form_url)
    if view.words.facts:
        rows = [*context_shown(view.answer, 1900), *facts(view.words.facts)]
        return blocks + _rich.rows(rows, MESSAGE_BLOCKS - len(blocks))
    icon = RichTextElementParts.Emoji(name=ICONS[view.state])
    return [*blocks, _rich.block([icon, *_rich.literal(" "), *_rich.say(view.words.status)])]


def facts(rows: Sequence[tuple[str, Line]]) -> list[Rich]:
    """The core's labelled facts ("Approved by", "Rejected") as rich text rows, each cut to `FACT_LIMIT`."""
    return [_rich.row(label, _rich.say_within(line, FACT_LIMIT)) for label, line in rows]


def listed(request: Request, limit: int, *lines: Rich) -> list[Block]:
    """An event in a list: its heading in bold, its prompt (cut to `limit`), then `lines`, as rich text
    (shown as written) in one block; a `"markdown"` prompt stays the author's markdown, in a section of
    its own before the lines."""
    heading = clip(plain(request.heading, request.prompt_type), HEADER_LIMIT)
    if request.prompt_type == "markdown":
        said = f"*{escape(heading)}*\n{mrkdwn(request.prompt, request.prompt_type, limit)}"
        written = SectionBlock(text=MarkdownTextObject(text=said, verbatim=True))
        return [written, _rich.block(*lines)] if any(lines) else [written]
    return [_rich.block(_rich.literal(heading, bold=True), _rich.literal(clip(request.prompt, limit)), *lines)]


def summary_text(view: EventView) -> str:
    """The notification text of the rewritten message (escaped: it is mrkdwn too)."""
    request = view.request
    return fit(f"{plain(request.heading, request.prompt_type)}: {text_of(view.words.summary)}", SECTION_LIMIT)


# -- the slash command -----------------------------------------------------------------------


def pending_blocks(requests: Sequence[Request], form_url: Callable[[str], str]) -> list[Block]:
    """The newest `PENDING_SHOWN` events with their controls (2 blocks each, under Slack's 50)."""
    if not requests:
        return [SectionBlock(text=MarkdownTextObject(text="Nothing is waiting for your answer. :tada:"))]
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=f"*{pending_text(requests)}*"))]
    shown = 0
    for request in requests[:PENDING_SHOWN]:
        due = [*_rich.literal("Answer by "), _rich.date(request.deadline)]
        item = [*listed(request, 500, due), actions(request, form_url(request.request_id))]
        if len(blocks) + len(item) >= MESSAGE_BLOCKS:  # a markdown prompt takes a block more
            break
        blocks += item
        shown += 1
    if len(requests) > shown:
        blocks.append(_line(f"…and {len(requests) - shown} more (newest {shown} shown)."))
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
