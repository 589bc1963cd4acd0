"""Slack Web API failures over real sockets: 5xx and 429 are retried by slack_sdk, nothing is lost or doubled.

The fake Web API answers the first N calls of a method with an error, then OK, so these tests
prove the retry handlers on the bot's real `AsyncWebClient`, not a mock of our own code.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from hitl_chatops.bot.reconciler import Reconciler
from hitl_chatops.bot.server import BotThread
from tests.fakes.slack import FakeSlack
from tests.helpers import recorded_messages
from tests.slack.slack_helpers import CHANNEL, click, create_event, find_element, post_signed, store, wait_response

pytestmark = pytest.mark.asyncio
BotFactory = Callable[..., BotThread]


async def test_server_error_once_on_post_message_is_retried_and_posted_once(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    fake_slack.fail_next("chat.postMessage", 500)
    slack_bot(reconcile_seconds=0)  # only the retry handler may post here
    request_id = await create_event("server-error", bool)

    assert [ref.data["channel"] for ref in await recorded_messages(store(), request_id)] == [CHANNEL]
    attempts = fake_slack.of("chat.postMessage", ok_only=False)
    assert len(attempts) == 2, attempts
    assert [a["channel"] for a in fake_slack.of("chat.postMessage")] == [CHANNEL]


async def test_a_channel_whose_post_fails_does_not_stop_the_next_channel(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    for _ in range(2):  # the client retries a dropped connection once: not a Slack error, an aiohttp one
        fake_slack.fail_next("chat.postMessage", 0)
    slack_bot(reconcile_seconds=0)  # only the notify's own pass may post here
    request_id = await create_event("two-channels", bool, channels=[f"slack:{CHANNEL}", "slack:C0OTHER"])

    [posted] = await recorded_messages(store(), request_id)
    assert posted.data["channel"] == "C0OTHER"
    attempts = [a["channel"] for a in fake_slack.of("chat.postMessage", ok_only=False)]
    assert attempts == [CHANNEL, CHANNEL, "C0OTHER"]


async def test_rate_limited_update_after_an_answer_is_retried_and_the_answer_kept(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot(reconcile_seconds=0)
    request_id = await create_event("rate-limited", bool)
    [posted] = await fake_slack.wait_for("chat.postMessage")
    approve = find_element(posted["blocks"], "hitl_answer")[0]

    fake_slack.fail_next("chat.update", 429)
    fake_slack.fail_next("chat.update", 429)
    status, _ = await post_signed(bot.url, click("U0ALICE", approve))
    assert status == 200

    response = await wait_response(request_id)
    assert response.value is True and response.responder is not None and response.responder.user_id == "U0ALICE"
    [update] = await fake_slack.wait_for("chat.update")
    await asyncio.to_thread(bot.call, bot.service.background.drain())  # the outbox write, if any, is done
    assert len(fake_slack.of("chat.update", ok_only=False)) == 3
    assert len(fake_slack.of("chat.update")) == 1
    assert (update["channel"], update["ts"]) == (posted["channel"], "1700000000.000001")
    assert await store().outbox_ids() == []  # nothing owed: the retry handler delivered it
    assert await store().get_response(request_id) == response


async def test_post_that_exhausts_retries_is_posted_once_by_the_reconciler(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    for _ in range(3):  # the client retries a 5xx twice, so three failures make the notify fail
        fake_slack.fail_next("chat.postMessage", 500)
    slack_bot(reconcile_seconds=0.2)
    request_id = await create_event("lost-post", bool)

    await fake_slack.wait_for("chat.postMessage", seconds=15)
    attempts = fake_slack.of("chat.postMessage", ok_only=False)
    assert len(attempts) == 4, "the notify's post failed three times; a reconciler pass posted it"
    await asyncio.sleep(1)  # a few more reconciler steps must not post again
    assert len(fake_slack.of("chat.postMessage")) == 1
    assert len(await store().messages(request_id)) == 1


async def test_an_update_cut_short_by_shutdown_is_owed_and_the_reconciler_finishes_it(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot(reconcile_seconds=0)
    request_id = await create_event("cut-short", bool)
    [posted] = await fake_slack.wait_for("chat.postMessage")
    held = fake_slack.hold("chat.update")  # Slack takes its time

    status, _ = await post_signed(bot.url, click("U0ALICE", find_element(posted["blocks"], "hitl_answer")[0]))
    assert status == 200
    await wait_response(request_id)
    await asyncio.to_thread(bot.call, bot.service.background.drain(0.1))  # shutdown waits only so long
    assert await store().outbox_ids() == [request_id]

    held.set()
    report = await asyncio.to_thread(bot.call, Reconciler(bot.service, 1).step())
    assert report.updated == 1 and await store().outbox_ids() == []
    assert "Approve" in json.dumps(fake_slack.of("chat.update")[-1]["blocks"])
