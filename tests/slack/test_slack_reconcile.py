"""The reconciler with Slack as the visible surface: lost notifies, expiry, failed updates, replicas."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest

from hitl_chatops.bot.protocol import Responder, Response, utcnow
from hitl_chatops.bot.reconciler import Reconciler
from hitl_chatops.bot.server import BotThread, free_port
from tests.conftest import AUTH
from tests.fakes.slack import FakeSlack
from tests.slack.slack_helpers import create_event, store


@pytest.fixture
def bot_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin's notify goes to a port nobody listens on, as when the bot is down or restarting."""
    monkeypatch.setenv("HITL_CHATOPS_URL", f"http://127.0.0.1:{free_port('127.0.0.1')}")


async def test_lost_notify_is_posted_once_by_two_replicas(
    bot_down: None, slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    request_id = await create_event("lost_notify", bool)
    assert fake_slack.of("chat.postMessage") == []
    first = slack_bot(reconcile_seconds=0.1)
    second = slack_bot(reconcile_seconds=0.1)
    await fake_slack.wait_for("chat.postMessage")
    await asyncio.sleep(0.6)  # several more passes on both replicas
    assert len(fake_slack.of("chat.postMessage")) == 1
    assert len(await store().messages(request_id)) == 1
    for bot in (first, second):
        await asyncio.to_thread(bot.call, Reconciler(bot.service, 1).step())
    assert len(fake_slack.of("chat.postMessage")) == 1


async def test_expiry_updates_the_message_once(slack_bot: Callable[..., BotThread], fake_slack: FakeSlack) -> None:
    first = slack_bot(reconcile_seconds=0)
    second = slack_bot(reconcile_seconds=0)
    request_id = await create_event("fuse", int, timeout_seconds=1)
    await fake_slack.wait_for("chat.postMessage")
    await asyncio.sleep(1.1)
    reports = [await asyncio.to_thread(b.call, Reconciler(b.service, 1).step()) for b in (first, second, first)]
    assert [r.expired for r in reports] == [1, 0, 0]
    for bot in (first, second):
        await asyncio.to_thread(bot.call, bot.service.background.drain())
    (update,) = await fake_slack.wait_for("chat.update")
    assert "expired" in update["text"].lower()
    assert await store().pending_ids() == []
    assert await store().claim(request_id, "expired") is False, "the expiry is recorded"


async def test_failed_update_is_retried_from_the_outbox(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    bot = slack_bot(reconcile_seconds=0)
    request_id = await create_event("flaky_update", bool)
    await fake_slack.wait_for("chat.postMessage")
    for _ in range(4):  # more than the client's retries: this update fails for good
        fake_slack.fail_next("chat.update", 500)
    url = f"{bot.url}/api/v1/events/{request_id}/response"
    async with aiohttp.ClientSession() as http:
        reply = await http.post(url, json={"value": True}, headers=AUTH)
        assert reply.status == 201
    await asyncio.to_thread(bot.call, bot.service.background.drain())
    assert fake_slack.of("chat.update") == []
    assert await store().outbox_ids() == [request_id]
    report = await asyncio.to_thread(bot.call, Reconciler(bot.service, 1).step())
    assert report.updated == 1
    (update,) = fake_slack.of("chat.update")
    assert "Approve" in update["text"]
    assert await store().outbox_ids() == []


async def test_answer_written_elsewhere_is_repaired(slack_bot: Callable[..., BotThread], fake_slack: FakeSlack) -> None:
    """A stock flyteplugins-hitl client (or a crash before the marker was dropped) leaves a stale marker."""
    bot = slack_bot(reconcile_seconds=0)
    request_id = await create_event("stock_answer", bool)
    await fake_slack.wait_for("chat.postMessage")
    await asyncio.to_thread(bot.call, bot.service.background.drain())  # the post recorded: no update of its own
    stock = Response(value=False, request_id=request_id, data_type="bool")
    await store().put_response(stock)
    await store().put_request(await store().get_request(request_id))  # the marker comes back, as after a crash
    report = await asyncio.to_thread(bot.call, Reconciler(bot.service, 1).step())
    assert report.repaired == 1
    (update,) = await fake_slack.wait_for("chat.update")
    assert "Reject" in update["text"]
    assert await store().pending_ids() == []


async def test_metrics_count_what_happened(slack_bot: Callable[..., BotThread], fake_slack: FakeSlack) -> None:
    bot = slack_bot(reconcile_seconds=0)
    request_id = await create_event("counted", int, min_value=1, max_value=3)
    await fake_slack.wait_for("chat.postMessage")
    bot.call(bot.service.delivery.announce(request_id))  # a repeated notify posts nothing new, so counts nothing
    answer = bot.call(bot.service.respond(request_id, "2", Responder(platform="slack", user_id="U1"), "slack"))
    assert answer.value == 2 and answer.responded_at and answer.responded_at <= utcnow()
    async with aiohttp.ClientSession() as http, http.get(f"{bot.url}/metrics", headers=AUTH) as reply:
        text = await reply.text()
    assert reply.status == 200
    assert 'hitl_events_answered_total{via="slack"} 1.0' in text
    assert "hitl_events_announced_total 1.0" in text
    assert "hitl_answer_latency_seconds_count 1.0" in text
    assert 'hitl_http_handler_seconds_count{route="/api/v1/events/{request_id}/notify"} 1.0' in text
