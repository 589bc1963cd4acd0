"""The Teams adapter end to end over real sockets: real bot, real Agents SDK, a fake Bot Connector."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from hitl_chatops.bot.protocol import utcnow
from hitl_chatops.bot.reconciler import Reconciler
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests.fakes.bot_connector import FakeConnector, card_of
from tests.helpers import recorded_messages
from tests.teams.teams_helpers import ALICE, BOB, CHANNEL, TENANT, Teams, answer, make_event, rows, texts, title

PERSONAL = "a:1personal-chat-with-alice"


def store_of(teams: Teams) -> Store:
    return Store(teams.bot.settings.store)


def inputs_of(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in card["body"] if b["type"].startswith("Input.")]


async def posted_card(teams: Teams, conversation_id: str = CHANNEL) -> tuple[str, dict[str, Any]]:
    call = await teams.connector.wait_for(
        lambda: [c for c in teams.connector.sent(conversation_id) if c.body.get("attachments")]
    )
    return str(call[-1].created_id), card_of(call[-1].body)


async def test_installation_stores_the_reference_and_tells_the_conversation_id(teams: Teams) -> None:
    await teams.install()
    stored = await store_of(teams).get_conversation("teams", CHANNEL)
    assert stored is not None
    assert stored["tenant_id"] == TENANT
    assert stored["serviceUrl"] == teams.connector.url
    assert stored["conversation"]["id"] == CHANNEL
    [welcome] = teams.connector.sent(CHANNEL)
    assert f'channels=["teams:{CHANNEL}"]' in welcome.body["text"]


async def test_installation_update_alone_also_stores_the_reference(teams: Teams) -> None:
    status, _ = await teams.post(teams.activity("installationUpdate", "19:groupchat@thread.v2", action="add"))
    assert status in (200, 201)
    assert (await store_of(teams).get_conversation("teams", "19:groupchat@thread.v2")) is not None


async def test_any_message_stores_the_reference_and_help_lists_nothing_pending(teams: Teams) -> None:
    status, _ = await teams.say("<at>hitl</at> help", PERSONAL)
    assert status in (200, 201)
    assert (await store_of(teams).get_conversation("teams", PERSONAL)) is not None
    # The list comes in a turn of its own, once the message has been answered.
    await teams.connector.wait_for(lambda: len(teams.connector.sent(PERSONAL)) >= 2)
    replies = [c.body["text"] for c in teams.connector.sent(PERSONAL)]
    assert any(f"teams:{PERSONAL}" in text for text in replies)
    assert replies[-1] == "Nothing is waiting for your answer."


async def test_event_with_a_teams_target_posts_a_card_and_records_it(teams: Teams) -> None:
    await teams.install()
    event = await make_event(teams.bot, channels=[f"teams:{CHANNEL}", "slack:C1"], min_value=1, max_value=5)
    activity_id, card = await posted_card(teams)
    call = teams.connector.sent(CHANNEL)[-1]
    assert call.activity_id is None, "a proactive post starts a new message, it does not reply"
    assert call.body["channelData"] == {"tenant": {"id": TENANT}}
    assert "deploy" in texts(card) and "How many replicas?" in texts(card)
    [number] = inputs_of(card)
    assert (number["min"], number["max"]) == (1, 5)
    [copy] = await recorded_messages(store_of(teams), event.request_id)
    assert copy.data == {"conversation_id": CHANNEL, "activity_id": activity_id, "kind": "post"}


async def test_a_repeated_notify_does_not_post_twice(teams: Teams) -> None:
    await teams.install()
    event = await make_event(teams.bot, channels=[f"teams:{CHANNEL}"])
    await posted_card(teams)
    await recorded_messages(store_of(teams), event.request_id)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{teams.bot.url}/api/v1/events/{event.request_id}/notify",
            headers={"Authorization": "Bearer test-secret-0123456789abcdef"},
        ) as reply,
    ):
        assert reply.status == 202
    await asyncio.sleep(0.3)  # the repeated announce runs after the 202
    assert len([c for c in teams.connector.sent(CHANNEL) if c.body.get("attachments")]) == 1


async def test_bot_connector_calls_reuse_one_connection(teams: Teams) -> None:
    """The Agents SDK builds a new connector client, with a new HTTP session, for every turn and
    every proactive message: a TCP connect and, in Teams, a TLS handshake per card posted or updated."""
    await teams.install()
    for posted in range(1, 4):
        event = await make_event(teams.bot, channels=[f"teams:{CHANNEL}"])
        await teams.connector.wait_for(lambda n=posted: len(teams.connector.cards(teams.connector.sent(CHANNEL))) == n)
        await recorded_messages(store_of(teams), event.request_id)
    status, _ = await teams.invoke(answer(event.request_id, "3"))
    assert status == 200
    await teams.connector.wait_for(teams.connector.updates)

    assert len(teams.connector.calls) == 5  # the welcome, three cards, one update
    assert len({call.connection for call in teams.connector.calls}) == 1


@pytest.fixture
def quiet_teams(connector: FakeConnector, start_bot: Callable[..., BotThread]) -> Teams:
    """A Teams bot whose reconciler only runs when a test steps it."""
    return Teams(start_bot(teams_emulator=True, reconcile_seconds=0), connector)


async def test_a_refused_post_is_logged_with_its_cause_and_posted_by_the_next_pass(
    quiet_teams: Teams, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK hands a proactive turn's error to on_turn_error, which would hide the cause."""
    teams = quiet_teams
    await teams.install()
    teams.connector.fail_next("POST", 403)
    event = await make_event(teams.bot, channels=[f"teams:{CHANNEL}"])
    [failed] = await teams.connector.wait_for(
        lambda: [r for r in caplog.records if r.getMessage() == "teams post failed"]
    )
    assert failed.__dict__["error"] == "PlatformError"
    assert failed.__dict__["reason"] == "the Bot Connector answered 403"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []

    report = await asyncio.to_thread(teams.bot.call, Reconciler(teams.bot.service, 1).step())

    assert report.announced == 1
    activity_id, _ = await posted_card(teams)
    [copy] = await recorded_messages(store_of(teams), event.request_id)
    assert copy.data["activity_id"] == activity_id


async def test_a_failed_card_update_stays_in_the_outbox_until_a_pass_makes_it(quiet_teams: Teams) -> None:
    """It would count as done: the SDK's on_turn_error swallows the error of a proactive update."""
    teams = quiet_teams
    await teams.install()
    event = await make_event(teams.bot, channels=[f"teams:{CHANNEL}"])
    activity_id, _ = await posted_card(teams)
    await recorded_messages(store_of(teams), event.request_id)
    teams.connector.fail_next("PUT", 403)

    status, _ = await teams.invoke(answer(event.request_id, "3"))
    assert status == 200
    await asyncio.to_thread(teams.bot.call, teams.bot.service.background.drain())
    assert teams.connector.updates() == []
    assert await store_of(teams).outbox_ids() == [event.request_id]

    report = await asyncio.to_thread(teams.bot.call, Reconciler(teams.bot.service, 1).step())

    assert report.updated == 1
    [update] = teams.connector.updates(activity_id)
    assert "Alice Example" in texts(card_of(update.body))
    assert await store_of(teams).outbox_ids() == []


async def test_a_card_posted_before_the_routing_namespaces_still_answers(teams: Teams) -> None:
    """Cards already in conversations route on `hitl`/`request_id`, with the field names as input ids."""
    event = await make_event(teams.bot)

    status, body = await teams.invoke({"hitl": "answer", "request_id": event.request_id, "value": "4"})

    assert status == 200 and "Answered" in texts(body["value"])
    response = await store_of(teams).get_response(event.request_id)
    assert response is not None and response.value == 4


async def test_unknown_conversation_is_skipped_without_failing_the_notify(teams: Teams) -> None:
    await make_event(teams.bot, channels=["teams:19:never-installed@thread.tacv2"])
    await asyncio.sleep(0.3)  # the announce runs after the notify's 202
    assert teams.connector.calls == []


async def test_valid_answer_is_saved_and_every_copy_shows_it(teams: Teams) -> None:
    await teams.install()
    await teams.install(PERSONAL)
    event = await make_event(teams.bot, channels=[f"teams:{CHANNEL}", f"teams:{PERSONAL}"], min_value=1, max_value=5)
    first, _ = await posted_card(teams, CHANNEL)
    second, _ = await posted_card(teams, PERSONAL)

    status, body = await teams.invoke(answer(event.request_id, "3"))

    assert status == 200
    assert body["statusCode"] == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    shown = texts(body["value"])
    assert "Answered" in shown and "Alice Example" in shown and "Teams" in shown
    response = await store_of(teams).get_response(event.request_id)
    assert response is not None and response.value == 3
    assert response.responder is not None and response.responder.user_id == "aad-alice"
    assert response.via == "teams"
    for activity_id in (first, second):
        [update] = await teams.connector.wait_for(lambda a=activity_id: teams.connector.updates(a))
        assert "Alice Example" in texts(card_of(update.body))
        assert inputs_of(card_of(update.body)) == []


async def test_invalid_number_returns_the_card_with_an_error_and_saves_nothing(teams: Teams) -> None:
    await teams.install()
    event = await make_event(teams.bot, channels=[f"teams:{CHANNEL}"], min_value=1, max_value=5)
    await posted_card(teams)

    for typed, message, kept in (("9", "Enter a whole number from 1 to 5.", 9), ("abc", "is not a whole number", None)):
        status, body = await teams.invoke(answer(event.request_id, typed))
        assert status == 200 and body["statusCode"] == 200
        card = body["value"]
        [number] = inputs_of(card)
        assert number.get("value") == kept
        [following] = card["body"][card["body"].index(number) + 1]["inlines"]
        assert following["color"] == "attention" and message in following["text"]

    assert await store_of(teams).get_response(event.request_id) is None
    await asyncio.sleep(0.2)
    assert teams.connector.updates() == []


async def test_numbers_table_through_a_card(teams: Teams) -> None:
    """issue 21: a card's Input.Number is checked on the server only; "٣" or "1_0" must be refused there."""
    from tests.fakes.events import make_request
    from tests.test_answers import NUMBERS

    store = store_of(teams)
    for (data_type, text), expected in NUMBERS.items():
        request = make_request(store, data_type=data_type)
        await store.put_request(request)
        status, body = await teams.invoke(answer(request.request_id, text))
        assert status == 200 and body["statusCode"] == 200
        response = await store.get_response(request.request_id)
        assert (response.value if response else None) == expected, (text, texts(body["value"]))


async def test_only_listed_responders_may_answer(teams: Teams) -> None:
    await teams.install()
    event = await make_event(teams.bot, channels=[f"teams:{CHANNEL}"], responders=["aad-bob"])
    _, card = await posted_card(teams)
    assert "Action.OpenUrl" not in {a["type"] for a in card["actions"]}

    _, refused = await teams.invoke(answer(event.request_id, "2"), user=ALICE)
    assert "Only aad-bob may answer this event." in texts(refused["value"])
    assert inputs_of(refused["value"]), "the card stays answerable for the people who may"
    assert await store_of(teams).get_response(event.request_id) is None

    _, accepted = await teams.invoke(answer(event.request_id, "2"), user=BOB)
    assert "Bob Example" in texts(accepted["value"])


async def test_second_answer_is_told_who_answered_first(teams: Teams) -> None:
    await teams.install()
    event = await make_event(teams.bot, channels=[f"teams:{CHANNEL}"], data_type="bool")
    _, card = await posted_card(teams)
    approve = next(a for a in card["actions"] if a["title"] == "Approve")

    _, first = await teams.invoke(approve["data"], user=BOB)
    _, second = await teams.invoke(answer(event.request_id, False), user=ALICE)

    assert "Approve" in texts(first["value"])
    assert "Already answered by Bob Example" in texts(second["value"])
    response = await store_of(teams).get_response(event.request_id)
    assert response is not None and response.value is True


async def test_expired_event_says_so_and_expiry_updates_the_card(teams: Teams) -> None:
    await teams.install()
    event = await make_event(teams.bot, channels=[f"teams:{CHANNEL}"], timeout_seconds=1)
    activity_id, _ = await posted_card(teams)
    await asyncio.sleep(max(0.0, (event.deadline - utcnow()).total_seconds()) + 0.05)

    _, body = await teams.invoke(answer(event.request_id, "1"))
    assert "expired" in texts(body["value"]).lower()

    # Expire it here, unless the bot's own reconciler passed first (a loaded machine): either way once.
    await run_on_bot(teams.bot, teams.bot.service.expire(event.request_id))
    [update] = await teams.connector.wait_for(lambda: teams.connector.updates(activity_id))
    assert "Expired" in texts(card_of(update.body))


async def test_choices_and_text_answers(teams: Teams) -> None:
    await teams.install()
    colour = await make_event(teams.bot, channels=[f"teams:{CHANNEL}"], data_type="str", choices=["blue", "green"])
    _, body = await teams.invoke(answer(colour.request_id, "purple"))
    assert "Choose one of: blue, green." in texts(body["value"])
    _, body = await teams.invoke(answer(colour.request_id, "GREEN"))
    assert (await store_of(teams).get_response(colour.request_id)).value == "green"  # type: ignore[union-attr]

    note = await make_event(teams.bot, channels=[f"teams:{CHANNEL}"], data_type="str")
    _, body = await teams.invoke(answer(note.request_id, "  ship *it*  "))
    assert rows(body["value"])["Answer"] == "ship *it*", "in a TextRun, shown as typed"
    assert (await store_of(teams).get_response(note.request_id)).value == "ship *it*"  # type: ignore[union-attr]


async def test_unknown_event_and_unknown_verb(teams: Teams) -> None:
    _, body = await teams.invoke(answer("0f8fad5b-d9cb-469f-a165-70867728950e", "1"))
    assert "No event" in texts(body["value"])
    _, body = await teams.invoke(answer("../../etc/passwd", "1"))
    assert "No event" in texts(body["value"])
    value = {"action": {"type": "Action.Execute", "verb": "other.verb", "data": {}}}
    status, body = await teams.post(teams.activity("invoke", name="adaptiveCard/action", value=value))
    assert status == 200 and body["statusCode"] == 400


async def test_submit_fallback_message_answers_and_rerenders_the_card(teams: Teams) -> None:
    await teams.install()
    event = await make_event(teams.bot, channels=[f"teams:{CHANNEL}"], data_type="float", max_value=1)
    activity_id, _ = await posted_card(teams)

    def submit(value: str) -> dict[str, Any]:
        return teams.activity("message", value=answer(event.request_id, value), replyToId=activity_id)

    await teams.post(submit("1.5"))
    [error] = await teams.connector.wait_for(lambda: teams.connector.updates(activity_id))
    assert "Enter a number of at most 1." in texts(card_of(error.body))
    assert await store_of(teams).get_response(event.request_id) is None

    await teams.post(submit("0.25"))
    await teams.connector.wait_for(lambda: len(teams.connector.updates(activity_id)) == 2)
    assert "0.25" in texts(card_of(teams.connector.updates(activity_id)[-1].body))
    assert (await store_of(teams).get_response(event.request_id)).value == 0.25  # type: ignore[union-attr]


async def test_pending_lists_only_what_the_sender_may_answer_as_live_cards(teams: Teams) -> None:
    mine = await make_event(teams.bot, event_name="for_anyone")
    await make_event(teams.bot, event_name="for_bob", responders=["aad-bob"])

    await teams.say("pending", PERSONAL, user=ALICE)
    cards = await teams.connector.wait_for(lambda: teams.connector.cards(teams.connector.sent(PERSONAL)))
    assert [title(c) for c in cards] == ["for_anyone"]

    listed = next(c for c in teams.connector.sent(PERSONAL) if c.body.get("attachments"))
    _, body = await teams.invoke(answer(mine.request_id, "4"), conversation_id=PERSONAL)
    assert "Answered" in texts(body["value"])
    await teams.connector.wait_for(lambda: teams.connector.updates(listed.created_id))


async def test_pending_in_a_channel_shows_the_newest_twenty_and_counts_the_rest(teams: Teams) -> None:
    """Paced under Teams' per-conversation limit (8 messages in 2 s), so this takes about five seconds.
    (In the bot's personal chat the list is the person's inbox, most urgent first: test_teams_inbox.py.)"""
    names = [f"event_{n:02d}" for n in range(21)]
    for name in names:
        await make_event(teams.bot, event_name=name)
    await teams.say("pending", CHANNEL, user=ALICE)
    await teams.connector.wait_for(lambda: len(teams.connector.sent(CHANNEL)) == 21, seconds=30)
    intro, *listed = teams.connector.sent(CHANNEL)
    assert intro.body["text"] == "21 event(s) wait for your answer (showing the newest 20):"
    titles = [title(c) for c in teams.connector.cards(listed)]
    assert titles == list(reversed(names[1:]))


async def test_requests_that_are_not_json_are_refused(teams: Teams) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{teams.bot.url}/api/messages", data="type=message") as reply,
    ):
        assert reply.status == 415


async def run_on_bot(bot: BotThread, coroutine: Any) -> Any:
    """Run a core call on the bot's own loop (where its platforms and background tasks live)."""
    return await asyncio.to_thread(bot.call, coroutine)
