"""Who a person is to an event: whether a list of `responders` entries names them (user ids, or groups
read through their chat platform), and whether they are its requester (a chat identity, or an e-mail
address the platforms resolve).

Shared by the simple answer path and team decisions, so both check people exactly alike.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from .errors import MembershipUnknown
from .platform import FindsPeople, Platform
from .protocol import Responder

__all__ = ["EMAIL_TTL_SECONDS", "People"]

EMAIL_TTL_SECONDS = 600.0  # an address's account, once found, for ten minutes
_IDENTITY = re.compile(r"[a-z][a-z0-9_]{0,31}:\S+")


class People:
    """Answers "is this person in that list" and "did this person ask", through the enabled platforms."""

    def __init__(self, platform: Callable[[str], Platform | None]) -> None:
        self._platform = platform
        self._accounts: dict[tuple[str, str], tuple[float, str | None]] = {}

    async def listed(self, entries: Sequence[str], person: Responder) -> bool:
        """Whether `entries` name `person`: "*", their user id (optionally `<platform>:`-prefixed), or a
        group of their platform they are in. Display names never count: people can change them.

        Raises `MembershipUnknown` if only a group that could not be read might let them in, so the
        person is asked to retry rather than told they may not answer.
        """
        if "*" in entries:
            return True
        if person.platform == "web" or not person.user_id:
            return False
        if person.user_id in entries or person.identity in entries:
            return True
        platform = self._platform(person.platform)
        if platform is None:
            return False
        unknown: MembershipUnknown | None = None
        for entry in entries:
            try:
                members = await platform.group_members(entry.removeprefix(f"{person.platform}:"))
            except MembershipUnknown as error:
                unknown = error  # another entry may still let them in
                continue
            if members and person.user_id in members:
                return True
        if unknown is not None:
            raise unknown
        return False

    async def asked(self, requester: str | None, person: Responder) -> bool:
        """Whether `person` is the event's requester: `<platform>:<user id>`, or an e-mail address their
        platform resolves to their account (`FindsPeople`; cached) or that is their API name.

        A platform that cannot resolve addresses never matches one (say so in its docs); one that fails
        just now raises `MembershipUnknown`, so nobody slips past the rule while it is down.
        """
        if not requester or not person.user_id:
            return False
        if _IDENTITY.fullmatch(requester):
            return requester == person.identity
        if person.user_id.casefold() == requester.casefold():
            return True
        return await self._account(person.platform, requester) == person.user_id

    async def _account(self, platform_name: str, email: str) -> str | None:
        key = (platform_name, email.casefold())
        kept = self._accounts.get(key)
        if kept is not None and time.monotonic() - kept[0] < EMAIL_TTL_SECONDS:
            return kept[1]
        platform = self._platform(platform_name)
        if not isinstance(platform, FindsPeople):
            return None
        account = await platform.user_for_email(email)
        self._accounts[key] = (time.monotonic(), account)
        return account
