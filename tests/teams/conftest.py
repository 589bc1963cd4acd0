"""Fixtures for the Teams tests: the fake Bot Connector and a bot in emulator mode wired to it, and
a fake Microsoft login (a real HTTPS server with a test CA from trustme) that MSAL talks to through
`requests`, as it would to login.microsoftonline.com; its ADFS-style path spares MSAL's instance
discovery, which would go to Microsoft. The bot reads it from the Agents SDK's
`CONNECTIONS__SERVICE_CONNECTION__SETTINGS__AUTHORITY`.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from hitl_chatops.bot.server import BotThread, free_port
from tests.teams.teams_helpers import APP_ID, FakeAuthority, FakeConnector, Teams


@pytest.fixture
def connector() -> Iterator[FakeConnector]:
    fake = FakeConnector().start()
    yield fake
    fake.stop()


@pytest.fixture
def teams(connector: FakeConnector, start_bot: Callable[..., BotThread]) -> Teams:
    # `connector` first: bots stop (finishing their card updates) before the fake connector goes away.
    return Teams(start_bot(teams_emulator=True), connector)


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
        if form["client_secret"] != "app-password":
            body = {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}
            return web.json_response(body, status=401)
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
