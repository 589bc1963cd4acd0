"""Personal form links over a real socket: the form answers as the person a link was signed for, through
`HitlService.answer` (a team decision: their vote or proposal); the shared link works as before.

Slack's and Teams' side (who gets a link, and how): tests/slack/test_slack_personal_links.py,
tests/teams/test_teams_card_size.py.
"""

from __future__ import annotations

import asyncio

import aiohttp

from hitl_chatops.bot.protocol import Responder
from hitl_chatops.bot.server import BotThread
from tests.test_http import put

ANN = Responder(platform="slack", user_id="U0ANN", user_name="Ann")
BOB = Responder(platform="slack", user_id="U0BOB", user_name="Bob")
CAROL = Responder(platform="teams", user_id="aad-carol", user_name="Carol")


async def fetch(method: str, url: str, form: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.request(method, url, data=form) as reply:
        return reply.status, await reply.text()


async def test_an_approval_of_two_is_decided_through_two_personal_links(bot: BotThread) -> None:
    event = await put(bot, approvals=2, responders=["slack:U0ANN", "slack:U0BOB", "teams:aad-carol"])
    ann, bob = (bot.service.form_url(event.request_id, person) for person in (ANN, BOB))

    status, page = await fetch("GET", ann)
    assert status == 200 and "0 of 2 approvals" in page and "<dt>Answering as</dt><dd>Ann</dd>" in page
    assert 'name="value"' in page and "Approve" in page

    status, page = await fetch("POST", ann, {"value": "true"})
    assert status == 200 and "Thanks, your answer is counted" in page and "1 of 2 approvals" in page
    status, page = await fetch("POST", ann, {"value": "true"})
    assert status == 403 and "You already approved this" in page and "1 of 2 approvals" in page
    assert await bot.service.store.get_response(event.request_id) is None

    status, page = await fetch("POST", bob, {"value": "true"})
    assert status == 200 and "Thanks, the decision is made" in page
    response = await bot.service.store.get_response(event.request_id)
    assert response is not None and response.value is True and response.via == "web"
    assert [(vote.voter, vote.via) for vote in response.votes] == [(ANN, "web"), (BOB, "web")]

    status, page = await fetch("GET", bot.service.form_url(event.request_id, CAROL))
    assert status == 200 and "Decided already: approved by Ann and Bob" in page and "<form" not in page


async def test_a_value_decision_takes_a_proposal_and_its_confirmation_through_personal_links(bot: BotThread) -> None:
    """A value equal to the proposal confirms it; another proposes anew (as `HitlService.answer` by value)."""
    event = await put(bot, data_type="int", approvals=2, responders=["slack:U0ANN", "slack:U0BOB"])
    ann, bob = (bot.service.form_url(event.request_id, person) for person in (ANN, BOB))

    status, page = await fetch("POST", ann, {"value": "3"})
    assert status == 200 and "Thanks, your answer is counted" in page
    status, page = await fetch("GET", bob)
    assert status == 200 and 'value="3"' in page, "the form proposes the value proposed"
    status, page = await fetch("POST", bob, {"value": "3"})
    assert status == 200 and "Thanks, the decision is made" in page
    response = await bot.service.store.get_response(event.request_id)
    assert response is not None and response.value == 3 and response.responder is not None


async def test_a_personal_link_is_refused_for_someone_not_listed_and_after_the_deadline(bot: BotThread) -> None:
    event = await put(bot, data_type="int", responders=["slack:U0ANN"], timeout=1)
    bob = bot.service.form_url(event.request_id, BOB)
    for method in ("GET", "POST"):
        status, page = await fetch(method, bob, {"value": "5"})
        assert status == 403 and "Only slack:U0ANN may answer this event." in page

    ann = bot.service.form_url(event.request_id, ANN)
    await asyncio.sleep(1.2)
    for method in ("GET", "POST"):
        status, page = await fetch(method, ann, {"value": "5"})
        assert status == 403 and "Expired" in page
    assert await bot.service.store.get_response(event.request_id) is None


async def test_the_shared_link_still_answers_an_open_event_and_names_its_holder(bot: BotThread) -> None:
    event = await put(bot, data_type="int")
    shared = bot.service.form_url(event.request_id)
    assert "as=" not in shared
    status, page = await fetch("POST", shared, {"value": "7"})
    assert status == 200 and "You answered 7." in page
    response = await bot.service.store.get_response(event.request_id)
    assert response is not None and response.responder == Responder.form_link_holder() and response.via == "web"
    status, page = await fetch("GET", shared)
    assert "Answered 7 by someone with the form link at " in page and " via the web form." in page
