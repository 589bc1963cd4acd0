"""Team decisions in Teams, end to end: real Flyte local runs wait on them and people act on the cards.

The bot runs as in production (signed channel tokens, an app token from MSAL) against the fake Bot
Connector, Microsoft's login and Microsoft Graph (tests/fakes/), over real sockets. Each test reads
what the bot sent: the card a person's action returned (the invoke response), the updates of the
posted card, and the replies in the conversation (reminders, escalations, hand-overs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import flyte
import pytest

from hitl_chatops.bot.protocol import utcnow
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests.fakes.bot_connector import SIGNING_KEY, Call, FakeConnector, card_of
from tests.fakes.events import make_request
from tests.fakes.flyte import Run
from tests.fakes.graph import FakeGraph
from tests.fakes.microsoft_login import FakeAuthority
from tests.helpers import recorded_messages
from tests.teams import teams_team_workflows as workflows
from tests.teams.teams_helpers import (
    ALICE,
    APP_ID,
    BOB,
    CHANNEL,
    TENANT,
    Teams,
    install,
    rows,
    texts,
    title,
    typed,
    with_credentials,
)
from tests.teams.test_teams_team_cards import valid
from tests.test_platform_seam import api_call, step

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning:adaptive_cards")]
CAROL = {"id": "29:carol", "aadObjectId": "aad-carol", "name": "Carol Example"}
DAN = {"id": "29:dan", "aadObjectId": "aad-dan", "name": "Dan Example"}
DIRECTORY = [
    {"id": "aad-alice", "displayName": "Alice Example", "mail": "alice@example.com"},
    {"id": "aad-bob", "displayName": "Bob Example", "mail": "bob@example.com"},
    {"id": "aad-carol", "displayName": "Carol Example", "mail": "Carol@Example.com"},
    {"id": "aad-dan", "displayName": "Dan Example", "mail": "dan@example.com"},
]


@pytest.fixture(scope="module", autouse=True)
def flyte_local() -> None:
    flyte.init()


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    fake = FakeGraph(members={workflows.ONCALL_GROUP: ["aad-dan"]}, users=DIRECTORY).start()
    yield fake
    fake.stop()


@pytest.fixture
async def teams(
    connector: FakeConnector, authority: FakeAuthority, graph: FakeGraph, start_bot: Callable[..., BotThread]
) -> Teams:
    """A bot with Teams credentials and Graph, installed in CHANNEL; its reconciler stepped by the tests."""
    teams = Teams(start_bot(**with_credentials(connector, authority.url, graph.url), reconcile_seconds=0), connector)
    await install(teams, APP_ID)
    return teams


def signed(teams: Teams) -> dict[str, str]:
    """A channel token, as the Bot Connector signs what Teams sends."""
    return {"Authorization": f"Bearer {SIGNING_KEY.token(APP_ID, teams.connector.url)}"}


async def press(teams: Teams, data: dict[str, Any], user: dict[str, str]) -> dict[str, Any]:
    """A person presses a card's button (its data, with what they typed merged in): the card Teams shows them."""
    status, body = await teams.invoke(data, user=user, headers=signed(teams))
    assert status == 200, body
    return valid(body["value"])


def button(card: dict[str, Any], name: str) -> dict[str, Any]:
    """The data of the card's button `name` (the hand-over's is inside the card it shows)."""
    for action in card.get("actions", []):
        if action["title"] == name:
            return dict(action["data"])
        if action["type"] == "Action.ShowCard":
            inner = {a["title"]: a for a in action["card"]["actions"]}
            if name in inner:
                return dict(inner[name]["data"])
    raise AssertionError(f"no {name!r} on the card: {[a['title'] for a in card.get('actions', [])]}")


def notice(card: dict[str, Any]) -> str:
    """The line in bold red: what the person's action did, or why it was refused."""
    return next(
        b["inlines"][0]["text"]
        for b in card["body"]
        if b["type"] == "RichTextBlock" and b["inlines"][0].get("color") == "attention"
    )


async def posted(teams: Teams, conversation: str = CHANNEL, count: int = 1) -> Call:
    """The `count`-th card posted to `conversation`, once it is."""
    cards = await teams.connector.wait_for(
        lambda: (
            len(found := [c for c in teams.connector.sent(conversation) if c.body.get("attachments")]) >= count
            and found
        ),
        seconds=30,
    )
    return cards[count - 1]


async def shown_now(teams: Teams, post: Call, has: str) -> dict[str, Any]:
    """The posted card once an update of it shows `has` (the bot updates every copy after each vote)."""
    await teams.connector.wait_for(
        lambda: any(has in texts(card_of(u.body)) for u in teams.connector.updates(post.created_id))
    )
    return valid(card_of(teams.connector.updates(post.created_id)[-1].body))


def replies(teams: Teams, conversation: str = CHANNEL) -> list[dict[str, Any]]:
    """Messages (not cards) the bot sent into the conversation: reminders, escalations, hand-overs."""
    return [c.body for c in teams.connector.sent(conversation) if not c.body.get("attachments")]


async def test_two_approvals_update_the_card_after_the_first_and_decide_after_the_second(teams: Teams) -> None:
    run = Run(workflows.teams_gate, 2, [])
    post = await posted(teams)
    card = valid(card_of(post.body))
    assert title(card) == "teams_gate · 0 of 2 approvals"

    first = await press(teams, button(card, "Approve"), ALICE)
    assert notice(first) == "Counted your approval: 1 of 2 approvals."
    assert title(first) == "teams_gate · 1 of 2 approvals" and rows(first)["Approved by"].startswith(
        "Alice Example at "
    )
    updated = await shown_now(teams, post, "Alice Example at ")
    assert rows(updated)["Approvals"] == "1 of 2 approvals" and "Approve" in texts(updated)

    twice = await press(teams, button(card, "Approve"), ALICE)
    assert notice(twice).startswith("You already approved this at ")
    decided = await press(teams, button(card, "Approve"), BOB)
    assert title(decided) == "teams_gate · Approved" and "actions" not in decided
    assert rows(decided)["Approved by"] == "Alice Example and Bob Example"
    assert await run.finish() == {
        "value": True,
        "by": "aad-bob",
        "votes": [["aad-alice", "approve", None], ["aad-bob", "approve", None]],
        "history": ["vote", "vote"],
    }
    await shown_now(teams, post, "Alice Example and Bob Example")
    late = await press(teams, button(card, "Approve"), CAROL)
    assert notice(late).startswith("Decided already: approved by Alice Example and Bob Example at ")


async def test_a_reject_vetoes_and_keeps_its_reason(teams: Teams) -> None:
    run = Run(workflows.teams_gate, 3, [])
    card = valid(card_of((await posted(teams)).body))
    await press(teams, button(card, "Approve"), ALICE)
    vetoed = await press(teams, button(card, "Reject") | {"hitl.reason": "the error budget is spent"}, BOB)
    assert title(vetoed) == "teams_gate · Rejected"
    assert rows(vetoed)["Reason"] == "the error budget is spent" and rows(vetoed)["Approved before"] == "Alice Example"
    result = await run.finish()
    assert (result["value"], result["votes"][-1]) == (False, ["aad-bob", "reject", "the error budget is spent"])


async def test_the_requester_is_refused_by_id_and_by_e_mail_through_graph(teams: Teams, graph: FakeGraph) -> None:
    store = Store(teams.bot.settings.store)
    by_id = make_request(store, channels=[f"teams:{CHANNEL}"], requester="teams:aad-alice")
    await store.put_request(by_id)
    await api_call(teams.bot, f"/api/v1/events/{by_id.request_id}/notify", {})
    card = valid(card_of((await posted(teams)).body))
    own = await press(teams, button(card, "Approve"), ALICE)
    assert notice(own) == "You asked for this decision, so someone else must approve it."

    run = Run(workflows.teams_gate, 1, [], "carol@example.com")
    card = valid(card_of((await posted(teams, count=2)).body))
    refused = await press(teams, button(card, "Approve"), CAROL)
    assert notice(refused) == "You asked for this decision, so someone else must approve it."
    assert "carol@example.com" in graph.user_lookups, "the address was looked up in Microsoft Graph"
    assert title(await press(teams, button(card, "Approve"), BOB)) == "teams_gate · Approved"
    assert (await run.finish())["by"] == "aad-bob"


async def test_cards_name_people_the_directory_knows_rather_than_their_ids(teams: Teams, graph: FakeGraph) -> None:
    """'Who may answer' and 'Waiting for' showed Entra object ids (`teams:aad-bob`); a group, or an id
    the directory does not know, stays as it is."""
    store = Store(teams.bot.settings.store)
    request = make_request(
        store,
        channels=[f"teams:{CHANNEL}"],
        approvals=2,
        responders=["teams:aad-alice", "teams:aad-bob", "aad-carol", "teams:ops-group", "teams:aad-gone"],
    )
    await store.put_request(request)
    await api_call(teams.bot, f"/api/v1/events/{request.request_id}/notify", {})
    post = await posted(teams)
    card = valid(card_of(post.body))
    assert rows(card)["Who may answer"] == "Alice Example, Bob Example, Carol Example, teams:ops-group, teams:aad-gone"

    counted = await press(teams, button(card, "Approve"), ALICE)
    assert rows(counted)["Waiting for"] == "Bob Example, Carol Example, teams:ops-group, teams:aad-gone"
    updated = await shown_now(teams, post, "Alice Example at ")
    assert rows(updated)["Waiting for"] == "Bob Example, Carol Example, teams:ops-group, teams:aad-gone"


async def test_a_value_proposed_rejected_with_a_reason_proposed_again_and_confirmed(teams: Teams) -> None:
    run = Run(workflows.teams_batch_size)
    post = await posted(teams)
    card = valid(card_of(post.body))
    assert title(card) == "teams_batch_size · Waiting for a proposal"

    proposed = await press(teams, button(card, "Propose") | typed(value="40"), ALICE)
    assert notice(proposed) == "Proposed 40: 1 of 2 approvals; others confirm or reject it."
    assert rows(proposed)["Proposed"].startswith("40 by Alice Example at ")
    own = await press(teams, button(proposed, "Confirm"), ALICE)
    assert notice(own) == "You proposed this value, which counts as your approval; others confirm it."

    rejected = await press(teams, button(proposed, "Reject") | {"hitl.reason": "too many for one GPU"}, BOB)
    assert notice(rejected) == "Rejected the proposal; a new value may be proposed now."
    assert rows(rejected)["Rejected"].endswith(": too many for one GPU") and "Propose" in texts(rejected)
    again = await press(teams, button(rejected, "Propose") | typed(value="30"), BOB)
    assert rows(again)["Proposed"].startswith("30 by Bob Example at ")
    await shown_now(teams, post, "30 by Bob Example at ")

    stale = await press(teams, button(proposed, "Confirm"), CAROL)  # the round-1 card, still open somewhere
    assert notice(stale) == "That proposal was rejected; the one to answer now is 30 by Bob Example."
    confirmed = await press(teams, button(again, "Confirm"), CAROL)
    assert title(confirmed) == "teams_batch_size · Approved" and rows(confirmed)["Answer"] == "30"
    assert await run.finish() == {
        "value": 30,
        "by": "aad-carol",
        "votes": [["aad-bob", "approve", None], ["aad-carol", "approve", None]],
        "history": ["proposal", "vote", "proposal", "vote"],
    }


async def test_reminders_mention_who_still_has_to_act_and_stop_at_the_decision(teams: Teams) -> None:
    store = Store(teams.bot.settings.store)
    people = ["teams:aad-alice", "teams:aad-bob"]
    # Asked 70 s ago with a reminder a minute: the first one is due.
    request = make_request(
        store,
        now=utcnow() - timedelta(seconds=70),
        channels=[f"teams:{CHANNEL}"],
        approvals=2,
        responders=people,
        remind_every=60,
    )
    await store.put_request(request)
    await api_call(teams.bot, f"/api/v1/events/{request.request_id}/notify", {})
    await recorded_messages(store, request.request_id)
    card = valid(card_of((await posted(teams)).body))
    await press(teams, button(card, "Approve"), ALICE)

    await step(teams.bot)
    [reminder] = replies(teams)
    assert reminder["textFormat"] == "xml"
    assert reminder["text"] == "<b>Reminder</b>: 1 of 2 approvals so far; waiting for <at>Bob Example</at>."
    assert reminder["entities"] == [
        {"type": "mention", "text": "<at>Bob Example</at>", "mentioned": {"id": "aad-bob", "name": "Bob Example"}}
    ]
    assert reminder["channelData"] == {"tenant": {"id": TENANT}}

    await press(teams, button(card, "Approve"), BOB)
    await step(teams.bot)
    assert len(replies(teams)) == 1, "none after the decision"


async def test_an_escalation_posts_to_the_on_call_channel_and_lets_its_people_answer(teams: Teams) -> None:
    status, _ = await teams.post(
        teams.activity("installationUpdate", workflows.ONCALL_CHANNEL, action="add"), signed(teams)
    )
    assert status == 201
    run = Run(workflows.teams_escalated_gate)
    card = valid(card_of((await posted(teams)).body))
    early = await press(teams, button(card, "Approve"), DAN)
    assert notice(early) == "Only teams:aad-alice may answer this event."

    await asyncio.sleep(1.2)  # the escalation's `after`
    await step(teams.bot)
    oncall = valid(card_of((await posted(teams, workflows.ONCALL_CHANNEL)).body))
    said = f"<b>Escalated</b>: {workflows.ONCALL_GROUP} may answer this too now."
    await teams.connector.wait_for(lambda: replies(teams) and replies(teams, workflows.ONCALL_CHANNEL))
    assert [r["text"] for r in replies(teams) + replies(teams, workflows.ONCALL_CHANNEL)] == [said, said]
    assert "entities" not in replies(teams)[0], "a group is named, not mentioned (Teams mentions people)"

    decided = await press(teams, button(oncall, "Approve"), DAN)
    assert title(decided) == "teams_escalated_gate · Approved"
    result = await run.finish()
    assert (result["value"], result["by"], result["history"]) == (True, "aad-dan", ["escalation", "vote"])


async def test_a_hand_over_through_the_people_picker_lets_the_delegate_answer_and_not_the_delegator(
    teams: Teams, graph: FakeGraph
) -> None:
    run = Run(workflows.teams_gate, 2, ["teams:aad-alice", "teams:aad-bob"])
    card = valid(card_of((await posted(teams)).body))

    search = {"queryText": "car", "queryOptions": {"skip": 0, "top": 15}, "dataset": "graph.microsoft.com/users"}
    activity = teams.activity("invoke", user=ALICE, name="application/search", value=search)
    status, found = await teams.post(activity, signed(teams))
    assert (status, found["type"]) == (200, "application/vnd.microsoft.search.searchResponse")
    assert found["value"]["results"] == [{"title": "Carol Example", "value": "aad-carol"}]
    assert graph.searches == ['"displayName:car" OR "mail:car"']

    nobody = await press(teams, button(card, "Hand over"), ALICE)
    assert "Choose the person to hand this to from the list, by name." in texts(nobody)
    stranger = await press(teams, button(card, "Hand over") | {"hitl.delegate.to": "aad-nobody"}, ALICE)
    assert notice(stranger) == "Choose the person to hand this to from the list, by name."

    picked = {"hitl.delegate.to": "aad-carol", "hitl.delegate.note": "on holiday <at>until</at> **Monday**"}
    handed = await press(teams, button(card, "Hand over") | picked, ALICE)
    assert notice(handed) == "Handed to Carol Example: they answer in your place now."
    assert rows(handed)["Handed over"].startswith("Alice Example to Carol Example at ")
    [reply] = await teams.connector.wait_for(lambda: replies(teams))
    assert reply["text"] == (
        "Alice Example handed this to <at>Carol Example</at>. "
        "Their note: on holiday &lt;at&gt;until&lt;/at&gt; **Monday**"
    )
    assert [e["mentioned"]["id"] for e in reply["entities"]] == ["aad-carol"]

    again = await press(teams, button(card, "Approve"), ALICE)
    assert notice(again) == "You handed this to Carol Example, so they answer it now."
    assert notice(await press(teams, button(card, "Approve"), CAROL)) == "Counted your approval: 1 of 2 approvals."
    assert title(await press(teams, button(card, "Approve"), BOB)) == "teams_gate · Approved"
    result = await run.finish()
    assert (result["votes"], result["history"]) == (
        [["aad-carol", "approve", None], ["aad-bob", "approve", None]],
        ["delegation", "vote", "vote"],
    )


async def test_a_persons_pending_list_shows_the_votes_so_far(teams: Teams) -> None:
    store = Store(teams.bot.settings.store)
    request = make_request(store, approvals=2, responders=["teams:aad-alice", "teams:aad-bob"])
    await store.put_request(request)
    vote = {"vote": "approve", "responder": {"platform": "teams", "user_id": "aad-alice", "user_name": "Alice"}}
    assert (await api_call(teams.bot, f"/api/v1/events/{request.request_id}/response", vote))["decided"] is False

    status, _ = await teams.post(teams.activity("message", "a:bob", BOB, text="pending"), signed(teams))
    assert status == 201
    listed = valid(card_of((await posted(teams, "a:bob")).body))
    assert title(listed) == "deploy_gate · 1 of 2 approvals" and rows(listed)["Approved by"].startswith("Alice at ")
