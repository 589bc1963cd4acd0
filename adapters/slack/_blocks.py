"""Render events, answers and lists as Block Kit, built with slack_sdk's models (validated on `to_dict`).

Pure functions: no I/O, no decisions: an event's state, its words and its controls are the core's
`EventView`, laid out here (`say` writes its lines as mrkdwn; a team decision's copy is `_team`'s).
Action values are `<request id>|<pick>`, where the pick is `true`/`false` for a bool, `c<index>` for
a choice, `r<round>` for a team decision's Confirm or Reject, or empty for the Respond… and
Delegate… buttons. Every text from a task or a person goes through `_text` (escaped,
or shown as plain text); every list that could grow is cut to Slack's limits here, with a line
saying what was left out.
"""

from __future__ import annotations

import re
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
    SectionBlock,
    StaticSelectElement,
)

from hitl_chatops.bot.answers import context_rows, display
from hitl_chatops.bot.protocol import Request, format_time
from hitl_chatops.bot.states import Answer, Line, Mention, Part, Said, State, Strong, When, Who, text_of
from hitl_chatops.bot.text import clip, flyte_note, via_name
from hitl_chatops.bot.view import Controls, EventView, anyone_may_answer, event_view

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
CONTEXT_SHOWN = 20  # two sections; the rest is counted, and the web form shows all of it
PENDING_SHOWN = 20
# Slack's limits (Block Kit reference): what no payload we send may exceed.
MAX_OPTIONS = 100  # options in a select menu
FIELDS_PER_SECTION = 10
FIELD_LIMIT = 2000  # characters in one section field
FACT_LIMIT = 900  # one fact of a copy (a list of approvers, a reason): three fit a section's 3,000
SECTION_LIMIT = 3000  # characters in a section's text, a context element, or a message's `text`
HEADER_LIMIT = 150
BUTTON_LIMIT = 75  # a button's or an option's text
MESSAGE_BLOCKS = 50
ERROR_LIMIT = 150  # an input block's inline error, clipped (the modal and the listeners)
ICONS = {
    State.CANCELLED: ":no_entry_sign:",
    State.DEFAULTED: ":hourglass:",
    State.EXPIRED: ":hourglass:",
    State.REJECTED: ":x:",
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

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")


def date_token(moment: datetime) -> str:
    """A Slack date token: each reader sees their own time zone; the fallback is UTC."""
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{format_time(moment)}>"


def mention(entry: str) -> str:
    """A `responders` entry as Slack shows it: a Slack user or user group id as a mention (the
    people the event asks), anything else as text."""
    ident = entry.removeprefix("slack:")
    if _USER_ID.fullmatch(ident):
        return f"<@{ident}>"
    if GROUP_ID.fullmatch(ident):
        return f"<!subteam^{ident}>"
    return escape(entry)


def who_may_answer(request: Request) -> str:
    """The event's `responders`, and a team decision's rules' people (with rules, only they may answer)."""
    entries = [*request.responders, *(entry for rule in request.rules for entry in rule.responders)]
    if anyone_may_answer(request) and not request.rules:
        return "anyone"
    return ", ".join(mention(entry) for entry in dict.fromkeys(entries))


def person_text(who: Who, *, quiet: bool = False) -> str:
    """Who answered: the Slack user Slack named (a mention; by name when `quiet`, as in a new message,
    where a mention would notify them), or the name given elsewhere, escaped."""
    person = who.person
    if person is None:
        return escape(who.text)
    if person.platform == "slack" and _USER_ID.fullmatch(person.user_id):
        return escape(clip(person.user_name, 200)) if quiet and person.user_name else f"<@{person.user_id}>"
    return f"{escape(clip(person.label, 200))} ({via_name(person.platform)})"


def say(line: Line, limit: int = 1000, *, quiet: bool = False) -> str:
    """A line of the core's words as mrkdwn: people as mentions where Slack knows them, times as date
    tokens, answers in bold, and what people chose or typed escaped and cut to `limit`.

    `quiet`: for a new message (a thread reply), where every mention notifies: only the line's
    `Mention` parts mention; the people in `Who` parts are named (a Slack user without a name
    stays a mention: Slack shows nothing else for them).
    """
    return "".join(_part(part, limit, quiet) for part in line)


def say_within(line: Line, limit: int, *, part_limit: int = 300) -> str:
    """`say(line)` in at most `limit` characters: past it, cut before one of our own words (where a
    list of people or times goes on, never inside a mention or a date token) and end with how many
    people were left out ("…and 12 more")."""
    shown = [_part(part, part_limit, False) for part in line]
    if sum(map(len, shown)) <= limit:
        return "".join(shown)
    for cut in range(len(line) - 1, 0, -1):
        if not isinstance(line[cut], str):
            continue
        left = sum(isinstance(part, Who | Mention) for part in line[cut:])
        head = "".join(shown[:cut]).rstrip(" ,;:")
        tail = f" …and {left} more" if left else " …"
        if len(head) + len(tail) <= limit:
            return head + tail
    return fit(text_of(line), limit)


def _part(part: Part, limit: int, quiet: bool) -> str:
    if isinstance(part, Strong):
        return f"*{escape(part.text)}*"
    if isinstance(part, Who):
        return person_text(part, quiet=quiet)
    if isinstance(part, When):
        return date_token(part.moment) if part.moment else escape(part.text)
    if isinstance(part, Answer):
        return f"*{fit(part.text, limit)}*"
    if isinstance(part, Said):
        return fit(part.text, limit)
    if isinstance(part, Mention):
        return mention(part.text)
    return escape(part)


def receipt_text(view: EventView) -> str:
    """What was answered, by whom, when and where: "*Approve* by <@U1> at … via Slack"."""
    return say(view.words.receipt, 500)


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
    """The event's context as labelled section fields (10 per section), escaped and clipped.

    Past `CONTEXT_SHOWN` fields a line says how many more there are; the web form shows them all.
    """
    rows = context_rows(request)
    shown_rows = [field(label, fit(text, 300), label_limit=100) for label, text in rows[:CONTEXT_SHOWN]]
    blocks = sections(shown_rows, len(shown_rows))
    if len(rows) > CONTEXT_SHOWN:
        blocks.append(_line(f"…and {len(rows) - CONTEXT_SHOWN} more context fields, not shown here."))
    return blocks


def field(label: str, text: str, *, label_limit: int = BUTTON_LIMIT) -> MarkdownTextObject:
    """A labelled section field; `text` is mrkdwn already made safe. `verbatim` keeps Slack from
    turning a value's bare URLs, #names or @-words into links or mentions."""
    return MarkdownTextObject(text=clip(f"*{fit(label, label_limit)}*\n{text}", FIELD_LIMIT), verbatim=True)


def sections(fields: Sequence[MarkdownTextObject], room: int) -> list[Block]:
    """`fields` as sections of up to 10 and up to 3,000 characters, in at most `room` blocks; a last
    line counts what did not fit."""
    parts: list[list[MarkdownTextObject]] = []
    for one in fields:
        last = parts[-1] if parts else None
        if last is None or len(last) == FIELDS_PER_SECTION or _length(last) + len(one.text) > SECTION_LIMIT:
            parts.append([one])
        else:
            last.append(one)
    if len(parts) <= room:
        return [SectionBlock(fields=part) for part in parts]
    kept = parts[: max(room - 1, 0)]
    left = len(fields) - sum(len(part) for part in kept)
    return [SectionBlock(fields=part) for part in kept] + [_line(f"…and {left} more fields, not shown here.")]


def _length(fields: Sequence[MarkdownTextObject]) -> int:
    return sum(len(one.text) for one in fields)


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
        fields = [field(label, fit(text, 1900)) for label, text in view.answer]
        fields += [field(label, say_within(line, FACT_LIMIT)) for label, line in view.words.facts]
        return blocks + sections(fields, MESSAGE_BLOCKS - len(blocks))
    line = f"{ICONS[view.state]} {say(view.words.status)}"
    return [*blocks, SectionBlock(text=MarkdownTextObject(text=line, verbatim=True))]


def summary_text(view: EventView) -> str:
    """The notification text of the rewritten message (escaped: it is mrkdwn too)."""
    request = view.request
    return fit(f"{plain(request.heading, request.prompt_type)}: {text_of(view.words.summary)}", SECTION_LIMIT)


# -- the slash command -----------------------------------------------------------------------


def pending_blocks(requests: Sequence[Request], form_url: Callable[[str], str]) -> list[Block]:
    """The newest `PENDING_SHOWN` events with their controls (2 blocks each, under Slack's 50)."""
    if not requests:
        return [SectionBlock(text=MarkdownTextObject(text="Nothing is waiting for your answer. :tada:"))]
    shown_now = requests[:PENDING_SHOWN]
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=f"*{pending_text(requests)}*"))]
    for request in shown_now:
        heading = fit(plain(request.heading, request.prompt_type), HEADER_LIMIT)
        prompt = mrkdwn(request.prompt, request.prompt_type, 500)
        text = f"*{heading}*\n{prompt}\nAnswer by {date_token(request.deadline)}"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=text, verbatim=True)))
        blocks.append(actions(request, form_url(request.request_id)))
    if len(requests) > len(shown_now):
        more = len(requests) - len(shown_now)
        blocks.append(_line(f"…and {more} more (newest {len(shown_now)} shown)."))
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
