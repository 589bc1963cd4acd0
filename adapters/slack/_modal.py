"""The Respond… modal: one input per answer field, what comes back from it, and what Slack cannot hold.

A modal has one input block per answer field (`field_input`, the one place a field becomes a
Block Kit element); its block id is the field's name (`hitl_value` for a scalar event's only
field), so the core's per-field errors land on exactly those blocks. Slack's limits are checked
before a view is built (`too_big`): an event a modal cannot hold is sent to the web form.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict
from slack_sdk.models.blocks import (
    InputBlock,
    InputInteractiveElement,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    RichTextElementParts,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from hitl_chatops.bot.answers import (
    MAX_TEXT_LENGTH,
    AnswerField,
    AnswerSchema,
    field_text,
    input_text,
    number_hint,
    prefill,
    schema_of,
)
from hitl_chatops.bot.protocol import Request
from hitl_chatops.bot.text import clip, format_number

from . import _rich
from ._blocks import (
    BUTTON_LIMIT,
    ERROR_LIMIT,
    MAX_OPTIONS,
    MAX_RADIO,
    MODAL_CALLBACK,
    VALUE_ACTION,
    VALUE_BLOCK,
    choice_pick,
    chosen,
    top,
)
from ._rich import Rich

NOTE_CALLBACK = "hitl_note"  # a view that only tells the person something: nothing to submit
TITLE = "Answer event"  # Slack: a view title holds 24 characters
# Slack's limits for views and inputs (Block Kit reference).
MODAL_BLOCKS = 100
BLOCK_ID_LIMIT = 255
TEXT_INPUT_LIMIT = 3000  # a plain-text input's max_length (the core's MAX_TEXT_LENGTH stays under it)
LABEL_LIMIT = 2000  # an input's label and hint


def modal(request: Request, preset: Mapping[str, object] | None = None, form_url: str | None = None) -> View:
    """The event, then one input per answer field, pre-filled with the proposal (`initial` or
    defaults) and `preset` (the Approve/Reject click that opened it); `private_metadata` is the
    request id. Call `too_big` first."""
    schema = schema_of(request)
    values = {**prefill(request), **(preset or {})}
    return View(
        type="modal",
        callback_id=MODAL_CALLBACK,
        private_metadata=request.request_id,
        title=PlainTextObject(text=TITLE),
        submit=PlainTextObject(text="Submit"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            *top(request, form_url),
            *(field_input(f, block_id(schema, f), values.get(f.name)) for f in schema.fields),
        ],
    )


def too_big(request: Request) -> str | None:
    """Why a Slack modal cannot hold this event (for the person), or None when it can."""
    schema = schema_of(request)
    if len(top(request, None)) + len(schema.fields) > MODAL_BLOCKS:
        return f"This event asks for {len(schema.fields)} values, more than a Slack dialog can hold."
    if any(len(block_id(schema, f)) > BLOCK_ID_LIMIT for f in schema.fields):
        return f"A field name of this event is longer than Slack allows ({BLOCK_ID_LIMIT} characters)."
    return None


def form_note(request: Request, reason: str, form_url: str) -> Rich:
    """Where to answer an event Slack cannot show, for the one person who clicked: their personal form
    link (`HitlService.form_url(..., person)`), which answers as them until the deadline."""
    return [
        *_rich.literal(f"{reason} Answer it in the web form instead: "),
        RichTextElementParts.Link(url=form_url, text="open the form"),
        *_rich.literal(" (until "),
        _rich.date(request.deadline),
        *_rich.literal("). This link is yours alone: it answers as you, so do not share it."),
    ]


def note_view(note: Rich) -> View:
    """A view that tells the person how their submission ended."""
    return View(
        type="modal",
        callback_id=NOTE_CALLBACK,
        title=PlainTextObject(text=TITLE),
        close=PlainTextObject(text="Close"),
        blocks=[_rich.block(note)],
    )


# -- inputs ----------------------------------------------------------------------------------


def block_id(schema: AnswerSchema, answer_field: AnswerField) -> str:
    return VALUE_BLOCK if schema.scalar else answer_field.name


def field_input(answer_field: AnswerField, block: str, initial: object) -> InputBlock:
    """The one place an answer field becomes a Block Kit input, with its label, hint and proposal."""
    return InputBlock(
        block_id=block,
        label=clip(answer_field.label, LABEL_LIMIT),
        element=_element(answer_field, initial),
        hint=clip(_hint(answer_field), LABEL_LIMIT) or None,
        optional=not answer_field.required,
    )


def _hint(answer_field: AnswerField) -> str:
    """The field's description, then what to enter: the bounds of a number, or that a long list of
    choices (more than a select holds) is typed."""
    if answer_field.kind in ("int", "float"):
        what: str | None = number_hint(answer_field.kind, answer_field.min_value, answer_field.max_value)
    elif len(answer_field.choices or []) > MAX_OPTIONS:
        what = f"Type one of the {len(answer_field.choices or []):,} choices as it is written."
    else:
        what = None
    return " ".join(part for part in (answer_field.description, what) if part)


def _element(answer_field: AnswerField, initial: object) -> InputInteractiveElement:
    kind = answer_field.kind
    choices: Sequence[object] = [True, False] if kind == "bool" else answer_field.choices or []
    if choices and len(choices) <= MAX_OPTIONS:
        options = [Option(text=clip(field_text(c), BUTTON_LIMIT), value=_pick_of(c, i)) for i, c in enumerate(choices)]
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


# -- what comes back -------------------------------------------------------------------------


class _Picked(BaseModel):
    value: str = ""


class _Input(BaseModel):
    """One input's state: the text typed, the option picked, or the person picked (`users_select`)."""

    value: str | None = None
    selected_option: _Picked | None = None
    selected_user: str | None = None


class _State(BaseModel):
    values: dict[str, dict[str, _Input]]


class Submission(BaseModel):
    """The parts of a `view_submission`'s view we read; any other shape is refused (a 400)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    private_metadata: str
    state: _State

    @property
    def request_id(self) -> str:
        return self.private_metadata

    def input_of(self, block: str) -> _Input:
        return self.state.values.get(block, {}).get(VALUE_ACTION) or _Input()

    def typed(self, block: str) -> str | None:
        """The text typed in input `block` (None if empty or absent)."""
        return self.input_of(block).value

    def picked_user(self, block: str) -> str | None:
        """The user id picked in the `users_select` of input `block`."""
        return self.input_of(block).selected_user


def submitted_answer(schema: AnswerSchema, submission: Submission) -> dict[str, object]:
    """The raw answer in a modal's `view.state.values`: field name → the text typed or the option picked."""
    raw: dict[str, object] = {}
    for answer_field in schema.fields:
        state = submission.input_of(block_id(schema, answer_field))
        option = state.selected_option
        raw[answer_field.name] = chosen(option.value, answer_field.choices) if option else state.value
    return raw


def field_errors(schema: AnswerSchema, errors: Mapping[str, str], message: str) -> dict[str, str]:
    """The core's per-field messages on their input blocks (`response_action: errors`); a message
    about no field in particular goes on the first input."""
    blocks = {f.name: block_id(schema, f) for f in schema.fields}
    shown = {blocks[name]: clip(text, ERROR_LIMIT) for name, text in errors.items() if name in blocks}
    return shown or {block_id(schema, schema.fields[0]): clip(message, ERROR_LIMIT)}
