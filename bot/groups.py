"""Chat platforms' user groups, cached: who is in a group that `responders` names.

Shared by the adapters that resolve groups (Slack user groups, Microsoft Entra groups through
Graph), so each only says how to read one group.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["GroupCache"]

GROUP_TTL_SECONDS = 60.0

Read = Callable[[str], Awaitable[set[str] | None]]


class GroupCache:
    """Members read by `read`, kept for a minute, one lookup per group at a time.

    `/hitl` or **pending** asks once per listed event, and a burst of the same call would run into
    the platform's rate limit. `read` returns None for "no group we may read" (not kept: cheap to
    ask again) and raises `MembershipUnknown` when the platform cannot answer now.
    """

    def __init__(self, read: Read) -> None:
        self._read = read
        self._kept: dict[str, tuple[float, set[str]]] = {}
        self._lookups: dict[str, asyncio.Task[set[str] | None]] = {}

    async def members(self, group: str) -> set[str] | None:
        kept = self._kept.get(group)
        if kept and time.monotonic() - kept[0] < GROUP_TTL_SECONDS:
            return kept[1]
        lookup = self._lookups.get(group)
        if lookup is None:
            lookup = self._lookups[group] = asyncio.create_task(self._keep(group))
            lookup.add_done_callback(lambda done: self._forget(group, done))
        return await asyncio.shield(lookup)  # one caller giving up does not cancel the others' lookup

    async def _keep(self, group: str) -> set[str] | None:
        members = await self._read(group)
        if members is not None:
            self._kept[group] = (time.monotonic(), members)
        return members

    def _forget(self, group: str, lookup: asyncio.Task[set[str] | None]) -> None:
        self._lookups.pop(group, None)
        if not lookup.cancelled():
            lookup.exception()  # retrieved even if every caller gave up, so asyncio does not warn
