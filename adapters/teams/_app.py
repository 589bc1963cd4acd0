"""Teams mounted on the bot: `POST /api/messages` on the Agents SDK's adapter, and the Teams platform."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from microsoft_agents.activity import Activity, ActivityTypes, InvokeResponse
from microsoft_agents.hosting.aiohttp import CloudAdapter
from microsoft_agents.hosting.core import ClaimsIdentity, TurnContext
from pydantic import ValidationError

from hitl_chatops.bot.service import HitlService

from ._channel_auth import OPENID_URL, ChannelTokens, KeysUnavailable, TokenRefused, Verified
from ._connector import BotConnectorClients
from ._graph import Graph
from ._handler import TeamsBot
from ._platform import TeamsPlatform
from ._settings import TeamsSettings
from ._tokens import app_tokens

log = logging.getLogger(__name__)
ROUTE = "/api/messages"
# The SDK logs each Bot Connector call at INFO and each refused one at ERROR; the adapter logs every
# outcome itself, with the event it was for (a refused post is retried later: a warning).
logging.getLogger("microsoft_agents").setLevel(logging.WARNING)
logging.getLogger("microsoft_agents.hosting.core.connector").setLevel(logging.CRITICAL)
# It also logs every body that is not an activity at ERROR, with a traceback; `messages` refuses such
# a body itself, with one short line.
logging.getLogger("microsoft_agents.activity.activity").setLevel(logging.CRITICAL)


def attach(app: web.Application, service: HitlService, settings: TeamsSettings) -> TeamsPlatform:
    """Mount `POST /api/messages`; the Teams platform for the core."""
    app_id = settings.teams_app_id or ""
    clients = BotConnectorClients(app_tokens(settings), app_id)
    adapter = CloudAdapter(channel_service_client_factory=clients)
    adapter.on_turn_error = _on_turn_error
    graph = None
    if app_id and settings.teams_tenant_id:  # Graph reads the groups and users of the app's own tenant
        graph = Graph(app_tokens(settings, settings.teams_tenant_id), settings.teams_graph_url)
        app.on_cleanup.append(lambda _: graph.close())
    platform = TeamsPlatform(adapter, service, app_id, graph)
    bot = TeamsBot(service, platform)
    app.on_cleanup.append(lambda _: clients.close())
    channel = _channel_tokens(app, settings)

    async def messages(request: web.Request) -> web.StreamResponse:
        # The token first: an anonymous body is never read, let alone parsed.
        verified = _verify(channel, request)
        if isinstance(verified, web.Response):
            return verified
        if request.content_type != "application/json":
            return _refused(415, "Send activities as application/json.", "not JSON")
        activity = await _activity(request)
        if activity is None:
            return _refused(400, "The body is not a Bot Framework activity.", "not an activity")
        identity = _identity(verified, activity)
        if isinstance(identity, web.Response):
            return identity
        answer = await adapter.process_activity(identity, activity, bot.on_turn)
        if activity.type == ActivityTypes.invoke:
            status = answer.status if answer is not None and answer.status else 501
            return web.json_response(answer.body if answer is not None else None, status=status)
        return web.Response(status=201)

    app.router.add_post(ROUTE, messages)
    return platform


def _channel_tokens(app: web.Application, settings: TeamsSettings) -> ChannelTokens | None:
    """The token check, its keys kept while the app runs; None (and a loud warning) in emulator mode."""
    if not settings.teams_app_id:
        log.warning(
            "TEAMS EMULATOR MODE: MicrosoftAppId is not set, so Bot Framework authentication is OFF and anyone "
            "who reaches /api/messages can answer as any user. Use only on a developer machine; set "
            "MicrosoftAppId and MicrosoftAppPassword for real Teams.",
            extra={"route": ROUTE},
        )
        return None
    channel = ChannelTokens(settings.teams_app_id, settings.teams_openid_url or OPENID_URL)
    app.cleanup_ctx.append(channel.running)
    return channel


def _verify(channel: ChannelTokens | None, request: web.Request) -> Verified | web.Response | None:
    """The request's checked token (None in emulator mode), or the 401 / 503 to answer instead."""
    if channel is None:
        return None
    try:
        return channel.verify(request.headers.get("Authorization"))
    except TokenRefused as error:
        return _unauthorized(error)
    except KeysUnavailable:  # `keep_fresh` logs why
        log.warning("teams request not checked: no Bot Framework signing keys yet", extra={"route": ROUTE})
        return _error(503, "The bot cannot check tokens yet; retry shortly.")


def _identity(verified: Verified | None, activity: Activity) -> ClaimsIdentity | web.Response:
    """Who sent `activity` (anonymous in emulator mode), or the 401 if the token is for another."""
    if verified is None:
        return ClaimsIdentity()
    try:
        claims = verified.bind(str(activity.channel_id), activity.service_url or "")
    except TokenRefused as error:
        return _unauthorized(error)
    return ClaimsIdentity(claims, authentication_type="Bearer")


def _unauthorized(error: TokenRefused) -> web.Response:
    return _refused(401, "Missing or invalid Bot Framework token.", str(error))


async def _activity(request: web.Request) -> Activity | None:
    """The request's activity, or None for anything that is not one (never a 500)."""
    try:
        body: Any = await request.json()
        activity = Activity.model_validate(body) if isinstance(body, dict) else None
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError):
        return None
    if activity is None or not activity.type or not activity.conversation or not activity.conversation.id:
        return None
    return activity


def _refused(status: int, message: str, reason: str) -> web.Response:
    """One short warning per refused request (never a traceback: anyone may send junk), and the answer."""
    log.warning("teams request refused", extra={"route": ROUTE, "status": status, "reason": reason})
    return _error(status, message)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _on_turn_error(context: TurnContext, error: Exception) -> None:
    """Log internal errors (never echo them); a failed invoke still gets an answer."""
    activity = context.activity
    log.error(
        "teams turn failed",
        extra={"activity_type": activity.type, "activity_name": activity.name, "error": type(error).__name__},
        exc_info=error,
    )
    if activity.type == ActivityTypes.invoke:
        await context.send_activity(Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=500)))
    elif activity.type == ActivityTypes.message:
        await context.send_activity("Something went wrong on the bot's side; it was logged. Please try again.")
