"""Delivery: everything that reaches a chat, and everything that follows an outcome.

The service decides what a person waits on; delivery carries it out afterwards, as bolt's `App`
dispatches and its `WebClient` delivers. It posts each target once (claims, across replicas),
records where each copy went, re-renders every copy when the event ends, settles the outcome
(indexed, pending marker dropped) and runs what follows an answer (Flyte signals). What fails is
logged and counted as our own error and left owed: an outbox entry, a released claim, an event
this replica reads again. The reconciler retries it through the same methods.

Platforms (`platform.Platform`, one per enabled adapter) send one message, re-render one copy and
read a group; they never decide anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

from .background import Background
from .batch import Batches, Pacer, PostsBatches, batch_id, pace_of
from .decision import Tally, evaluate, reached
from .errors import HitlError, PlatformError, StoreError
from .metrics import Metrics
from .platform import Platform
from .protocol import BatchMessage, MessageRef, Request, Response, utcnow
from .states import Line
from .store import DecisionLog, Listing, Store, outcome_record
from .view import EventView, event_view, is_approval

__all__ = ["AnsweredHook", "Delivery", "Repair"]

log = logging.getLogger(__name__)
# A post not done after this lost its replica mid-post: a live one gives up at `post_send_seconds`.
STALE_POST_SECONDS = 120.0
_POST_ATTEMPTS = 3  # a target whose posts keep dying mid-way is given up after this many
_RECORD_ATTEMPTS = 3  # saving where a posted message went; each wait doubles from `record_retry_seconds`

AnsweredHook = Callable[[Request, Response], Coroutine[Any, Any, None]]
Repair = Callable[[Listing], Awaitable[int]]


class Delivery:
    """Posts, records, re-renders and settles for every platform; one per bot, shared by the service,
    the reconciler and the Flyte conditions code."""

    def __init__(self, store: Store, metrics: Metrics, background: Background) -> None:
        self.store = store
        self.metrics = metrics
        self.background = background
        self._platforms: list[Platform] = []
        # Events this replica left work for the reconciler on: a target to post again, an outcome to settle.
        self._owed: set[str] = set()
        self._settling: set[str] = set()  # outcomes written here whose settle has not finished yet
        # Slack's client alone may retry for longer (30 s timeouts, Retry-After waits); cut off
        # well before anyone may take the claim over, so nobody posts again while it still runs.
        self.post_send_seconds = STALE_POST_SECONDS / 2
        self.record_retry_seconds = 1.0
        # Extra work after an answer the bot wrote, and owed work the reconciler retries (Flyte signals).
        self.answered_hooks: list[AnsweredHook] = []
        self.repairs: list[Repair] = []
        # Told an event's id, on this loop, as soon as its outcome is written here (an answer, a
        # cancel, a default): a local run's in-process bot wakes its waiting tasks at once.
        self.outcome_listeners: list[Callable[[str], None]] = []
        # Team decisions: events whose copies are being re-rendered here (and those changed meanwhile,
        # rendered once more after), and what of each event's log this replica last rendered.
        self._rendering: set[str] = set()
        self._changed: set[str] = set()
        self._rendered: dict[str, str] = {}
        # Calls to one channel go at its platform's pace; `batch=True` events share one message per channel.
        self.pacer = Pacer()
        self.batches = Batches(store, background, self.pacer, self.platform)

    # -- platforms, and where they may post ---------------------------------------------------

    def add_platform(self, platform: Platform) -> None:
        """Post events to `platform` and keep its copies current (the server does this per enabled adapter)."""
        self._platforms.append(platform)

    def platform(self, name: str) -> Platform | None:
        """The enabled platform called `name` (authorization asks it for group members)."""
        return next((p for p in self._platforms if p.name == name), None)

    async def save_conversation(self, platform: str, conversation_id: str, data: dict[str, Any]) -> None:
        """Keep what a platform needs to post into a conversation later (Teams' reference)."""
        await self.store.put_conversation(platform, conversation_id, data)

    async def conversation(self, platform: str, conversation_id: str) -> dict[str, Any] | None:
        return await self.store.get_conversation(platform, conversation_id)

    # -- posting ------------------------------------------------------------------------------

    async def announce(self, request_id: str) -> Request:
        """Post an event to every platform; safe to repeat (each target is posted once, see `post_once`).

        An event answered already (in Flyte, written by the task) has its copies updated instead.
        """
        request = await self.store.get_request(request_id)
        if response := await self.store.get_response(request_id):  # answered outside the bot (Flyte)
            self.update_messages_later(request, response)
            return request
        await self.post(request)
        return request

    def announce_later(self, request_id: str) -> None:
        """`announce` without holding up the caller (a Flyte task) while chat platforms answer."""
        self.background.spawn(self.announce(request_id))

    async def post(self, request: Request) -> None:
        """`announce` for a caller that knows the event is unanswered (the reconciler just read it).

        The channels of the escalation levels reached are targets too (each posted once, as any).
        """
        self._owed.discard(request.request_id)
        request = _escalated(request)
        sent = [await self._post(platform, request) for platform in self._platforms]
        if any(sent):  # a repeated notify or a pass finding every target posted is not a new announcement
            self.metrics.announced.inc()

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
        batched = request.batch and isinstance(platform, PostsBatches)
        for target in targets:
            try:
                if batched:
                    sent = await self._post_batch(platform, request, target) or sent
                    continue
                async with self.pacer.turn(f"{platform.name}:{target}", pace_of(platform)) as spend:

                    async def send(target: str = target) -> MessageRef:
                        spend()
                        return await platform.send(request, target)

                    sent = await self.post_once(request, platform.name, target, send) or sent
            except Exception as error:  # the claim is released: the reconciler posts it on its next pass
                self._paused(f"{platform.name}:{target}", error)
                self._log_failure("post", request, platform.name, error, target=target)
        return sent

    async def _post_batch(self, platform: Platform, request: Request, target: str) -> bool:
        """A `batch=True` event on a platform that shows batches: counted in its batch, whose one
        message is posted once (claims, as any post) and re-rendered (coalesced). What is not shown
        yet stays owed, so the reconciler tries again. Returns whether the batch message was sent now."""
        assert isinstance(platform, PostsBatches)
        batch = batch_id(request, platform.name, target)
        await self.batches.join(batch, request)
        sent = False
        if await self.store.batch_message(batch) is None:
            async with self.pacer.turn(f"{platform.name}:{target}", pace_of(platform)) as spend:

                async def send() -> MessageRef:
                    view = await self.batches.view(batch)
                    if view is None:
                        raise StoreError("the batch's events could not be read")
                    spend()
                    return await platform.send_batch(view, target)

                sent = await self.post_once(request, platform.name, target, send, batch=batch)
        if not await self.batches.changed(batch):
            self._owed.add(request.request_id)
        return sent

    async def post_once(
        self,
        request: Request,
        platform: str,
        target: str,
        send: Callable[[], Awaitable[MessageRef]],
        *,
        batch: str | None = None,
    ) -> bool:
        """Run `send` unless this target already has (or is getting) the message, on any replica.

        A claim object makes the first caller the only poster. A failed send, or one still running
        after `post_send_seconds` (`TimeoutError`), releases it, so the reconciler tries again. A
        claim still not done after `STALE_POST_SECONDS` lost its replica mid-post: the next numbered
        claim takes over, so a crash costs a late message (at worst a second one), never a missing
        one. Once `send` returns, the message exists: its record is saved and the claim is marked
        done, and neither failing frees the claim (that would post a second copy). Returns whether
        `send` ran. `batch`: the message is that batch's (its claims and record live in its folder).
        """
        owner = batch or request.request_id
        base = f"post-{platform}-{hashlib.sha256(target.encode()).hexdigest()[:24]}"
        for attempt in range(1, _POST_ATTEMPTS + 1):
            name = base if attempt == 1 else f"{base}.{attempt}"
            if await self.store.claim(owner, name, batch=batch is not None):
                break
            claim = await self.store.get_claim(owner, name, batch=batch is not None)
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
            await self.store.release(owner, name, batch=batch is not None)
            raise
        if batch is None:
            await self._record_posted(request, message, lambda: self.record_message(request, message))
        else:
            record = BatchMessage(target=target, message=message)
            await self._record_posted(request, message, lambda: self.store.put_batch_message(batch, record))
        try:
            await self.store.finish_claim(owner, name, batch=batch is not None)
        except StoreError:  # posted all the same; the claim may be taken over later (a second copy)
            log.warning("post claim not marked done", extra={"request_id": request.request_id, "platform": platform})
        return True

    async def _record_posted(
        self, request: Request, message: MessageRef, record: Callable[[], Awaitable[None]]
    ) -> None:
        """`record` (`record_message`), retried: storage hiccups are common, and an unrecorded copy is never updated."""
        for attempt in range(1, _RECORD_ATTEMPTS + 1):
            try:
                await record()
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

        An answer (or the deadline) may have come while this copy was on its way; the update of
        every copy then missed it, so it is re-rendered now instead of keeping live buttons.
        """
        await self.store.put_message(request.request_id, message)
        if response := await self.store.get_response(request.request_id):
            self.update_messages_later(request, response)
        elif request.expired():
            self.update_messages_later(request, None)
        elif request.team_event and self._rendered.get(request.request_id):
            self.progressed(request)  # posted as asked: show the votes, proposal and hand-overs so far

    # -- after an outcome -----------------------------------------------------------------------

    def answered(self, request: Request, response: Response) -> None:
        """After an answer the bot wrote and acked: `ended`, then the answered hooks (Flyte signals)."""
        self.ended(request, response)
        for hook in self.answered_hooks:
            self.background.spawn(hook(request, response))

    def ended(self, request: Request, response: Response) -> None:
        """After the person's ack: tell the outcome listeners, settle the outcome (indexed, marker
        dropped) and update the copies."""
        self._settling.add(request.request_id)
        self.metrics.decided(outcome_record(response, request))
        self._tell(request.request_id)
        self.background.spawn(self._settle(request, response))
        self.update_messages_later(request, response)

    async def defaulted(self, request: Request, response: Response) -> None:
        """After a default applied at the deadline: as `ended`, but nobody waits for an ack, so the
        settle is awaited."""
        self.metrics.decided(outcome_record(response, request))
        self._tell(request.request_id)
        await self._settle(request, response)
        self.update_messages_later(request, response)

    async def _settle(self, request: Request, response: Response) -> None:
        """`Store.settle`; what fails stays owed, so this replica's reconciler reads the event again."""
        self._owed.discard(request.request_id)
        try:
            if not await self.store.settle(response, request):
                self._owed.add(request.request_id)
        finally:
            self._settling.discard(request.request_id)

    def _tell(self, request_id: str) -> None:
        """Tell `outcome_listeners` the event has its outcome; one that fails never fails the answer."""
        for listener in self.outcome_listeners:
            try:
                listener(request_id)
            except Exception:
                log.exception("outcome listener failed", extra={"request_id": request_id})

    def update_messages_later(self, request: Request, response: Response | None) -> None:
        """`update_messages` without holding up the person's answer; what fails goes to the outbox."""
        if not self._platforms:
            return

        async def update() -> None:
            try:
                if await self.update_messages(request, response):
                    return
            except asyncio.CancelledError:  # cut short by shutdown
                await self._owe_update(request, response)
                raise
            await self._owe_update(request, response)

        self.background.spawn(update())

    async def update_messages(self, request: Request, response: Response | None) -> bool:
        """Re-render every copy of the event: with its outcome (`response`), expired (None past the
        deadline), or a team decision under way as its log has it now (None before the deadline).

        Returns False if any copy failed; the event then stays in the outbox for a retry.
        """
        what = _what(response, request)
        try:
            view = await self.view_of(request, response)
            messages = await self.store.messages(request.request_id)  # one listing for every platform
        except StoreError as error:
            self._log_failure(what, request, "store", error)
            return False
        platforms = {p.name: p for p in self._platforms}

        async def rerender(message: MessageRef, platform: Platform) -> bool:
            try:
                await platform.rerender(view, message)
            except Exception as error:
                self._log_failure(what, request, platform.name, error, target=message.key)
                return False
            return True

        copies = [(m, platforms[m.platform]) for m in messages if m.platform in platforms]
        done = all(await asyncio.gather(*(rerender(m, p) for m, p in copies)))
        if request.batch and what != "progress":
            done = await self._batch_ended(request) and done
        if done and view.tally is not None:
            self._rendered[request.request_id] = view.tally.changes
        return done

    async def _batch_ended(self, request: Request) -> bool:
        """Count an ended `batch=True` event decided in each batch it was posted into, and re-render
        those messages (coalesced); False if that failed (the event stays in the outbox)."""
        batched = [p for p in self._platforms if isinstance(p, PostsBatches)]
        request = _escalated(request)
        try:
            batches = [batch_id(request, p.name, target) for p in batched for target in p.targets(request)]
            return await self.batches.ended(request, batches)
        except StoreError as error:
            self._log_failure("batch", request, "store", error)
            return False

    async def view_of(self, request: Request, response: Response | None) -> EventView:
        """The event as its copies show it: ended with `response`; expired; or open (a team event: its
        decision as the log has it, or its outcome if one was written meanwhile)."""
        if response is not None:
            return event_view(request, response)
        if request.expired():
            return event_view(request, expired=True)
        if not request.team_event:
            return event_view(request)
        log, tally = await self.decision(request)
        if log.answered and (written := await self.store.get_response(request.request_id)):
            return event_view(request, written)
        return event_view(request, tally=tally)

    async def decision(self, request: Request) -> tuple[DecisionLog, Tally]:
        """A team event's decision log (one listing of its folder; objects read once per replica),
        evaluated now."""
        log = await self.store.decision_log(request.request_id)
        return log, evaluate(request, log.entries, approval=is_approval(request), now=utcnow())

    # -- a team decision under way ----------------------------------------------------------------

    def progressed(self, request: Request) -> None:
        """After a vote, a proposal, a hand-over or an escalation: re-render every copy as the log has
        it now. One re-render per event at a time on this replica; changes meanwhile get one more
        after it, read afresh, so a burst of votes costs a few re-renders and the last shows them all.
        What fails goes to the outbox."""
        request_id = request.request_id
        self._changed.add(request_id)
        if not self._platforms or request_id in self._rendering:
            return
        self._rendering.add(request_id)

        async def render() -> None:
            try:
                while request_id in self._changed:
                    self._changed.discard(request_id)
                    if not await self.update_messages(request, None):
                        await self._owe_update(request, None)
            finally:
                self._rendering.discard(request_id)

        self.background.spawn(render())

    def rendered(self, request_id: str) -> str | None:
        """What of the event's log (`Tally.changes`) this replica's copies last showed, if it rendered them."""
        return self._rendered.get(request_id)

    async def remind(self, request: Request, line: Line) -> int:
        """Reply with `line` in the thread of every copy of the event; how many replies were sent.
        Each copy's failure is logged and counted, and not retried (a reminder is a nudge, sent once)."""
        try:
            messages = await self.store.messages(request.request_id)
        except StoreError as error:
            self._log_failure("remind", request, "store", error)
            return 0
        platforms = {p.name: p for p in self._platforms}

        async def reply(message: MessageRef, platform: Platform) -> bool:
            try:
                await platform.remind(request, message, line)
            except Exception as error:
                self._log_failure("remind", request, platform.name, error, target=message.key)
                return False
            return True

        copies = [(m, platforms[m.platform]) for m in messages if m.platform in platforms]
        return sum(await asyncio.gather(*(reply(m, p) for m, p in copies)))

    async def _owe_update(self, request: Request, response: Response | None) -> None:
        with contextlib.suppress(StoreError):
            await self.store.put_outbox(request.request_id, _what(response, request))

    # -- what this replica owes (the reconciler asks) -------------------------------------------

    def owes(self, request_id: str) -> bool:
        """Whether this replica left work on the event (a post to retry, an outcome to settle): the
        reconciler reads it again rather than resting until its marker changes."""
        return request_id in self._owed

    def settling(self, request_id: str) -> bool:
        """Whether this replica is settling the event's outcome right now (its copies being updated):
        the reconciler leaves it alone rather than repair, and update the copies, a second time."""
        return request_id in self._settling

    # -- failures -------------------------------------------------------------------------------

    def _paused(self, channel: str, error: Exception) -> None:
        """A platform's Retry-After holds every call to that channel, not just the one refused."""
        if isinstance(error, PlatformError) and error.retry_after:
            self.pacer.pause(channel, error.retry_after)

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
            {"post": "post", "remind": "reminder"}.get(step, "update"),
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


def _what(response: Response | None, request: Request) -> str:
    """The step an update is for, in logs, metrics and the outbox: the event answered (any outcome),
    expired, or a team decision's progress."""
    if response is not None:
        return "answered"
    return "expired" if request.expired() else "progress"


def _escalated(request: Request) -> Request:
    """`request` with the channels of the escalation levels reached added to its own (where it is posted)."""
    levels = reached(request, utcnow())
    extra = [channel for i in levels for channel in request.escalate[i].channels]
    if not extra:
        return request
    return request.model_copy(update={"channels": list(dict.fromkeys([*request.channels, *extra]))})


def _as_platform_error(error: Exception, platform: str, step: str) -> tuple[HitlError, bool]:
    """`error` in our hierarchy, and whether it was a surprise (neither ours nor a timeout)."""
    if isinstance(error, HitlError):
        return error, False
    if isinstance(error, TimeoutError):
        return PlatformError(f"{platform} did not answer in time"), False
    return PlatformError(f"{platform} {step} failed unexpectedly ({type(error).__name__})"), True
