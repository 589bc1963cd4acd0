"""Adaptive Cards (schema 1.5) for an event, its answer and its end, as plain dicts.

Pure functions of core objects: no Teams SDK here, so cards are easy to test and to validate
against the official schema. Every decision about values stays in the core; a card only asks.
"""

from __future__ import annotations

import re
from typing import Any

from hitl_chatops.bot.answers import MAX_TEXT_LENGTH, display, number_hint
from hitl_chatops.bot.conditions import flyte_note
from hitl_chatops.bot.protocol import Request, Response, format_time
from hitl_chatops.bot.text import via_name

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
VERB = "hitl.answer"
MARKER = "hitl"
INPUT_ID = "value"
_VERSION = "1.5"
_PROMPT_LIMIT = 3000
_DETAILS_LIMIT = 6000
_COMPACT_CHOICES = 5
_MARKDOWN = re.compile(r"([\\`*_\[\]<>#|~])")

Card = dict[str, Any]


def event_card(
    request: Request,
    form_url: str | None,
    *,
    error: str | None = None,
    notice: str | None = None,
    typed: object = None,
) -> Card:
    """The question: header, facts, the input for the data type and the answer actions.

    `error` is shown next to the input (an invalid value), with `typed` kept in the input;
    `notice` is shown above the actions (for example "only X may answer").
    """
    body = _header(request)
    body.append(_facts(_event_facts(request)))
    if notice:
        body.append(_text(notice, color="attention", weight="bolder"))
    actions: list[dict[str, Any]] = []
    if request.data_type == "bool":
        actions += [_execute(request, "Approve", True, style="positive"), _execute(request, "Reject", False)]
        if error:
            body.append(_text(error, color="attention"))
    else:
        body.append(_input(request, typed))
        if error:
            body.append(_text(error, color="attention"))
        actions.append(_execute(request, "Submit", None, style="positive"))
    if form_url and not request.responders:
        actions.append({"type": "Action.OpenUrl", "title": "Answer in browser", "url": form_url})
    return _card(body, actions)


def answered_card(request: Request, response: Response, *, notice: str | None = None) -> Card:
    """The event after its answer: the value, who gave it, when and where."""
    body = _header(request, subtitle="Answered")
    facts = [
        ("Answer", escape(display(response.value))),
        ("Answered by", escape(response.responder_label)),
        ("When", response.responded_text),
        ("Via", _via_name(response.via)),
    ]
    body.append(_facts(facts + _run_facts(request)))
    if notice:
        body.append(_text(notice, color="attention"))
    return _card(body, [])


def expired_card(request: Request, *, notice: str | None = None) -> Card:
    body = _header(request, subtitle="Expired")
    body.append(_text(f"This event expired at {format_time(request.deadline)} without an answer.", color="warning"))
    body.append(_facts(_run_facts(request)))
    if notice:
        body.append(_text(notice, color="attention"))
    return _card(body, [])


def notice_card(title: str, message: str) -> Card:
    """A card carrying one message, when there is no event to show (unknown or unreadable)."""
    return _card([_text(escape(title), size="medium", weight="bolder"), _text(message)], [])


def answer_payload(data: object) -> tuple[str, object] | None:
    """The request id and raw value in a card action's data (inputs are merged into it), if it is ours."""
    if not isinstance(data, dict) or data.get(MARKER) != "answer":
        return None
    request_id = data.get("request_id")
    if not isinstance(request_id, str):
        return None
    return request_id, data.get(INPUT_ID)


def escape(text: str) -> str:
    """Show people's text literally: card text is markdown, answers and names are not."""
    return _MARKDOWN.sub(r"\\\1", text)


# -- pieces ------------------------------------------------------------------------------


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> Card:
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


def _header(request: Request, subtitle: str | None = None) -> list[dict[str, Any]]:
    title = escape(request.event_name) + (f" · {subtitle}" if subtitle else "")
    blocks = [_text(title, size="large", weight="bolder"), _text(_clip(request.prompt, _PROMPT_LIMIT))]
    if request.details:
        blocks.append(_text(_clip(request.details, _DETAILS_LIMIT), isSubtle=True))
    return blocks


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _facts(facts: list[tuple[str, str]]) -> dict[str, Any]:
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


def _input(request: Request, typed: object) -> dict[str, Any]:
    base: dict[str, Any] = {"id": INPUT_ID, "label": "Your answer", "isRequired": True}
    if request.choices:
        choices = [{"title": display(c), "value": str(c)} for c in request.choices]
        style = "compact" if len(choices) > _COMPACT_CHOICES else "expanded"
        field = {"type": "Input.ChoiceSet", "choices": choices, "style": style, **base}
        field["errorMessage"] = "Choose one."
        if typed is not None and str(typed) in {c["value"] for c in choices}:
            field["value"] = str(typed)
        return field
    if request.data_type in ("int", "float"):
        field = {
            "type": "Input.Number",
            **base,
            "errorMessage": number_hint(request.data_type, request.min_value, request.max_value),
        }
        if request.min_value is not None:
            field["min"] = _number(request.min_value)
        if request.max_value is not None:
            field["max"] = _number(request.max_value)
        kept = _number(typed)
        if kept is not None:
            field["value"] = kept
        return field
    field = {
        "type": "Input.Text",
        **base,
        "maxLength": MAX_TEXT_LENGTH,
        "isMultiline": True,
        "errorMessage": "Enter an answer.",
    }
    if isinstance(typed, str):
        field["value"] = typed[:MAX_TEXT_LENGTH]
    return field


def _number(typed: object) -> float | int | None:
    """What a person typed, if the number input can show it again (it only holds numbers)."""
    if isinstance(typed, bool):
        return None
    if isinstance(typed, int | float):
        return typed
    if isinstance(typed, str):
        try:
            number = float(typed.strip())
        except ValueError:
            return None
        if number != number or number in (float("inf"), float("-inf")):
            return None
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    return None


def _execute(request: Request, title: str, value: bool | None, *, style: str | None = None) -> dict[str, Any]:
    """`Action.Execute` (Universal Actions) with an `Action.Submit` fallback for older clients."""
    data: dict[str, Any] = {MARKER: "answer", "request_id": request.request_id}
    if value is not None:
        data[INPUT_ID] = value
    submit: dict[str, Any] = {"type": "Action.Submit", "title": title, "data": data}
    execute: dict[str, Any] = {"type": "Action.Execute", "title": title, "verb": VERB, "data": data}
    if style:
        submit["style"] = execute["style"] = style
    execute["fallback"] = submit
    return execute


def _via_name(via: str | None) -> str:
    names = {"slack": "Slack", "teams": "Microsoft Teams", "web": "web form", "api": "API"}
    return names.get(via or "", via_name(via) if via else "unknown")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
