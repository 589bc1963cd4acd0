"""The chat-agnostic core: answer, cancel, list and expire events.

Every decision lives here (expiry, authorization, validation, first answer wins), and so does every
step of posting: each target once, recorded, every copy re-rendered when the event ends, failures
logged, counted and retried through the outbox. Adapters implement `platform.Platform` (send one
message, re-render one copy) and never decide anything themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Coroutine
from datetime import timedelta
from typing import Any

from .answers import Rejected, parse_answer
from .errors import (
    AlreadyAnswered,
    EventExpired,
    HitlError,
    InvalidValue,
    MembershipUnknown,
    NotAllowed,
    PlatformError,
    StoreError,
    StoreUnavailable,
    UserError,
)
from .links import form_url
from .metrics import Metrics
from .platform import Platform
from .protocol import MessageRef, OutcomeKind, Request, Responder, Response, Via, format_time, utcnow
from .store import EXPIRED_CLAIM, Listing, Page, Store

log = logging.getLogger(__name__)
_READ_CONCURRENCY = 32
# A post not done after this lost its replica mid-post: a live one gives up at `post_send_seconds`.
STALE_POST_SECONDS = 120.0
_POST_ATTEMPTS = 3  # a target whose posts keep dying mid-way is given up after this many
_RECORD_ATTEMPTS = 3  # saving where a posted message went; each wait doubles from `record_retry_seconds`
CUT_SECONDS = 2.0  # work cut short at shutdown has this long to record what it still owes (one store write)
TEAM_DECISION_REFUSED = (
    "This event needs a team decision (several approvals, approval rules, a requester or escalations), which "
    "this version of the bot cannot count yet. Ask the workflow's owner to cancel it or upgrade hitl-chatops."
)


class HitlService:
    """Core operations over the store, shared by every chat platform, the web form and the API."""

    def __init__(self, store: Store, *, secret: str, form_base_url: str) -> None:
        self.store = store
        self._secret = secret
        self._form_base_url = form_base_url
        self._platforms: list[Platform] = []
        self._background: set[asyncio.Task[object]] = set()
        # Events this replica left work for the reconciler on: a target to post again, an outcome to settle.
        self._owed: set[str] = set()
        self._settling: set[str] = set()  # outcomes written here whose settle has not finished yet
        self.metrics = Metrics()
        # Slack's client alone may retry for longer (30 s timeouts, Retry-After waits); cut off
        # well before anyone may take the claim over, so nobody posts again while it still runs.
        self.post_send_seconds = STALE_POST_SECONDS / 2
        self.record_retry_seconds = 1.0
        # Extra work after an answer the bot wrote, and owed work the reconciler retries (Flyte signals).
        self.answered_hooks: list[Callable[[Request, Response], Coroutine[Any, Any, None]]] = []
        self.repairs: list[Callable[[Listing], Awaitable[int]]] = []
        # Told an event's id, on this service's loop, as soon as it writes the event's outcome (an
        # answer, a cancel, a default): a local run's in-process bot wakes its waiting tasks at once.
        self.outcome_listeners: list[Callable[[str], None]] = []

    def add_platform(self, platform: Platform) -> None:
        """Post events to `platform` and keep its copies current (the server does this per enabled adapter)."""
        self._platforms.append(platform)

    def form_url(self, request_id: str) -> str:
        return form_url(self._form_base_url, self._secret, request_id)

    # -- the answer path -----------------------------------------------------------------

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
        except StoreError:
            self.metrics.refused.labels("store").inc()
            raise StoreUnavailable() from None
        except UserError as error:
            self.metrics.refused.labels(type(error).__name__).inc()
            raise
        log.info(
            "event answered",
            extra={"request_id": request_id, "event": request.event_name, "via": via, "outcome": "answered"},
        )
        self.metrics.answered.labels(via).inc()
        self.metrics.answer_latency.observe(
            (response.responded_at or utcnow()).timestamp() - request.created_at.timestamp()
        )
        self._ended(request, response)
        for hook in self.answered_hooks:
            self.spawn(hook(request, response))
        return response

    def _ended(self, request: Request, response: Response) -> None:
        """After the person's ack: settle the outcome (indexed, marker dropped) and update the copies."""
        self._settling.add(request.request_id)
        self._tell(request.request_id)
        self.spawn(self._settle(request, response))
        self._fan_out("answered", request, response)

    async def _settle(self, request: Request, response: Response) -> None:
        """`Store.settle`; what fails stays owed, so this replica's reconciler reads the event again."""
        self._owed.discard(request.request_id)
        try:
            if not await self.store.settle(response, request):
                self._owed.add(request.request_id)
        finally:
            self._settling.discard(request.request_id)

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

    async def cancel(self, request_id: str, reason: str, responder: Responder, via: Via) -> Response:
        """End a pending event without an answer; the first outcome wins, as for answers.

        Raises `AlreadyAnswered` (or `EventCancelled`) when the event already has its outcome, and
        `EventExpired` past its deadline: the expiry (or the default the reconciler is about to
        apply) is the outcome then.
        """
        try:
            request = await self.store.get_request(request_id)
            if request.expired():
                if existing := await self.store.get_response(request_id):
                    raise AlreadyAnswered.of(existing)
                raise EventExpired(format_time(request.deadline))
            response = Response.cancellation(request, reason, responder, via)
            await self.store.create_response(response)  # like an answer: one request before the ack
        except StoreError:
            raise StoreUnavailable() from None
        log.info("event cancelled", extra={"request_id": request_id, "via": via, "outcome": "cancelled"})
        self.metrics.cancelled.inc()
        self._ended(request, response)
        return response

    async def check(self, request_id: str, responder: Responder, *, trusted: bool = False) -> Request:
        """Everything `respond` checks before the value: raise if answered, expired or not allowed.

        Lets a platform refuse before asking for input (Slack's "Respond…" modal, for one).
        """
        async with _reading():
            request = await self.store.get_request(request_id)
            existing = await self.store.get_response(request_id)
        if existing:
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
        platform = self._platform(responder.platform)
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

    async def event(self, request_id: str) -> Request:
        """The event, for a platform or the form to show; storage trouble is `StoreUnavailable` ("try again")."""
        async with _reading():
            return await self.store.get_request(request_id)

    # -- where a platform may post -------------------------------------------------------

    async def save_conversation(self, platform: str, conversation_id: str, data: dict[str, Any]) -> None:
        """Keep what a platform needs to post into a conversation later (Teams' reference)."""
        await self.store.put_conversation(platform, conversation_id, data)

    async def conversation(self, platform: str, conversation_id: str) -> dict[str, Any] | None:
        return await self.store.get_conversation(platform, conversation_id)

    # -- listing, announcing, expiring ---------------------------------------------------

    async def pending(self, responder: Responder | None = None) -> list[Request]:
        """Pending, unexpired events, newest first; only those `responder` may answer if given.

        One listing of the index; requests this replica has read are not read again, the others
        are read once, `_READ_CONCURRENCY` at a time. Storage trouble is `StoreUnavailable` ("try
        again"): an empty list would tell people nothing waits for them.
        """
        async with _reading():
            return await self._pending(responder)

    async def _pending(self, responder: Responder | None) -> list[Request]:
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

    async def announce(self, request_id: str) -> Request:
        """Post an event to every platform; safe to repeat (each target is posted once, see `post_once`).

        An event answered already (in Flyte, written by the task) has its copies updated instead.
        """
        request = await self.store.get_request(request_id)
        if response := await self.store.get_response(request_id):  # answered outside the bot (Flyte)
            self._fan_out("answered", request, response)
            return request
        await self.post(request)
        return request

    async def post(self, request: Request) -> None:
        """`announce` for a caller that knows the event is unanswered (the reconciler just read it)."""
        self._owed.discard(request.request_id)
        sent = [await self._post(platform, request) for platform in self._platforms]
        if any(sent):  # a repeated notify or a pass finding every target posted is not a new announcement
            self.metrics.announced.inc()

    def owes(self, request_id: str) -> bool:
        """Whether this replica left work on the event (a post to retry, an outcome to settle): the
        reconciler reads it again rather than resting until its marker changes."""
        return request_id in self._owed

    def settling(self, request_id: str) -> bool:
        """Whether this replica is settling the event's outcome right now (its copies being updated):
        the reconciler leaves it alone rather than repair, and update the copies, a second time."""
        return request_id in self._settling

    async def _post(self, platform: Platform, request: Request) -> bool:
        """Each of the platform's targets once; one target's trouble does not stop the others.

        Returns whether a message was sent now.
        """
        try:
            targets = platform.targets(request)
        except Exception as error:
            self._log_failure("post", request, platform.name, error)
            return False
        sent = False
        for target in targets:

            async def send(target: str = target) -> MessageRef:
                return await platform.send(request, target)

            try:
                sent = await self.post_once(request, platform.name, target, send) or sent
            except Exception as error:  # the claim is released: the reconciler posts it on its next pass
                self._log_failure("post", request, platform.name, error, target=target)
        return sent

    def announce_later(self, request_id: str) -> None:
        """`announce` without holding up the caller (a Flyte task) while chat platforms answer."""
        self.spawn(self.announce(request_id))

    async def post_once(
        self, request: Request, platform: str, target: str, send: Callable[[], Awaitable[MessageRef]]
    ) -> bool:
        """Run `send` unless this target already has (or is getting) the message, on any replica.

        A claim object makes the first caller the only poster. A failed send, or one still running
        after `post_send_seconds` (`TimeoutError`), releases it, so the reconciler tries again. A
        claim still not done after `STALE_POST_SECONDS` lost its replica mid-post: the next numbered
        claim takes over, so a crash costs a late message (at worst a second one), never a missing
        one. Once `send` returns, the message exists: its record is saved and the claim is marked
        done, and neither failing frees the claim (that would post a second copy). Returns whether
        `send` ran.
        """
        base = f"post-{platform}-{hashlib.sha256(target.encode()).hexdigest()[:24]}"
        for attempt in range(1, _POST_ATTEMPTS + 1):
            name = base if attempt == 1 else f"{base}.{attempt}"
            if await self.store.claim(request.request_id, name):
                break
            claim = await self.store.get_claim(request.request_id, name)
            if claim is None or claim.done or utcnow() - claim.claimed_at < timedelta(seconds=STALE_POST_SECONDS):
                if claim is None or not claim.done:
                    self._owed.add(request.request_id)
                return False  # posted, being posted, or released a moment ago (the next pass retries)
        else:
            log.error(
                "post given up: replicas died mid-post three times (out of memory?); the form link still answers it",
                extra={
                    "request_id": request.request_id,
                    "platform": platform,
                    "target": target,
                    "attempts": _POST_ATTEMPTS,
                },
            )
            return False
        try:
            async with asyncio.timeout(self.post_send_seconds):
                message = await send()
        except BaseException:
            self._owed.add(request.request_id)
            await self.store.release(request.request_id, name)
            raise
        await self._record_posted(request, message)
        try:
            await self.store.finish_claim(request.request_id, name)
        except StoreError:  # posted all the same; the claim may be taken over later (a second copy)
            log.warning("post claim not marked done", extra={"request_id": request.request_id, "platform": platform})
        return True

    async def _record_posted(self, request: Request, message: MessageRef) -> None:
        """`record_message`, retried: storage hiccups are common, and an unrecorded copy is never updated."""
        for attempt in range(1, _RECORD_ATTEMPTS + 1):
            try:
                await self.record_message(request, message)
                return
            except StoreError:
                if attempt == _RECORD_ATTEMPTS:
                    log.error(
                        "message posted but not recorded: it will keep its buttons after the answer",
                        extra={"request_id": request.request_id, "platform": message.platform, "key": message.key},
                    )
                    return
                await asyncio.sleep(self.record_retry_seconds * 2 ** (attempt - 1))

    async def record_message(self, request: Request, message: MessageRef) -> None:
        """Remember where a copy of the event went, so any replica can update it.

        An answer (or the deadline) may have come while this copy was on its way; the fan-out then
        missed it, so it is re-rendered now instead of keeping live buttons.
        """
        await self.store.put_message(request.request_id, message)
        if response := await self.store.get_response(request.request_id):
            self._fan_out("answered", request, response)
        elif request.expired():
            self._fan_out("expired", request, None)

    async def expire(self, request_id: str) -> bool:
        """Close an unanswered event past its deadline, once across replicas; True if done now.

        An event with `on_timeout` gets that value as its outcome (via `timeout`), written like any
        answer, so a late answer and the default cannot both win; the copies then show it.
        """
        request = await self.store.get_request(request_id)
        if not request.expired() or await self.store.get_response(request_id):
            return False
        if request.on_timeout is not None:
            return await self._apply_default(request)
        if not await self.store.claim(request_id, EXPIRED_CLAIM):  # the claim is also the record of expiry
            await self.store.drop_pending(request_id)
            return False
        with contextlib.suppress(StoreError):  # only the list of recent outcomes misses it
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
        self._fan_out("expired", request, None)
        return True

    async def _apply_default(self, request: Request) -> bool:
        response = Response.timeout_default(request)
        try:
            await self.store.create_response(response)
        except AlreadyAnswered:
            return False  # the plugin's wait (or another replica) applied it first, or someone answered
        log.info("event expired", extra={"request_id": request.request_id, "outcome": "default applied"})
        self.metrics.expired.inc()
        self._tell(request.request_id)
        await self._settle(request, response)  # nobody waits for an ack here
        self._fan_out("answered", request, response)
        return True

    async def recent(self, outcome: OutcomeKind, *, limit: int, after: str | None = None) -> Page:
        """Recently ended events with who/when/via, newest first (see `Store.outcomes`)."""
        async with _reading():
            return await self.store.outcomes(outcome, limit=limit, after=after)

    async def update_messages(self, request: Request, response: Response | None) -> bool:
        """Re-render every copy of the event (answered, or expired when `response` is None).

        Returns False if any copy failed; the event then stays in the outbox for a retry.
        """
        what = "answered" if response else "expired"
        try:
            messages = await self.store.messages(request.request_id)  # one listing for every platform
        except StoreError as error:
            self._log_failure(what, request, "store", error)
            return False
        platforms = {p.name: p for p in self._platforms}

        async def rerender(message: MessageRef, platform: Platform) -> bool:
            try:
                await platform.rerender(request, response, message)
            except Exception as error:
                self._log_failure(what, request, platform.name, error, target=message.key)
                return False
            return True

        copies = [(m, platforms[m.platform]) for m in messages if m.platform in platforms]
        return all(await asyncio.gather(*(rerender(m, p) for m, p in copies)))

    async def drain(self, seconds: float | None = None) -> None:
        """Wait for background work (settles, message updates, Flyte signals): all of it (tests), or
        at most `seconds` (shutdown), then cut what still runs. Work cut short leaves what it owes
        for the reconciler: an update its outbox entry, a signal its owed record, a settle its
        marker, a post its released claim."""
        cut = await finish_or_cut(self._background, seconds)
        if cut:
            log.warning("background work cut short; the reconciler finishes it", extra={"tasks": cut})

    # -- helpers -------------------------------------------------------------------------

    def _platform(self, name: str) -> Platform | None:
        return next((p for p in self._platforms if p.name == name), None)

    def _tell(self, request_id: str) -> None:
        """Tell `outcome_listeners` the event has its outcome; one that fails never fails the answer."""
        for listener in self.outcome_listeners:
            try:
                listener(request_id)
            except Exception:
                log.exception("outcome listener failed", extra={"request_id": request_id})

    def _fan_out(self, what: str, request: Request, response: Response | None) -> None:
        """Update messages without holding up the person's answer; what fails goes to the outbox."""
        if not self._platforms:
            return

        async def update() -> None:
            try:
                if await self.update_messages(request, response):
                    return
            except asyncio.CancelledError:  # cut short by shutdown
                await self._owe_update(request, what)
                raise
            await self._owe_update(request, what)

        self.spawn(update())

    async def _owe_update(self, request: Request, what: str) -> None:
        with contextlib.suppress(StoreError):
            await self.store.put_outbox(request.request_id, what)

    def spawn(self, work: Coroutine[Any, Any, object]) -> None:
        """Run `work` in the background; shutdown (`drain`) waits for it, and a failure is logged."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("background work failed", extra={"error": type(error).__name__})

    def _log_failure(
        self, step: str, request: Request, platform: str, error: Exception, *, target: str | None = None
    ) -> None:
        """Count and log a failed post or update as our own error; the outbox or reconciler retries it.

        A `HitlError` (a refusal the adapter explained, a store outage) or a timeout is a warning
        in one line; anything else is a bug or an SDK surprise: an error, with its traceback.
        """
        self.metrics.update_failures.labels(platform, step).inc()
        failure, surprise = _as_platform_error(error, platform, step)
        log.log(
            logging.ERROR if surprise else logging.WARNING,
            "%s %s failed",
            platform,
            "post" if step == "post" else "update",
            exc_info=error if surprise else None,
            extra={
                "request_id": request.request_id,
                "platform": platform,
                "step": step,
                "target": target,
                "error": type(failure).__name__,
                "reason": str(failure),
            },
        )


async def finish_or_cut(tasks: Collection[asyncio.Task[Any]], seconds: float | None) -> int:
    """Wait for `tasks` (a live set: work they start is waited for too) for at most `seconds`
    (None: until done), then cancel the rest and give them `CUT_SECONDS` to record what they still
    owe. Returns how many were cut."""
    loop = asyncio.get_running_loop()
    deadline = None if seconds is None else loop.time() + seconds
    while running := [task for task in tasks if not task.done()]:
        left = None if deadline is None else deadline - loop.time()
        if left is not None and left <= 0:
            break
        await asyncio.wait(running, timeout=left)
    cut = [task for task in tasks if not task.done()]
    for task in cut:
        task.cancel()
    if cut:
        await asyncio.wait(cut, timeout=CUT_SECONDS)
    return len(cut)


@contextlib.asynccontextmanager
async def _reading() -> AsyncIterator[None]:
    """A read a person waits on: storage trouble becomes the "try again" every surface shows."""
    try:
        yield
    except StoreError:
        raise StoreUnavailable(reading=True) from None


def _as_platform_error(error: Exception, platform: str, step: str) -> tuple[HitlError, bool]:
    """`error` in our hierarchy, and whether it was a surprise (neither ours nor a timeout)."""
    if isinstance(error, HitlError):
        return error, False
    if isinstance(error, TimeoutError):
        return PlatformError(f"{platform} did not answer in time"), False
    return PlatformError(f"{platform} {step} failed unexpectedly ({type(error).__name__})"), True
