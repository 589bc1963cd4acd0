"""The fallback web form: `GET/POST /form/<request_id>?sig=...`.

The signature proves the link came from us; the deadline stored with the request ends it.
Every answer goes through `HitlService.respond`, like Slack's and Teams'; what the pages say about
the event's state is its `EventView`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .answers import AnswerField, context_rows, field_text, input_text, number_hint, prefill, schema_of
from .appkeys import SERVICE, SETTINGS
from .errors import AlreadyAnswered, EventExpired, EventNotFound, InvalidValue, StoreError, StoreUnavailable, UserError
from .links import form_signature_ok
from .protocol import Request, Responder, format_time
from .states import State, text_of
from .store import check_request_id
from .team import NO_IDENTITY
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


def _deciding_page(view: EventView, status: int = 200) -> web.Response:
    """A team decision under way: its progress, votes and history. The form takes no vote (it does not
    know who is answering, and a team decision counts each person once)."""
    words = view.words
    message = f"{text_of(words.status)} {NO_IDENTITY}"
    facts = [(label, text_of(line)) for label, line in words.facts]
    return _outcome(view.state, words.label, status, "A team decision is under way", message, view.request, facts)


def _saved_page(view: EventView) -> web.Response:
    """The answer this person just gave."""
    message = f"You answered {view.answer_text}."
    return _outcome("success", "Done", 200, "Thanks, your answer is in", message, view.request)


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


async def _load(request: web.Request) -> Request | web.Response:
    """Check the link, then load the event; a web.Response means stop and show it."""
    request_id = request.match_info["request_id"]
    secret = request.app[SETTINGS].secret_value()
    if not form_signature_ok(secret, request_id, request.query.get("sig")):
        return _error(403, "This link is not valid", "Open the link exactly as it was posted in chat.")
    try:
        event = await request.app[SERVICE].store.get_request(check_request_id(request_id))
        schema_of(event)  # an event whose answer cannot be asked for is as unreadable as a broken object
        return event
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
) -> web.Response:
    """The form; `typed` keeps what the person entered, else the proposal (`initial`) or defaults."""
    if typed is None:
        typed = {name: input_text(value) for name, value in prefill(event).items()}
    return _page(
        "form.html",
        status,
        event=event,
        badge=event_view(event).words.label,
        controls=_controls(event, typed, errors or {}),
        context_rows=context_rows(event),  # the form shows everything, unclipped
        notice=notice,
        deadline=format_time(event.deadline),
    )


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
    event = await _load(request)
    if isinstance(event, web.Response):
        return event
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
    event = await _load(request)
    if isinstance(event, web.Response):
        return event
    try:
        posted = await request.post()
    except web.HTTPException:
        raise  # e.g. 413 for a body over the limit
    except (ValueError, LookupError, HttpProcessingError):  # bad charset, encoding or multipart
        return _form(event, notice="The form could not be read; reload the page and try again.", status=400)
    if event.team_event:  # no identity, no vote: the page says how it stands and where to answer
        try:
            view = await request.app[SERVICE].state(event.request_id)
        except UserError as error:
            return _error(503, "Please try again in a moment", str(error))
        return _deciding_page(view, status=403) if view.open else _ended_page(view)
    schema = schema_of(event)
    # One control per field, named after it; a file where text belongs counts as nothing typed.
    typed = {f.name: text if isinstance(text := posted.get(f.name, ""), str) else "" for f in schema.fields}
    responder = Responder(platform="web", user_name="web form")
    try:
        raw: object = typed["value"] if schema.scalar else typed
        response = await request.app[SERVICE].respond(event.request_id, raw, responder, "web")
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
