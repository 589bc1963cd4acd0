"""The App Home inbox over real sockets: signed `app_home_opened` events and clicks from the Home tab,
the fake Slack Web API, real Flyte local runs, and S3 (moto) with its requests counted at the server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import flyte
import pytest

from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests.fakes.events import make_request
from tests.fakes.flyte import Run
from tests.fakes.s3 import Moto, aws_env, by_method
from tests.fakes.slack import FakeSlack
from tests.slack import slack_workflows as workflows
from tests.slack.slack_helpers import (
    app_home_opened,
    bold_texts,
    create_event,
    find_element,
    home_click,
    post_event,
    post_signed,
    rich_lines,
    rich_text,
    store,
    view_submission,
)

OPEN_EVENTS = 2000


async def home_of(fake: FakeSlack, user_id: str, count: int = 1, seconds: float = 10) -> dict[str, Any]:
    """The `count`th Home view published for `user_id` (waits for it)."""
    for _ in range(int(seconds / 0.02)):
        views = [call["view"] for call in fake.of("views.publish") if call["user_id"] == user_id]
        if len(views) >= count:
            return views[count - 1]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no Home view number {count} for {user_id}: {fake.of('views.publish')}")


def shown(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False)


async def gone_from_pending(request_id: str) -> None:
    """Wait until the outcome is settled (indexed in the history, then the marker dropped)."""
    for _ in range(500):
        if request_id not in await store().pending_ids():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{request_id} is still pending")


@pytest.mark.e2e
async def test_home_lists_what_the_person_may_answer_and_approve_there_resumes_the_run(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    flyte.init()
    bot = slack_bot()
    run = Run(workflows.alice_gate)
    [posted] = await fake_slack.wait_for("chat.postMessage", seconds=30)
    alice_event = find_element(posted["blocks"], "hitl_answer")[0]["value"].partition("|")[0]
    await create_event("bob_gate", bool, responders=["slack:U0BOB"])

    assert await post_event(bot.url, app_home_opened("U0ALICE")) == 200
    home = await home_of(fake_slack, "U0ALICE")
    assert home["type"] == "home"
    assert "alice_gate" in shown(home) and "Roll out to the EU?" in shown(home) and "checkout" in shown(home)
    assert "bob_gate" not in shown(home), "an event she may not answer is not in her Home"
    approve, reject = find_element(home["blocks"], "hitl_answer")
    assert (approve["text"]["text"], reject["text"]["text"]) == ("Approve", "Reject")

    status, _ = await post_signed(bot.url, home_click("U0ALICE", approve))
    assert status == 200
    assert await run.finish() is True
    again = await home_of(fake_slack, "U0ALICE", 2)
    assert rich_lines(again)[0].startswith(":information_source: Saved: Approve by @U0ALICE at {date}"), (
        "what the click did, at the top of the Home"
    )
    assert find_element(again["blocks"], "hitl_answer") == [] and "Nothing is waiting" in shown(again)
    assert fake_slack.of("chat.postEphemeral") == [], "a Home tab has no channel to post a note in"
    await fake_slack.wait_for("chat.update")  # the channel message shows the answer, as for any click

    await gone_from_pending(alice_event)
    assert await post_event(bot.url, app_home_opened("U0ALICE")) == 200
    reopened = await home_of(fake_slack, "U0ALICE", 3)
    assert "Decided recently" in shown(reopened) and "alice_gate: Approve · {date} · via Slack" in rich_lines(reopened)
    assert {"alice_gate", "Approve"} <= set(bold_texts(reopened))

    assert await post_event(bot.url, app_home_opened("U0BOB")) == 200
    bobs = await home_of(fake_slack, "U0BOB")
    assert "bob_gate" in shown(bobs) and "alice_gate" not in shown(bobs)


async def test_a_refused_click_in_the_home_tab_is_told_there(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    await create_event("alice_only", bool, responders=["slack:U0ALICE"])
    await fake_slack.wait_for("chat.postMessage")
    assert await post_event(bot.url, app_home_opened("U0ALICE", tab="messages")) == 200
    assert await post_event(bot.url, app_home_opened("U0ALICE")) == 200
    home = await home_of(fake_slack, "U0ALICE")
    assert len(fake_slack.of("views.publish")) == 1, "the Messages tab publishes nothing"

    approve = find_element(home["blocks"], "hitl_answer")[0]
    await post_signed(bot.url, home_click("U0BOB", approve))  # Bob clicks a copy of Alice's button
    refused = await home_of(fake_slack, "U0BOB")
    assert "Only slack:U0ALICE may answer this event." in shown(refused)
    assert fake_slack.of("chat.postEphemeral") == []
    assert await store().get_response(approve["value"].partition("|")[0]) is None


async def test_respond_in_the_home_tab_opens_the_modal_and_the_answer_refreshes_the_home(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    request_id = await create_event("replicas", int, min_value=1, max_value=10)
    await fake_slack.wait_for("chat.postMessage")
    assert await post_event(bot.url, app_home_opened("U0ALICE")) == 200
    [respond] = find_element((await home_of(fake_slack, "U0ALICE"))["blocks"], "hitl_modal")

    await post_signed(bot.url, home_click("U0ALICE", respond))
    [opened] = await fake_slack.wait_for("views.open")
    assert opened["view"]["private_metadata"] == request_id, "the same modal as from a channel message"
    _, body = await post_signed(bot.url, view_submission("U0ALICE", request_id, {"value": "3"}))
    assert body == ""
    assert (await store().get_response(request_id)).value == 3  # type: ignore[union-attr]
    refreshed = await home_of(fake_slack, "U0ALICE", 2)
    assert find_element(refreshed["blocks"], "hitl_modal") == [] and "Nothing is waiting" in shown(refreshed)


async def test_a_person_with_500_events_gets_the_most_urgent_within_slacks_limits(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    events = store()
    long = "x" * 5000
    context = {f"field {n} " + "k" * 100: "v" * 500 for n in range(30)}
    requests = [
        make_request(events, timeout=3600 + n, event_name=f"event_{n:03d}" + "e" * 200, prompt=long, context=context)
        for n in range(500)
    ]
    await asyncio.gather(*map(events.put_request, requests))

    assert await post_event(bot.url, app_home_opened("U0ALICE")) == 200
    home = await home_of(fake_slack, "U0ALICE")
    assert len(home["blocks"]) <= 100
    assert "*500 events wait for your answer*" in shown(home) and "…and 480 more" in shown(home)
    headings = [label for label in bold_texts(home) if label.startswith("event_")]
    assert [h[:9] for h in headings] == [f"event_{n:03d}" for n in range(20)], "the nearest deadlines first"
    for block in home["blocks"]:
        assert len(rich_text(block) if block["type"] == "rich_text" else json.dumps(block)) <= 3000
    assert "/hitl" in shown(home)


@pytest.fixture
def counted_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[Moto]:
    """moto for this test alone, counting reads of request.json and listings of the history apart."""

    def labels(method: str, path: str, query: str) -> list[str]:
        if method == "GET" and path.endswith("/request.json"):
            return ["GET request.json"]
        if "list-type" in query:
            return ["LIST history" if "hitl-history" in unquote(query) else "LIST"]
        return by_method(method, path, query)

    moto = Moto(f"hitl-home-{uuid.uuid4().hex[:10]}", labels=labels).start()
    for name, value in aws_env(moto.endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HITL_CHATOPS_STORE", f"s3://{moto.bucket}/hitl")
    yield moto
    moto.stop(keep_port=False)


async def test_2000_open_events_on_s3_publish_without_reading_any_on_a_warm_replica(
    counted_moto: Moto, slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    bot = slack_bot(reconcile_seconds=0)  # only the Home reads the store
    events = Store(bot.settings.store)
    gate = asyncio.Semaphore(64)

    async def put(n: int) -> None:
        async with gate:
            await events.put_request(make_request(events, timeout=3600 + n))

    await asyncio.gather(*map(put, range(OPEN_EVENTS)))
    assert await post_event(bot.url, app_home_opened("U0ALICE")) == 200
    cold = await home_of(fake_slack, "U0ALICE", seconds=120)  # moto serves 2,000 reads slowly
    assert "*2000 events wait for your answer*" in shown(cold)
    assert counted_moto.take()["GET request.json"] == OPEN_EVENTS, "a cold replica reads each event once"

    assert await post_event(bot.url, app_home_opened("U0ALICE")) == 200
    warm = await home_of(fake_slack, "U0ALICE", 2)
    assert warm["blocks"] == cold["blocks"]
    # The markers (2 pages of 1,000) and the two outcome folders searched for what she decided (empty):
    # listings only, no event read.
    assert counted_moto.take() == {"LIST": 2, "LIST history": 2}
