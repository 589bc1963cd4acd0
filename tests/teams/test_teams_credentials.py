"""Outgoing Bot Connector calls reuse one AAD token, fetched off the event loop.

botbuilder's own credential factory builds new credentials, with a new MSAL app and an empty token
cache, for every turn and every proactive message; each then fetched a token with blocking HTTP,
without a timeout, on the event loop. The fake authority below is a real HTTPS server (a test CA
from trustme) that MSAL talks to through `requests`, as it would to login.microsoftonline.com; its
ADFS-style path spares MSAL's instance discovery, which would go to Microsoft.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
import trustme
from aiohttp import web
from botbuilder.integration.aiohttp import ConfigurationServiceClientCredentialFactory
from botbuilder.schema import Activity
from botframework.connector.auth import AuthenticationConstants
from pydantic import SecretStr

from hitl_chatops.adapters.teams.credentials import KeptCredentialsFactory
from hitl_chatops.adapters.teams.references import remember
from hitl_chatops.bot.server import BotThread, free_port
from hitl_chatops.bot.store import Store
from tests.teams.teams_helpers import CHANNEL, FakeConnector, Teams, make_event

APP_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
SCOPE = "https://api.botframework.com"


@dataclass
class FakeAuthority:
    url: str
    token_requests: int = 0
    answering: asyncio.Event = field(default_factory=asyncio.Event)  # cleared: token requests hang


@pytest.fixture
async def authority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeAuthority]:
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))  # MSAL's `requests` trusts the test CA only
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    port = free_port("127.0.0.1")
    fake = FakeAuthority(url=f"https://127.0.0.1:{port}/adfs")
    fake.answering.set()

    async def configuration(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": fake.url,
                "authorization_endpoint": f"{fake.url}/oauth2/authorize",
                "token_endpoint": f"{fake.url}/oauth2/token",
            }
        )

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        assert form["grant_type"] == "client_credentials" and form["client_id"] == APP_ID
        fake.token_requests += 1
        await fake.answering.wait()
        return web.json_response(
            {"access_token": f"token-{fake.token_requests}", "token_type": "Bearer", "expires_in": 3600}
        )

    app = web.Application()
    app.router.add_get("/adfs/.well-known/openid-configuration", configuration)
    app.router.add_get("/adfs/{tenant}/.well-known/openid-configuration", configuration)  # botbuilder names one
    app.router.add_post("/adfs/oauth2/token", token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
    yield fake
    await runner.cleanup()


@pytest.mark.parametrize(
    ("factory", "token_requests"),
    [(KeptCredentialsFactory, 1), (ConfigurationServiceClientCredentialFactory, 5)],  # ours, then botbuilder's
)
async def test_five_bot_connector_calls_fetch_one_token(
    authority: FakeAuthority, factory: type[ConfigurationServiceClientCredentialFactory], token_requests: int
) -> None:
    config = SimpleNamespace(APP_ID=APP_ID, APP_PASSWORD="app-password", APP_TYPE="MultiTenant", APP_TENANTID="")
    credentials_factory = factory(config)
    tokens = []
    for _ in range(5):  # what CloudAdapter does for each turn or proactive message
        credentials = await credentials_factory.create_credentials(APP_ID, SCOPE, authority.url, True)
        # In the bot, botbuilder calls this (blocking) when it signs a request to the Bot Connector.
        tokens.append(await asyncio.to_thread(credentials.get_access_token))

    assert authority.token_requests == token_requests
    assert tokens[-1] == f"token-{token_requests}"


async def test_a_hanging_microsoft_login_does_not_stall_the_bot(
    authority: FakeAuthority,
    connector: FakeConnector,
    start_bot: Callable[..., BotThread],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """botbuilder asked MSAL for the token on the event loop, without a timeout: while Microsoft's
    login hung, every request to the bot (Slack's, the form's) hung with it."""
    # Public cloud, as in production, except that Microsoft's login and keys are the fakes.
    monkeypatch.setattr(AuthenticationConstants, "TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX", f"{authority.url}/")
    connector.publish_keys(monkeypatch)
    bot = start_bot(teams_app_id=APP_ID, teams_app_password=SecretStr("app-password"))
    installed = Activity().deserialize(Teams(bot, connector).activity("conversationUpdate"))
    await remember(Store(bot.settings.store), installed)
    authority.answering.clear()
    try:
        await make_event(bot, channels=[f"teams:{CHANNEL}"])  # its card is posted with the bot's token
        await connector.wait_for(lambda: authority.token_requests)

        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(f"{bot.url}/healthz") as reply,
        ):
            assert reply.status == 200, "the bot answers while the token request hangs"
        assert connector.sent() == []
    finally:
        authority.answering.set()

    [post] = await connector.wait_for(connector.sent)
    assert post.headers["Authorization"] == "Bearer token-1"
    assert authority.token_requests == 1
