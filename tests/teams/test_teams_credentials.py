"""Outgoing Bot Connector calls reuse one Microsoft Entra token, fetched off the event loop.

botbuilder fetched a token for every turn and every proactive message with blocking HTTP, without
a timeout, on the event loop. The fake authority below is a real HTTPS server (a test CA from
trustme) that MSAL talks to through `requests`, as it would to login.microsoftonline.com; its
ADFS-style path spares MSAL's instance discovery, which would go to Microsoft. The bot reads it
from the Agents SDK's `CONNECTIONS__SERVICE_CONNECTION__SETTINGS__AUTHORITY`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web
from pydantic import SecretStr

from hitl_chatops.bot.server import BotThread, free_port
from tests.teams.teams_helpers import CHANNEL, SIGNING_KEY, FakeConnector, Teams, make_event

APP_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


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
    app.router.add_post("/adfs/oauth2/token", token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
    yield fake
    await runner.cleanup()


def signed_in_bot(start_bot: Callable[..., BotThread], authority: FakeAuthority, connector: FakeConnector) -> Teams:
    """A bot as in production (public cloud) but for Microsoft's login and keys, which are the fakes."""
    bot = start_bot(
        teams_app_id=APP_ID,
        teams_app_password=SecretStr("app-password"),
        teams_authority=authority.url,
        teams_openid_url=connector.openid_url,
    )
    return Teams(bot, connector)


async def install(teams: Teams) -> None:
    """Install the app in CHANNEL (signed, as Teams sends it); the bot sends nothing back."""
    activity = teams.activity("installationUpdate", action="add")
    headers = {"Authorization": f"Bearer {SIGNING_KEY.token(APP_ID, teams.connector.url)}"}
    await teams.connector.wait_for(lambda: teams.connector.key_fetches)
    for _ in range(50):  # the keys are stored right after the fake answered
        status, _ = await teams.post(activity, headers)
        if status != 503:
            break
        await asyncio.sleep(0.05)
    assert status == 201


async def test_five_bot_connector_calls_fetch_one_token(
    authority: FakeAuthority, connector: FakeConnector, start_bot: Callable[..., BotThread]
) -> None:
    teams = signed_in_bot(start_bot, authority, connector)
    await install(teams)
    for posted in range(1, 6):
        await make_event(teams.bot, channels=[f"teams:{CHANNEL}"])
        await connector.wait_for(lambda n=posted: len(connector.cards(connector.sent(CHANNEL))) == n)

    assert len(connector.sent(CHANNEL)) == 5
    assert {call.headers["Authorization"] for call in connector.calls} == {"Bearer token-1"}
    assert authority.token_requests == 1


async def test_a_hanging_microsoft_login_does_not_stall_the_bot(
    authority: FakeAuthority,
    connector: FakeConnector,
    start_bot: Callable[..., BotThread],
) -> None:
    """botbuilder asked MSAL for the token on the event loop, without a timeout: while Microsoft's
    login hung, every request to the bot (Slack's, the form's) hung with it."""
    teams = signed_in_bot(start_bot, authority, connector)
    authority.answering.clear()
    try:
        await install(teams)
        await make_event(teams.bot, channels=[f"teams:{CHANNEL}"])  # its card is posted with the bot's token
        await connector.wait_for(lambda: authority.token_requests)

        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(f"{teams.bot.url}/healthz") as reply,
        ):
            assert reply.status == 200, "the bot answers while the token request hangs"
        assert connector.sent() == []
    finally:
        authority.answering.set()

    [post] = await connector.wait_for(lambda: connector.cards(connector.sent()) and connector.sent())
    assert post.headers["Authorization"] == "Bearer token-1"
    assert authority.token_requests == 1
