"""Slack over HTTP: signed requests to `/slack/events` of a real bot, a fake Web API on loopback."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from hitl_chatops.bot.server import BotThread
from tests.fakes.slack import FakeSlack, signed_headers
from tests.helpers import recorded_messages
from tests.slack.slack_helpers import (
    CHANNEL,
    api_answer,
    block_actions,
    bold_texts,
    click,
    create_event,
    find_element,
    post_signed,
    rich_lines,
    rich_text,
    slash_command,
    store,
    view_submission,
    wait_response,
)

pytestmark = pytest.mark.asyncio
BotFactory = Callable[..., BotThread]


def actions_of(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [element for block in blocks if block["type"] == "actions" for element in block["elements"]]


async def test_forged_and_stale_signatures_get_401_and_write_nothing(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    request_id = await create_event("deploy", bool)
    approve = find_element((await fake_slack.wait_for("chat.postMessage"))[0]["blocks"], "hitl_answer")[0]

    assert (await post_signed(bot.url, click("U0ALICE", approve), secret="not-the-secret"))[0] == 401
    assert (await post_signed(bot.url, click("U0ALICE", approve), age=301))[0] == 401
    assert (await post_signed(bot.url, click("U0ALICE", approve), age=-301))[0] == 401  # dated in the future
    async with aiohttp.ClientSession() as session:
        unsigned = await session.post(f"{bot.url}/slack/events", data=click("U0ALICE", approve))
        assert unsigned.status == 401
        # A fresh, genuine signature replayed onto another body (Bob's signed click, Alice's name in it).
        headers = signed_headers(click("U0BOB", approve))
        replayed = await session.post(f"{bot.url}/slack/events", data=click("U0ALICE", approve), headers=headers)
        assert replayed.status == 401

    await asyncio.sleep(0.2)
    assert await store().get_response(request_id) is None
    assert fake_slack.of("chat.update") == [] and fake_slack.of("chat.postEphemeral") == []


async def test_web_api_calls_share_one_pooled_connection(slack_bot: BotFactory, fake_slack: FakeSlack) -> None:
    """slack_sdk opens a connection (a TLS handshake, on real Slack) per call unless given a session."""
    bot = slack_bot()
    request_id = await create_event("pooled", bool)
    approve = find_element((await fake_slack.wait_for("chat.postMessage"))[0]["blocks"], "hitl_answer")[0]
    assert (await post_signed(bot.url, click("U0ALICE", approve)))[0] == 200
    await wait_response(request_id)
    await fake_slack.wait_for("chat.update")

    assert len(fake_slack.calls) >= 2 and len(fake_slack.connections()) == 1, fake_slack.calls


async def test_bool_event_approve_click_writes_the_slack_responder_and_updates_the_message(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    request_id = await create_event("deploy-prod", bool, prompt="Deploy *v2* to prod?", details="3 services change")

    [posted] = await fake_slack.wait_for("chat.postMessage")
    assert posted["channel"] == CHANNEL
    assert "deploy-prod" in posted["text"] and "Deploy *v2* to prod?" in posted["text"]
    assert posted["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "deploy-prod"}}
    context = next(b for b in posted["blocks"] if b["type"] == "context")["elements"][0]["text"]
    assert "<!date^" in context and "{date_short_pretty} {time}|" in context and "anyone" in context
    approve, reject = find_element(posted["blocks"], "hitl_answer")
    assert (approve["text"]["text"], approve["style"]) == ("Approve", "primary")
    assert (reject["text"]["text"], reject["style"]) == ("Reject", "danger")
    [form] = find_element(posted["blocks"], "hitl_form")
    assert form["url"].startswith(f"{bot.url}/form/{request_id}?sig=")
    await asyncio.to_thread(bot.call, bot.service.background.drain())  # the post is recorded just after it returns
    assert [ref.data for ref in await store().messages(request_id)] == [{"channel": CHANNEL, "ts": "1700000000.000001"}]

    status, _ = await post_signed(bot.url, click("U0ALICE", approve))
    assert status == 200

    response = await wait_response(request_id)
    assert response.value is True and response.via == "slack"
    assert response.responder is not None
    assert (response.responder.platform, response.responder.user_id, response.responder.user_name) == (
        "slack",
        "U0ALICE",
        "u0alice",
    )
    [update] = await fake_slack.wait_for("chat.update")
    assert (update["channel"], update["ts"]) == (CHANNEL, "1700000000.000001")
    lines = rich_lines(update["blocks"])
    assert "Answered by @U0ALICE" in lines and "Answer Approve" in lines
    assert actions_of(update["blocks"]) == []
    assert "answered Approve by u0alice" in update["text"]
    assert fake_slack.validate_all() == 2


async def test_the_ack_goes_out_before_the_work_it_starts(slack_bot: BotFactory, fake_slack: FakeSlack) -> None:
    """Slack wants the ack within 3 s; opening the modal (a Web API call) must not hold it back."""
    bot = slack_bot()
    await create_event("replicas", int)
    [respond] = find_element((await fake_slack.wait_for("chat.postMessage"))[0]["blocks"], "hitl_modal")
    views_open = fake_slack.hold("views.open")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            status, _ = await post_signed(bot.url, click("U0ALICE", respond), session=session)
        assert status == 200
        assert fake_slack.of("views.open") == []  # still held: the ack did not wait for it
    finally:
        views_open.set()
    await fake_slack.wait_for("views.open")


async def test_int_event_modal_refuses_out_of_range_inline_then_accepts(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    request_id = await create_event("replicas", int, min_value=1, max_value=10)
    [posted] = await fake_slack.wait_for("chat.postMessage")
    [respond] = find_element(posted["blocks"], "hitl_modal")
    assert respond["text"]["text"] == "Respond…"

    assert (await post_signed(bot.url, click("U0ALICE", respond)))[0] == 200
    [opened] = await fake_slack.wait_for("views.open")
    assert opened["trigger_id"] == "1111.2222.trigger"
    view = opened["view"]
    assert view["private_metadata"] == request_id and view["callback_id"] == "hitl_submit"
    element = view["blocks"][-1]["element"]
    assert element["type"] == "number_input" and element["is_decimal_allowed"] is False
    assert (element["min_value"], element["max_value"]) == ("1", "10")

    status, body = await post_signed(
        bot.url, view_submission("U0ALICE", request_id, {"type": "number_input", "value": "42"})
    )
    assert status == 200
    assert json.loads(body) == {
        "response_action": "errors",
        "errors": {"hitl_value": "Enter a whole number from 1 to 10."},
    }
    assert await store().get_response(request_id) is None

    status, body = await post_signed(
        bot.url, view_submission("U0ALICE", request_id, {"type": "number_input", "value": "7"})
    )
    assert (status, body) == (200, "")
    response = await wait_response(request_id)
    assert response.value == 7 and response.via == "slack"
    await fake_slack.wait_for("chat.update")


async def test_float_and_text_modals(slack_bot: BotFactory, fake_slack: FakeSlack) -> None:
    bot = slack_bot()
    ratio = await create_event("ratio", float, max_value=1)
    note = await create_event("note", str)
    ratio_post, note_post = await fake_slack.wait_for("chat.postMessage", 2)
    await post_signed(bot.url, click("U0ALICE", find_element(ratio_post["blocks"], "hitl_modal")[0]))
    await post_signed(bot.url, click("U0ALICE", find_element(note_post["blocks"], "hitl_modal")[0]))
    views = {v["view"]["private_metadata"]: v["view"] for v in await fake_slack.wait_for("views.open", 2)}
    number = views[ratio]["blocks"][-1]["element"]
    assert number["is_decimal_allowed"] is True and number["max_value"] == "1" and "min_value" not in number
    text = views[note]["blocks"][-1]["element"]
    assert text["type"] == "plain_text_input" and text["max_length"] == 2000

    state = {"type": "plain_text_input", "value": "ship it"}
    assert (await post_signed(bot.url, view_submission("U0BOB", note, state)))[1] == ""
    assert (await wait_response(note)).value == "ship it"
    empty = {"type": "plain_text_input", "value": None}
    _, body = await post_signed(bot.url, view_submission("U0BOB", ratio, empty))
    assert json.loads(body)["response_action"] == "errors"


async def test_choices_render_as_buttons_or_a_select(slack_bot: BotFactory, fake_slack: FakeSlack) -> None:
    bot = slack_bot()
    few = await create_event("region", str, choices=["eu", "us", "ap"])
    many = await create_event("size", str, choices=[f"size-{n}" for n in range(7)])
    few_post, many_post = await fake_slack.wait_for("chat.postMessage", 2)

    buttons = find_element(few_post["blocks"], "hitl_answer")
    assert [b["text"]["text"] for b in buttons] == ["eu", "us", "ap"]
    assert (await post_signed(bot.url, click("U0ALICE", buttons[1])))[0] == 200
    assert (await wait_response(few)).value == "us"

    [select] = find_element(many_post["blocks"], "hitl_select")
    assert select["type"] == "static_select" and len(select["options"]) == 7
    option = select["options"][5]
    assert option["text"]["text"] == "size-5"
    action = {"action_id": "hitl_select", "type": "static_select", "selected_option": option}
    assert (await post_signed(bot.url, block_actions("U0BOB", action)))[0] == 200
    assert (await wait_response(many)).value == "size-5"


async def test_unauthorized_click_gets_an_ephemeral_reason_and_writes_nothing(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    request_id = await create_event("approve-budget", bool, responders=["U0BOSS"])
    [posted] = await fake_slack.wait_for("chat.postMessage")
    assert find_element(posted["blocks"], "hitl_form") == []  # the core refuses web answers here
    assert "<@U0BOSS>" in json.dumps(posted["blocks"])
    approve = find_element(posted["blocks"], "hitl_answer")[0]

    assert (await post_signed(bot.url, click("U0EVE", approve)))[0] == 200
    [note] = await fake_slack.wait_for("chat.postEphemeral")
    assert (note["user"], note["channel"]) == ("U0EVE", CHANNEL)
    assert "Only U0BOSS may answer" in note["text"]
    assert await store().get_response(request_id) is None
    assert fake_slack.of("chat.update") == []

    await post_signed(bot.url, click("U0BOSS", approve))
    assert (await wait_response(request_id)).responder.user_id == "U0BOSS"  # type: ignore[union-attr]


async def test_user_group_responders_are_resolved_through_usergroups_users_list(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    fake_slack.groups["S0ONCALL"] = ["U0CAROL", "U0DAN"]
    bot = slack_bot()
    request_id = await create_event("rollback", bool, responders=["S0ONCALL"])
    [posted] = await fake_slack.wait_for("chat.postMessage")
    assert "<!subteam^S0ONCALL>" in json.dumps(posted["blocks"])
    reject = find_element(posted["blocks"], "hitl_answer")[1]

    await post_signed(bot.url, click("U0EVE", reject))
    await fake_slack.wait_for("chat.postEphemeral")
    assert await store().get_response(request_id) is None
    await post_signed(bot.url, click("U0CAROL", reject))
    response = await wait_response(request_id)
    assert response.value is False and response.responder.user_id == "U0CAROL"  # type: ignore[union-attr]
    lookups = fake_slack.of("usergroups.users.list")
    assert lookups and all(call["usergroup"] == "S0ONCALL" for call in lookups)
    assert len(lookups) == 1  # cached between the two clicks


@pytest.mark.parametrize("status", [500, 0], ids=["server-error", "dropped-connection"])
async def test_a_group_member_is_asked_to_retry_when_slack_cannot_list_the_group(
    slack_bot: BotFactory, fake_slack: FakeSlack, status: int
) -> None:
    """Slack failing is not a refusal: the person is not told they may not answer, and retrying works."""
    fake_slack.groups["S0ONCALL"] = ["U0CAROL"]
    bot = slack_bot()
    request_id = await create_event("failover", bool, responders=["S0ONCALL"])
    approve = find_element((await fake_slack.wait_for("chat.postMessage"))[0]["blocks"], "hitl_answer")[0]
    fake_slack.fail_next("usergroups.users.list", status, times=10)  # more than the clients' retries

    await post_signed(bot.url, click("U0CAROL", approve))
    [note] = await fake_slack.wait_for("chat.postEphemeral")
    assert note["text"] == "Could not check who is in S0ONCALL just now. Please try again in a moment."
    assert await store().get_response(request_id) is None

    fake_slack.stop_failing("usergroups.users.list")
    await post_signed(bot.url, click("U0CAROL", approve))
    assert (await wait_response(request_id)).responder.user_id == "U0CAROL"  # type: ignore[union-attr]


async def test_the_pending_list_keeps_a_group_event_while_slack_cannot_list_the_group(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    """Listing it costs nothing (answering checks again); hiding it would look like the event is gone."""
    bot = slack_bot()
    await create_event("failover", bool, responders=["S0ONCALL"])
    await fake_slack.wait_for("chat.postMessage")
    fake_slack.fail_next("usergroups.users.list", 500, times=10)

    await post_signed(bot.url, slash_command("U0CAROL", "", f"{fake_slack.url}/response/1"))
    [listing] = await fake_slack.wait_for_responses()
    assert listing["text"] == "1 event waits for your answer"
    assert len(find_element(listing["blocks"], "hitl_answer")) == 2


async def test_the_pending_list_reads_a_group_once_for_all_its_events(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    fake_slack.groups["S0ONCALL"] = ["U0CAROL"]
    bot = slack_bot()
    for n in range(5):
        await create_event(f"incident-{n}", bool, responders=["S0ONCALL"])
    await fake_slack.wait_for("chat.postMessage", 5)

    await post_signed(bot.url, slash_command("U0CAROL", "", f"{fake_slack.url}/response/1"))
    [listing] = await fake_slack.wait_for_responses()
    assert listing["text"] == "5 events wait for your answer"
    assert len(fake_slack.of("usergroups.users.list")) == 1  # not one per event


async def test_a_group_slack_says_does_not_exist_lets_nobody_in(slack_bot: BotFactory, fake_slack: FakeSlack) -> None:
    bot = slack_bot()
    request_id = await create_event("ghost-team", bool, responders=["S0GHOSTS"])
    approve = find_element((await fake_slack.wait_for("chat.postMessage"))[0]["blocks"], "hitl_answer")[0]

    await post_signed(bot.url, click("U0CAROL", approve))
    [note] = await fake_slack.wait_for("chat.postEphemeral")
    assert note["text"] == "Only S0GHOSTS may answer this event."
    assert await store().get_response(request_id) is None


async def test_twenty_concurrent_clicks_make_one_response_and_everyone_else_is_told(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    request_id = await create_event("merge", bool)
    approve = find_element((await fake_slack.wait_for("chat.postMessage"))[0]["blocks"], "hitl_answer")[0]
    users = [f"U0USER{n:02d}" for n in range(20)]

    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(*(post_signed(bot.url, click(u, approve), session=session) for u in users))
    assert [status for status, _ in results] == [200] * 20

    response = await wait_response(request_id)
    winner = response.responder.user_id  # type: ignore[union-attr]
    notes = await fake_slack.wait_for("chat.postEphemeral", 19)
    assert sorted(n["user"] for n in notes) == sorted(u for u in users if u != winner)
    assert all(f"Already answered: Approve by <@{winner}>" in n["text"] for n in notes)
    assert all(rich_text(n["blocks"]).startswith(f"Already answered: Approve by @{winner} at {{date}}") for n in notes)
    assert all(bold_texts(n["blocks"]) == ["Approve"] for n in notes)
    await asyncio.sleep(0.2)
    assert len(fake_slack.of("chat.update")) == 1
    assert (await store().get_response(request_id)) == response


async def test_rate_limited_post_is_retried_and_posted_once(slack_bot: BotFactory, fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("chat.postMessage", 429)
    slack_bot()
    request_id = await create_event("retry", bool)
    assert len(await recorded_messages(store(), request_id)) == 1
    attempts = fake_slack.of("chat.postMessage", ok_only=False)
    assert len(attempts) == 2 and len(fake_slack.of("chat.postMessage")) == 1


async def test_default_channel_and_repeated_notify_post_once_per_channel(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot(slack_channel="C0DEFAULT")
    request_id = await create_event("two-places", bool)
    await recorded_messages(store(), request_id, 2)
    headers = {"Authorization": f"Bearer {os.environ['HITL_CHATOPS_SECRET']}"}
    async with aiohttp.ClientSession() as session:
        reply = await session.post(f"{bot.url}/api/v1/events/{request_id}/notify", headers=headers)
        assert reply.status == 202  # a repeated notify must not post again
    await asyncio.sleep(0.3)  # the repeated announce runs after the 202
    assert sorted(p["channel"] for p in fake_slack.of("chat.postMessage")) == ["C0DEFAULT", CHANNEL]

    approve = find_element(fake_slack.of("chat.postMessage")[0]["blocks"], "hitl_answer")[0]
    await post_signed(bot.url, click("U0ALICE", approve))
    updates = await fake_slack.wait_for("chat.update", 2)
    assert sorted(u["channel"] for u in updates) == ["C0DEFAULT", CHANNEL]


async def test_an_answer_from_another_surface_updates_the_slack_message(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    request_id = await create_event("from-api", int)
    await fake_slack.wait_for("chat.postMessage")
    assert await api_answer(bot, request_id, {"value": 5, "responder": "ci-bot"}) == 201
    # One update, or on a loaded machine a second from the reconciler's pass: each shows the answer.
    for update in await fake_slack.wait_for("chat.update"):
        lines = rich_lines(update["blocks"])
        assert "Answered by ci-bot (the API)" in lines and "Via the API" in lines
        assert actions_of(update["blocks"]) == []


async def test_an_answer_while_the_message_is_on_its_way_still_updates_it(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    """The answer's fan-out finds no message yet; recording the message afterwards re-renders it."""
    bot = slack_bot()
    posting = fake_slack.hold("chat.postMessage")
    try:
        request_id = await create_event("quick", int)
        assert await api_answer(bot, request_id, {"value": 3, "responder": "ci"}) == 201
        await asyncio.sleep(0.2)  # the answer's fan-out runs now and finds nothing to update
        assert fake_slack.of("chat.update") == []
    finally:
        posting.set()
    [posted] = await fake_slack.wait_for("chat.postMessage")
    [update] = await fake_slack.wait_for("chat.update")
    assert update["channel"] == posted["channel"] and actions_of(update["blocks"]) == []
    assert "ci (the API)" in json.dumps(update["blocks"])


async def test_slash_command_lists_newest_twenty_with_controls_and_help(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    ids = [await create_event(f"event-{n:02d}", bool) for n in range(22)]
    await create_event("not-for-you", bool, responders=["U0BOSS"])
    response_url = f"{fake_slack.url}/response/1"

    status, body = await post_signed(bot.url, slash_command("U0ALICE", "", response_url))
    assert (status, body) == (200, "")
    [listing] = await fake_slack.wait_for_responses()
    assert listing["response_type"] == "ephemeral" and listing["text"] == "22 events wait for your answer"
    blocks = listing["blocks"]
    assert len(blocks) <= 50
    rendered = json.dumps(blocks)
    assert "event-21" in rendered and "event-02" in rendered and "event-01" not in rendered
    assert "not-for-you" not in rendered
    assert "and 2 more" in blocks[-1]["elements"][0]["text"]
    assert len(find_element(blocks, "hitl_answer")) == 40

    # answering from the ephemeral list confirms ephemerally (that list is not a stored message)
    approve = find_element(blocks, "hitl_answer")[0]
    action = {"action_id": approve["action_id"], "value": approve["value"]}
    await post_signed(bot.url, block_actions("U0ALICE", action, ephemeral=True))
    assert (await wait_response(ids[-1])).value is True
    [note] = await fake_slack.wait_for("chat.postEphemeral")
    assert note["text"].startswith("Saved: Approve by <@U0ALICE>")
    assert rich_text(note["blocks"]).startswith("Saved: Approve by @U0ALICE at {date} via Slack")

    await post_signed(bot.url, slash_command("U0ALICE", "help", f"{fake_slack.url}/response/2"))
    assert "/hitl pending" in (await fake_slack.wait_for_responses(2))[1]["text"]


async def test_respond_button_refuses_before_the_modal_opens(slack_bot: BotFactory, fake_slack: FakeSlack) -> None:
    """Someone who may not answer learns it on the click, not after typing into a modal."""
    bot = slack_bot()
    request_id = await create_event("replicas-for-boss", int, responders=["U0BOSS"])
    [posted] = await fake_slack.wait_for("chat.postMessage")
    [respond] = find_element(posted["blocks"], "hitl_modal")
    assert (await post_signed(bot.url, click("U0EVE", respond)))[0] == 200
    [note] = await fake_slack.wait_for("chat.postEphemeral")
    assert "Only U0BOSS may answer" in note["text"]
    assert fake_slack.of("views.open") == []
    assert (await post_signed(bot.url, click("U0BOSS", respond)))[0] == 200
    [opened] = await fake_slack.wait_for("views.open")
    assert opened["view"]["private_metadata"] == request_id
