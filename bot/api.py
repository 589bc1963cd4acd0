"""The JSON API: health, notify, the pending and recent lists and their search, decision stats,
programmatic answers and cancels."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast, get_args

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError, field_validator

from .appkeys import SERVICE, SETTINGS
from .decision import Tally
from .errors import (
    AlreadyAnswered,
    AlreadyVoted,
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
from .protocol import LogEntry, OutcomeKind, Request, Responder, Via, utcnow
from .states import text_of
from .store import check_request_id
from .team import Verdict

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
    AlreadyVoted: 409,
}


class Person(BaseModel):
    """A person a trusted caller names (a team decision counts each person once): as their chat knows them."""

    platform: Via
    user_id: str = Field(min_length=1, max_length=255, pattern=r"^\S+$")
    user_name: str = Field("", max_length=200)

    def responder(self) -> Responder:
        return Responder(platform=self.platform, user_id=self.user_id, user_name=self.user_name or self.user_id)


class AnswerBody(BaseModel):
    """`POST /api/v1/events/<id>/response`: an answer from a script holding the bot's secret.

    `value` is a scalar, or `{field: value}` for a structured event; the core checks it. A team
    decision's answer is a vote of the person named in `responder` (`{"platform", "user_id"}`; a plain
    string is the person `api:<string>`): `value` approves or rejects an Approve/Reject event and
    proposes (or, equal to the proposal, confirms) a value; `vote` approves or rejects instead (a value
    event's current proposal, in `round` if given); `reason` goes with it.
    """

    value: Any = None
    responder: str | Person = Field("api", union_mode="left_to_right")
    reason: str | None = Field(None, max_length=500)
    vote: Literal["approve", "reject"] | None = None
    round: int | None = Field(None, ge=1)

    @field_validator("responder")
    @classmethod
    def _short(cls, responder: str | Person) -> str | Person:
        if isinstance(responder, str) and len(responder) > 200:
            raise ValueError("responder: at most 200 characters")
        return responder

    def person(self) -> Responder:
        if isinstance(self.responder, Person):
            return self.responder.responder()
        return Responder(platform="api", user_id=self.responder, user_name=self.responder)


class DelegateBody(BaseModel):
    """`POST /api/v1/events/<id>/delegate`: `responder` hands their place in a team decision to `to`."""

    responder: Person
    to: Person
    note: str | None = Field(None, max_length=500)


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
        event = await service.event(check_request_id(request.match_info["request_id"]))
    except UserError as error:  # no such event: 404; storage unreachable: 503, "try again"
        return _refused(error)
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
    """An answer (a simple event: the response JSON, 201), or a team decision's vote: the verdict
    (`decided`, the `response` if it decided, the `decision` as it stands), 201 decided, 200 counted."""
    _authorized(request)
    try:
        body = AnswerBody.model_validate_json(await request.read())
    except ValidationError:
        return problem(
            400,
            'Send JSON like {"value": true, "responder": "ci-bot"}, or for a team decision '
            '{"value": true, "responder": {"platform": "slack", "user_id": "U0123"}, "reason": "..."}.',
        )
    service, request_id = request.app[SERVICE], request.match_info["request_id"]
    person = body.person()
    try:
        if body.vote is not None:
            decide = service.approve if body.vote == "approve" else service.reject
            verdict = await decide(request_id, person, "api", reason=body.reason, round_=body.round)
        else:
            verdict = await service.answer(request_id, body.value, person, "api", trusted=True, reason=body.reason)
    except UserError as error:
        return _refused(error)
    if verdict.tally is None and verdict.outcome is not None:  # a simple event: the response, as before
        return web.json_response(verdict.outcome.model_dump(mode="json"), status=201)
    return web.json_response(_verdict(verdict), status=201 if verdict.decided else 200)


@routes.post("/api/v1/events/{request_id}/delegate")
async def delegate(request: web.Request) -> web.Response:
    """Hand a person's place in a team decision to someone else (`DelegateBody`)."""
    _authorized(request)
    try:
        body = DelegateBody.model_validate_json(await request.read())
    except ValidationError:
        return problem(
            400,
            'Send JSON like {"responder": {"platform": "slack", "user_id": "U0ANN"}, '
            '"to": {"platform": "slack", "user_id": "U0BOB"}, "note": "on holiday"}.',
        )
    try:
        verdict = await request.app[SERVICE].delegate(
            request.match_info["request_id"], body.responder.responder(), body.to.responder(), "api", note=body.note
        )
    except UserError as error:
        return _refused(error)
    return web.json_response(_verdict(verdict), status=201 if verdict.decided else 200)


@routes.get("/api/v1/events/{request_id}")
async def show_event(request: web.Request) -> web.Response:
    """One event: its summary, its state, its outcome, and a team decision's progress and history."""
    _authorized(request)
    service = request.app[SERVICE]
    try:
        view = await service.state(check_request_id(request.match_info["request_id"]))
        history = await service.history(view.request.request_id) if view.tally is None else ()
    except UserError as error:
        return _refused(error)
    return web.json_response(
        event_summary(request, view.request)
        | {
            "state": str(view.state),
            "label": view.words.label,
            "outcome": view.outcome.model_dump(mode="json") if view.outcome else None,
            "decision": decision_json(view.request, view.tally, history),
        }
    )


def _verdict(verdict: Verdict) -> dict[str, Any]:
    return {
        "decided": verdict.decided,
        "note": text_of(verdict.note),
        "response": verdict.outcome.model_dump(mode="json") if verdict.outcome else None,
        "decision": decision_json(verdict.request, verdict.tally),
    }


def decision_json(event: Request, tally: Tally | None, history: Sequence[LogEntry] = ()) -> dict[str, Any] | None:
    """A team decision as JSON: its progress while under way (approvals had and needed, each rule, the
    proposal, who is waiting), and its whole log as `history`, oldest first. None for a simple event
    with nothing logged."""
    if tally is None:
        if not (event.team_event or history):
            return None
        return {"history": [_entry(e) for e in history]}
    return {
        "approvals": {"have": tally.approved, "need": tally.needed},
        "round": tally.round,
        "rules": [
            {
                "name": r.name,
                "responders": list(r.responders),
                "need": r.needed,
                "met_by": [_person(p) for p in r.met_by],
            }
            for r in tally.rules
        ],
        "votes": [_entry(v) for v in tally.approvals],
        "proposal": _entry(tally.proposal) if tally.proposal else None,
        "waiting": list(tally.waiting),
        "anyone": tally.anyone,
        "history": [_entry(e) for e in tally.log],
    }


def _entry(entry: LogEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json", exclude={"counts_for"})


def _person(person: Responder) -> dict[str, Any]:
    return person.model_dump(mode="json")


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
