"""Bot Framework channel tokens, checked against signing keys kept fresh in the background.

The Agents SDK's own check (`JwtTokenValidator`) is not used, and a test shows why each time:

- it fetches the signing keys inside the request that needs them (PyJWKClient in a worker thread,
  30 s timeout, one lock per key URL) and fetches again for every token naming an unknown key, so
  a forged token while Microsoft is slow or unreachable holds the request, a thread and the lock
  that every real token waits for (tests/teams/test_teams_auth.py, the black hole test);
- it does not bind the token's `serviceurl` claim to the activity (only logs a mismatch), checks
  no key endorsement for the channel, and checks the issuer only when asked to.

Here the keys are read with aiohttp when the bot starts and then hourly; a request only ever reads
the kept copy: an unknown key is a fast 401, and no key at all (never fetched) a 503 the Bot
Connector retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from pydantic import BaseModel

log = logging.getLogger(__name__)

# Where Microsoft publishes the issuer and keys of the Bot Connector's tokens (public cloud).
OPENID_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
REFRESH_SECONDS = 3600.0
RETRY_SECONDS = 10.0
UNKNOWN_KEY_REFRESH_SECONDS = 300.0  # a token naming a key we lack refreshes at most this often
CLOCK_SKEW_SECONDS = 300
_FETCH_TIMEOUT = aiohttp.ClientTimeout(total=30)


class TokenRefused(Exception):
    """The token is missing, malformed, forged, stale or not for this bot: answer 401."""


class KeysUnavailable(Exception):
    """No signing key could be fetched yet, so no token can be checked: answer 503."""


@dataclass(frozen=True)
class Verified:
    """A channel token whose signature, audience, issuer and lifetime were checked."""

    claims: dict[str, Any]
    endorsements: list[str] | None  # the channels its signing key may sign for; None: any

    def bind(self, channel_id: str, service_url: str) -> dict[str, Any]:
        """The claims, if the token was issued for this activity's channel and service URL."""
        if self.endorsements is not None and channel_id not in self.endorsements:
            raise TokenRefused(f"signing key not endorsed for channel {channel_id!r}")
        if self.claims.get("serviceurl") != service_url:
            raise TokenRefused("token issued for another service URL")
        return self.claims


class _OpenIdConfiguration(BaseModel):
    issuer: str
    jwks_uri: str


class _KeySet(BaseModel):
    keys: list[dict[str, Any]]


@dataclass
class ChannelTokens:
    """Checks `Authorization: Bearer …` of incoming activities for the bot `app_id`."""

    app_id: str
    openid_url: str = OPENID_URL
    _issuer: str = ""
    _keys: dict[str, dict[str, Any]] | None = None
    _fetched_at: float = 0.0
    _refresh: asyncio.Event = field(default_factory=asyncio.Event)

    def verify(self, authorization: str | None) -> Verified:
        """The token's verified claims, before the body is read, or `TokenRefused` / `KeysUnavailable`.

        No I/O. The claims are bound to the activity afterwards (`Verified.bind`).
        """
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenRefused("no bearer token")
        try:
            header = jwt.get_unverified_header(token.strip())
            unverified = jwt.decode(token.strip(), options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise TokenRefused(f"malformed token ({type(error).__name__})") from None
        key = self._key(str(header.get("kid", "")), unverified.get("iss"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token.strip(),
                jwt.PyJWK(key, "RS256"),
                algorithms=["RS256"],
                audience=self.app_id,
                issuer=self._issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "aud", "iss"]},
            )
        except jwt.PyJWTError as error:
            raise TokenRefused(f"{type(error).__name__}") from None
        return Verified(claims, key.get("endorsements"))

    def _key(self, kid: str, issuer: object) -> dict[str, Any]:
        if self._keys is None:  # `keep_fresh` retries on its own; requests never fetch
            raise KeysUnavailable()
        if issuer != self._issuer:  # the Emulator's and any other: refused before any key is looked at
            raise TokenRefused("issuer is not the Bot Connector")
        key = self._keys.get(kid)
        if key is None:
            if time.monotonic() - self._fetched_at > UNKNOWN_KEY_REFRESH_SECONDS:
                self._refresh.set()  # Microsoft may have rotated its keys: look again, in the background
            raise TokenRefused("signing key unknown")
        return key

    async def keep_fresh(self) -> None:
        """Fetch the keys now and every `REFRESH_SECONDS` (sooner when asked), retrying failures."""
        async with aiohttp.ClientSession(timeout=_FETCH_TIMEOUT) as session:
            while True:
                self._refresh.clear()
                try:
                    self._issuer, keys = await fetch_signing_keys(session, self.openid_url)
                except (aiohttp.ClientError, TimeoutError, ValueError) as error:  # ValueError: not the shape
                    log.warning(
                        "signing keys not fetched", extra={"url": self.openid_url, "error": type(error).__name__}
                    )
                    await asyncio.sleep(RETRY_SECONDS)  # not sooner, however many tokens ask
                    continue
                self._keys = {str(k.get("kid")): k for k in keys}
                self._fetched_at = time.monotonic()
                log.info("signing keys fetched", extra={"url": self.openid_url, "keys": len(keys)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._refresh.wait(), REFRESH_SECONDS)

    async def running(self, _: web.Application) -> AsyncIterator[None]:
        """An aiohttp cleanup context: the keys are kept while the bot runs."""
        task = asyncio.create_task(self.keep_fresh())
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def fetch_signing_keys(session: aiohttp.ClientSession, url: str) -> tuple[str, list[dict[str, Any]]]:
    """The issuer the OpenID configuration at `url` names, and its signing keys."""
    async with session.get(url) as reply:
        reply.raise_for_status()
        configuration = _OpenIdConfiguration.model_validate(await reply.json(content_type=None))
    async with session.get(configuration.jwks_uri) as reply:
        reply.raise_for_status()
        return configuration.issuer, _KeySet.model_validate(await reply.json(content_type=None)).keys
