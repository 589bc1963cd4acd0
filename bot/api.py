"""The JSON API: health, notify, the pending and recent lists and their search, decision stats,
programmatic answers and cancels."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, Literal, cast, get_args

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from .appkeys import SERVICE, SETTINGS
from .errors import (
    AlreadyAnswered,
    EventCancelled,
    EventExpired,
    EventNotFound,
    HitlError,
    InvalidValue,
    NotAllowed,
    UserError,
)
from .history import MAX_STATS_DAYS, EventStats, Search, Span, parse_event_name, parse_responder
from .links import bearer_ok
from .metrics import CONTENT_TYPE
from .protocol import OutcomeKind, Request, Responder, utcnow
from .store import check_request_id

__all__ = ["open_metrics", "routes"]

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

_STATUS: dict[type[UserError], int] = {
    EventNotFound: 404,
    AlreadyAnswered: 409,
    EventCancelled: 409,
    EventExpired: 410,
    InvalidValue: 422,
    NotAllowed: 403,
}


class AnswerBody(BaseModel):
    """`POST /api/v1/events/<id>/response`: an answer from a script holding the bot's secret.

    `value` is a scalar, or `{field: value}` for a structured event; the core checks it.
    """

    value: Any
    responder: str = Field("api", max_length=200)


class CancelBody(BaseModel):
    """`POST /api/v1/events/<id>/cancel`: end a pending event; the plugin sends `via: "flyte"`."""

    reason: str = Field("cancelled through the API", min_length=1, max_length=500)
    responder: str = Field("api", max_length=200)
    via: Literal["api", "flyte"] = "api"


_PAGE_DEFAULT, _PAGE_MAX = 20, 100
_PAGE_SIZE = re.compile(r"[0-9]{1,3}")


def _page_size(text: str) -> int | None:
    """`limit` as ASCII digits within bounds, or None: `str.isdigit` takes "²" and int() "٣"."""
    if not _PAGE_SIZE.fullmatch(text) or not 1 <= (size := int(text)) <= _PAGE_MAX:
        return None
    return size


def problem(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _authorized(request: web.Request) -> None:
    if not bearer_ok(request.app[SETTINGS].secret_value(), request.headers.get("Authorization")):
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "Send `Authorization: Bearer <HITL_CHATOPS_SECRET>`."}),
            content_type="application/json",
        )


def event_summary(request: web.Request, event: Request) -> dict[str, Any]:
    service = request.app[SERVICE]
    return {
        "request_id": event.request_id,
        "event_name": event.event_name,
        "prompt": event.prompt,
        "data_type": event.data_type,
        "choices": event.choices,
        "min_value": event.min_value,
        "max_value": event.max_value,
        "responders": event.responders,
        "channels": event.channels,
        "created_at": event.created_at.isoformat(),
        "deadline": event.deadline.isoformat(),
        "run": event.run.model_dump(exclude_none=True),
        "form_url": service.form_url(event.request_id),
        "title": event.title,
        "answer_schema": event.answer_schema,
        "context": event.context,
    }


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[SERVICE].store.ping()
    except HitlError:
        return web.json_response({"status": "unhealthy", "store": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "store": "reachable"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """On the public port (Slack and browsers reach it) only with the token; see `open_metrics`."""
    _authorized(request)
    return await open_metrics(request)


async def open_metrics(request: web.Request) -> web.Response:
    """Prometheus text, to anyone: served alone on `HITL_CHATOPS_METRICS_PORT`, a port kept inside the cluster."""
    body = request.app[SERVICE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


@routes.post("/api/v1/events/{request_id}/notify")
async def notify(request: web.Request) -> web.Response:
    _authorized(request)
    service = request.app[SERVICE]
    try:
        event = await service.store.get_request(check_request_id(request.match_info["request_id"]))
    except EventNotFound as error:
        return problem(404, str(error))
    service.delivery.announce_later(event.request_id)  # accepted: posting happens after the reply
    return web.json_response(event_summary(request, event), status=202)


@routes.get("/api/v1/events")
async def list_events(request: web.Request) -> web.Response:
    """`?status=pending` (default): every open event. `completed|rejected|cancelled|expired`: the ended
    ones with who/when/via, newest first, `limit` (default 20, at most 100) per page; pass the reply's
    `next` as `cursor` for the following page. Filters, any status: `event_name`, `responder`
    (`<platform>:<user id>`: who may answer a pending event, who gave an outcome) and `since`/`until`
    (when a pending event was created, when an outcome was given)."""
    _authorized(request)
    status = request.query.get("status", "pending")
    if status != "pending" and status not in get_args(OutcomeKind):
        return problem(400, "status must be pending, completed, rejected, cancelled or expired.")
    try:
        search = _search(request.query)
    except ValueError as error:
        return problem(400, str(error))
    if status == "pending":
        try:
            events = await request.app[SERVICE].pending(search.responder)
        except UserError as error:  # storage unreachable: 503, "try again"
            return _refused(error)
        listed = [e for e in events if search.event_name in (None, e.event_name) and search.span.holds(e.created_at)]
        return web.json_response({"events": [event_summary(request, e) for e in listed]})
    limit = _page_size(request.query.get("limit", str(_PAGE_DEFAULT)))
    if limit is None:
        return problem(400, f"limit must be a whole number from 1 to {_PAGE_MAX}.")
    try:
        outcome, after = cast(OutcomeKind, status), request.query.get("cursor")
        records, cursor = await request.app[SERVICE].recent(outcome, limit=limit, after=after, search=search)
    except ValueError:
        return problem(400, "cursor must be the `next` value of a previous page.")
    except UserError as error:
        return _refused(error)
    return web.json_response({"events": [r.model_dump(mode="json") for r in records], "next": cursor})


def _search(query: Mapping[str, str]) -> Search:
    """The list's filters, each checked; ValueError says what to send."""
    name, responder = query.get("event_name"), query.get("responder")
    return Search(
        event_name=None if name is None else parse_event_name(name),
        responder=None if responder is None else parse_responder(responder),
        span=Span.parse(query.get("since"), query.get("until"), utcnow()),
    )


@routes.get("/api/v1/stats")
async def stats(request: web.Request) -> web.Response:
    """`?since=…[&until=…]` (at most 92 days apart; `until` defaults to now): per event name, how its
    events ended (completed, rejected, expired, defaulted, cancelled) and the seconds from creation to
    a decision (p50, p90, max), from the outcome history."""
    _authorized(request)
    try:
        span = Span.parse(request.query.get("since"), request.query.get("until"), utcnow(), days=MAX_STATS_DAYS)
    except ValueError as error:
        return problem(400, str(error))
    try:
        found = await request.app[SERVICE].stats(span)
    except UserError as error:
        return _refused(error)
    assert span.since is not None and span.until is not None
    return web.json_response(
        {"since": span.since.isoformat(), "until": span.until.isoformat(), "events": [_stats_json(s) for s in found]}
    )


def _stats_json(stats: EventStats) -> dict[str, Any]:
    timing = stats.decision
    return {
        "event_name": stats.event_name,
        "total": stats.total,
        "outcomes": stats.outcomes,
        "decision_seconds": None
        if timing is None
        else {"count": timing.count, "p50": timing.p50, "p90": timing.p90, "max": timing.max},
    }


@routes.post("/api/v1/events/{request_id}/response")
async def answer(request: web.Request) -> web.Response:
    _authorized(request)
    try:
        body = AnswerBody.model_validate_json(await request.read())
    except ValidationError:
        return problem(400, 'Send JSON like {"value": true, "responder": "ci-bot"}.')
    responder = Responder(platform="api", user_id=body.responder, user_name=body.responder)
    try:
        response = await request.app[SERVICE].respond(
            request.match_info["request_id"], body.value, responder, "api", trusted=True
        )
    except UserError as error:
        return _refused(error)
    return web.json_response(response.model_dump(mode="json"), status=201)


@routes.post("/api/v1/events/{request_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    _authorized(request)
    try:
        body = CancelBody.model_validate_json(await request.read() or b"{}")
    except ValidationError:
        return problem(400, 'Send JSON like {"reason": "superseded by build 1235", "responder": "ci-bot"}.')
    responder = Responder(platform=body.via, user_id=body.responder, user_name=body.responder)
    try:
        request_id = check_request_id(request.match_info["request_id"])
        response = await request.app[SERVICE].cancel(request_id, body.reason, responder, body.via)
    except UserError as error:
        return _refused(error)
    return web.json_response(response.model_dump(mode="json"))


def _refused(error: UserError) -> web.Response:
    """A refusal as JSON: per-field `errors` for invalid values, the existing outcome when there is one."""
    extra: dict[str, Any] = {}
    if isinstance(error, AlreadyAnswered):
        extra["response"] = error.response.model_dump(mode="json")
    if isinstance(error, InvalidValue):
        extra["errors"] = error.errors
    return problem(_STATUS.get(type(error), 503), str(error), **extra)
