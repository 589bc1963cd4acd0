"""Teams' personal inbox over real sockets: **pending** in the bot's personal chat lists what waits for
the sender, most urgent first, as cards whose buttons answer (the fake Bot Connector, the real SDK)."""

from __future__ import annotations

from typing import Any

from hitl_chatops.bot.store import Store
from tests.teams.teams_helpers import ALICE, BOB, Teams, answer, make_event, submission, texts, title

ALICE_CHAT = "a:1personal-chat-with-alice"
BOB_CHAT = "a:1personal-chat-with-bob"


async def listed(teams: Teams, conversation_id: str, cards: int) -> tuple[str, list[dict[str, Any]]]:
    """The intro line and the cards of a pending list, once `cards` have come."""
    await teams.connector.wait_for(lambda: len(teams.connector.sent(conversation_id)) == cards + 1, seconds=20)
    intro, *calls = teams.connector.sent(conversation_id)
    return str(intro.body["text"]), teams.connector.cards(calls)


async def test_personal_pending_lists_the_senders_events_most_urgent_first_as_cards_that_answer(
    teams: Teams,
) -> None:
    sooner = await make_event(teams.bot, event_name="sooner", data_type="bool", timeout_seconds=600)
    await make_event(teams.bot, event_name="later", timeout_seconds=3600)  # newer, but due later
    await make_event(teams.bot, event_name="bobs_only", timeout_seconds=60, responders=["aad-bob"])
    team = ["aad-alice", "aad-bob", "aad-cy"]
    voted = await make_event(
        teams.bot, event_name="voted", data_type="bool", timeout_seconds=300, approvals=2, responders=team
    )
    _, body = await teams.invoke(answer(voted.request_id, True), user=ALICE)
    assert "1 of 2" in texts(body["value"]), "her approval is counted; the decision waits for one more"

    await teams.say("pending", ALICE_CHAT, user=ALICE)
    intro, cards = await listed(teams, ALICE_CHAT, 2)
    assert intro == "2 event(s) wait for your answer:"
    assert [title(card) for card in cards] == ["sooner", "later"], "not Bob's, not the decision she voted on"

    await teams.say("pending", BOB_CHAT, user=BOB)
    _, bobs = await listed(teams, BOB_CHAT, 4)
    assert [title(card) for card in bobs] == ["bobs_only", "voted · 1 of 2 approvals", "sooner", "later"]

    _, body = await teams.invoke(submission(cards[0], "Approve", {}), user=ALICE, conversation_id=ALICE_CHAT)
    assert "Answered" in texts(body["value"])
    response = await Store(teams.bot.settings.store).get_response(sooner.request_id)
    assert response is not None and response.value is True and response.responder.user_id == "aad-alice"  # type: ignore[union-attr]
