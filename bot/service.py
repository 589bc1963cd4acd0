"""The decisions people wait on: answer, cancel, check, authorize, list, and close at the deadline.

Every decision lives here (expiry, authorization, validation, first outcome wins). What follows a
decision, and every post to a chat, is `delivery.Delivery`'s: the service decides, delivery carries
it out, as bolt's `App` dispatches and its `WebClient` delivers. The service's public reads and
writes share one error contract (`_person_waits`): storage trouble is `StoreUnavailable`, the "try
again" every surface shows, never a raw `StoreError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, get_args

from .answers import Rejected, parse_answer
from .background import Background
from .delivery import Delivery
from .errors import (
    AlreadyAnswered,
    EventExpired,
    InvalidValue,
    MembershipUnknown,
    NotAllowed,
    StoreError,
    StoreUnavailable,
    UserError,
)
from .history import EventStats, Search, Span, summarize
from .links import form_url
from .metrics import Metrics
from .protocol import OutcomeKind, Request, Responder, Response, Via, format_time, utcnow
from .store import EXPIRED_CLAIM, Page, Store, expiry_record

__all__ = ["TEAM_DECISION_REFUSED", "HitlService"]

log = logging.getLogger(__name__)
_READ_CONCURRENCY = 32
TEAM_DECISION_REFUSED = (
    "This event needs a team decision (several approvals, approval rules, a requester or escalations), which "
    "this version of the bot cannot count yet. Ask the workflow's owner to cancel it or upgrade hitl-chatops."
)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _person_waits(*, reading: bool) -> Callable[[Callable[_P, Awaitable[_R]]], Callable[_P, Coroutine[Any, Any, _R]]]:
    """The one error contract of the service's public reads and writes, which a person waits on:
    storage trouble becomes `StoreUnavailable`, the "try again" every surface shows as it is
    (`reading`: nothing could be read; else: nothing was saved). No surface then shows a 500,
    silence, or an empty list for a store that is down."""

    def contract(method: Callable[_P, Awaitable[_R]]) -> Callable[_P, Coroutine[Any, Any, _R]]:
        @functools.wraps(method)
        async def waited_on(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return await method(*args, **kwargs)
            except StoreError:
                raise StoreUnavailable(reading=reading) from None

        return waited_on

    return contract


class HitlService:
    """The decisions, shared by every chat platform, the web form and the API; `delivery` carries them out."""

    def __init__(self, store: Store, *, secret: str, form_base_url: str) -> None:
        self.store = store
        self._secret = secret
        self._form_base_url = form_base_url
        self.metrics = Metrics()
        self.background = Background()  # work after a reply: shutdown drains it
        self.delivery = Delivery(store, self.metrics, self.background)  # posts, copies, what follows an outcome

    def form_url(self, request_id: str) -> str:
        return form_url(self._form_base_url, self._secret, request_id)

    # -- the answer path -----------------------------------------------------------------

    @_person_waits(reading=False)
    async def respond(
        self, request_id: str, raw_value: object, responder: Responder, via: Via, *, trusted: bool = False
    ) -> Response:
        """Load → not answered → not expired → authorized → valid → exclusive write → update every copy.

        `trusted` skips the responder check, for callers holding the bot's secret (the API).
        Raises a `UserError` subclass whose message the caller shows as is; storage trouble
        becomes `StoreUnavailable` ("please try again"), with nothing half-written.
        """
        try:
            request, response = await self._answer(request_id, raw_value, responder, via, trusted)
        except (StoreError, UserError) as error:
            self.metrics.refused.labels("store" if isinstance(error, StoreError) else type(error).__name__).inc()
            raise
        log.info(
            "event answered",
            extra={"request_id": request_id, "event": request.event_name, "via": via, "outcome": "answered"},
        )
        self.metrics.answered.labels(via).inc()
        self.metrics.answer_latency.observe(
            (response.responded_at or utcnow()).timestamp() - request.created_at.timestamp()
        )
        self.delivery.answered(request, response)
        return response

    async def _answer(
        self, request_id: str, raw_value: object, responder: Responder, via: Via, trusted: bool
    ) -> tuple[Request, Response]:
        request = await self.store.get_request(request_id)
        try:
            await self._admit(request, responder, trusted)
            outcome = parse_answer(request, raw_value)
            if isinstance(outcome, Rejected):
                raise InvalidValue(outcome.message, outcome.errors)
        except UserError:
            # Who answered matters more than why this answer would be refused: tell that first.
            if existing := await self.store.get_response(request_id):
                raise AlreadyAnswered.of(existing) from None
            raise
        response = Response(
            value=outcome.value,
            request_id=request.request_id,
            data_type=request.data_type,
            responder=responder,
            responded_at=utcnow(),
            via=via,
        )
        # No read of response.json first: the exclusive create refuses a second answer by itself.
        # On a warm replica (request.json cached) this is the answer's only request before the ack.
        await self.store.create_response(response)
        return request, response

    @_person_waits(reading=False)
    async def cancel(self, request_id: str, reason: str, responder: Responder, via: Via) -> Response:
        """End a pending event without an answer; the first outcome wins, as for answers.

        Raises `AlreadyAnswered` (or `EventCancelled`) when the event already has its outcome, and
        `EventExpired` past its deadline: the expiry (or the default the reconciler is about to
        apply) is the outcome then.
        """
        request = await self.store.get_request(request_id)
        if request.expired():
            if existing := await self.store.get_response(request_id):
                raise AlreadyAnswered.of(existing)
            raise EventExpired(format_time(request.deadline))
        response = Response.cancellation(request, reason, responder, via)
        await self.store.create_response(response)  # like an answer: one request before the ack
        log.info("event cancelled", extra={"request_id": request_id, "via": via, "outcome": "cancelled"})
        self.metrics.cancelled.inc()
        self.delivery.ended(request, response)
        return response

    @_person_waits(reading=True)
    async def check(self, request_id: str, responder: Responder, *, trusted: bool = False) -> Request:
        """Everything `respond` checks before the value: raise if answered, expired or not allowed.

        Lets a platform refuse before asking for input (Slack's "Respond…" modal, for one).
        """
        request = await self.store.get_request(request_id)
        if existing := await self.store.get_response(request_id):
            raise AlreadyAnswered.of(existing)
        await self._admit(request, responder, trusted)
        return request

    async def _admit(self, request: Request, responder: Responder, trusted: bool) -> None:
        """The deadline, then (unless `trusted`) the responder check."""
        if request.expired():
            raise EventExpired(format_time(request.deadline))
        if request.team_event:  # never decided by one answer; refused until the bot counts votes (issue 23)
            raise NotAllowed(TEAM_DECISION_REFUSED)
        if not trusted:
            await self.authorize(request, responder)

    async def authorize(self, request: Request, responder: Responder) -> None:
        if await self.may_answer(request, responder):
            return
        who = ", ".join(request.responders)
        if responder.platform == "web":
            raise NotAllowed(f"Only {who} may answer this event; answer it from the chat message instead.")
        raise NotAllowed(f"Only {who} may answer this event.")

    async def may_answer(self, request: Request, responder: Responder) -> bool:
        """Empty `responders` (or "*") means anyone; entries are user or group ids, optionally
        prefixed with the platform (`<platform>:<id>`). Display names never count: people can change them.

        Raises `MembershipUnknown` if only a group that could not be read might let them in, so the
        person is asked to retry rather than told they may not answer.
        """
        allowed = request.responders
        if not allowed or "*" in allowed:
            return True
        if responder.platform == "web" or not responder.user_id:
            return False
        if responder.user_id in allowed or f"{responder.platform}:{responder.user_id}" in allowed:
            return True
        platform = self.delivery.platform(responder.platform)
        if platform is None:
            return False
        unknown: MembershipUnknown | None = None
        for entry in allowed:
            try:
                members = await platform.group_members(entry.removeprefix(f"{responder.platform}:"))
            except MembershipUnknown as error:
                unknown = error  # another entry may still let them in
                continue
            if members and responder.user_id in members:
                return True
        if unknown is not None:
            raise unknown
        return False

    @_person_waits(reading=True)
    async def event(self, request_id: str) -> Request:
        """The event, for a platform or the form to show."""
        return await self.store.get_request(request_id)

    # -- listing, expiring ----------------------------------------------------------------

    @_person_waits(reading=True)
    async def pending(self, responder: Responder | None = None) -> list[Request]:
        """Pending, unexpired events, newest first; only those `responder` may answer if given.

        One listing of the index; requests this replica has read are not read again, the others
        are read once, `_READ_CONCURRENCY` at a time. A store that is down is `StoreUnavailable`:
        an empty list would tell people nothing waits for them.
        """
        ids = await self.store.pending_ids()
        cached = {request_id: self.store.cached_request(request_id) for request_id in ids}
        known = [r for r in cached.values() if r is not None]
        missing = [request_id for request_id, r in cached.items() if r is None]
        gate = asyncio.Semaphore(_READ_CONCURRENCY)

        async def load(request_id: str) -> Request | None:
            async with gate:
                try:
                    return await self.store.get_request(request_id)
                except Exception:  # one unreadable event must not hide the others
                    log.warning("pending event unreadable", extra={"request_id": request_id})
                    return None

        async def listed(request: Request, responder: Responder) -> bool:
            try:
                return await self.may_answer(request, responder)
            except MembershipUnknown:  # cannot tell now: list it; answering checks again
                return True

        found = await asyncio.gather(*map(load, missing))
        if None in found:
            await self.store.ping()  # an unreadable event is skipped, a store that is down is not
        loaded = [r for r in found if r]
        requests = [r for r in known + loaded if not r.expired()]
        if responder is not None:
            anyone = [r for r in requests if not r.responders or "*" in r.responders]  # no lookup needed
            restricted = [r for r in requests if r.responders and "*" not in r.responders]
            allowed = await asyncio.gather(*(listed(r, responder) for r in restricted))
            requests = anyone + [r for r, ok in zip(restricted, allowed, strict=True) if ok]
        return sorted(requests, key=lambda r: r.created_at, reverse=True)

    async def expire(self, request_id: str) -> bool:
        """Close an unanswered event past its deadline, once across replicas; True if done now.

        An event with `on_timeout` gets that value as its outcome (via `timeout`), written like any
        answer, so a late answer and the default cannot both win; the copies then show it. The
        reconciler's (nobody waits on it): storage trouble is a `StoreError`, retried on its next pass.
        """
        request = await self.store.get_request(request_id)
        if not request.expired() or await self.store.get_response(request_id):
            return False
        if request.on_timeout is not None:
            return await self._apply_default(request)
        if not await self.store.claim(request_id, EXPIRED_CLAIM):  # the claim is also the record of expiry
            await self.store.drop_pending(request_id)
            return False
        with contextlib.suppress(StoreError):  # only the outcome history (lists, stats) misses it
            await self.store.index_expired(request)
        if await self.store.get_response(request_id):
            # An answer or cancel checked before the deadline landed since: it is the outcome (its
            # writer settles it), and the index must not name the event twice (`Store.supersede_expiry`).
            with contextlib.suppress(StoreError):
                await self.store.unindex_expired(request)
            return False
        await self.store.drop_pending(request_id)
        log.info("event expired", extra={"request_id": request_id, "outcome": "expired"})
        self.metrics.expired.inc()
        self.metrics.decided(expiry_record(request))
        self.delivery.update_messages_later(request, None)
        return True

    async def _apply_default(self, request: Request) -> bool:
        response = Response.timeout_default(request)
        try:
            await self.store.create_response(response)
        except AlreadyAnswered:
            return False  # the plugin's wait (or another replica) applied it first, or someone answered
        log.info("event expired", extra={"request_id": request.request_id, "outcome": "default applied"})
        self.metrics.expired.inc()
        await self.delivery.defaulted(request, response)
        return True

    @_person_waits(reading=True)
    async def recent(
        self, outcome: OutcomeKind, *, limit: int, after: str | None = None, search: Search | None = None
    ) -> Page:
        """Recently ended events with who/when/via, newest first, those `search` matches (see `Store.outcomes`)."""
        return await self.store.outcomes(outcome, limit=limit, after=after, search=search)

    @_person_waits(reading=True)
    async def stats(self, span: Span) -> list[EventStats]:
        """How the events that ended in `span` ended, per event name, and how long their decisions took:
        from the outcome history alone (`Store.ended_in`), never from the events."""
        folders = await asyncio.gather(*(self.store.ended_in(kind, span) for kind in get_args(OutcomeKind)))
        return summarize(ended for found in folders for ended in found)
