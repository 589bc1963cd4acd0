"""One thread for local-folder writes, woken once per batch: group commit for a single process.

Every local write of a request or answer ends in `fdatasync` and several metadata syscalls, which
must not block the event loop. A thread pool did that at one thread hop per write, and 32 threads
fighting over the GIL cost more CPU than the writes themselves. Here one daemon thread drains
everything queued since its last round, runs it in order, and wakes each waiting event loop once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")
_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class DiskWorker:
    """`await run(func)` runs `func()` on the disk thread; jobs run one at a time, in queue order."""

    def __init__(self) -> None:
        self._queue: SimpleQueue[_Job] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def run(self, func: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((func, loop, future))
        self._ensure_thread()
        return await future

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # first use, or after a fork
                self._thread = threading.Thread(target=self._drain, name="hitl-disk", daemon=True)
                self._thread.start()

    def _drain(self) -> None:
        while True:
            batch = [self._queue.get()]
            with contextlib.suppress(Empty):
                while True:
                    batch.append(self._queue.get_nowait())
            outcomes: defaultdict[asyncio.AbstractEventLoop, list[_Outcome]] = defaultdict(list)
            for func, loop, future in batch:
                try:
                    outcomes[loop].append((future, func(), None))
                except Exception as error:  # handed to the waiting coroutine, which re-raises it
                    outcomes[loop].append((future, None, error))
            for loop, settled in outcomes.items():
                with contextlib.suppress(RuntimeError):  # that loop is closed; nobody waits any more
                    loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[_Outcome]) -> None:
    for future, result, error in settled:
        if future.done():  # the caller was cancelled; the job ran all the same
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


DISK = DiskWorker()
