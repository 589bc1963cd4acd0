"""Teams group responders: `responders` names a Microsoft Entra group, read through Microsoft Graph.

The bot runs as in production (signed channel tokens, an app token from MSAL) against three local
fakes over real sockets: the Bot Connector's keys, Microsoft's login (the `authority` fixture) and
Microsoft Graph (`tests/fakes/graph.py`), which pages its answer as Graph does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests.fakes.bot_connector import SIGNING_KEY, FakeConnector
from tests.fakes.graph import FakeGraph
from tests.fakes.microsoft_login import FakeAuthority
from tests.teams.teams_helpers import ALICE, APP_ID, BOB, Teams, answer, install, make_event, texts, with_credentials

GROUP = "6f1c2d3e-4a5b-4c6d-8e7f-901234567890"  # an Entra group id
ANOTHER_USER = "0b1c2d3e-0000-4000-8000-00000000beef"


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    fake = FakeGraph(members={GROUP: [ANOTHER_USER, BOB["aadObjectId"]]}).start()
    yield fake
    fake.stop()


@pytest.fixture
async def teams(
    connector: FakeConnector, authority: FakeAuthority, graph: FakeGraph, start_bot: Callable[..., BotThread]
) -> Teams:
    teams = Teams(start_bot(**with_credentials(connector, authority.url, graph.url)), connector)
    await install(teams, APP_ID)
    return teams


async def signed_answer(teams: Teams, request_id: str, value: str, user: dict[str, str]) -> str:
    token = SIGNING_KEY.token(APP_ID, teams.connector.url)
    status, body = await teams.invoke(
        answer(request_id, value), user=user, headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200, body
    return texts(body["value"])


async def test_a_group_member_may_answer_and_others_are_told_who_may(teams: Teams, graph: FakeGraph) -> None:
    event = await make_event(teams.bot, responders=[GROUP])

    refused = await signed_answer(teams, event.request_id, "2", ALICE)
    assert f"Only {GROUP} may answer this event." in refused
    assert await Store(teams.bot.settings.store).get_response(event.request_id) is None

    accepted = await signed_answer(teams, event.request_id, "2", BOB)
    assert "Answered" in accepted and "Bob Example" in accepted
    response = await Store(teams.bot.settings.store).get_response(event.request_id)
    assert response is not None and response.responder is not None and response.responder.user_id == "aad-bob"

    assert graph.lookups == 1, "the group's members are kept for a minute"
    assert graph.tokens == {"Bearer token-1"}, "Graph is called with the app's token from MSAL"


async def test_graph_down_asks_to_try_again_and_the_retry_works(teams: Teams, graph: FakeGraph) -> None:
    event = await make_event(teams.bot, responders=[GROUP])
    graph.down = True

    shown = await signed_answer(teams, event.request_id, "4", BOB)

    assert f"Could not check who is in {GROUP} just now. Please try again" in shown
    assert await Store(teams.bot.settings.store).get_response(event.request_id) is None

    graph.down = False
    assert "Answered" in await signed_answer(teams, event.request_id, "4", BOB)


async def test_an_id_that_is_no_group_lets_nobody_in(teams: Teams, graph: FakeGraph) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    event = await make_event(teams.bot, responders=[unknown])

    shown = await signed_answer(teams, event.request_id, "1", BOB)

    assert f"Only {unknown} may answer this event." in shown
    assert await Store(teams.bot.settings.store).get_response(event.request_id) is None


def graph_error(code: str) -> str:
    return json.dumps({"error": {"code": code, "message": "..."}})


PROXY_PAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"
# Only Graph's own "no such group" means nobody; everything else is "try again".
TROUBLE = {
    "throttled (429)": (429, graph_error("TooManyRequests"), "application/json"),
    "server error (500)": (500, graph_error("generalException"), "application/json"),
    "unavailable (503)": (503, graph_error("serviceNotAvailable"), "application/json"),
    "a proxy's error page (502)": (502, PROXY_PAGE, "text/html"),
    "a proxy's page with 200": (200, PROXY_PAGE, "text/html"),
    "a proxy's 404 page": (404, "<html>Not Found</html>", "text/html"),
    "JSON of another shape": (200, json.dumps({"members": []}), "application/json"),
    "token refused (401)": (401, graph_error("InvalidAuthenticationToken"), "application/json"),
    "permission missing (403)": (403, graph_error("Authorization_RequestDenied"), "application/json"),
    "bad request (400)": (400, graph_error("Request_BadRequest"), "application/json"),
    "a dropped connection": (0, "", "text/plain"),
}


@pytest.mark.parametrize("trouble", TROUBLE.values(), ids=TROUBLE.keys())
async def test_graph_that_cannot_answer_asks_to_try_again(
    teams: Teams, graph: FakeGraph, trouble: tuple[int, str, str]
) -> None:
    event = await make_event(teams.bot, responders=[GROUP])
    graph.trouble = trouble

    shown = await signed_answer(teams, event.request_id, "4", BOB)

    assert f"Could not check who is in {GROUP} just now. Please try again" in shown
    assert "may answer this event" not in shown
    assert await Store(teams.bot.settings.store).get_response(event.request_id) is None
