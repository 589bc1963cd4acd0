"""Batches for fan-out in Slack: one message per channel for a run's `batch=True` events, Approve all /
Reject all through the normal answer path, Review one by one, and Slack's rate limits kept (429s lose nothing)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import flyte
import pytest

from hitl_chatops.bot.server import BotThread
from tests import batch_workflows
from tests.fakes.flyte import Run
from tests.fakes.slack import FakeSlack
from tests.slack.slack_helpers import CHANNEL, api_answer, click, create_event, find_element, post_signed, store


@pytest.fixture(scope="module", autouse=True)
def flyte_local() -> None:
    flyte.init()


async def batch_message(fake_slack: FakeSlack, counts: str, seconds: float = 30) -> dict[str, Any]:
    """The batch message in `CHANNEL` as Slack shows it last, once it reads `counts` ("3 waiting, 1 decided")."""
    deadline = time.monotonic() + seconds
    while True:
        posts = [p for p in fake_slack.of("chat.postMessage") if p["channel"] == CHANNEL]
        updates = [u for u in fake_slack.of("chat.update") if u["channel"] == CHANNEL]  # the batch's alone
        shown = updates[-1] if updates else posts[-1] if posts else {"text": "(not posted)"}
        if shown["text"].endswith(counts):
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"the batch message reads {shown['text']!r}, not {counts!r}")
        await asyncio.sleep(0.05)


def bulk(message: dict[str, Any], pick: str) -> dict[str, Any]:
    [button] = [e for e in find_element(message["blocks"], "hitl_batch_all") if e["value"].endswith(f"|{pick}")]
    return button


async def note(fake_slack: FakeSlack, user_id: str, count: int = 1) -> str:
    """The `count`th ephemeral note `user_id` got."""
    deadline = time.monotonic() + 30
    while len(found := [n for n in fake_slack.of("chat.postEphemeral") if n["user"] == user_id]) < count:
        assert time.monotonic() < deadline, f"{user_id} got {len(found)} notes, not {count}"
        await asyncio.sleep(0.02)
    return str(found[count - 1]["text"])


@pytest.mark.e2e
async def test_sixty_fan_out_events_share_one_message_and_approve_all_answers_each(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    run = Run(batch_workflows.review_documents, 60, f"slack:{CHANNEL}")
    message = await batch_message(fake_slack, "60 waiting, 0 decided", seconds=60)
    assert len(fake_slack.of("chat.postMessage")) == 1, "one message for the whole batch"
    assert "doc-000" in str(message["blocks"]) and "…and 55 more waiting." in str(message["blocks"])

    approve = bulk(message, "true")
    assert (await post_signed(bot.url, click("U0ALICE", approve)))[0] == 200
    assert await run.finish(60) == 60
    assert await note(fake_slack, "U0ALICE") == "Answered 60."

    listing = await store().batch(approve["value"].partition("|")[0])
    assert len(listing.joined) == 60 and not listing.open
    for request_id in listing.joined:
        response = await store().get_response(request_id)
        assert response is not None and response.value is True and response.via == "slack"
        assert response.responder is not None and response.responder.user_id == "U0ALICE"
    final = await batch_message(fake_slack, "0 waiting, 60 decided")
    assert not find_element(final["blocks"], "hitl_batch"), "nothing left to answer: no controls"
    assert len(fake_slack.of("chat.postMessage")) == 1


async def test_posts_into_one_channel_keep_to_slacks_limit_and_lose_nothing(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    """Without `batch`, each event is its own message: a burst of them goes at Slack's pace per channel."""
    fake_slack.limit_posts(per_second=1, burst=4)
    slack_bot(reconcile_seconds=0)  # nothing but the first try may post
    names = [f"step_{i}" for i in range(8)]
    await asyncio.gather(*(create_event(name, bool) for name in names))
    posts = await fake_slack.wait_for("chat.postMessage", len(names), seconds=30)
    assert sorted(p["text"].split(":")[1].strip() for p in posts) == sorted(names)
    assert fake_slack.rate_limited("chat.postMessage") == 0


async def test_rate_limited_updates_are_retried_until_the_last_state_lands(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    """429s past the client's own retries: the batch message is updated after the Retry-After, and its
    last update shows the final counts; events decided elsewhere are skipped and counted."""
    fake_slack.limit_posts(per_second=1, burst=4)
    bot = slack_bot(reconcile_seconds=0)
    ids = [await create_event("publish", bool, batch=True, context={"item": i}) for i in range(12)]
    message = await batch_message(fake_slack, "12 waiting, 0 decided")

    fake_slack.fail_next("chat.update", 429, times=5, retry_after=1)  # the client retries 3 times, then we do
    for request_id in ids[:4]:
        assert await api_answer(bot, request_id, {"value": False}) == 201
    await post_signed(bot.url, click("U0ALICE", bulk(message, "true")))
    assert await note(fake_slack, "U0ALICE") == "Answered 8, 4 were decided already."

    final = await batch_message(fake_slack, "0 waiting, 12 decided", seconds=60)
    assert fake_slack.rate_limited("chat.update") == 5
    assert len(fake_slack.of("chat.postMessage")) == 1
    assert not find_element(final["blocks"], "hitl_batch")
    assert [(await store().get_response(i)).value for i in ids] == [False] * 4 + [True] * 8  # type: ignore[union-attr]


async def test_reject_all_answers_only_what_the_person_may_and_review_opens_the_next(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    bot = slack_bot(reconcile_seconds=0)
    mine = [await create_event("cleanup", bool, batch=True, responders=["U0ALICE"]) for _ in range(2)]
    theirs = await create_event("cleanup", bool, batch=True, responders=["U0BOB"])
    message = await batch_message(fake_slack, "3 waiting, 0 decided")

    [review] = find_element(message["blocks"], "hitl_batch_review")
    await post_signed(bot.url, click("U0BOB", review))
    [opened] = await fake_slack.wait_for("views.open")
    assert opened["view"]["private_metadata"] == theirs, "the oldest event Bob may answer"
    await post_signed(bot.url, click("U0CAROL", review))
    assert await note(fake_slack, "U0CAROL") == "Nothing in this batch waits for your answer."

    await post_signed(bot.url, click("U0ALICE", bulk(message, "false")))
    assert await note(fake_slack, "U0ALICE") == "Answered 2, 1 you may not answer."
    for request_id in mine:
        response = await store().get_response(request_id)
        assert response is not None and response.value is False and response.responder.user_id == "U0ALICE"  # type: ignore[union-attr]
    assert await store().get_response(theirs) is None
    await batch_message(fake_slack, "1 waiting, 2 decided")


async def test_approve_all_of_team_decisions_casts_each_persons_vote(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    bot = slack_bot(reconcile_seconds=0)
    ids = [await create_event("release", bool, batch=True, approvals=2) for _ in range(2)]
    approve = bulk(await batch_message(fake_slack, "2 waiting, 0 decided"), "true")

    await post_signed(bot.url, click("U0ALICE", approve))
    assert await note(fake_slack, "U0ALICE") == "Answered 2."
    await post_signed(bot.url, click("U0ALICE", approve))
    assert await note(fake_slack, "U0ALICE", 2) == "Answered 0, 2 you voted on already."
    assert [await store().get_response(i) for i in ids] == [None, None], "one vote of two each"

    await post_signed(bot.url, click("U0BOB", approve))
    assert await note(fake_slack, "U0BOB") == "Answered 2."
    for request_id in ids:
        response = await store().get_response(request_id)
        assert response is not None and response.value is True
        assert sorted(v.voter.user_id for v in response.votes or []) == ["U0ALICE", "U0BOB"]
    await batch_message(fake_slack, "0 waiting, 2 decided")


async def test_the_list_page_shows_the_open_events_literally_behind_a_signed_link(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    slack_bot(reconcile_seconds=0)
    ids = [
        await create_event("triage", bool, batch=True, context={"title": f"<script>x{i}</script>"}) for i in range(3)
    ]
    message = await batch_message(fake_slack, "3 waiting, 0 decided")
    [link] = [e["url"] for e in find_element(message["blocks"], "hitl_form")]
    async with aiohttp.ClientSession() as session:
        async with session.get(link) as page:
            html = await page.text()
            assert page.status == 200 and page.headers["Content-Security-Policy"].startswith("default-src 'none'")
        async with session.get(link.replace("sig=", "sig=x")) as forged:
            assert forged.status == 403
    assert "<script>" not in html and html.count("&lt;script&gt;x") == 3
    assert [html.index(f"/form/{i}") for i in ids] == sorted(html.index(f"/form/{i}") for i in ids), "oldest first"
