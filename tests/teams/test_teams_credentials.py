"""Outgoing Bot Connector calls reuse one Microsoft Entra token, fetched off the event loop.

A token is fetched once and reused for every turn and proactive message; asking for it never
blocks the event loop, and a login that hangs gives up after a timeout (adapters/teams/_tokens.py).
Microsoft's login is the fake `authority` (tests/teams/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest
from pydantic import SecretStr

from hitl_chatops.bot.server import BotThread
from tests.fakes.bot_connector import FakeConnector
from tests.fakes.microsoft_login import FakeAuthority
from tests.teams.teams_helpers import APP_ID, CHANNEL, Teams, install, make_event


def signed_in_bot(
    start_bot: Callable[..., BotThread],
    authority: FakeAuthority,
    connector: FakeConnector,
    password: str = "app-password",
) -> Teams:
    """A bot as in production (public cloud) but for Microsoft's login and keys, which are the fakes."""
    bot = start_bot(
        teams_app_id=APP_ID,
        teams_app_password=SecretStr(password),
        teams_authority=authority.url,
        teams_openid_url=connector.openid_url,
    )
    return Teams(bot, connector)


async def test_five_bot_connector_calls_fetch_one_token(
    authority: FakeAuthority, connector: FakeConnector, start_bot: Callable[..., BotThread]
) -> None:
    teams = signed_in_bot(start_bot, authority, connector)
    await install(teams, APP_ID)
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
    """The token (and the MSAL client, whose authority discovery is network I/O) is fetched off the
    event loop: while Microsoft's login hangs, every other request to the bot is still answered."""
    teams = signed_in_bot(start_bot, authority, connector)
    authority.answering.clear()
    try:
        await install(teams, APP_ID)
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


async def test_a_wrong_app_password_is_logged_as_such_and_posts_nothing(
    authority: FakeAuthority,
    connector: FakeConnector,
    start_bot: Callable[..., BotThread],
    caplog: pytest.LogCaptureFixture,
) -> None:
    teams = signed_in_bot(start_bot, authority, connector, password="wrong-password")
    await install(teams, APP_ID)

    await make_event(teams.bot, channels=[f"teams:{CHANNEL}"])

    [failed] = await connector.wait_for(lambda: [r for r in caplog.records if r.getMessage() == "teams post failed"])
    assert failed.__dict__["reason"] == "no Microsoft Entra token (ValueError)"
    [login] = [r for r in caplog.records if r.getMessage().startswith("no Microsoft Entra token")]
    assert "MicrosoftAppPassword" in login.getMessage() and "invalid_client" in login.__dict__["reason"]
    assert "wrong-password" not in caplog.text
    assert connector.calls == []
