"""Adaptive Cards (schema 1.5) for an event, its answer and its end, as plain dicts.

Pure functions of core objects: no Teams SDK here, so cards are easy to test and to validate
against the official schema. Every decision about values stays in the core; a card only asks.

An event card has one input per answer field (`field_input`, the one place a field becomes an
Adaptive Card input). Teams merges the inputs into the action's data, the inputs winning, so the
data's keys live in two namespaces no field name can cross: `hitl.event` (the event answered) and
`hitl.field.<name>` (each input's id); `answer_payload` reads the `{field: raw value}` object the
core parses back out. A bool answered by buttons (a scalar bool, or an "approve, with a reason"
model) is carried by Approve/Reject instead.
Text from people or code (names, values, context) goes in `RichTextBlock`/`TextRun`, which Teams
never reads as markdown; `TextBlock` is kept for our own sentences.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hitl_chatops.bot.answers import (
    MAX_TEXT_LENGTH,
    Accepted,
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
    outcome_label,
    parse_fields,
    prefill,
    schema_of,
)
from hitl_chatops.bot.conditions import flyte_note
from hitl_chatops.bot.protocol import Request, Response, format_time
from hitl_chatops.bot.text import clip, via_name

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
VERB = "hitl.answer"
EVENT_KEY = "hitl.event"
FIELD_PREFIX = "hitl.field."
# Cards posted before the namespaces: `{"hitl": "answer", "request_id": <id>, <field>: <value>, ...}`.
_LEGACY_MARKER, _LEGACY_EVENT_KEY = "hitl", "request_id"
_VERSION = "1.5"
_PROMPT_LIMIT = 3000
_DETAILS_LIMIT = 6000
_VALUE_LIMIT = 300  # a context value or a field of the answer; the web form shows all of it
_CONTEXT_SHOWN = 20
_COMPACT_CHOICES = 5
_MARKDOWN = re.compile(r"([\\`*_\[\]<>#|~])")
# Only what a number input can hold again: any finite number, bounds aside (those are the error).
_ANY_NUMBER = AnswerSchema(fields=[AnswerField(name="n", kind="float", label="n")])

Card = dict[str, Any]
Element = dict[str, Any]


def event_card(
    request: Request,
    form_url: str | None,
    *,
    errors: Mapping[str, str] | None = None,
    error: str | None = None,
    notice: str | None = None,
    typed: object = None,
) -> Card:
    """The question: header, context, facts, one input per field and the answer actions.

    `errors` (field name → message) are shown next to their inputs, with what was `typed` (the
    submitted `{field: value}` object, or a scalar event's value) kept in them; `error` is about
    the answer as a whole; `notice` is shown above the inputs (for example "only X may answer").
    """
    schema = schema_of(request)
    kept = typed if isinstance(typed, Mapping) else {} if typed is None else {"value": typed}
    shown: dict[str, object] = dict(prefill(request))
    shown.update({str(k): v for k, v in kept.items()})
    decision = _decision(schema)
    problems = dict(errors or {})
    body = [*_header(request), *_context(request), _facts(_event_facts(request))]
    if notice:
        body.append(_literal(_run(notice, color="attention", weight="bolder")))
    for answer_field in schema.fields:
        if answer_field is not decision:
            body += field_input(answer_field, shown.get(answer_field.name), problems.pop(answer_field.name, None))
    # What no input shows: the buttons' field (Approve/Reject), or the answer as a whole.
    body += [_text(message, color="attention") for message in [*problems.values(), *filter(None, [error])]]
    if decision is None:
        actions = [_execute(request, "Submit", None, style="positive")]
    else:
        actions = [
            _execute(request, "Approve", {decision.name: True}, style="positive"),
            _execute(request, "Reject", {decision.name: False}),
        ]
    if form_url and not request.responders:
        actions.append({"type": "Action.OpenUrl", "title": "Answer in browser", "url": form_url})
    return _card(body, actions)


def _decision(schema: AnswerSchema) -> AnswerField | None:
    """The bool answered with Approve/Reject buttons: a scalar bool's, or an "approve, with a reason" model's."""
    if not is_approval(schema):
        return None
    return next(f for f in schema.fields if f.kind == "bool")


def field_input(answer_field: AnswerField, value: object, error: str | None = None) -> list[Element]:
    """The one place an answer field becomes an Adaptive Card input (id: `input_id`), with its
    description and, after a refused answer, its error right below it."""
    name = input_id(answer_field.name)
    base: Element = {"id": name, "label": answer_field.label, "isRequired": answer_field.required}
    shown = "" if value is None else value if isinstance(value, str) else input_text(value)
    if answer_field.kind == "bool":  # always a value: the switch's title is its label
        element: Element = {
            "type": "Input.Toggle",
            "id": name,
            "title": answer_field.label,
            "valueOn": "true",
            "valueOff": "false",
            "value": "true" if shown.strip().lower() == "true" else "false",
        }
    elif answer_field.kind == "choice":
        choices = [{"title": field_text(c), "value": input_text(c)} for c in answer_field.choices or []]
        style = "compact" if len(choices) > _COMPACT_CHOICES else "expanded"
        element = {"type": "Input.ChoiceSet", "choices": choices, "style": style, **base}
        element["errorMessage"] = "Choose one."
        if shown in {c["value"] for c in choices}:
            element["value"] = shown
    elif answer_field.kind in ("int", "float"):
        low, high = answer_field.min_value, answer_field.max_value
        element = {"type": "Input.Number", **base, "errorMessage": number_hint(answer_field.kind, low, high)}
        if low is not None:
            element["min"] = _number(low)
        if high is not None:
            element["max"] = _number(high)
        if (kept := _number(shown)) is not None:
            element["value"] = kept
    else:
        limit = answer_field.max_length or MAX_TEXT_LENGTH
        element = {"type": "Input.Text", **base, "maxLength": limit, "isMultiline": answer_field.multiline}
        element["errorMessage"] = "Enter an answer."
        if shown:
            element["value"] = shown[:MAX_TEXT_LENGTH]
    found = [element]
    if answer_field.description:
        found.append(_literal(_run(answer_field.description, isSubtle=True, size="small")))
    if error:
        found.append(_text(error, color="attention"))
    return found


def _number(value: object) -> float | int | None:
    """`value` as a number input holds it, if the core reads it as a finite number; else None."""
    outcome = parse_fields(_ANY_NUMBER, {"n": value})
    if not isinstance(outcome, Accepted):
        return None
    number = float(outcome.value["n"])
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def answered_card(request: Request, response: Response, *, notice: str | None = None) -> Card:
    """The event after its outcome, with no actions: each field's value and who, when and where;
    or who cancelled it and why; or the default applied at the deadline."""
    body = _header(request, subtitle=outcome_label(response))
    body += _context(request)
    if response.cancelled:
        reason = f": {response.reason}" if response.reason else ""
        line = f"Cancelled by {response.responder_label} at {response.responded_text}{reason}"
        body += [_literal(_run(clip(line, _DETAILS_LIMIT), color="attention")), _facts(_run_facts(request))]
    elif response.defaulted:
        value = clip(answer_text(request, response.value), _DETAILS_LIMIT)
        line = f"Expired at {format_time(request.deadline)}: default {value} applied."
        body += [_literal(_run(line, color="warning")), _facts(_run_facts(request))]
    else:
        facts = [
            ("Answered by", escape(response.responder_label)),
            ("When", response.responded_text),
            ("Via", via_name(response.via)),
        ]
        if schema_of(request).scalar:
            facts.insert(0, ("Answer", escape(display(response.value))))
        else:
            body += _rows(describe_answer(request, response.value))
        body.append(_facts(facts + _run_facts(request)))
    if notice:  # the core's words, with names and reasons people typed: never markdown
        body.append(_literal(_run(notice, color="attention")))
    return _card(body, [])


def expired_card(request: Request, *, notice: str | None = None) -> Card:
    body = _header(request, subtitle="Expired")
    body.append(_text(f"This event expired at {format_time(request.deadline)} without an answer.", color="warning"))
    body.append(_facts(_run_facts(request)))
    if notice:  # the core's words, with names and reasons people typed: never markdown
        body.append(_literal(_run(notice, color="attention")))
    return _card(body, [])


def notice_card(title: str, message: str) -> Card:
    """A card carrying one message, when there is no event to show (unknown or unreadable)."""
    return _card([_text(escape(title), size="medium", weight="bolder"), _text(message)], [])


def input_id(field_name: str) -> str:
    """The id of a field's input, and so its key in the action's data."""
    return FIELD_PREFIX + field_name


def answer_payload(data: object) -> tuple[str, dict[str, object]] | None:
    """The request id and the raw answer, `{field: value}`, in a card action's data (Teams merges the
    inputs into it), if it is ours. A scalar event's one field is `value`."""
    if not isinstance(data, dict):
        return None
    if EVENT_KEY in data:
        request_id = data[EVENT_KEY]
        raw = {k.removeprefix(FIELD_PREFIX): v for k, v in data.items() if k.startswith(FIELD_PREFIX)}
    elif data.get(_LEGACY_MARKER) == "answer":  # a card posted before the namespaces
        request_id = data.get(_LEGACY_EVENT_KEY)
        raw = {str(k): v for k, v in data.items() if k not in (_LEGACY_MARKER, _LEGACY_EVENT_KEY)}
    else:
        return None
    return (request_id, raw) if isinstance(request_id, str) else None


def escape(text: str) -> str:
    """Show people's text literally in a `FactSet` (markdown); elsewhere such text goes in a `TextRun`."""
    return _MARKDOWN.sub(r"\\\1", text)


# -- pieces ------------------------------------------------------------------------------


def _card(body: list[Element], actions: list[Element]) -> Card:
    card: Card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": _VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if actions:
        card["actions"] = actions
    return card


def _header(request: Request, subtitle: str | None = None) -> list[Element]:
    title = escape(request.heading) + (f" · {subtitle}" if subtitle else "")
    blocks = [_text(title, size="large", weight="bolder"), _text(clip(request.prompt, _PROMPT_LIMIT))]
    if request.details:
        blocks.append(_text(clip(request.details, _DETAILS_LIMIT), isSubtle=True))
    return blocks


def _context(request: Request) -> list[Element]:
    """The event's context as labelled rows next to the prompt; past `_CONTEXT_SHOWN` rows, a count."""
    rows = context_rows(request)
    found = _rows(rows[:_CONTEXT_SHOWN])
    if len(rows) > _CONTEXT_SHOWN:
        found.append(_text(f"…and {len(rows) - _CONTEXT_SHOWN} more context fields, not shown here.", isSubtle=True))
    return found


def _rows(pairs: list[tuple[str, str]]) -> list[Element]:
    """Label/value rows laid out like a FactSet, in `TextRun`s so values are shown exactly as given."""
    return [
        {
            "type": "ColumnSet",
            "spacing": "none" if i else "default",
            "columns": [
                {"type": "Column", "width": 1, "items": [_literal(_run(clip(label, 100), weight="bolder"))]},
                {"type": "Column", "width": 2, "items": [_literal(_run(clip(text, _VALUE_LIMIT)))]},
            ],
        }
        for i, (label, text) in enumerate(pairs)
    ]


def _text(text: str, **style: Any) -> Element:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _run(text: str, **style: Any) -> Element:
    return {"type": "TextRun", "text": text, **style}


def _literal(*runs: Element) -> Element:
    return {"type": "RichTextBlock", "inlines": list(runs)}


def _facts(facts: list[tuple[str, str]]) -> Element:
    return {"type": "FactSet", "facts": [{"title": title, "value": value} for title, value in facts]}


def _event_facts(request: Request) -> list[tuple[str, str]]:
    who = ", ".join(escape(r) for r in request.responders) if request.responders else "anyone"
    flyte = [("Flyte", text)] if (text := flyte_note(request)) else []
    return [*_run_facts(request), ("Deadline", format_time(request.deadline)), ("Who may answer", who), *flyte]


def _run_facts(request: Request) -> list[tuple[str, str]]:
    run = request.run
    parts = [p for p in (run.project, run.domain, run.run_name) if p]
    name = escape("/".join(parts)) if parts else ""
    if run.url:
        return [("Run", f"[{name or 'open'}]({run.url})")]
    return [("Run", name)] if name else []


def _execute(request: Request, title: str, values: dict[str, object] | None, *, style: str | None = None) -> Element:
    """`Action.Execute` (Universal Actions) with an `Action.Submit` fallback for older clients."""
    data: dict[str, Any] = {EVENT_KEY: request.request_id}
    data.update({input_id(name): value for name, value in (values or {}).items()})
    submit: Element = {"type": "Action.Submit", "title": title, "data": data}
    execute: Element = {"type": "Action.Execute", "title": title, "verb": VERB, "data": data}
    if style:
        submit["style"] = execute["style"] = style
    execute["fallback"] = submit
    return execute
