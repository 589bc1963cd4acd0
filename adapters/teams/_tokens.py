"""The bot's own Microsoft Entra tokens (for the Bot Connector and Microsoft Graph), from MSAL.

MSAL is synchronous. The SDK's `MsalAuth` asks it for tokens in a worker thread, but builds its
MSAL client (which discovers the authority over the network) on the event loop, and sets no
timeout: `token` builds the client in a thread too, and gives up after `TOKEN_TIMEOUT_SECONDS`
(tests/teams/test_teams_credentials.py, a hanging Microsoft login). Every failure is a `PlatformError`.
"""

from __future__ import annotations

import asyncio
import logging

from microsoft_agents.authentication.msal import MsalAuth
from microsoft_agents.hosting.core.authorization import AgentAuthConfiguration, AuthTypes

from hitl_chatops.bot.errors import ConfigError, PlatformError

from ._msal import build_client
from ._settings import TeamsSettings

log = logging.getLogger(__name__)
TOKEN_TIMEOUT_SECONDS = 30.0
# Multi-tenant bot registrations get their Bot Connector token from this tenant.
_BOT_FRAMEWORK_TENANT = "botframework.com"


def app_tokens(settings: TeamsSettings, tenant: str | None = None) -> MsalAuth | None:
    """MSAL for the configured app (None in emulator mode); `tenant` overrides the app type's."""
    if not settings.teams_app_id:
        return None
    kind = settings.teams_app_type.lower()
    if kind == "userassignedmsi":
        config = AgentAuthConfiguration(AuthTypes.user_managed_identity, settings.teams_app_id, tenant)
    else:
        if kind == "singletenant" and not settings.teams_tenant_id:
            raise ConfigError("MicrosoftAppType is SingleTenant: set MicrosoftAppTenantId to the app's tenant id.")
        secret = settings.teams_app_password.get_secret_value() if settings.teams_app_password else None
        default_tenant = settings.teams_tenant_id if kind == "singletenant" else _BOT_FRAMEWORK_TENANT
        config = AgentAuthConfiguration(
            AuthTypes.client_secret,
            settings.teams_app_id,
            tenant or default_tenant,
            secret,
            authority=settings.teams_authority,
        )
    return MsalAuth(config)


async def token(tokens: MsalAuth, resource: str, scopes: list[str]) -> str:
    """A token for `scopes`, from MSAL's cache or fetched in a thread; `PlatformError` if none came.

    A failure fails this one call and the bot goes on; the caller retries (the reconciler for a
    post, the channel for a turn, the person for a group check).
    """
    try:
        async with asyncio.timeout(TOKEN_TIMEOUT_SECONDS):
            await asyncio.to_thread(build_client, tokens)  # built once, then cached by MsalAuth
            return await tokens.get_access_token(resource, scopes)
    except TimeoutError:
        log.error(
            "no Microsoft Entra token: the Microsoft login endpoint did not answer in time",
            extra={"resource": resource, "timeout_seconds": TOKEN_TIMEOUT_SECONDS},
        )
        raise PlatformError("no Microsoft Entra token: the Microsoft login endpoint did not answer") from None
    except (OSError, ValueError) as error:  # unreachable (requests' errors are OSErrors), or refused
        log.error(
            "no Microsoft Entra token: check MicrosoftAppId, MicrosoftAppPassword and MicrosoftAppTenantId",
            extra={"resource": resource, "error": type(error).__name__, "reason": str(error)[:300]},
        )
        raise PlatformError(f"no Microsoft Entra token ({type(error).__name__})") from error
