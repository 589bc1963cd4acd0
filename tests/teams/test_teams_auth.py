"""Bot Framework authentication, offline, through botbuilder's own token check.

The bot runs with a MicrosoftAppId, so CloudAdapter validates every channel token exactly as in
production (the public-cloud path). Only where the signing keys come from changes: botbuilder's
hook `ChannelValidation.open_id_metadata_endpoint`, and its Emulator metadata URL, point at the
fake Bot Connector, which publishes the test keys the way login.botframework.com publishes
Microsoft's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest
from botframework.connector.auth import ChannelValidation
from pydantic import SecretStr

from hitl_chatops.bot.protocol import Request
from hitl_chatops.bot.server import BotThread, free_port
from hitl_chatops.bot.store import Store
from tests.helpers import make_request
from tests.teams.teams_helpers import (
    CHANNEL,
    SIGNING_KEY,
    SKYPE_KEY,
    TOKEN_ISSUER,
    FakeConnector,
    SigningKey,
    Teams,
    answer,
    texts,
)

APP_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
ATTACKER = "https://attacker.example/"
EMULATOR_ISSUER = "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/"


@pytest.fixture
def secured(connector: FakeConnector, start_bot: Callable[..., BotThread], monkeypatch: pytest.MonkeyPatch) -> Teams:
    connector.publish_keys(monkeypatch)
    return Teams(start_bot(teams_app_id=APP_ID, teams_app_password=SecretStr("app-password")), connector)


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
    """Wait until the bot has fetched both sets of keys, the channel's and the Emulator's."""
    await teams.connector.wait_for(lambda: teams.connector.key_fetches >= 2)
    return teams.connector.key_fetches


async def test_signing_keys_are_fetched_before_the_first_request_not_during_it(secured: Teams) -> None:
    """botbuilder would fetch them with blocking calls inside the first request, stalling the whole bot."""
    fetched = await keys_kept(secured)
    event = await pending_event(secured)

    status, body = await secured.invoke(
        answer(event.request_id, "3"), headers=bearer(SIGNING_KEY.token(APP_ID, secured.connector.url))
    )

    assert status == 200, body
    assert secured.connector.key_fetches == fetched


async def test_a_token_that_claims_the_emulator_fetches_no_keys_either(secured: Teams) -> None:
    """Anyone can name the Emulator as issuer; botbuilder then checks the token against the
    Emulator's keys, which it would have fetched, blocking, inside that request."""
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


async def test_unreachable_signing_keys_are_a_500_so_the_channel_retries(
    secured: Teams, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = await pending_event(secured)
    monkeypatch.setattr(ChannelValidation, "open_id_metadata_endpoint", f"http://127.0.0.1:{free_port('127.0.0.1')}/")

    token = SIGNING_KEY.token(APP_ID, secured.connector.url)
    status, _ = await secured.invoke(answer(event.request_id, "3"), headers=bearer(token))

    assert status == 500  # not 401: the token may be good, and the Bot Connector retries a 5xx
    assert await Store(secured.bot.settings.store).get_response(event.request_id) is None


async def test_a_message_without_a_token_is_401_and_records_no_conversation(secured: Teams) -> None:
    status, _ = await secured.say("pending")

    assert status == 401
    assert secured.connector.calls == []
    assert await Store(secured.bot.settings.store).get_conversation("teams", CHANNEL) is None
