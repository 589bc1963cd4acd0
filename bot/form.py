"""The fallback web form: `GET/POST /form/<request_id>?sig=...`.

The signature proves the link came from us; the deadline stored with the request ends it.
Every answer goes through `HitlService.respond`, like Slack's and Teams'.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .answers import MAX_TEXT_LENGTH, display, number_hint
from .appkeys import SERVICE, SETTINGS
from .errors import AlreadyAnswered, EventExpired, EventNotFound, InvalidValue, StoreError, StoreUnavailable, UserError
from .links import form_signature_ok
from .protocol import Request, Responder, Response, format_time
from .store import check_request_id
from .templates import render
from .text import format_number

routes = web.RouteTableDef()


def _page(template: str, status: int = 200, **context: Any) -> web.Response:
    return web.Response(text=render(template, **context), status=status, content_type="text/html")


def _outcome(kind: str, status: int, title: str, message: str, event: Request | None = None) -> web.Response:
    return _page("outcome.html", status, kind=kind, title=title, message=message, event=event)


def _answered_page(event: Request, response: Response, *, fresh: bool) -> web.Response:
    if fresh:
        return _outcome("success", 200, "Thanks, your answer is in", f"You answered {display(response.value)}.", event)
    return _outcome(
        "answered",
        200,
        "Already answered",
        f"{response.responder_label} answered {display(response.value)} at {response.responded_text}.",
        event,
    )


def control(event: Request) -> dict[str, Any]:
    """What the template needs to draw the one input named `value`."""
    if event.data_type == "bool":
        return {"kind": "select", "options": [("true", "Approve"), ("false", "Reject")]}
    if event.choices:
        return {"kind": "select", "options": [(str(c), str(c)) for c in event.choices]}
    if event.data_type in ("int", "float"):
        bounds = {
            "min": None if event.min_value is None else format_number(event.min_value),
            "max": None if event.max_value is None else format_number(event.max_value),
        }
        return {
            "kind": "number",
            "step": "1" if event.data_type == "int" else "any",
            "inputmode": "numeric" if event.data_type == "int" and (event.min_value or -1) >= 0 else "decimal",
            "hint": number_hint(event.data_type, event.min_value, event.max_value),
            **bounds,
        }
    return {"kind": "text", "maxlength": MAX_TEXT_LENGTH}


async def _load(request: web.Request) -> Request | web.Response:
    """Check the link, then load the event; a web.Response means stop and show it."""
    request_id = request.match_info["request_id"]
    secret = request.app[SETTINGS].secret_value()
    if not form_signature_ok(secret, request_id, request.query.get("sig")):
        return _outcome("error", 403, "This link is not valid", "Open the link exactly as it was posted in chat.")
    try:
        return await request.app[SERVICE].store.get_request(check_request_id(request_id))
    except EventNotFound as error:
        return _outcome("error", 404, "Event not found", str(error))
    except StoreError:
        unsaved = str(StoreUnavailable()) if request.method == "POST" else "Storage is unreachable; reload in a moment."
        return _outcome("error", 503, "Please try again in a moment", unsaved)


def _form(event: Request, *, value: str = "", error: str | None = None, status: int = 200) -> web.Response:
    return _page(
        "form.html",
        status,
        event=event,
        control=control(event),
        value=value,
        error=error,
        deadline=format_time(event.deadline),
    )


@routes.get("/form/{request_id}")
async def show_form(request: web.Request) -> web.Response:
    event = await _load(request)
    if isinstance(event, web.Response):
        return event
    try:
        response = await request.app[SERVICE].store.get_response(event.request_id)
    except StoreError:
        return _form(event, error="Storage is unreachable right now; reload in a moment.", status=503)
    if response:
        return _answered_page(event, response, fresh=False)
    if event.expired():
        return _expired(event)
    return _form(event)


@routes.post("/form/{request_id}")
async def submit_form(request: web.Request) -> web.Response:
    event = await _load(request)
    if isinstance(event, web.Response):
        return event
    try:
        raw = (await request.post()).get("value", "")
    except web.HTTPException:
        raise  # e.g. 413 for a body over the limit
    except (ValueError, LookupError, HttpProcessingError):  # bad charset, encoding or multipart
        return _form(event, error="The form could not be read; reload the page and try again.", status=400)
    typed = raw if isinstance(raw, str) else ""
    responder = Responder(platform="web", user_name="web form")
    try:
        response = await request.app[SERVICE].respond(event.request_id, typed, responder, "web")
    except AlreadyAnswered as answered:
        return _answered_page(event, answered.response, fresh=False)
    except EventExpired:
        return _expired(event)
    except InvalidValue as invalid:
        return _form(event, value=typed, error=str(invalid), status=422)
    except UserError as error:
        return _form(event, value=typed, error=str(error), status=503 if isinstance(error, StoreUnavailable) else 403)
    return _answered_page(event, response, fresh=True)


def _expired(event: Request) -> web.Response:
    return _outcome(
        "expired",
        403,
        "This event has expired",
        f"The deadline was {format_time(event.deadline)}; the workflow no longer waits for an answer.",
        event,
    )
