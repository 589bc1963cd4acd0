"""Adaptive Cards (schema 1.5) for an event, its answer and its end, as plain dicts.

Pure functions of core objects: no Teams SDK here, so cards are easy to test and to validate
against the official schema. Every decision about values stays in the core; a card only asks, and
lays out the core's `EventView` (the state, its words, the controls that remain). How text is shown
(never markdown unless the event asked for it) is `_elements`' one rule.

An event card has one input per answer field (`field_input`, the one place a field becomes an
Adaptive Card input). Teams merges the inputs into the action's data, the inputs winning, so the
data's keys live in two namespaces no field name can cross: `hitl.event` (the event answered) and
`hitl.field.<name>` (each input's id); `answer_payload` reads the `{field: raw value}` object the
core parses back out. A bool answered by buttons (a scalar bool, or an "approve, with a reason"
model) is carried by Approve/Reject instead.

A card past Teams' size limit would be refused: an event's card then leaves out what only informs
(context, details, descriptions), and if it still does not fit, sends the person to the web form:
the shared link when anyone may answer, else "Get my answer link" (`LINK_VERB`), whose invoke reply
(shown to the person who pressed alone) carries their personal link (`link_card`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hitl_chatops.bot.answers import (
    MAX_TEXT_LENGTH,
    AnswerField,
    context_rows,
    field_text,
    finite_number,
    input_text,
    number_hint,
    prefill,
    schema_of,
)
from hitl_chatops.bot.protocol import Request, format_time
from hitl_chatops.bot.states import State, text_of
from hitl_chatops.bot.text import clip, flyte_note, whole
from hitl_chatops.bot.view import Controls, EventView, event_view

from ._decision import ACT_KEY, ROUND_KEY, Act, decision_rows, handover, reason_input, status_block
from ._elements import Card, Element, Row, card, fits, link, literal, prose, rows, run, sentence
from ._markdown import is_plain

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
VERB = "hitl.answer"
EVENT_KEY = "hitl.event"
LINK_VERB = "hitl.link"  # Get my answer link: data {LINK_KEY: request id}
LINK_KEY = "hitl.link"
FIELD_PREFIX = "hitl.field."
# Cards posted before the namespaces: `{"hitl": "answer", "request_id": <id>, <field>: <value>, ...}`.
_LEGACY_MARKER, _LEGACY_EVENT_KEY = "hitl", "request_id"
_HEADING_LIMIT = 300
_PROMPT_LIMIT = 3000
_LEAN_PROMPT_LIMIT = 500
_DETAILS_LIMIT = 6000
_CONTEXT_SHOWN = 20
_FEWER_ROWS = (20, 5, 0)  # an answer's rows on a lean card, fewer until it fits
_COMPACT_CHOICES = 5
# The colour of each ended state's status line.
COLORS = {
    State.CANCELLED: "attention",
    State.DEFAULTED: "warning",
    State.EXPIRED: "warning",
    State.REJECTED: "attention",
}
_LEAN_NOTE = "Shortened to fit a Teams card: the details, context and field descriptions are left out."


def event_card(
    request: Request,
    form_url: str | None,
    *,
    errors: Mapping[str, str] | None = None,
    error: str | None = None,
    notice: str | None = None,
    typed: object = None,
    view: EventView | None = None,
) -> Card:
    """The question: header, context, facts, one input per field and the answer actions; for a team
    decision under way (`view`, as the core has it now), its progress, votes and history too, and the
    controls left (`_decision`).

    `errors` (field name → message) are shown next to their inputs, with what was `typed` (the
    submitted `{field: value}` object, or a scalar event's value) kept in them; `error` is about
    the answer as a whole; `notice` is shown above the inputs (for example "only X may answer").
    Past Teams' size limit: a lean card, else one that sends the person to the web form.
    """
    view = view or event_view(request)
    for lean in (False, True):
        built = _question(view, form_url, errors or {}, error, notice, typed, lean=lean)
        if fits(built):
            return built
    return _too_large(view, form_url, notice)


def _question(
    view: EventView,
    form_url: str | None,
    errors: Mapping[str, str],
    error: str | None,
    notice: str | None,
    typed: object,
    *,
    lean: bool,
) -> Card:
    request, controls = view.request, _controls(view)
    team = view.tally is not None
    kept = typed if isinstance(typed, Mapping) else {} if typed is None else {"value": typed}
    shown: dict[str, object] = dict(prefill(request))
    shown.update({str(k): v for k, v in kept.items()})
    decision = controls.approval
    problems = dict(errors)
    body = _header(request, subtitle=view.words.label if team else None, lean=lean)
    body += [sentence(_LEAN_NOTE, isSubtle=True)] if lean else _context(request)
    body += rows(_event_facts(view))
    if team:
        body.append(status_block(view.words.status, _LEAN_PROMPT_LIMIT if lean else _DETAILS_LIMIT))
        body += rows(decision_rows(view, lean=lean))
    if notice:
        body.append(literal(run(notice, color="attention", weight="bolder")))
    for answer_field in schema_of(request).fields if not controls.confirm else ():
        if decision is None or answer_field.name != decision.name:
            value, problem = shown.get(answer_field.name), problems.pop(answer_field.name, None)
            body += field_input(answer_field, value, problem, describe=not lean)
    if team and (controls.confirm or (decision is not None and not controls.typed)):
        body.append(reason_input(confirm=controls.confirm))
    # What no input shows: the buttons' field (Approve/Reject), a reason, or the answer as a whole.
    body += [_problem(message) for message in [*problems.values(), *filter(None, [error])]]
    actions = _answer_actions(view)
    if controls.delegate:
        actions.append(handover(_execute(request, "Hand over", None, act="delegate")))
    if form_url and controls.form:
        actions.append(_open_form(form_url))
    return card(body, actions)


def _answer_actions(view: EventView) -> list[Element]:
    """Approve/Reject (a vote, on a team decision), Confirm/Reject of a proposal (in its round), or
    Submit (Propose, on a team decision)."""
    request, controls = view.request, _controls(view)
    if controls.confirm:
        return [
            _execute(request, "Confirm", None, style="positive", act="confirm", round_=controls.round),
            _execute(request, "Reject", None, act="reject", round_=controls.round),
        ]
    if (decision := controls.approval) is not None:
        return [
            _execute(request, "Approve", {decision.name: True}, style="positive"),
            _execute(request, "Reject", {decision.name: False}),
        ]
    return [_execute(request, "Propose" if view.tally is not None else "Submit", None, style="positive")]


def _too_large(view: EventView, form_url: str | None, notice: str | None = None) -> Card:
    """The event when even its lean card is past Teams' limit: why, and where to answer instead: the
    shared form link when anyone may answer; else each person asks for their own (`LINK_VERB`), since
    the card is seen by everyone in the conversation."""
    request = view.request
    fields = len(schema_of(request).fields)
    why = f"This event asks for {fields} fields: too many to answer on a Teams card."
    body = [*_header(request, lean=True), *rows(_event_facts(view))]
    if view.tally is not None:
        body.append(status_block(view.words.status, _LEAN_PROMPT_LIMIT))
    if notice:
        body.append(literal(run(notice, color="attention", weight="bolder")))
    if form_url and _controls(view).form:
        return card([*body, sentence(f"{why} Answer it in the browser.")], [_open_form(form_url)])
    told = f"{why} Answer it in the browser with a link of your own: it answers as you."
    # No Action.Submit fallback (a client without Execute leaves the action out): a Submit's reply
    # would be a message the whole conversation sees.
    data = {LINK_KEY: request.request_id}
    get_link = {"type": "Action.Execute", "title": "Get my answer link", "verb": LINK_VERB, "data": data}
    return card([*body, sentence(told)], [get_link])


def link_card(request: Request, form_url: str) -> Card:
    """The reply to "Get my answer link", which Teams shows to the person who pressed it alone: their
    personal form link (`HitlService.form_url(..., person)`)."""
    told = (
        f"Your answer link is ready. It answers as you until {format_time(request.deadline)}: "
        "it is yours alone, so do not share it."
    )
    return card([*_header(request, lean=True), sentence(told)], [_open_form(form_url)])


def link_payload(data: object) -> str | None:
    """The request id in a "Get my answer link" action's data, if it is ours."""
    request_id = data.get(LINK_KEY) if isinstance(data, dict) else None
    return request_id if isinstance(request_id, str) else None


def _controls(view: EventView) -> Controls:
    assert view.controls is not None, "an event card asks only while the event is open"
    return view.controls


def _open_form(form_url: str) -> Element:
    return {"type": "Action.OpenUrl", "title": "Answer in browser", "url": form_url}


def field_input(
    answer_field: AnswerField, value: object, error: str | None = None, *, describe: bool = True
) -> list[Element]:
    """The one place an answer field becomes an Adaptive Card input (id: `input_id`), with its
    description (if `describe`) and, after a refused answer, its error right below it."""
    name = input_id(answer_field.name)
    base: Element = {"id": name, "label": answer_field.label, "isRequired": answer_field.required}
    shown = "" if value is None else value if isinstance(value, str) else input_text(value)
    if answer_field.kind == "bool":  # always a value
        element: Element = {"type": "Input.Toggle", "id": name, "valueOn": "true", "valueOff": "false"}
        element["value"] = "true" if shown.strip().lower() == "true" else "false"
        # Teams reads a switch's title as markdown: a label that would not read literally goes above it.
        element |= {"title": answer_field.label} if is_plain(answer_field.label) else {**base, "title": "Yes"}
    elif answer_field.kind == "choice":
        choices = [{"title": field_text(c), "value": input_text(c)} for c in answer_field.choices or []]
        # Teams reads radio buttons' titles as markdown, a drop-down's never.
        expanded = len(choices) <= _COMPACT_CHOICES and all(is_plain(c["title"]) for c in choices)
        element = {"type": "Input.ChoiceSet", "choices": choices, "style": "expanded" if expanded else "compact"}
        element |= {**base, "errorMessage": "Choose one."}
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
    if answer_field.description and describe:
        found.append(literal(run(answer_field.description, isSubtle=True, size="small")))
    if error:
        found.append(_problem(error))
    return found


def _number(value: object) -> float | int | None:
    """`value` as a number input holds it, if the core reads it as a finite number; else None."""
    number = finite_number(value)
    return None if number is None else whole(number)


def ended_card(view: EventView, *, notice: str | None = None) -> Card:
    """The event once it has ended, with no actions: each field's value and who, when and where, or
    the state's status line (who cancelled it and why, the default applied, the expiry). Past Teams'
    size limit, lean: no context or details, and the answer's first fields only."""
    for most in (None, *_FEWER_ROWS):
        built = _ended(view, notice, most)
        if fits(built):
            break
    return built


def _ended(view: EventView, notice: str | None, most: int | None) -> Card:
    """`most` None: the full card; else a lean one showing at most `most` of the answer's fields."""
    request, lean = view.request, most is not None
    body = _header(request, subtitle=view.words.label, lean=lean)
    body += [] if lean else _context(request)
    if view.words.facts:
        facts: list[Row] = [(label, text_of(line)) for label, line in view.words.facts]
        if view.scalar:
            facts = [*view.answer, *facts]
        else:
            body += _shown(list(view.answer), most, "fields")
        body += rows(facts + _run_facts(request))
    else:
        line = clip(text_of(view.words.status), _LEAN_PROMPT_LIMIT if lean else _DETAILS_LIMIT)
        body += [literal(run(line, color=COLORS[view.state])), *rows(_run_facts(request))]
    if notice:  # the core's words, with names and reasons people typed
        body.append(literal(run(notice, color="attention")))
    return card(body, [])


def notice_card(title: str, message: str) -> Card:
    """A card carrying one message, when there is no event to show (unknown or unreadable)."""
    return card([sentence(title, size="medium", weight="bolder"), literal(run(message))], [])


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


# -- pieces ------------------------------------------------------------------------------


def _header(request: Request, subtitle: str | None = None, *, lean: bool = False) -> list[Element]:
    """Title (with the outcome, once there is one), prompt and details; `lean`: a short prompt only."""
    title = prose(request, clip(request.heading, _HEADING_LIMIT), size="large", weight="bolder")
    if subtitle and title["type"] == "RichTextBlock":
        title["inlines"].append(run(f" · {subtitle}", size="large", weight="bolder"))
    elif subtitle:
        title["text"] += f" · {subtitle}"
    blocks = [title, prose(request, clip(request.prompt, _LEAN_PROMPT_LIMIT if lean else _PROMPT_LIMIT))]
    if request.details and not lean:
        blocks.append(prose(request, clip(request.details, _DETAILS_LIMIT), isSubtle=True))
    return blocks


def _context(request: Request) -> list[Element]:
    """The event's context as labelled rows next to the prompt; past `_CONTEXT_SHOWN` rows, a count."""
    return _shown(context_rows(request), _CONTEXT_SHOWN, "context fields")


def _shown(pairs: list[tuple[str, str]], most: int | None, what: str) -> list[Element]:
    """`pairs` as rows, the first `most` only (all when None) and a count of the rest."""
    found = rows(list(pairs[:most]))
    if most is not None and len(pairs) > most:
        found.append(sentence(f"…and {len(pairs) - most} more {what}, not shown here.", isSubtle=True))
    return found


def _problem(message: str) -> Element:
    """The core's reason an answer was refused, which may quote what was typed."""
    return literal(run(message, color="attention"))


def _event_facts(view: EventView) -> list[Row]:
    request = view.request
    who = ", ".join(view.responders) or "anyone"
    flyte: list[Row] = [("Flyte", text)] if (text := flyte_note(request)) else []
    return [*_run_facts(request), ("Deadline", format_time(request.deadline)), ("Who may answer", who), *flyte]


def _run_facts(request: Request) -> list[Row]:
    run_info = request.run
    name = "/".join(p for p in (run_info.project, run_info.domain, run_info.run_name) if p)
    if run_info.url:
        return [("Run", link(name or "open", run_info.url))]
    return [("Run", name)] if name else []


def _execute(
    request: Request,
    title: str,
    values: dict[str, object] | None,
    *,
    style: str | None = None,
    act: Act | None = None,
    round_: int | None = None,
) -> Element:
    """`Action.Execute` (Universal Actions) with an `Action.Submit` fallback for older clients; `act` and
    `round_` say what a team decision's control does (`_decision.team_action`)."""
    data: dict[str, Any] = {EVENT_KEY: request.request_id}
    data.update({input_id(name): value for name, value in (values or {}).items()})
    data.update({ACT_KEY: act} if act else {})
    data.update({ROUND_KEY: round_} if round_ else {})
    submit: Element = {"type": "Action.Submit", "title": title, "data": data}
    execute: Element = {"type": "Action.Execute", "title": title, "verb": VERB, "data": data}
    if style:
        submit["style"] = execute["style"] = style
    execute["fallback"] = submit
    return execute
