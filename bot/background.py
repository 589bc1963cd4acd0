"""Work the bot runs after its reply, kept in one set so shutdown can wait for it (or cut it).

Settles, message updates, Flyte signals, posts after a notify, and adapters' work after an ack
(Slack's answer after bolt's ack, Teams' pending list) all run here: one place knows what is still
running, logs what failed, and bounds how long shutdown waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Coroutine
from typing import Any

__all__ = ["CUT_SECONDS", "Background", "finish_or_cut"]

log = logging.getLogger(__name__)
CUT_SECONDS = 2.0  # work cut short at shutdown has this long to record what it still owes (one store write)


class Background:
    """The bot's background tasks (one set per bot, shared by the service, delivery and the adapters)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()

    def spawn(self, work: Coroutine[Any, Any, object]) -> None:
        """Run `work` in the background; shutdown (`drain`) waits for it, and a failure is logged."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("background work failed", extra={"error": type(error).__name__})

    async def drain(self, seconds: float | None = None) -> None:
        """Wait for background work (settles, message updates, Flyte signals): all of it (tests), or
        at most `seconds` (shutdown), then cut what still runs. Work cut short leaves what it owes
        for the reconciler: an update its outbox entry, a signal its owed record, a settle its
        marker, a post its released claim."""
        cut = await finish_or_cut(self._tasks, seconds)
        if cut:
            log.warning("background work cut short; the reconciler finishes it", extra={"tasks": cut})


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
