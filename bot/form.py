"""The fallback web form: `GET/POST /form/<request_id>?sig=...`.

The signature proves the link came from us; the deadline stored with the request ends it. The
shared link names no one: it answers events anyone may answer (`HitlService.respond`). A personal
link (`?as=<platform>:<user id>&name=...&sig=...`, `links`) names the one person it was sent to:
it answers as them through `HitlService.answer`, as a click of theirs would (`responders`, groups
and a team decision's rules checked; a team decision takes their vote or proposal). What the pages
say about the event's state is its `EventView`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import ValidationError

from .answers import AnswerField, context_rows, field_text, input_text, number_hint, prefill, schema_of
from .appkeys import SERVICE, SETTINGS
from .errors import AlreadyAnswered, EventExpired, EventNotFound, InvalidValue, StoreError, StoreUnavailable, UserError
from .links import NAME_KEY, PERSON_KEY, form_signature_ok
from .protocol import Request, Responder, format_time
from .states import State, text_of
from .store import check_request_id
from .team import NO_IDENTITY, Verdict
from .templates import page_style_hash, render
from .text import format_number
from .view import EventView, event_view

__all__ = ["routes"]

routes = web.RouteTableDef()
_LIST_ROWS = 4  # context fields per event on a batch's list page


@cache
def _page_headers() -> dict[str, str]:
    """The signed URL is the credential: never passed on as a Referer, kept in a cache, or framed.

    The strict CSP lets the page load nothing but its own inline stylesheet (by hash) and post
    only back to itself.
    """
    policy = (
        f"default-src 'none'; style-src {page_style_hash()}; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


def _page(template: str, status: int = 200, **context: Any) -> web.Response:
    html = render(template, **context)
    return web.Response(text=html, status=status, content_type="text/html", headers=_page_headers())


def _outcome(
    kind: str,
    badge: str,
    status: int,
    title: str,
    message: str,
    event: Request | None = None,
    facts: list[tuple[str, str]] | None = None,
) -> web.Response:
    return _page("outcome.html", status, kind=kind, badge=badge, title=title, message=message, event=event, facts=facts)


def _error(status: int, title: str, message: str) -> web.Response:
    return _outcome("error", "Error", status, title, message)


def _ended_page(view: EventView) -> web.Response:
    """The event once it has ended, as its view words it: refused (403) when it expired unanswered."""
    status = 403 if view.state is State.EXPIRED else 200
    words = view.words
    return _outcome(view.state, words.label, status, words.headline, text_of(words.message), view.request)


def _deciding_page(view: EventView, status: int = 200, why: str = NO_IDENTITY) -> web.Response:
    """A team decision under way: its progress, votes and history, and `why` this page takes no vote
    (the shared link knows no one, and a team decision counts each person once)."""
    words = view.words
    message = f"{text_of(words.status)} {why}"
    return _outcome(
        view.state, words.label, status, "A team decision is under way", message, view.request, _facts(view)
    )


def _facts(view: EventView) -> list[tuple[str, str]]:
    return [(label, text_of(line)) for label, line in view.words.facts]


def _saved_page(view: EventView) -> web.Response:
    """The answer this person just gave."""
    message = f"You answered {view.answer_text}."
    return _outcome("success", "Done", 200, "Thanks, your answer is in", message, view.request)


def _acted_page(verdict: Verdict) -> web.Response:
    """What a personal link's answer did: saved, or for a team decision counted (and how far) or decided."""
    view = verdict.view
    if not verdict.request.team_event:
        return _saved_page(view)
    title = "Thanks, the decision is made" if verdict.decided else "Thanks, your answer is counted"
    kind = "success" if verdict.decided else view.state
    return _outcome(kind, view.words.label, 200, title, text_of(verdict.note), verdict.request, _facts(view))


def control(field: AnswerField, scalar: bool) -> dict[str, Any]:
    """How the template draws one field: the one place the form maps a field kind to a widget."""
    if field.kind == "bool":
        labels = ("Approve", "Reject") if scalar else ("Yes", "No")
        return {"kind": "select", "options": [("true", labels[0]), ("false", labels[1])]}
    if field.kind == "choice":
        return {"kind": "select", "options": [(input_text(c), field_text(c)) for c in field.choices or []]}
    if field.kind in ("int", "float"):
        low, high = field.min_value, field.max_value
        return {
            "kind": "number",
            "step": "1" if field.kind == "int" else "any",
            "inputmode": "numeric" if field.kind == "int" and (low or -1) >= 0 else "decimal",
            "hint": number_hint(field.kind, low, high),
            "min": None if low is None else format_number(low),
            "max": None if high is None else format_number(high),
        }
    return {"kind": "textarea" if field.multiline else "text", "maxlength": field.max_length}


def _controls(event: Request, typed: Mapping[str, str], errors: Mapping[str, str]) -> list[dict[str, Any]]:
    schema = schema_of(event)
    return [
        {
            "field": f,
            "id": f.name,
            "value": typed.get(f.name, ""),
            "error": errors.get(f.name),
            **control(f, schema.scalar),
        }
        for f in schema.fields
    ]


@dataclass(frozen=True)
class _Opened:
    """An event opened through one of its links: the shared one (`person` None), or one person's."""

    event: Request
    person: Responder | None


def _signed(request: web.Request, request_id: str) -> tuple[bool, Responder | None]:
    """Whether the link is one we made for this event, and the person it was made for (None: the shared
    link). A tampered identity or name, or another event's link, fails the signature."""
    query = request.query
    identity, name = query.get(PERSON_KEY), query.get(NAME_KEY, "")
    secret = request.app[SETTINGS].secret_value()
    if not form_signature_ok(secret, request_id, query.get("sig"), person=identity, name=name):
        return False, None
    if identity is None:
        return True, None
    platform, _, user_id = identity.partition(":")
    try:
        return True, Responder(platform=platform, user_id=user_id, user_name=name)
    except ValidationError:  # signed by us, so never: refused all the same
        return False, None


async def _load(request: web.Request) -> _Opened | web.Response:
    """Check the link, then load the event; a web.Response means stop and show it."""
    request_id = request.match_info["request_id"]
    valid, person = _signed(request, request_id)
    if not valid:
        return _error(403, "This link is not valid", "Open the link exactly as it was posted in chat.")
    try:
        event = await request.app[SERVICE].store.get_request(check_request_id(request_id))
        schema_of(event)  # an event whose answer cannot be asked for is as unreadable as a broken object
        return _Opened(event, person)
    except EventNotFound as error:
        return _error(404, "Event not found", str(error))
    except StoreError:
        unavailable = StoreUnavailable(reading=request.method != "POST")
        return _error(503, "Please try again in a moment", str(unavailable))


def _form(
    event: Request,
    *,
    typed: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
    view: EventView | None = None,
    person: Responder | None = None,
) -> web.Response:
    """The form; `typed` keeps what the person entered, else the proposal (`initial`) or defaults.

    A personal link's form says whom it answers as (`person`), and a team decision's (`view`, as the
    core has it now) its progress above the inputs, pre-filled with the value proposed, if any.
    """
    view = view or event_view(event)
    if typed is None:
        proposal = view.tally.proposal if view.tally is not None else None
        shown = event if proposal is None else event.model_copy(update={"initial": proposal.value})
        typed = {name: input_text(value) for name, value in prefill(shown).items()}
    progress = text_of(view.words.status) if view.tally is not None else None
    facts = _facts(view) if view.tally is not None else []
    return _page(
        "form.html",
        status,
        event=event,
        badge=view.words.label,
        controls=_controls(event, typed, errors or {}),
        context_rows=context_rows(event),  # the form shows everything, unclipped
        notice=notice,
        deadline=format_time(event.deadline),
        progress=progress,
        facts=facts + ([("Answering as", person.label)] if person is not None else []),
    )


async def _personal_form(
    request: web.Request,
    event: Request,
    person: Responder,
    *,
    typed: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> web.Response:
    """A personal link's form, once the core's `check` lets this person answer now (as before a click
    of theirs); else the event as it stands and why not."""
    service = request.app[SERVICE]
    try:
        view = await service.state(event.request_id)
        if not view.open:
            return _ended_page(view)
        await service.check(event.request_id, person)
    except AlreadyAnswered as answered:
        return _ended_page(event_view(event, answered.response))
    except EventExpired:
        return _ended_page(event_view(event, expired=True))
    except StoreUnavailable as error:
        return _error(503, "Please try again in a moment", str(error))
    except UserError as error:  # not theirs to answer, voted already, handed on, the requester
        if event.team_event:
            return _deciding_page(view, status=403, why=str(error))
        return _outcome("error", "Error", 403, "You cannot answer this event", str(error), event)
    return _form(event, typed=typed, errors=errors, notice=notice, status=status, view=view, person=person)


async def _answer_as(
    request: web.Request, event: Request, person: Responder, raw: object, typed: Mapping[str, str]
) -> web.Response:
    """A personal link's answer: `HitlService.answer` as that person, the path every surface takes (a
    team decision: their vote, or a value proposed or confirmed)."""
    try:
        verdict = await request.app[SERVICE].answer(event.request_id, raw, person, "web")
    except AlreadyAnswered as answered:
        return _ended_page(event_view(event, answered.response))
    except EventExpired:
        return _ended_page(event_view(event, expired=True))
    except InvalidValue as invalid:
        return await _personal_form(request, event, person, typed=typed, errors=invalid.errors, status=422)
    except UserError as error:
        status = 503 if isinstance(error, StoreUnavailable) else 403
        return await _personal_form(request, event, person, typed=typed, notice=str(error), status=status)
    return _acted_page(verdict)


@routes.get("/form/batch/{batch_id}")
async def show_batch(request: web.Request) -> web.Response:
    """A batch's list page ("Review one by one"): its open events, oldest first, each with its form link."""
    batch = request.match_info["batch_id"]
    service = request.app[SERVICE]
    if not form_signature_ok(request.app[SETTINGS].secret_value(), batch, request.query.get("sig"), batch=True):
        return _error(403, "This link is not valid", "Open the link exactly as it was posted in chat.")
    try:
        events = await service.batch_events(batch)
    except UserError as error:
        return _error(404 if isinstance(error, EventNotFound) else 503, "Please try again in a moment", str(error))
    items = [{"event": e, "url": service.form_url(e.request_id), "rows": context_rows(e)[:_LIST_ROWS]} for e in events]
    return _page("batch.html", items=items, title=events[0].heading if events else "Nothing waits here")


@routes.get("/form/{request_id}")
async def show_form(request: web.Request) -> web.Response:
    opened = await _load(request)
    if isinstance(opened, web.Response):
        return opened
    event = opened.event
    if opened.person is not None:
        return await _personal_form(request, event, opened.person)
    try:
        response = await request.app[SERVICE].store.get_response(event.request_id)
    except StoreError:
        return _form(event, notice="Storage is unreachable right now; reload in a moment.", status=503)
    if event.team_event and response is None and not event.expired():
        try:
            return _deciding_page(await request.app[SERVICE].state(event.request_id))
        except UserError as error:
            return _error(503, "Please try again in a moment", str(error))
    view = event_view(event, response, expired=event.expired())
    return _form(event) if view.open else _ended_page(view)


@routes.post("/form/{request_id}")
async def submit_form(request: web.Request) -> web.Response:
    opened = await _load(request)
    if isinstance(opened, web.Response):
        return opened
    event = opened.event
    try:
        posted = await request.post()
    except web.HTTPException:
        raise  # e.g. 413 for a body over the limit
    except (ValueError, LookupError, HttpProcessingError):  # bad charset, encoding or multipart
        return _form(event, notice="The form could not be read; reload the page and try again.", status=400)
    schema = schema_of(event)
    # One control per field, named after it; a file where text belongs counts as nothing typed.
    typed = {f.name: text if isinstance(text := posted.get(f.name, ""), str) else "" for f in schema.fields}
    raw: object = typed["value"] if schema.scalar else typed
    if opened.person is not None:
        return await _answer_as(request, event, opened.person, raw, typed)
    if event.team_event:  # no identity, no vote: the page says how it stands and where to answer
        try:
            view = await request.app[SERVICE].state(event.request_id)
        except UserError as error:
            return _error(503, "Please try again in a moment", str(error))
        return _deciding_page(view, status=403) if view.open else _ended_page(view)
    try:
        response = await request.app[SERVICE].respond(event.request_id, raw, Responder.form_link_holder(), "web")
    except AlreadyAnswered as answered:
        return _ended_page(event_view(event, answered.response))
    except EventExpired:
        return _ended_page(event_view(event, expired=True))
    except InvalidValue as invalid:
        return _form(event, typed=typed, errors=invalid.errors, status=422)
    except UserError as error:
        status = 503 if isinstance(error, StoreUnavailable) else 403
        if schema.scalar:  # the one field's error slot, as before
            return _form(event, typed=typed, errors={"value": str(error)}, status=status)
        return _form(event, typed=typed, notice=str(error), status=status)
    return _saved_page(event_view(event, response))
