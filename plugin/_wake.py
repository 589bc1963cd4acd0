"""Wake-ups inside one process: an outcome written here resumes the task waiting for it at once.

The in-process bot of a local run (plugin/_runtime.py) and the terminal (plugin/_console.py) call
`wake(request_id)` from their own threads; `Event._poll` sleeps on `waiting(request_id)` for at most
its poll interval and then reads the store once, as on any poll. A wake only says when to look:
the store stays the truth, and a wake that is lost costs one poll interval, nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

__all__ = ["Waiter", "waiting", "wake"]

_lock = threading.Lock()
_waiters: dict[str, set[Waiter]] = {}


class Waiter:
    """One task's wait for one event, on the loop that created it; woken from any thread."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._woken = asyncio.Event()

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits any more
            self._loop.call_soon_threadsafe(self._woken.set)

    async def sleep(self, seconds: float) -> None:
        """Return after `seconds`, or sooner once woken (a wake since the last sleep counts too)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._woken.wait()
        # Cleared after the wait, before the caller reads: an outcome written before a later wake
        # is seen by that read, so no wake is lost between the two.
        self._woken.clear()


@contextlib.contextmanager
def waiting(request_id: str) -> Iterator[Waiter]:
    """Be woken when this process writes (or hears of) the event's outcome, for the `with` block."""
    waiter = Waiter()
    with _lock:
        _waiters.setdefault(request_id, set()).add(waiter)
    try:
        yield waiter
    finally:
        with _lock:
            others = _waiters.get(request_id, set())
            others.discard(waiter)
            if not others:
                _waiters.pop(request_id, None)


def wake(request_id: str) -> None:
    """Wake every task of this process waiting for the event; safe from any thread, a no-op if none waits."""
    with _lock:
        waiters = list(_waiters.get(request_id, ()))
    for waiter in waiters:
        waiter.wake()
