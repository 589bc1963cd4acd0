"""Batches for fan-out: events of one run with the same name share one message per channel.

A map task that asks about 300 documents would otherwise post 300 messages into one channel, at
Slack's one message per second per channel. With `batch=True` each (run, event name, platform,
target) has one batch (`batch_id`), one message, created once across replicas, that counts its
events ("38 waiting, 12 decided"), shows the first few, and offers Approve all / Reject all (bool
events) and a way to review them one by one. The message is re-rendered as events arrive and end,
coalesced (`Coalescer`) and paced per channel (`Pacer`), so a burst costs a few updates and the
last state always lands. What is here is the core's: the key, the counts, the view, the pacing;
delivery posts and re-renders (`delivery.Delivery`), and a platform that shows batches implements
`PostsBatches`. A platform without it posts each event on its own, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .background import Background
from .errors import HitlError, PlatformError
from .protocol import MessageRef, Request
from .store import BatchListing, Store

__all__ = [
    "BATCH_SHOWN",
    "BatchView",
    "Batches",
    "BulkResult",
    "Coalescer",
    "Pace",
    "Pacer",
    "PostsBatches",
    "batch_id",
    "bulk_answerable",
    "pace_of",
]

log = logging.getLogger(__name__)
BATCH_SHOWN = 5  # events shown in the message with their context; the rest are counted
_NAMESPACE = uuid.UUID("1b0d6c1e-7d43-4a55-9f4c-5b1f0d6e2a90")  # batch ids: uuid5 in our own namespace
_RENDER_ATTEMPTS = 5  # a batch re-render refused this many times in a row is owed (outbox, reconciler)
_RETRY_SECONDS = 1.0  # the first wait after a failed re-render without Retry-After; doubles each time
_SHOWN_LIMIT = 4096  # batches whose last render a replica remembers (a forgotten one is rendered once more)


def batch_id(request: Request, platform: str, target: str) -> str:
    """The batch `request` joins on `platform`'s `target`: the same on every replica, from the run's
    identity (project, domain, run name: the run, not the action, so a map's items share it), the
    event name and where it is posted. A UUID, so it is a safe store path like a request id."""
    run = request.run
    parts = (run.project or "", run.domain or "", run.run_name or "", request.event_name, platform, target)
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def bulk_answerable(request: Request) -> bool:
    """Whether a batch of such events offers Approve all / Reject all: a yes/no question."""
    return request.data_type == "bool"


# -- what a batch message shows -----------------------------------------------------------------


@dataclass(frozen=True)
class BatchView:
    """A batch as its message shows it: the counts, the first few open events, and the controls.

    `request` is one of its events (heading, prompt and run are the same for all of them).
    """

    batch_id: str
    request: Request
    waiting: int
    decided: int
    shown: tuple[Request, ...]
    next_open: str | None  # the event "Review one by one" opens first (None: nothing waits)

    @property
    def total(self) -> int:
        return self.waiting + self.decided

    @property
    def bulk(self) -> bool:
        """Approve all / Reject all: offered while something waits on a yes/no question."""
        return self.waiting > 0 and bulk_answerable(self.request)

    @property
    def counts(self) -> str:
        """The counts in words: "38 waiting, 12 decided"."""
        return f"{self.waiting} waiting, {self.decided} decided"

    @property
    def more(self) -> int:
        """Open events not shown one by one."""
        return max(self.waiting - len(self.shown), 0)


@dataclass(frozen=True)
class BulkResult:
    """What Approve all / Reject all did, event by event: answered (or, in a team decision, voted on),
    decided already (answered, cancelled or expired before the click), voted on by them already, not
    theirs to answer, and not saved (storage or a group lookup failed: try again)."""

    answered: int = 0
    decided: int = 0
    voted: int = 0  # a team decision this person voted on already
    refused: int = 0
    failed: int = 0

    @property
    def text(self) -> str:
        """The note to the person: "Answered 38, 12 were decided already, 2 you may not answer."."""
        parts = [f"Answered {self.answered}"]
        if self.decided:
            parts.append(f"{self.decided} {'was' if self.decided == 1 else 'were'} decided already")
        if self.voted:
            parts.append(f"{self.voted} you voted on already")
        if self.refused:
            parts.append(f"{self.refused} you may not answer")
        if self.failed:
            parts.append(f"{self.failed} could not be saved; click again to retry them")
        return ", ".join(parts) + "."


# -- the platform's side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pace:
    """How fast one channel of a platform takes messages: `per_second` on average, `burst` at once."""

    per_second: float
    burst: int = 1


@runtime_checkable
class PostsBatches(Protocol):
    """What a `Platform` may also do: show a batch as one message. Raise as `Platform.send` does; a
    `PlatformError` with `retry_after` (an HTTP 429) makes the next call to that channel wait."""

    async def send_batch(self, view: BatchView, target: str) -> MessageRef:
        """Post the batch's message to `target`; return where it went (called once per batch)."""
        ...

    async def rerender_batch(self, view: BatchView, ref: MessageRef) -> None:
        """Re-render the batch's message as `view` shows it now."""
        ...


def pace_of(platform: object) -> Pace | None:
    """The platform's per-channel pace (its `pace` attribute), None if it sets none."""
    pace = getattr(platform, "pace", None)
    return pace if isinstance(pace, Pace) else None


# -- pacing and coalescing -------------------------------------------------------------------------


@dataclass
class _Bucket:
    tokens: float
    at: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    resume_at: float = 0.0  # a platform's Retry-After: nothing is sent before this


class Pacer:
    """A token bucket per channel: calls to one channel go one at a time, at the platform's pace,
    and after a 429 not before its `Retry-After`. Waiting for a turn costs nothing but time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    @contextlib.asynccontextmanager
    async def turn(self, channel: str, pace: Pace | None) -> AsyncIterator[Callable[[], None]]:
        """Hold `channel` until a call may go; yields `spend`, to call when a call was made."""
        if pace is None:
            yield lambda: None
            return
        bucket = self._buckets.setdefault(channel, _Bucket(tokens=float(pace.burst), at=self._clock()))
        async with bucket.lock:
            while True:  # a Retry-After may come in while this waits: look again after each wait
                wait = self._wait(bucket, pace)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)

            def spend() -> None:
                bucket.tokens -= 1

            yield spend

    def pause(self, channel: str, seconds: float) -> None:
        """The platform asked for `seconds` of quiet on `channel` (Retry-After)."""
        bucket = self._buckets.setdefault(channel, _Bucket(tokens=0.0, at=self._clock()))
        bucket.resume_at = max(bucket.resume_at, self._clock() + seconds)
        bucket.tokens = min(bucket.tokens, 0.0)

    def _wait(self, bucket: _Bucket, pace: Pace) -> float:
        now = self._clock()
        bucket.tokens = min(float(pace.burst), bucket.tokens + (now - bucket.at) * pace.per_second)
        bucket.at = now
        if now < bucket.resume_at:
            return bucket.resume_at - now
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / pace.per_second


class Coalescer:
    """One render per key at a time; every change meanwhile shares the next render.

    `changed(key)` returns once a render that began after the call has finished: True if it
    landed. A burst of 60 changes costs a few renders, and the last one shows them all.
    """

    def __init__(self, render: Callable[[str], Awaitable[bool]], background: Background) -> None:
        self._render = render
        self._background = background
        self._asked: dict[str, int] = {}
        self._waiting: dict[str, list[tuple[int, asyncio.Future[bool]]]] = {}
        self._running: set[str] = set()

    async def changed(self, key: str) -> bool:
        asked = self._asked[key] = self._asked.get(key, 0) + 1
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append((asked, future))
        if key not in self._running:
            self._running.add(key)
            self._background.spawn(self._work(key))
        return await future

    async def _work(self, key: str) -> None:
        try:
            while self._waiting.get(key):
                asked = self._asked[key]
                try:
                    landed = await self._render(key)
                except Exception:  # a bug: the changes are owed, and the next change renders again
                    log.exception("batch render failed", extra={"batch_id": key})
                    landed = False
                waiting = self._waiting.pop(key, [])
                self._waiting[key] = [(n, f) for n, f in waiting if n > asked]
                for n, future in waiting:
                    if n <= asked and not future.done():
                        future.set_result(landed)
        finally:
            self._running.discard(key)
            if not self._waiting.get(key):
                self._waiting.pop(key, None)


# -- batches in the store ----------------------------------------------------------------------------


class Batches:
    """The batches of one bot: who is in each, its view, and its message kept current (coalesced,
    paced). Delivery calls `join` when posting a batch event and `ended` after its outcome."""

    def __init__(
        self,
        store: Store,
        background: Background,
        pacer: Pacer,
        platform: Callable[[str], object | None],
    ) -> None:
        self.store = store
        self.pacer = pacer
        self._platform = platform
        self._coalescer = Coalescer(self._render, background)
        # What this replica's last render of each batch showed (the newest `_SHOWN_LIMIT` batches).
        self._shown: OrderedDict[str, BatchListing] = OrderedDict()
        self.retry_seconds = _RETRY_SECONDS

    async def join(self, batch: str, request: Request) -> None:
        """Count `request` in `batch` (idempotent)."""
        await self.store.join_batch(batch, request)

    async def changed(self, batch: str) -> bool:
        """Re-render the batch's message soon (coalesced); True once a render that includes this
        change has landed, False if it could not (the caller leaves it owed)."""
        return await self._coalescer.changed(batch)

    async def ended(self, request: Request, batches: list[str]) -> bool:
        """`request` has its outcome: count it decided in each of `batches` and re-render them."""
        done = True
        for batch in batches:
            await self.store.end_in_batch(batch, request.request_id)
            done = await self.changed(batch) and done
        return done

    async def view(self, batch: str, listing: BatchListing | None = None) -> BatchView | None:
        """The batch as its message shows it now (None: nothing is in it yet)."""
        listing = listing or await self.store.batch(batch)
        open_ids = listing.open
        requests = await self._requests(open_ids[:BATCH_SHOWN] or list(listing.joined[-1:]))
        if not requests:
            return None
        shown = tuple(r for r in requests if r.request_id in open_ids)
        return BatchView(
            batch_id=batch,
            request=requests[0],
            waiting=len(open_ids),
            decided=listing.decided,
            shown=shown,
            next_open=shown[0].request_id if shown else None,
        )

    async def open_ids(self, batch: str) -> list[str]:
        """The batch's events without a recorded outcome, oldest first (some may have one by now: the
        answer path says)."""
        return (await self.store.batch(batch)).open

    async def _requests(self, ids: list[str]) -> list[Request]:
        found = await asyncio.gather(*(self.store.get_request(i) for i in ids), return_exceptions=True)
        return [r for r in found if isinstance(r, Request)]

    async def _render(self, batch: str) -> bool:
        """Re-render the batch's message until it shows what the store holds: after each update the
        folder is listed again, so an update another replica made from an older listing is
        corrected, and the last state always lands. A refusal waits (its Retry-After, or a growing
        pause) and tries again; `_RENDER_ATTEMPTS` refusals in a row leave it owed."""
        record = await self.store.batch_message(batch)
        if record is None:
            return False  # not posted yet: its poster renders it (and lists again) once it is
        platform = self._platform(record.message.platform)
        if not isinstance(platform, PostsBatches):
            return True  # that platform is not enabled on this replica
        channel = f"{record.message.platform}:{record.target}"
        refused = 0
        while True:
            listing = await self.store.batch(batch)
            if self._shown.get(batch) == listing:
                return True
            view = await self.view(batch, listing)
            if view is None:
                return True
            try:
                async with self.pacer.turn(channel, pace_of(platform)) as spend:
                    spend()
                    await platform.rerender_batch(view, record.message)
            except HitlError as error:
                refused += 1
                if refused >= _RENDER_ATTEMPTS:
                    log.warning("batch update failed", extra={"batch_id": batch, "error": str(error)})
                    return False
                wait = error.retry_after if isinstance(error, PlatformError) else None
                wait = wait if wait is not None else self.retry_seconds * 2 ** (refused - 1)
                self.pacer.pause(channel, wait)
                log.info("batch update refused; trying again", extra={"batch_id": batch, "retry_after": wait})
                continue
            self._shown[batch] = listing
            self._shown.move_to_end(batch)
            if len(self._shown) > _SHOWN_LIMIT:
                self._shown.popitem(last=False)
