"""Small helpers shared by tests: build requests without Flyte, call the API with the token."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from typing import Any

import flyte

from hitl_chatops.bot.protocol import MessageRef, Request, utcnow
from hitl_chatops.bot.store import Store, new_request_id


async def recorded_messages(store: Store, request_id: str, count: int = 1, seconds: float = 10) -> list[MessageRef]:
    """The event's message records once `count` exist: the bot posts after the notify's 202."""
    deadline = time.monotonic() + seconds
    while len(found := await store.messages(request_id)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} message records for {request_id}, found {found}")
        await asyncio.sleep(0.02)
    return found


def make_request(store: Store, *, timeout: float = 600, **fields: Any) -> Request:
    """A request as the plugin would write it (tests that do not need Flyte use this)."""
    request_id = new_request_id()
    now = utcnow()
    values: dict[str, Any] = {
        "event_name": "deploy_gate",
        "prompt": "Deploy to prod?",
        "data_type": "bool",
        "timeout_seconds": int(timeout),
    }
    values.update(fields)
    return Request(
        request_id=request_id,
        request_path=store.request_url(request_id),
        response_path=store.response_url(request_id),
        created_at=now,
        deadline=now + timedelta(seconds=timeout),
        **values,
    )


class Run:
    """A Flyte local run in a thread (flyte.run blocks the caller until the task ends)."""

    def __init__(self, task: Any, *args: Any) -> None:
        self.result: Any = None
        self.returned = 0.0  # perf_counter() when flyte.run returned (benchmarks time it)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._go, args=(task, *args), daemon=True)
        self._thread.start()

    def _go(self, task: Any, *args: Any) -> None:
        try:
            run = flyte.run(task, *args)
            run.wait()
            outputs = run.outputs()
            self.returned = time.perf_counter()
            self.result = outputs[0] if isinstance(outputs, tuple | list) else outputs
        except BaseException as error:
            self.error = error

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, wait_seconds: float = 30) -> Any:
        """Block until the run ends; its result, or the error it raised."""
        self._thread.join(wait_seconds)
        if self.running:
            raise TimeoutError("the run did not finish")
        if self.error:
            raise self.error
        return self.result

    async def finish(self, wait_seconds: float = 30) -> Any:
        return await asyncio.to_thread(self.join, wait_seconds)
