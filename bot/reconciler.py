"""The reconciler: one loop per replica that repairs whatever a lost call or a crash left behind.

Each step posts pending events whose notify was lost, expires events past their deadline,
retries message updates that failed (the outbox) and drops pending markers of answered events.
Every action is idempotent or guarded by a claim object, so N replicas can run it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from .errors import HitlError
from .service import HitlService

log = logging.getLogger(__name__)


@dataclass
class StepReport:
    announced: int = 0
    expired: int = 0
    repaired: int = 0
    updated: int = 0
    signalled: int = 0
    failed: int = 0


class Reconciler:
    def __init__(self, service: HitlService, interval_seconds: float) -> None:
        self.service = service
        self.interval = interval_seconds
        self._stop = asyncio.Event()

    async def step(self) -> StepReport:
        """One pass over the pending index and the outbox: O(pending + owed updates)."""
        report = StepReport()
        store = self.service.store
        for request_id in await store.pending_ids():
            try:
                await self._pending(request_id, report)
            except HitlError as error:
                report.failed += 1
                log.warning("reconcile failed", extra={"request_id": request_id, "error": type(error).__name__})
        for request_id in await store.outbox_ids():
            try:
                request = await store.get_request(request_id)
                if await self.service.update_messages(request, await store.get_response(request_id)):
                    await store.drop_outbox(request_id)
                    report.updated += 1
            except HitlError as error:
                report.failed += 1
                log.warning("outbox retry failed", extra={"request_id": request_id, "error": type(error).__name__})
        for repair in self.service.repairs:  # owed work of optional parts (Flyte condition signals)
            report.signalled += await repair()
        return report

    async def _pending(self, request_id: str, report: StepReport) -> None:
        store = self.service.store
        request = await store.get_request(request_id)
        if response := await store.get_response(request_id):
            # Answered, but the marker outlived it (crash, or an answer written by stock code).
            await self.service.update_messages(request, response)
            await store.index_outcome(response, request.event_name)
            await store.drop_pending(request_id)
            report.repaired += 1
        elif request.expired():
            report.expired += await self.service.expire(request_id)
        else:
            await self.service.announce(request_id)  # posts only where nobody has (claims)
            report.announced += 1

    async def run(self) -> None:
        """Step every `interval` until `stop()`; a step in progress is finished, never cut."""
        while not self._stop.is_set():
            try:
                report = await self.step()
            except HitlError as error:  # store down: try again next interval
                log.warning("reconcile step failed", extra={"error": type(error).__name__})
            else:
                if report.expired or report.repaired or report.updated or report.signalled or report.failed:
                    log.info("reconciled", extra=vars(report))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def stop(self) -> None:
        self._stop.set()
