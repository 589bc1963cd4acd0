"""Microsoft Entra group members through Microsoft Graph, for `responders` that name a group id.

Needs the application permission `GroupMember.Read.All` (admin consent) in the app's tenant
(`MicrosoftAppTenantId`). Members are user object ids, the ids Teams sends as `aadObjectId`.
"""

from __future__ import annotations

import logging
import re

import aiohttp
from microsoft_agents.authentication.msal import MsalAuth
from pydantic import BaseModel, Field, ValidationError

from hitl_chatops.bot.errors import MembershipUnknown, PlatformError
from hitl_chatops.bot.groups import GroupCache

from ._tokens import token

log = logging.getLogger(__name__)
_GROUP_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MOST_PAGES = 50  # 999 members a page: groups far larger than anyone lists as responders
_TIMEOUT = aiohttp.ClientTimeout(total=15)
# Graph's answer for an id no directory object has: the one failure that means "nobody". Throttling,
# server errors, refused tokens or permissions and anything not from Graph mean "try again".
_NO_SUCH_OBJECT = "Request_ResourceNotFound"


class _ErrorBody(BaseModel):
    code: str


class _Error(BaseModel):
    error: _ErrorBody


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
        """Member ids of the Entra group `group`; None if Graph says no such group exists.

        Raises `MembershipUnknown` whenever Graph or the Microsoft login does not answer that
        clearly: throttled, failing, unreachable, refusing the bot, or a proxy answering for it.
        """
        if self._tokens is None or not _GROUP_ID.fullmatch(group):
            return None
        return await self._groups.members(group)

    async def _read(self, group: str) -> set[str] | None:
        try:
            return await self._transitive_members(group)
        except _NoSuchGroup:  # Graph's own answer: nobody gets in through this entry
            log.info("teams responder entry is no Entra group", extra={"group": group})
            return None
        except (aiohttp.ClientError, TimeoutError, ValueError, PlatformError) as error:  # PlatformError: no token
            status = error.status if isinstance(error, aiohttp.ClientResponseError) else None
            if status in (401, 403):
                log.error(
                    "Microsoft Graph refused to list a group's members: grant the app the application "
                    "permission GroupMember.Read.All, with admin consent, in MicrosoftAppTenantId",
                    extra={"group": group, "status": status},
                )
            else:
                log.warning(
                    "teams group lookup failed", extra={"group": group, "error": type(error).__name__, "status": status}
                )
            raise MembershipUnknown(group) from error

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
                if reply.status == 404 and await _error_code(reply) == _NO_SUCH_OBJECT:
                    raise _NoSuchGroup()
                reply.raise_for_status()  # throttled, failing, refused, or a proxy's page: try again
                page = _Page.model_validate(await reply.json())
            members |= {member.id for member in page.value}
            url = page.next_link
        return members

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class _NoSuchGroup(Exception):
    """Graph says no directory object has this id (for example a user's id among `responders`)."""


async def _error_code(reply: aiohttp.ClientResponse) -> str | None:
    """The `error.code` of a Graph error answer; None for anything else (a proxy's page, say)."""
    try:
        return _Error.model_validate_json(await reply.read()).error.code
    except ValidationError:
        return None
