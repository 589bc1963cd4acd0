"""Bot Connector clients, kept so that calls to the same channel reuse one HTTP connection.

botbuilder builds a new connector client for every incoming turn and every proactive message, and
each client opens its own HTTP session: every card posted or updated paid a TCP connect and a TLS
handshake with the Bot Connector. A kept client's session keeps its connections alive.
"""

from __future__ import annotations

from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import AuthenticationConstants, ClaimsIdentity, ConnectorFactory

# Teams has a service URL per region, so a bot sees a handful; the bound only matters in emulator
# mode, where anyone may name any service URL.
_MOST_KEPT = 64

ClientKey = tuple[str, str, str]  # app id ("" when anonymous), service URL, audience


def app_id_of(claims: ClaimsIdentity) -> str:
    """The bot's app id the way botbuilder picks it: the token's audience, else its `appid` claim."""
    value = claims.get_claim_value(AuthenticationConstants.AUDIENCE_CLAIM)
    return str(value or claims.get_claim_value(AuthenticationConstants.APP_ID_CLAIM) or "")


class KeptConnectorFactory(ConnectorFactory):  # type: ignore[misc]
    """botbuilder's connector factory for one app id, whose clients live in the shared `kept`.

    Incoming turns name their audience and proactive messages leave it to the default, so the
    default is spelled out: both then share a client.
    """

    def __init__(
        self, factory: ConnectorFactory, app_id: str, default_audience: str, kept: dict[ClientKey, ConnectorClient]
    ) -> None:
        self._factory = factory
        self._app_id = app_id
        self._default_audience = default_audience
        self._kept = kept

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        key = (self._app_id, service_url, audience or self._default_audience)
        client = self._kept.get(key)
        if client is None:
            client = await self._factory.create(service_url, audience)
            if len(self._kept) >= _MOST_KEPT:
                del self._kept[next(iter(self._kept))]  # the oldest
            self._kept[key] = client
        return client
