"""Slack mounted on the bot: `POST /slack/events` (or Socket Mode), the Web API client, the bolt app."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from hitl_chatops.bot.errors import ConfigError
from hitl_chatops.bot.service import HitlService

from ._listeners import Listeners
from ._platform import SlackPlatform
from ._settings import EVENTS_PATH, SlackSettings

log = logging.getLogger(__name__)
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # seconds since 1970; bounded so int() stays cheap
_OBJECTS = ("view", "user", "team", "container", "channel", "message", "event")  # what bolt reads as objects
SOCKET_HANDLER = web.AppKey("slack_socket_handler", AsyncSocketModeHandler)


def _level_set(logger: logging.Logger) -> logging.Logger:
    """`logger` with the level now in force set on it.

    slack_sdk and bolt test the logger's own level (`logger.level <= DEBUG`; unset is 0) before
    formatting every request, response and middleware step for a debug line that logging then
    drops: with the level set, that work is done only when debug logging is on.
    """
    if logger.level == logging.NOTSET:
        logger.setLevel(logger.getEffectiveLevel())
    return logger


def web_client(settings: SlackSettings) -> AsyncWebClient:
    """The Web API client: `SLACK_API_URL` if set; retries 429 (honouring Retry-After), 5xx and resets."""
    if settings.slack_bot_token is None:
        raise ConfigError("Set SLACK_BOT_TOKEN (xoxb-…, from OAuth & Permissions in your Slack app).")
    base_url = f"{settings.slack_api_url}/" if settings.slack_api_url else AsyncWebClient.BASE_URL
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=base_url,
        logger=_level_set(logging.getLogger("slack_sdk.web.async_client")),  # slack_sdk's own logger
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


async def _pooled(client: AsyncWebClient) -> AsyncIterator[None]:
    """One connection pool for every Web API call while the bot runs.

    Without a session slack_sdk opens a new one per call: a TCP connect and TLS handshake for every
    `chat.update`. A running session ignores the client's timeout, so the session carries it.
    """
    timeout = aiohttp.ClientTimeout(total=client.timeout)
    async with aiohttp.ClientSession(timeout=timeout) as client.session:
        yield


def bolt_secret(settings: SlackSettings) -> str:
    return settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""


def _unsigned_reason(verifier: SignatureVerifier, body: bytes, headers: Mapping[str, str]) -> str | None:
    """Why this is not a request Slack signed, or None if it is.

    Slack signs UTF-8 text with a whole-second timestamp; anything else is refused here, because
    slack_sdk's verifier raises on it (`int("1.5")`, non-UTF-8 bodies, non-ASCII signatures).
    """
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not _TIMESTAMP.fullmatch(timestamp):
        return "timestamp is missing or not whole seconds"
    if not signature.isascii():
        return "signature is not ASCII"
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return "body is not UTF-8"
    if not verifier.is_valid(text, timestamp, signature):
        return "signature is wrong or expired"
    return None


def _odd_shape(body: Mapping[str, Any]) -> str | None:
    """The part of a payload bolt reads that is not the shape Slack sends (bolt would fail on it:
    a 500 and a traceback), or None."""
    for key in _OBJECTS:
        if body.get(key) is not None and not isinstance(body[key], dict):
            return f"{key} is not an object"
    actions = body.get("actions")
    if actions is not None and not (isinstance(actions, list) and all(isinstance(a, dict) for a in actions)):
        return "actions is not a list of objects"
    return None


def bolt_app(service: HitlService, settings: SlackSettings, client: AsyncWebClient) -> AsyncApp:
    """The bolt app with our listeners; HTTP mode verifies Slack's signature on every request."""
    socket_mode = settings.slack_app_token is not None
    secret = bolt_secret(settings)
    if not socket_mode and not secret:
        raise ConfigError(
            "Set SLACK_SIGNING_SECRET (Basic Information → App Credentials in your Slack app), "
            "or SLACK_APP_TOKEN to use Socket Mode instead of a public URL."
        )
    app = AsyncApp(
        client=client,
        signing_secret=secret,
        # Answer as soon as a listener returns; the listeners hand slow work to their own tasks.
        # (Without it bolt polls for the ack every 10 ms: a floor on every ack and most of its CPU.)
        process_before_response=True,
        # `attach` checks the signature before bolt parses anything (junk is a 401, not bolt's 500):
        # bolt checking it again would be a second HMAC of the same bytes.
        request_verification_enabled=False,
        logger=_level_set(logging.getLogger("hitl_chatops.adapters.slack.bolt")),
    )
    Listeners(service, settings.slack_command).register(app)
    return app


def attach(app: web.Application, service: HitlService, settings: SlackSettings) -> SlackPlatform:
    """Mount Slack on the bot: `POST /slack/events`, or a Socket Mode connection if `SLACK_APP_TOKEN` is set."""
    client = web_client(settings)
    bolt = bolt_app(service, settings, client)
    app.cleanup_ctx.append(lambda _: _pooled(client))
    platform = SlackPlatform(client, service, default_channel=settings.slack_channel)
    if settings.slack_app_token is None:
        verifier = SignatureVerifier(signing_secret=bolt_secret(settings))

        async def events(request: web.Request) -> web.Response:
            # Check the signature before bolt parses anything: junk is a 401 or 400, never a 500.
            refused = _unsigned_reason(verifier, await request.read(), request.headers)
            if refused is not None:
                log.warning("slack request refused", extra={"reason": refused})
                return web.json_response({"error": "invalid Slack signature"}, status=401)
            try:
                bolt_request = await to_bolt_request(request)
                odd = _odd_shape(bolt_request.body)
            except Exception as error:  # signed but unreadable: an unknown charset, or odd shapes bolt cannot parse
                odd = type(error).__name__
            if odd is not None:
                log.warning("malformed slack request", extra={"error": odd})
                return web.json_response({"error": "malformed Slack request"}, status=400)
            return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

        app.router.add_post(EVENTS_PATH, events)
        log.info("slack attached", extra={"mode": "http", "path": EVENTS_PATH})
        return platform

    handler = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
    app[SOCKET_HANDLER] = handler

    async def connect(_: web.Application) -> None:
        await handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("slack attached", extra={"mode": "socket"})

    async def close(_: web.Application) -> None:
        await handler.close_async()  # type: ignore[no-untyped-call]

    app.on_startup.append(connect)
    app.on_cleanup.append(close)
    return platform
