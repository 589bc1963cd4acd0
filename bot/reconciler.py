"""The reconciler: one loop per replica that repairs whatever a lost call or a crash left behind.

Each pass posts pending events whose notify was lost, expires events past their deadline (or
applies their `on_timeout` default), retries message updates that failed (the outbox) and Flyte
condition signals still owed, and settles answered events whose marker outlived them (indexes the
outcome, drops the marker). Every action is idempotent or guarded by a claim object, so N replicas
can run it at once.

Its cost follows changes, not the number of open events. A pass is one listing of pending markers
and replica heartbeats (one request per 1,000 keys on S3) plus one of the outbox and one of owed
signals; an event is read only when it is new to this replica, its marker was rewritten, its
deadline passed, this replica owes it something (a post, a settle that failed), or it is in the
outbox. An answered event's marker is dropped by whoever answered, so it simply leaves the listing.

Replicas take turns instead of each making every pass: every replica writes a heartbeat object
now and then (`hitl-replicas/<id>`), the listing returns them all, and the live replicas, sorted
by id, own the wall-clock slots `floor(time / interval)` round-robin. A replica set then makes
one pass per interval, whatever its size; no leader is elected, and a replica that stops
beating loses its turns to the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from .errors import HitlError, StoreError
from .protocol import utcnow
from .service import HitlService
from .store import Listing, new_request_id

log = logging.getLogger(__name__)
BEAT_EVERY_PASSES = 40  # a replica re-writes its heartbeat once per this many of its own passes
_BEATS_MISSED = 2.5  # a replica silent for this many heartbeat periods has stopped


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
    """An open event that needs nothing until its marker changes or its deadline passes."""

    version: str
    deadline: datetime


class Reconciler:
    def __init__(self, service: HitlService, interval_seconds: float) -> None:
        self.service = service
        self.interval = interval_seconds
        self.replica_id = new_request_id()
        self._stop = asyncio.Event()
        self._settled: dict[str, _Settled] = {}
        self._replicas: list[str] = [self.replica_id]
        self._passes = 0

    async def step(self) -> StepReport:
        """One pass: one listing, then reads only for the events that changed (see the module doc)."""
        report = StepReport()
        listing = await self.service.store.listing()
        self._learn_replicas(listing)
        now = utcnow()
        for request_id in [r for r in self._settled if r not in listing.pending]:
            del self._settled[request_id]  # answered or expired: its marker is gone
        for request_id, version in listing.pending.items():
            if self.service.settling(request_id):
                continue  # answered here a moment ago: its marker is on its way out
            known = self._settled.get(request_id)
            if known and known.version == version and known.deadline > now and not self.service.owes(request_id):
                continue
            self._settled.pop(request_id, None)
            try:
                await self._pending(request_id, version, report)
            except HitlError as error:
                report.failed += 1
                log.warning("reconcile failed", extra={"request_id": request_id, "error": type(error).__name__})
        for request_id in listing.outbox:
            await self._outbox(request_id, report)
        for repair in self.service.repairs:  # owed work of optional parts (Flyte condition signals)
            report.signalled += await repair(listing)
        return report

    async def _pending(self, request_id: str, version: str, report: StepReport) -> None:
        store = self.service.store
        request = await store.get_request(request_id)
        if response := await store.get_response(request_id):
            # Answered, but the marker outlived it (crash, a failed settle, or an answer written by stock
            # code): update the copies, index the outcome and drop the marker.
            await self.service.update_messages(request, response)
            if not await store.settle(response, request):
                raise StoreError("outcome not settled")
            report.repaired += 1
        elif request.expired():
            report.expired += await self.service.expire(request_id)
        else:
            await self.service.post(request)  # posts only where nobody has (claims)
            report.announced += 1
            if not self.service.owes(request_id):
                self._settled[request_id] = _Settled(version, request.deadline)

    async def _outbox(self, request_id: str, report: StepReport) -> None:
        store = self.service.store
        try:
            request = await store.get_request(request_id)
            if await self.service.update_messages(request, await store.get_response(request_id)):
                await store.drop_outbox(request_id)
                report.updated += 1
        except HitlError as error:
            report.failed += 1
            log.warning("outbox retry failed", extra={"request_id": request_id, "error": type(error).__name__})

    # -- turns --------------------------------------------------------------------------

    def _learn_replicas(self, listing: Listing) -> None:
        stale = utcnow() - timedelta(seconds=self.interval * BEAT_EVERY_PASSES * _BEATS_MISSED * len(self._replicas))
        live = {r for r, beat in listing.replicas.items() if beat > stale}
        self._replicas = sorted(live | {self.replica_id})

    def my_turn(self, now: float) -> bool:
        """Whether the wall-clock slot at `now` is this replica's (slots go round the live replicas)."""
        slot = int(now // self.interval)
        return self._replicas[slot % len(self._replicas)] == self.replica_id

    async def beat(self) -> None:
        """Write this replica's heartbeat (`run` does, at start and every `BEAT_EVERY_PASSES` passes)."""
        with contextlib.suppress(HitlError):
            await self.service.store.put_replica(self.replica_id)

    async def run(self) -> None:
        """Pass on this replica's turns until `stop()`; a pass in progress is finished unless shutdown
        cuts it (cancels this), and either way the heartbeat is dropped, so the others take its turns."""
        await self.beat()
        try:
            await self.take_turn(time.time(), first=True)  # the first pass also learns the other replicas
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.interval - time.time() % self.interval)
                if not self._stop.is_set():
                    await self.take_turn(time.time())
        finally:
            with contextlib.suppress(HitlError):
                await self.service.store.drop_replica(self.replica_id)

    async def take_turn(self, now: float, *, first: bool = False) -> StepReport | None:
        """A pass if the slot at `now` is this replica's (or `first`); its heartbeat now and then."""
        if not (first or self.my_turn(now)):
            return None
        self._passes += 1
        if self._passes % BEAT_EVERY_PASSES == 0:
            await self.beat()
        try:
            report = await self.step()
        except HitlError as error:  # store down: try again next turn
            log.warning("reconcile step failed", extra={"error": type(error).__name__})
            return None
        if report.expired or report.repaired or report.updated or report.signalled or report.failed:
            log.info("reconciled", extra=vars(report))
        return report

    def stop(self) -> None:
        self._stop.set()
