"""The JSON API: health, notify, the pending list and programmatic answers."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from .appkeys import SERVICE, SETTINGS
from .errors import (
    AlreadyAnswered,
    EventExpired,
    EventNotFound,
    HitlError,
    InvalidValue,
    NotAllowed,
    UserError,
)
from .links import bearer_ok
from .metrics import CONTENT_TYPE
from .protocol import Request, Responder
from .store import check_request_id

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

_STATUS: dict[type[UserError], int] = {
    EventNotFound: 404,
    AlreadyAnswered: 409,
    EventExpired: 410,
    InvalidValue: 422,
    NotAllowed: 403,
}


class AnswerBody(BaseModel):
    """`POST /api/v1/events/<id>/response`: an answer from a script holding the bot's secret."""

    value: bool | int | float | str
    responder: str = Field("api", max_length=200)


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
    service.announce_later(event.request_id)  # accepted: posting happens after the reply
    return web.json_response(event_summary(request, event), status=202)


@routes.get("/api/v1/events")
async def list_events(request: web.Request) -> web.Response:
    _authorized(request)
    status = request.query.get("status", "pending")
    if status != "pending":
        return problem(400, "Only status=pending can be listed.")
    events = await request.app[SERVICE].pending()
    return web.json_response({"events": [event_summary(request, e) for e in events]})


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
        extra = {"response": error.response.model_dump(mode="json")} if isinstance(error, AlreadyAnswered) else {}
        return problem(_STATUS.get(type(error), 503), str(error), **extra)
    return web.json_response(response.model_dump(mode="json"), status=201)
