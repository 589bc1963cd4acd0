"""Bot Framework authentication, offline, through the bot's own token check.

The bot runs with a MicrosoftAppId, so every channel token is validated exactly as in production
(the public-cloud path). Only where the signing keys come from changes: `HITL_CHATOPS_TEAMS_OPENID_URL`
points at the fake Bot Connector, which publishes the test keys the way login.botframework.com
publishes Microsoft's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator

import aiohttp
import jwt
import pytest
from pydantic import SecretStr

from hitl_chatops.bot.logs import JsonFormatter
from hitl_chatops.bot.protocol import Request
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests.fakes.bot_connector import SIGNING_KEY, SKYPE_KEY, TOKEN_ISSUER, FakeConnector, SigningKey
from tests.fakes.events import make_request
from tests.teams.teams_helpers import APP_ID, CHANNEL, Teams, answer, keys_ready, texts

ATTACKER = "https://attacker.example/"
EMULATOR_ISSUER = "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/"


def secured_bot(start_bot: Callable[..., BotThread], openid_url: str) -> BotThread:
    return start_bot(teams_app_id=APP_ID, teams_app_password=SecretStr("app-password"), teams_openid_url=openid_url)


@pytest.fixture
async def secured(connector: FakeConnector, start_bot: Callable[..., BotThread]) -> Teams:
    teams = Teams(secured_bot(start_bot, connector.openid_url), connector)
    await keys_ready(teams, APP_ID)
    return teams


async def pending_event(teams: Teams) -> Request:
    store = Store(teams.bot.settings.store)
    request = make_request(store, event_name="replicas", prompt="How many replicas?", data_type="int")
    await store.put_request(request)
    return request


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unsigned(service_url: str) -> str:
    claims = {"iss": TOKEN_ISSUER, "aud": APP_ID, "serviceurl": service_url, "exp": int(time.time()) + 600}
    return jwt.encode(claims, None, algorithm="none", headers={"kid": SIGNING_KEY.kid})


BAD_TOKENS: dict[str, Callable[[str], str]] = {
    "signed with another key under the published key id": lambda url: SigningKey(SIGNING_KEY.kid).token(APP_ID, url),
    "signed with a key that was never published": lambda url: SigningKey("unknown-key").token(APP_ID, url),
    "signed with a key endorsed for another channel": lambda url: SKYPE_KEY.token(APP_ID, url),
    "unsigned (alg none)": unsigned,
    "expired an hour ago": lambda url: SIGNING_KEY.token(APP_ID, url, exp=int(time.time()) - 3600),
    "issued for another bot": lambda url: SIGNING_KEY.token("another-bot-app-id", url),
    "issued for another service url": lambda _: SIGNING_KEY.token(APP_ID, ATTACKER),
    "without a service url claim": lambda url: SIGNING_KEY.token(APP_ID, url, serviceurl=None),
    "from another issuer": lambda url: SIGNING_KEY.token(APP_ID, url, iss="https://sts.attacker.example/"),
    "not a JWT": lambda _: "not.a.jwt",
}


async def test_a_valid_channel_token_is_accepted_and_the_answer_saved(secured: Teams) -> None:
    event = await pending_event(secured)
    token = SIGNING_KEY.token(APP_ID, secured.connector.url)

    status, body = await secured.invoke(answer(event.request_id, "3"), headers=bearer(token))

    assert status == 200, body
    assert "Answered" in texts(body["value"])
    response = await Store(secured.bot.settings.store).get_response(event.request_id)
    assert response is not None and response.value == 3
    assert response.responder is not None and response.responder.user_id == "aad-alice"


async def keys_kept(teams: Teams) -> int:
    """Wait until the bot has the channel's signing keys; how often it fetched them."""
    await keys_ready(teams, APP_ID)
    return teams.connector.key_fetches


async def test_signing_keys_are_fetched_before_the_first_request_not_during_it(secured: Teams) -> None:
    fetched = await keys_kept(secured)
    event = await pending_event(secured)

    status, body = await secured.invoke(
        answer(event.request_id, "3"), headers=bearer(SIGNING_KEY.token(APP_ID, secured.connector.url))
    )

    assert status == 200, body
    assert secured.connector.key_fetches == fetched


async def test_a_token_that_claims_the_emulator_fetches_no_keys(secured: Teams) -> None:
    """Anyone can name the Emulator as issuer, and Teams never sends Emulator tokens: such a token
    is refused before any key is read, so it cannot make the bot fetch keys on a stranger's word."""
    fetched = await keys_kept(secured)
    event = await pending_event(secured)
    forged = SigningKey("unknown-key").token(APP_ID, secured.connector.url, iss=EMULATOR_ISSUER, appid=APP_ID)

    status, _ = await secured.invoke(answer(event.request_id, "3"), headers=bearer(forged))

    assert status == 401
    assert secured.connector.key_fetches == fetched
    assert await Store(secured.bot.settings.store).get_response(event.request_id) is None


@pytest.mark.parametrize("make_token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
async def test_a_forged_or_stale_token_is_401_and_writes_nothing(
    secured: Teams, make_token: Callable[[str], str]
) -> None:
    event = await pending_event(secured)

    status, _ = await secured.invoke(answer(event.request_id, "3"), headers=bearer(make_token(secured.connector.url)))

    assert status == 401
    assert await Store(secured.bot.settings.store).get_response(event.request_id) is None
    assert secured.connector.calls == []


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A loopback listener that accepts connections and never answers, like egress that drops packets."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/openid"


async def test_a_forged_token_while_the_keys_cannot_be_fetched_is_answered_at_once(
    connector: FakeConnector, start_bot: Callable[..., BotThread], black_hole: str
) -> None:
    """A request only reads the kept signing keys, never fetches them: while Microsoft's key URL
    hangs, forged tokens are answered at once (503, no keys yet) and other routes stay answered."""
    teams = Teams(secured_bot(start_bot, black_hole), connector)
    event = await pending_event(teams)
    forged = SigningKey("attacker-key").token(APP_ID, connector.url)

    invoke = teams.activity("invoke", name="adaptiveCard/action", value={"action": answer(event.request_id, 3)})

    async def post(session: aiohttp.ClientSession) -> int:
        async with session.post(f"{teams.bot.url}/api/messages", json=invoke, headers=bearer(forged)) as reply:
            return reply.status

    async def health(session: aiohttp.ClientSession) -> int:
        async with session.get(f"{teams.bot.url}/healthz") as reply:
            return reply.status

    # Every reply within 5 s, or the session's timeout fails the test: a request that waited for
    # the black hole would hang far longer (a loaded machine needs the margin, not the bot).
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        *statuses, healthz = await asyncio.gather(*(post(session) for _ in range(20)), health(session))

    assert healthz == 200

    assert set(statuses) == {503}  # no key was ever fetched: the channel retries
    assert await Store(teams.bot.settings.store).get_response(event.request_id) is None


MALFORMED = {"a list": [1, 2], "null": None, "a string": "x", "a bad sender": {"from": "x"}, "empty": {}}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.parametrize("mode", ["secured", "emulator"])
async def test_a_body_that_is_not_an_activity_is_a_4xx(
    connector: FakeConnector, start_bot: Callable[..., BotThread], body: object, mode: str
) -> None:
    bot = secured_bot(start_bot, connector.openid_url) if mode == "secured" else start_bot(teams_emulator=True)
    if mode == "secured":  # the token is checked first: wait until the bot can
        await keys_ready(Teams(bot, connector), APP_ID)
    headers = bearer(SIGNING_KEY.token(APP_ID, connector.url)) | {"Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot.url}/api/messages", data=json.dumps(body), headers=headers) as reply,
    ):
        assert reply.status in (400, 401), await reply.text()
    assert connector.calls == []


async def test_a_message_without_a_token_is_401_and_records_no_conversation(secured: Teams) -> None:
    status, _ = await secured.say("pending")

    assert status == 401
    assert secured.connector.calls == []
    assert await Store(secured.bot.settings.store).get_conversation("teams", CHANNEL) is None


JUNK = {
    "empty": b"{}",
    "a wrong type": b'{"type": 5}',
    "an activity without a conversation": b'{"type": "message", "text": "hi"}',
    "not JSON": b"junk",
    "not UTF-8": b"\xff\xfe{",
}


async def test_junk_without_a_token_is_401_with_one_short_log_line_each(
    secured: Teams, caplog: pytest.LogCaptureFixture
) -> None:
    """The token is checked before the body is read: an anonymous body is never parsed, so it
    costs one short warning, never the Agents SDK's ERROR traceback for an invalid activity."""
    caplog.set_level(logging.INFO)
    caplog.clear()
    async with aiohttp.ClientSession() as session:
        for body in JUNK.values():
            headers = {"Content-Type": "application/json"}
            async with session.post(f"{secured.bot.url}/api/messages", data=body, headers=headers) as reply:
                assert reply.status == 401, await reply.text()

    refused = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in refused] == ["WARNING"] * len(JUNK), [r.getMessage() for r in refused]
    lines = [JsonFormatter().format(r) for r in refused]
    assert all(r.exc_info is None and len(line) < 300 for r, line in zip(refused, lines, strict=True)), lines
    assert secured.connector.calls == []


async def test_a_signed_body_that_is_not_an_activity_logs_one_short_line(
    secured: Teams, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.clear()
    headers = bearer(SIGNING_KEY.token(APP_ID, secured.connector.url)) | {"Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{secured.bot.url}/api/messages", data=b'{"type": 5}', headers=headers) as reply,
    ):
        assert reply.status == 400

    [line] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert line.levelname == "WARNING" and line.exc_info is None, line.getMessage()
