"""Microsoft Entra group members through Microsoft Graph, for `responders` that name a group id.

Needs the application permission `GroupMember.Read.All` (admin consent) in the app's tenant
(`MicrosoftAppTenantId`). Members are user object ids, the ids Teams sends as `aadObjectId`.
"""

from __future__ import annotations

import logging
import re

import aiohttp
from microsoft_agents.authentication.msal import MsalAuth
from pydantic import BaseModel, Field

from hitl_chatops.bot.errors import MembershipUnknown, PlatformError
from hitl_chatops.bot.groups import GroupCache

from .tokens import token

log = logging.getLogger(__name__)
_GROUP_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MOST_PAGES = 50  # 999 members a page: groups far larger than anyone lists as responders
_TIMEOUT = aiohttp.ClientTimeout(total=15)


class _Member(BaseModel):
    id: str


class _Page(BaseModel):
    value: list[_Member]
    next_link: str | None = Field(None, alias="@odata.nextLink")


class GroupMembers:
    """Group id → member ids through Graph, kept a minute (`GroupCache`)."""

    def __init__(self, tokens: MsalAuth | None, graph_url: str) -> None:
        self._tokens = tokens
        self._graph_url = graph_url.rstrip("/")
        self._groups = GroupCache(self._read)
        self._session: aiohttp.ClientSession | None = None

    async def members(self, group: str) -> set[str] | None:
        """Member ids of the Entra group `group`; None if it is no group (or not one we may read).

        Raises `MembershipUnknown` when Graph or the Microsoft login cannot answer just now.
        """
        if self._tokens is None or not _GROUP_ID.fullmatch(group):
            return None
        return await self._groups.members(group)

    async def _read(self, group: str) -> set[str] | None:
        try:
            members = await self._transitive_members(group)
        except _NotReadable as refusal:  # an answer: nobody gets in through this entry
            log.warning("teams group not readable", extra={"group": group, "status": refusal.status})
            members = None
        except (aiohttp.ClientError, TimeoutError, ValueError, PlatformError) as error:  # PlatformError: no token
            log.warning("teams group lookup failed", extra={"group": group, "error": type(error).__name__})
            raise MembershipUnknown(group) from error
        return members

    async def _transitive_members(self, group: str) -> set[str]:
        assert self._tokens is not None
        bearer = await token(self._tokens, self._graph_url, ["https://graph.microsoft.com/.default"])
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
        url: str | None = f"{self._graph_url}/groups/{group}/transitiveMembers?$select=id&$top=999"
        members: set[str] = set()
        for _ in range(_MOST_PAGES):
            if url is None:
                break
            async with self._session.get(url, headers={"Authorization": f"Bearer {bearer}"}) as reply:
                if reply.status in (400, 403, 404):  # not a group id, or no permission to read it
                    raise _NotReadable(reply.status)
                reply.raise_for_status()
                page = _Page.model_validate(await reply.json())
            members |= {member.id for member in page.value}
            url = page.next_link
        return members

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class _NotReadable(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status
