"""Microsoft Teams through botbuilder's CloudAdapter: `POST /api/messages` and the Teams surface.

Every botbuilder import of the project lives in this folder, so moving to the Microsoft 365
Agents SDK later touches nothing else.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web
from botbuilder.core import TurnContext
from botbuilder.core.invoke_response import InvokeResponse
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import AuthenticateRequestResult, ClaimsIdentity, ConnectorFactory

from hitl_chatops.bot.config import Settings
from hitl_chatops.bot.service import HitlService

from .connectors import ClientKey, KeptConnectorFactory, app_id_of
from .credentials import KeptCredentialsFactory, TokenBeforeSend, signing_keys_kept
from .handler import TeamsBot
from .surface import TeamsSurface

__all__ = ["attach"]
log = logging.getLogger(__name__)
ROUTE = "/api/messages"


class _AdapterConfig:
    """The attribute names botbuilder's configuration classes read."""

    def __init__(self, settings: Settings) -> None:
        self.APP_ID = settings.teams_app_id or ""
        self.APP_PASSWORD = settings.teams_app_password.get_secret_value() if settings.teams_app_password else ""
        self.APP_TYPE = settings.teams_app_type
        self.APP_TENANTID = settings.teams_tenant_id or ""


class _Authentication(ConfigurationBotFrameworkAuthentication):  # type: ignore[misc]
    """botbuilder's authentication, with kept credentials and connector clients, where every way a
    token can be bad is a `PermissionError` (a 401).

    botbuilder itself lets some bad tokens escape as other errors, which CloudAdapter answers
    with a 500: a malformed token (PyJWT's DecodeError), an unknown signing key (IndexError), a key
    not endorsed for the channel or a disallowed algorithm (bare `Exception`).
    """

    def __init__(self, config: _AdapterConfig) -> None:
        super().__init__(config, credentials_factory=KeptCredentialsFactory(config))
        self._connectors: dict[ClientKey, ConnectorClient] = {}

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        """For proactive messages."""
        return self._kept(super().create_connector_factory(claims_identity), claims_identity)

    def _kept(self, factory: ConnectorFactory, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return KeptConnectorFactory(
            factory, app_id_of(claims_identity), self.get_originating_audience(), self._connectors
        )

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        """The token check for incoming turns, whose result carries their connector factory."""
        try:
            result = await super().authenticate_request(activity, auth_header)
        except PermissionError as error:  # botbuilder's own refusal
            _refused(error)
            raise
        except OSError:
            raise  # the signing keys could not be fetched (requests' errors are OSErrors): a 500, the channel retries
        except Exception as error:
            _refused(error)
            raise PermissionError("invalid Bot Framework token") from error
        result.connector_factory = self._kept(result.connector_factory, result.claims_identity)
        return result


def _refused(error: Exception) -> None:
    log.warning(
        "teams request refused: missing or invalid Bot Framework token",
        extra={"route": ROUTE, "reason": f"{type(error).__name__}: {error}"[:200]},
    )


def attach(app: web.Application, service: HitlService, settings: Settings) -> None:
    """Mount `POST /api/messages` and register the Teams surface with the core."""
    config = _AdapterConfig(settings)
    adapter = CloudAdapter(_Authentication(config))
    adapter.use(TokenBeforeSend())
    adapter.on_turn_error = _on_turn_error
    surface = TeamsSurface(adapter, service, settings.teams_app_id)
    bot = TeamsBot(service, surface)
    service.add_surface(surface)
    if not settings.teams_app_id:
        log.warning(
            "TEAMS EMULATOR MODE: MicrosoftAppId is not set, so Bot Framework authentication is OFF and anyone "
            "who reaches /api/messages can answer as any user. Use only on a developer machine; set "
            "MicrosoftAppId and MicrosoftAppPassword for real Teams.",
            extra={"route": ROUTE},
        )
    else:
        app.cleanup_ctx.append(signing_keys_kept)

    async def messages(request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":
            return web.json_response({"error": "Send activities as application/json."}, status=415)
        try:
            response = await adapter.process(request, bot)  # a refused token raises HTTPUnauthorized (401)
        except json.JSONDecodeError:
            return web.json_response({"error": "The body is not JSON."}, status=400)
        return response if response is not None else web.Response(status=201)

    app.router.add_post(ROUTE, messages)


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
