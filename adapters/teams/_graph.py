"""Microsoft Graph for the Teams adapter: Entra group members (for `responders` that name a group id)
and users (a requester's e-mail address, a hand-over's delegate, a mention's name, the people picker).

Needs the application permissions `GroupMember.Read.All` and `User.Read.All` (admin consent) in the
app's tenant (`MicrosoftAppTenantId`). Ids are user object ids, the ids Teams sends as `aadObjectId`.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

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
_USER_TTL_SECONDS = 600.0  # a user's id and name, once read, for ten minutes
_SEARCH_SHOWN = 15  # Teams shows at most 15 choices of a typeahead search
_SEARCH_QUOTES = re.compile(r'["\\]')  # what would end a $search phrase early
# Graph's answer for an id no directory object has: the one failure that means "nobody". Throttling,
# server errors, refused tokens or permissions and anything not from Graph mean "try again".
_NO_SUCH_OBJECT = "Request_ResourceNotFound"
_FAILURES = (aiohttp.ClientError, TimeoutError, ValueError, PlatformError)  # PlatformError: no token


class _ErrorBody(BaseModel):
    code: str


class _Error(BaseModel):
    error: _ErrorBody


class _Member(BaseModel):
    id: str


class _Page(BaseModel):
    value: list[_Member]
    next_link: str | None = Field(None, alias="@odata.nextLink")


class _User(BaseModel):
    id: str = Field(min_length=1, max_length=255, pattern=r"^\S+$")
    display_name: str | None = Field(None, alias="displayName")


class _Users(BaseModel):
    value: list[_User]


@dataclass(frozen=True)
class User:
    """A directory user: the object id Teams sends as `aadObjectId`, and the name people see."""

    id: str
    name: str


class Graph:
    """The bot's Microsoft Graph calls, with the app's token; group members kept a minute (`GroupCache`),
    users ten minutes."""

    def __init__(self, tokens: MsalAuth | None, graph_url: str) -> None:
        self._tokens = tokens
        self._graph_url = graph_url.rstrip("/")
        self._groups = GroupCache(self._read)
        self._users: dict[str, tuple[float, User | None]] = {}
        self._session: aiohttp.ClientSession | None = None

    # -- groups -------------------------------------------------------------------------------

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
        except _NoSuchObject:  # Graph's own answer: nobody gets in through this entry
            log.info("teams responder entry is no Entra group", extra={"group": group})
            return None
        except _FAILURES as error:
            _log_failure(error, "GroupMember.Read.All", group=group)
            raise MembershipUnknown(group) from error

    async def _transitive_members(self, group: str) -> set[str]:
        url: str | None = f"{self._graph_url}/groups/{group}/transitiveMembers?$select=id&$top=999"
        members: set[str] = set()
        for _ in range(_MOST_PAGES):
            if url is None:
                break
            page = _Page.model_validate(await self._get(url))
            members |= {member.id for member in page.value}
            url = page.next_link
        return members

    # -- users --------------------------------------------------------------------------------

    async def user(self, key: str) -> User | None:
        """The user whose object id or e-mail address (user principal name) is `key`; None if Graph has
        none, or the bot has no Graph (emulator mode, or no tenant). Kept ten minutes.

        Raises `MembershipUnknown` when Graph could not answer just now.
        """
        if self._tokens is None or not key:
            return None
        kept = self._users.get(key.casefold())
        if kept is not None and time.monotonic() - kept[0] < _USER_TTL_SECONDS:
            return kept[1]
        try:
            url = f"{self._graph_url}/users/{quote(key, safe='@')}"
            found = _User.model_validate(await self._get(url, {"$select": "id,displayName"}))
            user: User | None = User(found.id, found.display_name or found.id)
        except _NoSuchObject:
            user = None
        except (*_FAILURES, ValidationError) as error:
            _log_failure(error, "User.Read.All")
            raise MembershipUnknown(key, what=f"whose account {key} is") from error
        self._users[key.casefold()] = (time.monotonic(), user)
        return user

    async def search_users(self, text: str) -> list[User]:
        """Users whose name or address starts with the words of `text` (Graph's `$search`), for the
        people picker; none without Graph. Raises `MembershipUnknown` when Graph could not answer."""
        words = _SEARCH_QUOTES.sub(" ", text).strip()
        if self._tokens is None or not words:
            return []
        search = f'"displayName:{words}" OR "mail:{words}"'
        url = f"{self._graph_url}/users"
        params = {"$search": search, "$select": "id,displayName", "$top": str(_SEARCH_SHOWN)}
        try:
            # $search on users needs the eventual consistency level (Graph's advanced queries).
            found = _Users.model_validate(await self._get(url, params, {"ConsistencyLevel": "eventual"}))
        except (*_FAILURES, ValidationError, _NoSuchObject) as error:
            _log_failure(error, "User.Read.All")
            raise MembershipUnknown(text, what="the directory") from error
        return [User(user.id, user.display_name or user.id) for user in found.value]

    # -- the calls ------------------------------------------------------------------------------

    async def _get(self, url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Any:
        """One GET with the app's token: the JSON body, `_NoSuchObject` for Graph's 404, or an error."""
        assert self._tokens is not None
        bearer = await token(self._tokens, self._graph_url, ["https://graph.microsoft.com/.default"])
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
        sent = {"Authorization": f"Bearer {bearer}", **(headers or {})}
        async with self._session.get(url, params=params, headers=sent) as reply:
            if reply.status == 404 and await _error_code(reply) == _NO_SUCH_OBJECT:
                raise _NoSuchObject()
            reply.raise_for_status()  # throttled, failing, refused, or a proxy's page: try again
            return await reply.json()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class _NoSuchObject(Exception):
    """Graph says no directory object has this id (for example a user's id among `responders`)."""


def _log_failure(error: Exception, permission: str, **extra: str) -> None:
    status = error.status if isinstance(error, aiohttp.ClientResponseError) else None
    if status in (401, 403):
        log.error(
            "Microsoft Graph refused the bot: grant the app the application permissions GroupMember.Read.All "
            "and User.Read.All, with admin consent, in MicrosoftAppTenantId",
            extra={"permission": permission, "status": status, **extra},
        )
    else:
        log.warning(
            "microsoft graph lookup failed",
            extra={"permission": permission, "error": type(error).__name__, "status": status, **extra},
        )


async def _error_code(reply: aiohttp.ClientResponse) -> str | None:
    """The `error.code` of a Graph error answer; None for anything else (a proxy's page, say)."""
    try:
        return _Error.model_validate_json(await reply.read()).error.code
    except ValidationError:
        return None
