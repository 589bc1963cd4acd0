"""Small helpers shared by tests: wait for what the bot records in the store."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hitl_chatops.bot.protocol import MessageRef
    from hitl_chatops.bot.store import Store


async def recorded_messages(store: Store, request_id: str, count: int = 1, seconds: float = 10) -> list[MessageRef]:
    """The event's message records once `count` exist: the bot posts after the notify's 202."""
    deadline = time.monotonic() + seconds
    while len(found := await store.messages(request_id)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} message records for {request_id}, found {found}")
        await asyncio.sleep(0.02)
    return found


async def signal_record(store: Store, request_id: str, seconds: float = 20) -> dict[str, Any]:
    """How the bot's signal ended, once it has (the bot signals after the person's reply)."""
    for _ in range(int(seconds / 0.05)):
        if record := await store.get_signal_record(request_id):
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"no signal record for {request_id}")
