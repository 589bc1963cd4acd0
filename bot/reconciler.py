"""The reconciler: one loop per replica that repairs whatever a lost call or a crash left behind.

Each pass posts pending events whose notify was lost, expires events past their deadline (or
applies their `on_timeout` default), retries message updates that failed (the outbox) and Flyte
condition signals still owed, and settles answered events whose marker outlived them (indexes the
outcome, drops the marker). Every action is idempotent or guarded by a claim object, so N replicas
can run it at once.

Its cost follows changes, not the number of open events. A pass is one listing of pending markers
and replica heartbeats (one request per 1,000 keys on S3) plus one of the outbox and one of owed
signals; an event is read only when it is new to this replica, its marker was rewritten (a team
decision's vote or hand-over rewrites it), its deadline passed or its next reminder or escalation
level fell due (times computed from the request already read), this replica owes it something (a
post, a settle that failed), or it is in the outbox. An answered event's marker is dropped by
whoever answered, so it simply leaves the listing. Reading a team decision evaluates its log
(`TeamDecisions.tend`): a replica that died between a vote and the decision is completed here.

Replicas take turns instead of each making every pass: every replica rewrites a heartbeat object
(`hitl-replicas/<id>`) every `BEAT_INTERVALS` intervals, the listing returns them all with their
times, and the live replicas, sorted by id, own the wall-clock slots `floor(time / interval)`
round-robin. A replica set then makes one pass per interval, whatever its size; no leader is elected.

A heartbeat `STALE_BEATS` periods old is a replica that stopped (SIGKILL, OOM, a lost node). Each
replica judges that from the times its last listing showed, without a new request, so they all drop
a stopped replica at the same moment, however many stopped; the next pass deletes its heartbeat. A
replica whose last listing is too old to tell (a heartbeat on time then has gone stale since: large
sets, whose turns come seldom) lists the heartbeats again first. Replicas disagree on the live set
only while a new one is not yet in everyone's listing (one round of turns): a slot may then get two
passes or none, which costs nothing but time, since every action is idempotent or claimed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from .errors import HitlError, StoreError
from .protocol import utcnow
from .service import HitlService
from .store import new_request_id

__all__ = ["Reconciler", "StepReport"]

log = logging.getLogger(__name__)
BEAT_INTERVALS = 4  # a replica rewrites its heartbeat every 4 intervals: once a minute at the default 15 s
STALE_BEATS = 2  # a heartbeat 2 periods old is a replica that stopped: 2 minutes after its last beat at 15 s
_LATE_SECONDS = 1.0  # how much older a heartbeat may look: S3's LastModified counts whole seconds


@dataclass
class StepReport:
    announced: int = 0
    expired: int = 0
    repaired: int = 0
    updated: int = 0
    signalled: int = 0
    failed: int = 0


@dataclass
class _Settled:
    """An open event that needs nothing until its marker changes or `due` comes: its deadline, or
    sooner its next reminder or escalation level."""

    version: str
    due: datetime


class Reconciler:
    def __init__(self, service: HitlService, interval_seconds: float, replica_id: str | None = None) -> None:
        self.service = service
        self.delivery = service.delivery
        self.interval = interval_seconds
        self.replica_id = replica_id or new_request_id()
        self._stop = asyncio.Event()
        self._settled: dict[str, _Settled] = {}
        self.beat_seconds = interval_seconds * BEAT_INTERVALS
        self.stale_seconds = self.beat_seconds * STALE_BEATS
        self._beats: dict[str, float] = {}  # replica id -> its last heartbeat (Unix time), from the last listing
        self._listed_at = 0.0  # when that listing began
        self._beaten_at: float | None = None  # when this replica's heartbeat was last written
        self._beat_lost = False  # written before the last listing began, yet not in it (deleted by someone)

    async def step(self) -> StepReport:
        """One pass: one listing, then reads only for the events that changed (see the module doc)."""
        report = StepReport()
        listed_at = time.time()
        listing = await self.service.store.listing()
        self._learn(listing.replicas, listed_at)
        await self._forget_stopped(listed_at)
        now = utcnow()
        for request_id in [r for r in self._settled if r not in listing.pending]:
            del self._settled[request_id]  # answered or expired: its marker is gone
        for request_id, version in listing.pending.items():
            if self.delivery.settling(request_id):
                continue  # answered here a moment ago: its marker is on its way out
            known = self._settled.get(request_id)
            if known and known.version == version and known.due > now and not self.delivery.owes(request_id):
                continue
            self._settled.pop(request_id, None)
            try:
                await self._pending(request_id, version, report)
            except HitlError as error:
                report.failed += 1
                log.warning("reconcile failed", extra={"request_id": request_id, "error": type(error).__name__})
        for request_id in listing.outbox:
            await self._outbox(request_id, report)
        for repair in self.delivery.repairs:  # owed work of optional parts (Flyte condition signals)
            report.signalled += await repair(listing)
        return report

    async def _pending(self, request_id: str, version: str, report: StepReport) -> None:
        store = self.service.store
        request = await store.get_request(request_id)
        if response := await store.get_response(request_id):
            # Answered, but the marker outlived it (crash, a failed settle, or an answer written by stock
            # code): update the copies, index the outcome and drop the marker.
            await self.delivery.update_messages(request, response)
            if not await store.settle(response, request):
                raise StoreError("outcome not settled")
            report.repaired += 1
        elif request.expired():
            report.expired += await self.service.expire(request_id)
        else:
            await self.delivery.post(request)  # posts only where nobody has (claims), escalation channels too
            report.announced += 1
            due = request.deadline
            if request.team_event or request.remind_every is not None:
                # Decide it if its log is complete (a replica died after a vote), escalate, remind.
                due = await self.service.team.tend(request)
            if not self.delivery.owes(request_id):
                self._settled[request_id] = _Settled(version, due)

    async def _outbox(self, request_id: str, report: StepReport) -> None:
        store = self.service.store
        try:
            request = await store.get_request(request_id)
            if await self.delivery.update_messages(request, await store.get_response(request_id)):
                await store.drop_outbox(request_id)
                report.updated += 1
        except HitlError as error:
            report.failed += 1
            log.warning("outbox retry failed", extra={"request_id": request_id, "error": type(error).__name__})

    # -- turns --------------------------------------------------------------------------

    def _learn(self, beats: dict[str, datetime], listed_at: float) -> None:
        self._beats = {replica: beat.timestamp() for replica, beat in beats.items()}
        self._listed_at = listed_at
        self._beat_lost = self._beaten_at is not None and self._beaten_at < listed_at and self.replica_id not in beats

    def live(self, now: float) -> list[str]:
        """The replicas whose heartbeat is under `stale_seconds` old at `now`, sorted; this one always.

        Judged on the last listing's times, so every replica drops a stopped one at the same moment.
        """
        fresh = {replica for replica, beat in self._beats.items() if beat > now - self.stale_seconds}
        return sorted(fresh | {self.replica_id})

    def my_turn(self, now: float) -> bool:
        """Whether the wall-clock slot at `now` is this replica's (slots go round the live replicas)."""
        live = self.live(now)
        return live[int(now // self.interval) % len(live)] == self.replica_id

    def _too_old_to_tell(self, now: float) -> bool:
        """Whether a heartbeat that was on time at the last listing has gone stale since.

        Its replica has most likely beaten since; only a new listing can tell. A replica lists at
        least once per round of turns, so this happens only in sets whose rounds outlast
        `stale_seconds - beat_seconds` (5 replicas or more), or for a replica that stopped just then.
        """
        on_time = self._listed_at - self.beat_seconds - self.interval - _LATE_SECONDS  # late by a slot: on time
        stale = now - self.stale_seconds
        return any(on_time < beat <= stale for replica, beat in self._beats.items() if replica != self.replica_id)

    async def _relearn(self) -> None:
        """The heartbeats alone: one request (per 1,000 replicas). Store down: decide on what was known."""
        listed_at = time.time()
        with contextlib.suppress(HitlError):
            self._learn(await self.service.store.heartbeats(), listed_at)

    async def _forget_stopped(self, now: float) -> None:
        """Delete the heartbeats of replicas that stopped without a goodbye, in one bulk delete,
        so `hitl-replicas/` holds the live set. One that was only slow writes its heartbeat again."""
        stopped = [r for r, beat in self._beats.items() if beat <= now - self.stale_seconds and r != self.replica_id]
        if not stopped:
            return
        try:
            await self.service.store.drop_replicas(stopped)
        except HitlError as error:
            log.warning("stale heartbeats kept", extra={"replicas": len(stopped), "error": type(error).__name__})
            return
        for replica in stopped:
            del self._beats[replica]
        log.info("stale heartbeats removed", extra={"replicas": len(stopped)})

    async def beat(self) -> None:
        """Write this replica's heartbeat (`run` does, at start and every `beat_seconds`)."""
        try:
            await self.service.store.put_replica(self.replica_id)
        except HitlError:
            return  # store down: the next beat tries again
        self._beaten_at = time.time()

    async def run(self) -> None:
        """Pass on this replica's turns until `stop()`; a pass in progress is finished unless shutdown
        cuts it (cancels this), and either way the heartbeat is dropped, so the others take its turns."""
        await self.beat()
        beating = asyncio.create_task(self._keep_beating(), name="hitl-heartbeat")
        try:
            await self.take_turn(time.time(), first=True)  # the first pass also learns the other replicas
            while not await self._sleep(self.interval - time.time() % self.interval):
                await self.take_turn(time.time())
        except (Exception, asyncio.CancelledError):  # not GeneratorExit: a closed loop runs nothing more
            await self._goodbye(beating)
            raise
        await self._goodbye(beating)

    async def _goodbye(self, beating: asyncio.Task[None]) -> None:
        """No more heartbeats (one being written lands first), then none at all: the others take the turns."""
        self._stop.set()
        await beating
        with contextlib.suppress(HitlError):
            await self.service.store.drop_replica(self.replica_id)

    async def _keep_beating(self) -> None:
        """Heartbeats on their own clock: a long pass does not make this replica look stopped."""
        while not await self._sleep(self.beat_seconds):
            await self.beat()

    async def _sleep(self, seconds: float) -> bool:
        """Wait `seconds`, or less if `stop()` is called; whether it was."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):  # not wait_for: its task may never start at shutdown
                await self._stop.wait()
        return self._stop.is_set()

    async def take_turn(self, now: float, *, first: bool = False) -> StepReport | None:
        """A pass if the slot at `now` is this replica's (or `first`); /metrics learns the live count."""
        if not first and self._too_old_to_tell(now):
            await self._relearn()
        report = await self._pass() if first or self.my_turn(now) else None
        if self._beat_lost:  # another replica took this one for stopped and deleted its heartbeat
            await self.beat()
            self._beat_lost = False
        self.service.metrics.reconciler_replicas.set(len(self.live(now)))
        return report

    async def _pass(self) -> StepReport | None:
        try:
            report = await self.step()
        except HitlError as error:  # store down: try again next turn
            log.warning("reconcile step failed", extra={"error": type(error).__name__})
            return None
        self.service.metrics.reconciler_last_pass.set(time.time())
        if report.expired or report.repaired or report.updated or report.signalled or report.failed:
            log.info("reconciled", extra=vars(report))
        return report

    def stop(self) -> None:
        self._stop.set()
