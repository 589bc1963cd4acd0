"""Bot Framework credentials and signing keys, kept so that botbuilder never blocks the event loop.

botbuilder does its network calls for authentication with blocking libraries (`requests`, MSAL)
from inside its async code, so each one stalls the whole bot, Slack included:

- For every turn and every proactive message it builds new app credentials, each with a new
  MSAL app and an empty token cache: one AAD token request per Bot Connector call.
- It signs each Bot Connector request with a token from MSAL, called on the event loop and with
  no timeout: an authority that hangs hangs the bot.
- It fetches the token signing keys (the channel's, or the Emulator's for a token that claims to
  come from it) on the first such request, then once a day, and at most hourly when a token names
  an unknown key, with no timeout at all.

Here the credentials are built once per audience, so MSAL's cache serves their token until it
nears expiry; before a turn sends or updates an activity, that token is fetched in a worker thread
with a timeout, so botbuilder's own call finds it cached. The signing keys are refreshed in the
background with aiohttp, more often than botbuilder's own limits, so its blocking fetch never runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from botbuilder.core import BotAdapter, Middleware, TurnContext
from botbuilder.integration.aiohttp import ConfigurationServiceClientCredentialFactory
from botbuilder.schema import Activity, ActivityTypes
from botframework.connector.auth import (
    AppCredentials,
    AuthenticationConstants,
    ChannelValidation,
    JwtTokenExtractor,
)
from pydantic import BaseModel

log = logging.getLogger(__name__)
# botbuilder fetches the keys itself when its copy is a day old, or an hour old and a token names an
# unknown key; refreshed more often than that, its own (blocking) fetch never runs.
KEYS_REFRESH_SECONDS = 45 * 60.0
KEYS_RETRY_SECONDS = 60.0
_KEYS_TIMEOUT = aiohttp.ClientTimeout(total=30)
TOKEN_TIMEOUT_SECONDS = 30.0


class KeptCredentialsFactory(ConfigurationServiceClientCredentialFactory):  # type: ignore[misc]
    """botbuilder's credentials for the configured app type, built once per audience and then kept.

    Kept credentials keep their MSAL token cache: a token is fetched about once an hour instead of
    once per Bot Connector call.
    """

    def __init__(self, configuration: Any) -> None:
        super().__init__(configuration)
        self._kept: dict[tuple[str, str, str, bool], AppCredentials] = {}

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> AppCredentials:
        key = (app_id, oauth_scope, login_endpoint, validate_authority)
        if key not in self._kept:
            self._kept[key] = await super().create_credentials(app_id, oauth_scope, login_endpoint, validate_authority)
        return self._kept[key]


class TokenBeforeSend(Middleware):  # type: ignore[misc]
    """Gets the bot's token off the event loop before a turn (incoming or proactive) calls the Bot Connector."""

    async def on_turn(self, context: TurnContext, logic: Callable[[], Awaitable[None]]) -> None:
        context.on_send_activities(_before_send)
        context.on_update_activity(_before_update)
        await logic()


async def _before_send(context: TurnContext, activities: list[Activity], send: Callable[[], Awaitable[None]]) -> None:
    if any(activity.type != ActivityTypes.invoke_response for activity in activities):  # those go in the HTTP answer
        await token_ready(context)
    await send()


async def _before_update(context: TurnContext, _: Activity, update: Callable[[], Awaitable[None]]) -> None:
    await token_ready(context)
    await update()


async def token_ready(context: TurnContext) -> None:
    """Have MSAL fetch (or find cached) the token of this turn's connector client, in a thread.

    A timeout fails this one send; the bot goes on, and the caller retries (the reconciler for a
    post, the channel for a turn).
    """
    client = context.turn_state.get(BotAdapter.BOT_CONNECTOR_CLIENT_KEY)
    credentials = getattr(getattr(client, "config", None), "credentials", None)
    if not isinstance(credentials, AppCredentials) or not credentials.microsoft_app_id:
        return  # emulator mode: no token
    try:
        async with asyncio.timeout(TOKEN_TIMEOUT_SECONDS):
            await asyncio.to_thread(credentials.get_access_token)
    except TimeoutError:
        log.error(
            "no Bot Framework token: the Microsoft login endpoint did not answer in time",
            extra={"authority": credentials.oauth_endpoint, "timeout_seconds": TOKEN_TIMEOUT_SECONDS},
        )
        raise


class _OpenIdConfiguration(BaseModel):
    jwks_uri: str


class _KeySet(BaseModel):
    keys: list[dict[str, Any]]


def signing_keys_urls() -> list[str]:
    """Where botbuilder's token checks read the signing keys' metadata: the channel's (its own hook
    first) and the Bot Framework Emulator's.

    Teams never sends Emulator tokens, but anyone can send a token whose issuer says Emulator, and
    botbuilder would then fetch the Emulator's keys inside that request.
    """
    hook: str | None = ChannelValidation.open_id_metadata_endpoint
    return [
        hook or str(AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL),
        str(AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL),
    ]


async def fetch_signing_keys(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with session.get(url) as reply:
        reply.raise_for_status()
        jwks_uri = _OpenIdConfiguration.model_validate(await reply.json(content_type=None)).jwks_uri
    async with session.get(jwks_uri) as reply:
        reply.raise_for_status()
        return _KeySet.model_validate(await reply.json(content_type=None)).keys


async def keep_signing_keys(url: str) -> None:
    """Refresh botbuilder's cached signing keys for `url` now and every `KEYS_REFRESH_SECONDS`."""
    metadata = JwtTokenExtractor.get_open_id_metadata(url)
    if not (hasattr(metadata, "keys") and hasattr(metadata, "last_updated")):
        log.warning("botbuilder's signing key cache changed shape; it fetches its keys itself", extra={"url": url})
        return
    async with aiohttp.ClientSession(timeout=_KEYS_TIMEOUT) as session:
        while True:
            try:
                keys = await fetch_signing_keys(session, url)
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:  # ValueError: not JSON, or not the shape
                log.warning("signing keys not refreshed", extra={"url": url, "error": type(error).__name__})
                await asyncio.sleep(KEYS_RETRY_SECONDS)
                continue
            # botbuilder compares against its own naive local `datetime.now()`.
            metadata.keys, metadata.last_updated = keys, datetime.now()
            log.info("signing keys refreshed", extra={"url": url, "keys": len(keys)})
            await asyncio.sleep(KEYS_REFRESH_SECONDS)


async def signing_keys_kept(_: web.Application) -> AsyncIterator[None]:
    """An aiohttp cleanup context: the key refreshers run while the bot does."""
    tasks = [asyncio.create_task(keep_signing_keys(url)) for url in signing_keys_urls()]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
