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
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, get_args

from .answers import Rejected, approval_field, parse_answer, schema_of
from .background import Background
from .batch import BulkResult, bulk_answerable
from .decision import lists_at
from .delivery import Delivery
from .errors import (
    AlreadyAnswered,
    AlreadyVoted,
    EventExpired,
    InvalidValue,
    MembershipUnknown,
    NotAllowed,
    StoreError,
    StoreUnavailable,
    UserError,
)
from .history import EventStats, Search, Span, summarize
from .inbox import Inbox, by_urgency, waits_for
from .links import batch_url, form_url
from .metrics import Metrics
from .people import People
from .protocol import NOTE_LIMIT, LogEntry, OutcomeKind, Request, Responder, Response, Via, format_time, utcnow
from .store import EXPIRED_CLAIM, BatchListing, Page, Store, check_request_id, expiry_record
from .team import TeamDecisions, Verdict
from .view import EventView, event_view

__all__ = ["HitlService"]

log = logging.getLogger(__name__)
_READ_CONCURRENCY = 32
_BULK_CONCURRENCY = 8  # answers of one Approve all / Reject all written at once
_INBOX_LOG_READS = 200  # team decisions' logs one inbox reads at most (one listing each)
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
        self.people = People(self.delivery.platform)  # who is in a list, who asked
        self.team = TeamDecisions(store, self.delivery, self.metrics, self.people)  # votes, decisions, reminders

    def form_url(self, request_id: str, person: Responder | None = None) -> str:
        """The event's shared form link; with `person`, their personal link (`links`): the form answers
        it as them, checked as a click of theirs would be. Send a personal link only to that person."""
        if person is None:
            return form_url(self._form_base_url, self._secret, request_id)
        return form_url(self._form_base_url, self._secret, request_id, person.identity, person.user_name)

    def batch_url(self, batch_id: str) -> str:
        """The form's list page of a batch: its open events, each with its form link."""
        return batch_url(self._form_base_url, self._secret, batch_id)

    # -- the answer path -----------------------------------------------------------------

    @_person_waits(reading=False)
    async def answer(
        self,
        request_id: str,
        raw_value: object,
        responder: Responder,
        via: Via,
        *,
        trusted: bool = False,
        reason: str | None = None,
    ) -> Verdict:
        """A person's answer, as any surface takes it (a click, a form, the API), for any event.

        A simple event: `respond`. A team decision: the vote the answer means (`parse_answer` first):
        Approve or Reject for an Approve/Reject event (`reason` kept; a Reject is a veto); for a value
        event, a proposal, or a Confirm when it is the value proposed. `trusted` (the API) skips a
        simple event's responder check; a team decision checks the person it names all the same.
        Raises a `UserError` whose message the caller shows as is.
        """
        request = await self.store.get_request(request_id)
        if not request.team_event:
            return Verdict(request, await self.respond(request_id, raw_value, responder, via, trusted=trusted))
        return await self._counted(self._team_answer(request, raw_value, responder, via, _short(reason, "reason")))

    async def _team_answer(
        self, request: Request, raw_value: object, responder: Responder, via: Via, reason: str | None
    ) -> Verdict:
        try:
            value = self._parsed(request, raw_value)
        except UserError:  # who decided matters more than why this answer would be refused
            if existing := await self.store.get_response(request.request_id):
                raise AlreadyAnswered.of(existing) from None
            raise
        decision = approval_field(schema_of(request))
        if decision is not None:
            approve = bool(value if decision.name == "value" else value[decision.name])
            value, reason = _with_reason(request, value, reason)
            return await self.team.vote(request, responder, via, approve=approve, value=value, reason=reason)
        _, tally = await self.delivery.decision(request)
        if tally.proposal is not None and tally.proposal.value == value:
            return await self.team.vote(request, responder, via, approve=True, round_=tally.round)
        return await self.team.propose(request, responder, via, value)

    @_person_waits(reading=False)
    async def approve(
        self, request_id: str, responder: Responder, via: Via, *, reason: str | None = None, round_: int | None = None
    ) -> Verdict:
        """A team decision's Approve: a vote for an Approve/Reject event, a Confirm of the current
        proposal for a value event (`round_`: the one the person saw; None: whichever is current)."""
        return await self._decide(request_id, responder, via, approve=True, reason=reason, round_=round_)

    @_person_waits(reading=False)
    async def reject(
        self, request_id: str, responder: Responder, via: Via, *, reason: str | None = None, round_: int | None = None
    ) -> Verdict:
        """A team decision's Reject: a veto of an Approve/Reject event (it ends as rejected), or for a
        value event the end of the current proposal's round (`reason` kept in the history)."""
        return await self._decide(request_id, responder, via, approve=False, reason=reason, round_=round_)

    async def _decide(
        self, request_id: str, responder: Responder, via: Via, *, approve: bool, reason: str | None, round_: int | None
    ) -> Verdict:
        request = await self._team_event(request_id)
        reason = _short(reason, "reason")
        value: object = None
        decision = approval_field(schema_of(request))
        if decision is not None:
            raw = approve if decision.name == "value" else {decision.name: approve}
            value, reason = _with_reason(request, self._parsed(request, raw), reason)
        vote = self.team.vote(request, responder, via, approve=approve, value=value, reason=reason, round_=round_)
        return await self._counted(vote)

    @_person_waits(reading=False)
    async def propose(self, request_id: str, raw_value: object, responder: Responder, via: Via) -> Verdict:
        """A value for a team decision's current round (checked like any answer); its proposer's approval."""
        request = await self._team_event(request_id)
        return await self._counted(self.team.propose(request, responder, via, self._parsed(request, raw_value)))

    @_person_waits(reading=False)
    async def delegate(
        self, request_id: str, responder: Responder, to: Responder, via: Via, *, note: str | None = None
    ) -> Verdict:
        """Hand `responder`'s place in a team decision to `to` (see `TeamDecisions.delegate`)."""
        request = await self._team_event(request_id)
        return await self._counted(self.team.delegate(request, responder, to, via, _short(note, "note")))

    async def _team_event(self, request_id: str) -> Request:
        request = await self.store.get_request(request_id)
        if not request.team_event:
            raise NotAllowed("This event takes one answer, not votes: answer it.")
        return request

    async def _counted(self, acting: Coroutine[Any, Any, Verdict]) -> Verdict:
        """Count refusals as `respond` does, and log what a team action did."""
        try:
            verdict = await acting
        except (StoreError, UserError) as error:
            self.metrics.refused.labels("store" if isinstance(error, StoreError) else type(error).__name__).inc()
            raise
        entry = verdict.entry
        log.info(
            "team decision answered",
            extra={
                "request_id": verdict.request.request_id,
                "entry": entry.kind if entry is not None else None,
                "outcome": "decided" if verdict.decided else "counted",
            },
        )
        return verdict

    @staticmethod
    def _parsed(request: Request, raw_value: object) -> Any:
        outcome = parse_answer(request, raw_value)
        if isinstance(outcome, Rejected):
            raise InvalidValue(outcome.message, outcome.errors)
        return outcome.value

    @_person_waits(reading=False)
    async def answer_batch(self, batch: str, approve: bool, responder: Responder, via: Via) -> BulkResult:
        """Approve all / Reject all of a batch of yes/no events (`batch.py`): each open event gets its
        own answer through `answer`, with the person's eligibility checked for each (a team decision:
        their vote). Those decided already are skipped and counted; so are those they may not answer."""
        listing = await self._batch(batch)
        open_ids = listing.open
        if open_ids and not bulk_answerable(await self.store.get_request(open_ids[0])):
            raise NotAllowed("These events ask for a value: review them one by one.")
        gate = asyncio.Semaphore(_BULK_CONCURRENCY)

        async def one(request_id: str) -> str:
            async with gate:
                try:
                    await self.answer(request_id, approve, responder, via)
                except (AlreadyAnswered, EventExpired):
                    return "decided"
                except AlreadyVoted:
                    return "voted"
                except NotAllowed:
                    return "refused"
                except UserError:  # storage, a group lookup: try again
                    return "failed"
                return "answered"

        outcomes = await asyncio.gather(*map(one, open_ids))
        counts = {kind: outcomes.count(kind) for kind in ("answered", "decided", "voted", "refused", "failed")}
        counts["decided"] += listing.decided
        log.info("batch answered", extra={"batch_id": batch, "user": responder.user_id, **counts})
        return BulkResult(**counts)

    @_person_waits(reading=True)
    async def batch_events(self, batch: str) -> list[Request]:
        """The open events of a batch, oldest first (the form's list page, "Review one by one")."""
        ids = (await self._batch(batch)).open
        gate = asyncio.Semaphore(_READ_CONCURRENCY)

        async def read(request_id: str) -> Request:
            async with gate:
                return await self.store.get_request(request_id)

        return [r for r in await asyncio.gather(*map(read, ids)) if not r.expired()]

    async def _batch(self, batch: str) -> BatchListing:
        """One listing of the batch; an empty one is checked against a store that is down (a listing
        of a folder that is not there is empty too)."""
        listing = await self.store.batch(check_request_id(batch))
        if not listing.joined:
            await self.store.ping()
        return listing

    @_person_waits(reading=True)
    async def state(self, request_id: str) -> EventView:
        """The event as it stands: its outcome, or a team decision under way (votes, proposal, history)."""
        request = await self.store.get_request(request_id)
        response = await self.store.get_response(request_id)
        if response is not None or not request.team_event:
            return event_view(request, response, expired=request.expired())
        return await self.delivery.view_of(request, None)

    @_person_waits(reading=True)
    async def history(self, request_id: str) -> tuple[LogEntry, ...]:
        """The event's decision log, oldest first (votes, proposals, hand-overs, reminders, escalations)."""
        request = await self.store.get_request(request_id)
        if not (request.team_event or request.remind_every):
            return ()
        found = await self.store.decision_log(request.request_id)
        return tuple(sorted(found.entries, key=lambda entry: entry.at))

    @_person_waits(reading=False)
    async def respond(
        self, request_id: str, raw_value: object, responder: Responder, via: Via, *, trusted: bool = False
    ) -> Response:
        """A simple event's answer: load → not answered → not expired → authorized → valid → exclusive
        write → update every copy. A team decision takes votes instead (`answer`).

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
        """Everything `answer` checks before the value: raise if answered, expired or not allowed (a
        team decision: also the requester, someone who handed their place on, or voted already).

        Lets a platform refuse before asking for input (Slack's "Respond…" modal, for one).
        """
        request = await self.store.get_request(request_id)
        if request.team_event:
            await self.team.check(request, responder)
            return request
        if existing := await self.store.get_response(request_id):
            raise AlreadyAnswered.of(existing)
        await self._admit(request, responder, trusted)
        return request

    async def _admit(self, request: Request, responder: Responder, trusted: bool) -> None:
        """The deadline, then (unless `trusted`) the responder check."""
        if request.expired():
            raise EventExpired(format_time(request.deadline))
        if request.team_event:  # `respond` is the one-answer path: a team decision counts votes
            raise NotAllowed("This event is a team decision: answer it with a vote (HitlService.answer).")
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
        A team decision: any of its lists now (`decision.lists_at`: rules, escalation levels reached),
        never its requester, named by chat identity or by e-mail (`People.asked`; the lists use this, a
        vote is checked by `TeamDecisions`, hand-overs included).

        Raises `MembershipUnknown` if only a group that could not be read might let them in, so the
        person is asked to retry rather than told they may not answer.
        """
        if not request.team_event:
            return not request.responders or await self.people.listed(request.responders, responder)
        if await self.people.asked(request.requester, responder):
            return False
        lists = lists_at(request, utcnow())
        if lists.anyone:
            return True
        return any([await self.people.listed(entries, responder) for entries in (lists.general, *lists.rules)])

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
                if await self.may_answer(request, responder):
                    return True
            except MembershipUnknown:  # cannot tell now: list it; answering checks again
                return True
            return request.team_event and await handed_to(request, responder)

        async def handed_to(request: Request, responder: Responder) -> bool:
            """Whether someone handed their place in the team decision to `responder`: its log (one
            listing), read only for team decisions their lists leave them out of."""
            async with gate:
                try:
                    _, tally = await self.delivery.decision(request)
                except Exception:  # one unreadable log must not hide the other events
                    log.warning("pending event's decision unreadable", extra={"request_id": request.request_id})
                    return False
            return tally.delegated_to(responder)

        found = await asyncio.gather(*map(load, missing))
        if None in found:
            await self.store.ping()  # an unreadable event is skipped, a store that is down is not
        loaded = [r for r in found if r]
        requests = [r for r in known + loaded if not r.expired()]
        if responder is not None:
            open_ = [r for r in requests if not r.team_event and (not r.responders or "*" in r.responders)]
            anyone = open_  # no lookup needed
            restricted = [r for r in requests if r not in open_]
            allowed = await asyncio.gather(*(listed(r, responder) for r in restricted))
            requests = anyone + [r for r, ok in zip(restricted, allowed, strict=True) if ok]
        return sorted(requests, key=lambda r: r.created_at, reverse=True)

    @_person_waits(reading=True)
    async def inbox(self, responder: Responder, *, shown: int) -> Inbox:
        """What waits for `responder`, most urgent first (`inbox.by_urgency`): `pending(responder)`
        without the events this replica saw end, and without team decisions they approved or handed on.

        Cheap at any size: `pending`'s one listing (no read of a request a warm replica holds), and a
        team decision's log (one listing each) read only while filling the `shown` places, a window at a
        time and at most `_INBOX_LOG_READS` in all; the team decisions beyond are counted as waiting.
        """
        candidates = [
            r for r in by_urgency(await self.pending(responder)) if not self.store.cached_response(r.request_id)
        ]
        views: list[EventView] = []
        left_out = reads = 0
        rest = iter(candidates)
        while len(views) < shown and reads < _INBOX_LOG_READS:
            window = list(itertools.islice(rest, shown - len(views)))
            if not window:
                break
            reads += sum(r.team_event for r in window)
            for view in await asyncio.gather(*(self._waiting(r, responder) for r in window)):
                if view is None:
                    left_out += 1
                else:
                    views.append(view)
        return Inbox(tuple(views[:shown]), len(candidates) - left_out)

    async def _waiting(self, request: Request, responder: Responder) -> EventView | None:
        """The event's view if it waits for `responder`; a team decision's as its log has it now."""
        if not request.team_event:
            return event_view(request)
        found, tally = await self.delivery.decision(request)
        if found.answered or not waits_for(tally, responder):
            return None
        return event_view(request, tally=tally)

    async def expire(self, request_id: str) -> bool:
        """Close an unanswered event past its deadline, once across replicas; True if done now.

        An event with `on_timeout` gets that value as its outcome (via `timeout`), written like any
        answer, so a late answer and the default cannot both win; the copies then show it. The
        reconciler's (nobody waits on it): storage trouble is a `StoreError`, retried on its next pass.
        """
        request = await self.store.get_request(request_id)
        if not request.expired() or await self.store.get_response(request_id):
            return False
        if request.team_event and await self.team.decided_now(request):
            return False  # votes cast in time completed it: the decision is its outcome, not the deadline
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


def _short(text: str | None, what: str) -> str | None:
    """A reason or note as every surface takes it: at most `NOTE_LIMIT` characters, else a refusal
    the person can act on (the adapters check first, to say it beside the field)."""
    if text is not None and len(text) > NOTE_LIMIT:
        message = f"Keep the {what} to {NOTE_LIMIT} characters (this one has {len(text):,})."
        raise InvalidValue(message, {what: message})
    return text


def _with_reason(request: Request, value: Any, reason: str | None) -> tuple[Any, str | None]:
    """An Approve/Reject answer and its reason, each filled from the other: a reason given beside an
    "approve, with a reason" answer goes into its text field (where `require_approval` reads it), and
    that field's text is the vote's reason."""
    if not isinstance(value, dict):
        return value, reason
    schema = schema_of(request)
    text = next((f.name for f in schema.fields if f.kind == "str"), None)
    if text is None:
        return value, reason
    if reason and not value.get(text):
        outcome = parse_answer(request, value | {text: reason})
        if isinstance(outcome, Rejected):
            raise InvalidValue(outcome.message, outcome.errors)
        value = outcome.value
    return value, reason or value.get(text) or None
