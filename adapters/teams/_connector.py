"""Bot Connector clients for the Agents SDK's adapter: kept connections, signed when used.

The SDK's own factory (`RestChannelServiceClientFactory`) differs in two ways a test shows:

- it opens a new HTTP session for every turn and every proactive message and closes it after:
  each card posted or updated paid a TCP connect and a TLS handshake (tests/teams/test_teams_bot.py,
  one connection for five calls). Here each service URL keeps one session;
- it gets the bot's token before every turn, also for the card actions that are answered in the
  HTTP reply and never call the Bot Connector (tests/teams/test_teams_auth.py runs offline). Here
  a request to the Bot Connector is signed when it is sent, from MSAL's cache (see `_tokens`).
"""

from __future__ import annotations

import asyncio

import aiohttp
from microsoft_agents.authentication.msal import MsalAuth
from microsoft_agents.hosting.core import (
    AuthenticationConstants,
    ChannelServiceClientFactoryBase,
    ClaimsIdentity,
    TurnContext,
)
from microsoft_agents.hosting.core.connector import ConnectorClientBase, UserTokenClientBase
from microsoft_agents.hosting.core.connector.client import UserTokenClient
from microsoft_agents.hosting.core.connector.teams import TeamsConnectorClient

from ._tokens import token

# Teams has a service URL per region, so a bot sees a handful; the bound matters in emulator mode,
# where anyone may name any service URL.
_MOST_KEPT = 64
_SCOPES = [f"{AuthenticationConstants.AGENTS_SDK_SCOPE}/.default"]


class _BorrowedSessionClient(TeamsConnectorClient):
    """A connector client on a kept session: the SDK closes its clients after each turn."""

    async def close(self) -> None:
        return None


class _NoUserTokens(UserTokenClient):
    """The SDK builds a user token client for every turn; this bot signs nobody in, so it never calls it."""

    async def close(self) -> None:
        return None


class BotConnectorClients(ChannelServiceClientFactoryBase):
    """Connector clients for the bot `app_id`, signed with its token (none in emulator mode)."""

    def __init__(self, tokens: MsalAuth | None, app_id: str) -> None:
        self._tokens = tokens
        self._app_id = app_id
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._user_tokens: _NoUserTokens | None = None

    async def create_connector_client(
        self,
        context: TurnContext | None,
        claims_identity: ClaimsIdentity,
        service_url: str,
        audience: str,
        scopes: list[str] | None = None,
        use_anonymous: bool = False,
    ) -> ConnectorClientBase:
        # This bot only ever calls the Bot Connector as itself: one audience, signed by `_sign`.
        return _BorrowedSessionClient(service_url, "", session=self._session(service_url))

    async def create_user_token_client(
        self, context: TurnContext, claims_identity: ClaimsIdentity, use_anonymous: bool = False
    ) -> UserTokenClientBase:
        if self._user_tokens is None:
            self._user_tokens = _NoUserTokens("https://api.botframework.com", "", app_id=self._app_id or "emulator")
        return self._user_tokens

    def _session(self, service_url: str) -> aiohttp.ClientSession:
        base = service_url if service_url.endswith("/") else f"{service_url}/"
        session = self._sessions.get(base)
        if session is None or session.closed:
            if len(self._sessions) >= _MOST_KEPT:
                closing = asyncio.create_task(self._sessions.pop(next(iter(self._sessions))).close())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
            session = self._sessions[base] = aiohttp.ClientSession(base_url=base, middlewares=(self._sign,))
        return session

    async def _sign(self, request: aiohttp.ClientRequest, send: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
        if self._tokens is not None:  # emulator mode sends no token
            bearer = await token(self._tokens, AuthenticationConstants.AGENTS_SDK_SCOPE, _SCOPES)
            request.headers["Authorization"] = f"Bearer {bearer}"
        return await send(request)

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        if self._user_tokens is not None:
            await UserTokenClient.close(self._user_tokens)
