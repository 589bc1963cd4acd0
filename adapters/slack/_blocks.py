"""Render events, answers and lists as Block Kit, built with slack_sdk's models (validated on `to_dict`).

Pure functions: no I/O, no decisions. Action values are `<request id>|<pick>`, where the pick is
`true`/`false` for a bool, `c<index>` for a choice, or empty for the Respond… button. A modal has
one input block per answer field (`field_input`, the one place a field becomes a Block Kit
element); its block id is the field's name (`hitl_value` for a scalar event's only field), so the
core's per-field errors land on exactly those blocks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    InputInteractiveElement,
    InteractiveElement,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from hitl_chatops.bot.answers import (
    MAX_TEXT_LENGTH,
    AnswerField,
    AnswerSchema,
    answer_text,
    context_rows,
    describe_answer,
    display,
    field_text,
    input_text,
    is_approval,
    number_hint,
    prefill,
    schema_of,
)
from hitl_chatops.bot.conditions import flyte_note
from hitl_chatops.bot.protocol import Request, Response, format_time
from hitl_chatops.bot.text import clip, format_number, via_name

ANSWER_ACTION = "hitl_answer"  # + "_<n>": ids must be unique within a block
SELECT_ACTION = "hitl_select"
MODAL_ACTION = "hitl_modal"  # + "_<n>" for Approve/Reject buttons that open the modal with the choice made
FORM_ACTION = "hitl_form"
MODAL_CALLBACK = "hitl_submit"
VALUE_BLOCK = "hitl_value"
VALUE_ACTION = "value"
MAX_BUTTONS = 5
MAX_RADIO = 5  # more choices than this get a select menu
MAX_OPTIONS = 100
FIELDS_PER_SECTION = 10  # Slack's limit
CONTEXT_SHOWN = 20  # two sections; the rest is counted, and the web form shows all of it
PENDING_SHOWN = 20
_SECTION_LIMIT = 3000
ERROR_LIMIT = 150  # an input block's inline error, clipped (the modal and the listeners)


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
    return f"{escape(person.label)} ({via_name(person.platform)})"


def _when(response: Response) -> str:
    return date_token(response.responded_at) if response.responded_at else "an unknown time"


def answered_text(request: Request, response: Response) -> str:
    """What was answered, by whom, when and where: "*Approve* by <@U1> at … via Slack"."""
    value = clip(escape(answer_text(request, response.value)), 500)
    return f"*{value}* by {responder_text(response)} at {_when(response)} via {via_name(response.via)}"


def event_text(request: Request) -> str:
    """The notification text (and the fallback where blocks cannot be shown)."""
    return clip(f"Input needed: {request.heading}: {request.prompt}", _SECTION_LIMIT)


# -- the event message -----------------------------------------------------------------------


def event_blocks(request: Request, form_url: str | None) -> list[Block]:
    return [*_top(request), _about(request), actions(request, form_url)]


def _top(request: Request) -> list[Block]:
    """Heading, prompt, details and context: the part every rendering of the event starts with."""
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=clip(request.heading, 150))),
        SectionBlock(text=MarkdownTextObject(text=clip(request.prompt, _SECTION_LIMIT))),
    ]
    if request.details:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(request.details, _SECTION_LIMIT))))
    return blocks + context_blocks(request)


def context_blocks(request: Request) -> list[Block]:
    """The event's context as labelled section fields (10 per section), escaped and clipped.

    Past `CONTEXT_SHOWN` fields a line says how many more there are; the web form shows them all.
    `verbatim` keeps Slack from turning a value's bare URLs or #names into links.
    """
    rows = context_rows(request)
    shown = [
        MarkdownTextObject(text=f"*{escape(clip(label, 100))}*\n{escape(clip(text, 300))}", verbatim=True)
        for label, text in rows[:CONTEXT_SHOWN]
    ]
    blocks: list[Block] = [SectionBlock(fields=part) for part in _chunks(shown, FIELDS_PER_SECTION)]
    if len(rows) > CONTEXT_SHOWN:
        more = f"…and {len(rows) - CONTEXT_SHOWN} more context fields, not shown here."
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=more)]))
    return blocks


def _chunks(items: Sequence[MarkdownTextObject], size: int) -> list[list[MarkdownTextObject]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _about(request: Request) -> ContextBlock:
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
    """One click answers a scalar bool or a few choices; anything with more to type opens the modal.

    An "approve, with a reason" answer keeps Approve/Reject: they open the modal with that choice made.
    """
    rid = request.request_id
    schema = schema_of(request)
    if not schema.scalar:
        if is_approval(schema):
            return _approve_reject(rid, MODAL_ACTION)
        return [_respond_button(rid)]
    only = schema.fields[0]
    if only.kind == "bool":
        return _approve_reject(rid, ANSWER_ACTION)
    choices = only.choices or []
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
        options = [
            Option(text=PlainTextObject(text=clip(display(c), 75)), value=action_value(rid, choice_pick(i)))
            for i, c in enumerate(choices)
        ]
        return [StaticSelectElement(action_id=SELECT_ACTION, placeholder="Choose…", options=options)]
    return [_respond_button(rid)]


def _respond_button(request_id: str) -> ButtonElement:
    return ButtonElement(text="Respond…", action_id=MODAL_ACTION, value=action_value(request_id), style="primary")


def _approve_reject(request_id: str, action: str) -> list[InteractiveElement]:
    return [
        ButtonElement(text="Approve", action_id=f"{action}_0", value=action_value(request_id, "true"), style="primary"),
        ButtonElement(text="Reject", action_id=f"{action}_1", value=action_value(request_id, "false"), style="danger"),
    ]


# -- after the event -------------------------------------------------------------------------


def answered_blocks(request: Request, response: Response) -> list[Block]:
    """The event's outcome in place of its controls: each field's value with who, when and via;
    or who cancelled it and why; or the default applied at the deadline."""
    if response.cancelled:
        reason = f": {clip(escape(response.reason), 1000)}" if response.reason else ""
        line = f":no_entry_sign: *Cancelled* by {responder_text(response)} at {_when(response)}{reason}"
        return [*_top(request), SectionBlock(text=MarkdownTextObject(text=line))]
    if response.defaulted:
        value = clip(escape(answer_text(request, response.value)), 1000)
        line = f":hourglass: *Expired* at {date_token(request.deadline)}: default *{value}* applied."
        return [*_top(request), SectionBlock(text=MarkdownTextObject(text=line))]
    pairs = [(label, clip(escape(text), 1900)) for label, text in describe_answer(request, response.value)]
    pairs += [
        ("By", responder_text(response)),
        ("When", date_token(response.responded_at) if response.responded_at else "unknown"),
        ("Via", via_name(response.via)),
    ]
    fields = [MarkdownTextObject(text=f"*{escape(clip(label, 75))}*\n{text}") for label, text in pairs]
    return [*_top(request), *(SectionBlock(fields=part) for part in _chunks(fields, FIELDS_PER_SECTION))]


def answered_summary(request: Request, response: Response) -> str:
    """The notification text of the rewritten message."""
    if response.cancelled:
        reason = f": {response.reason}" if response.reason else ""
        text = f"{request.heading}: cancelled by {response.responder_label} at {response.responded_text}{reason}"
    elif response.defaulted:
        text = f"{request.heading}: expired, default {answer_text(request, response.value)} applied"
    else:
        text = (
            f"{request.heading}: answered {answer_text(request, response.value)} by {response.responder_label} "
            f"at {response.responded_text}"
        )
    return clip(text, _SECTION_LIMIT)


def expired_blocks(request: Request) -> list[Block]:
    return [
        *_top(request),
        SectionBlock(
            text=MarkdownTextObject(
                text=f":hourglass: *Expired* at {date_token(request.deadline)} without an answer; "
                "the workflow no longer waits."
            )
        ),
    ]


def expired_summary(request: Request) -> str:
    return clip(f"{request.heading}: expired at {format_time(request.deadline)}", _SECTION_LIMIT)


# -- the modal -------------------------------------------------------------------------------


def modal(request: Request, preset: Mapping[str, object] | None = None) -> View:
    """One input per answer field, pre-filled with the proposal (`initial` or defaults) and `preset`
    (the Approve/Reject click that opened it); `private_metadata` is the request id."""
    schema = schema_of(request)
    values = {**prefill(request), **(preset or {})}
    heading = clip(f"*{escape(request.heading)}*\n{request.prompt}", _SECTION_LIMIT)
    return View(
        type="modal",
        callback_id=MODAL_CALLBACK,
        private_metadata=request.request_id,
        title=PlainTextObject(text="Answer event"),
        submit=PlainTextObject(text="Submit"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=heading)),
            *context_blocks(request),
            *(field_input(f, block_id(schema, f), values.get(f.name)) for f in schema.fields),
        ],
    )


def block_id(schema: AnswerSchema, answer_field: AnswerField) -> str:
    return VALUE_BLOCK if schema.scalar else answer_field.name


def field_input(answer_field: AnswerField, block: str, initial: object) -> InputBlock:
    """The one place an answer field becomes a Block Kit input, with its label, hint and proposal."""
    number = answer_field.kind in ("int", "float")
    hint = number_hint(answer_field.kind, answer_field.min_value, answer_field.max_value) if number else None
    hint = " ".join(part for part in (answer_field.description, hint) if part)
    return InputBlock(
        block_id=block,
        label=clip(answer_field.label, 2000),
        element=_element(answer_field, initial),
        hint=clip(hint, 2000) or None,
        optional=not answer_field.required,
    )


def _element(answer_field: AnswerField, initial: object) -> InputInteractiveElement:
    kind = answer_field.kind
    choices: Sequence[object] = [True, False] if kind == "bool" else answer_field.choices or []
    if choices and len(choices) <= MAX_OPTIONS:
        options = [Option(text=clip(field_text(c), 75), value=_pick_of(c, i)) for i, c in enumerate(choices)]
        chosen_now = next((o for c, o in zip(choices, options, strict=True) if _same(c, initial)), None)
        if kind == "bool" or len(options) <= MAX_RADIO:
            return RadioButtonsElement(action_id=VALUE_ACTION, options=options, initial_option=chosen_now)
        return StaticSelectElement(
            action_id=VALUE_ACTION, placeholder="Choose…", options=options, initial_option=chosen_now
        )
    proposed = input_text(initial) or None
    if kind in ("int", "float"):
        whole = kind == "int"
        return NumberInputElement(
            action_id=VALUE_ACTION,
            is_decimal_allowed=not whole,
            initial_value=proposed,
            min_value=_bound(answer_field.min_value, math.ceil if whole else None),
            max_value=_bound(answer_field.max_value, math.floor if whole else None),
        )
    limit = answer_field.max_length or MAX_TEXT_LENGTH
    return PlainTextInputElement(
        action_id=VALUE_ACTION,
        max_length=limit,
        multiline=answer_field.multiline,
        initial_value=clip(proposed, limit) if proposed else None,
    )


def _pick_of(choice: object, index: int) -> str:
    return input_text(choice) if isinstance(choice, bool) else choice_pick(index)


def _same(choice: object, value: object) -> bool:
    return value is not None and choice == value and type(choice) is type(value)


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


def submitted_answer(schema: AnswerSchema, values: Mapping[str, Any]) -> dict[str, object]:
    """The raw answer in a modal's `view.state.values`: field name → the text typed or the option picked."""
    raw: dict[str, object] = {}
    for answer_field in schema.fields:
        state = (values.get(block_id(schema, answer_field)) or {}).get(VALUE_ACTION) or {}
        option = state.get("selected_option")
        raw[answer_field.name] = (
            chosen(str(option.get("value", "")), answer_field.choices) if option else state.get("value")
        )
    return raw


def field_errors(schema: AnswerSchema, errors: Mapping[str, str], message: str) -> dict[str, str]:
    """The core's per-field messages on their input blocks (`response_action: errors`); a message
    about no field in particular goes on the first input."""
    blocks = {f.name: block_id(schema, f) for f in schema.fields}
    shown = {blocks[name]: clip(text, ERROR_LIMIT) for name, text in errors.items() if name in blocks}
    return shown or {block_id(schema, schema.fields[0]): clip(message, ERROR_LIMIT)}


# -- the slash command -----------------------------------------------------------------------


def pending_blocks(requests: Sequence[Request], form_url: Any) -> list[Block]:
    """The newest `PENDING_SHOWN` events with their controls (2 blocks each, under Slack's 50)."""
    if not requests:
        return [SectionBlock(text=MarkdownTextObject(text="Nothing is waiting for your answer. :tada:"))]
    shown = requests[:PENDING_SHOWN]
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=f"*{pending_text(requests)}*"))]
    for request in shown:
        text = f"*{escape(request.heading)}*\n{clip(request.prompt, 500)}\nAnswer by {date_token(request.deadline)}"
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
