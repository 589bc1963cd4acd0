"""The platform seam is real: a platform defined in the tests (tests/fakechat.py), registered without
touching any core file, gets every post, record, update, expiry and outbox retry from the core."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

import hitl_chatops.plugin as hitl
from hitl_chatops.bot import registry
from hitl_chatops.bot.protocol import Responder, utcnow
from hitl_chatops.bot.reconciler import Reconciler, StepReport
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests.conftest import AUTH
from tests.fakechat import NAME, REGISTRATION, FakeChatApi
from tests.fakes.events import make_request
from tests.helpers import recorded_messages

ROOM = "room-1"


@pytest.fixture
def api() -> Iterator[FakeChatApi]:
    with FakeChatApi.serving() as fake:
        yield fake


@pytest.fixture
def fakechat_bot(api: FakeChatApi, start_bot: Callable[..., BotThread]) -> Iterator[BotThread]:
    """A bot with the fake platform on (its reconciler stepped by the tests); registered for the test only."""
    registry.register(REGISTRATION)
    try:
        yield start_bot(fakechat_api_url=api.url, reconcile_seconds=0)
    finally:
        registry.unregister(NAME)


async def make_event(bot: BotThread, *, seconds: float = 600, **fields: Any) -> str:
    """Write a request as the plugin does and notify the bot, which posts after its 202."""
    store = Store(bot.settings.store)
    request = make_request(store, timeout=seconds, channels=[f"{NAME}:{ROOM}"], **fields)
    await store.put_request(request)
    await api_call(bot, f"/api/v1/events/{request.request_id}/notify", {})
    return request.request_id


async def api_call(bot: BotThread, path: str, body: dict[str, Any], *, token: bool = True) -> dict[str, Any]:
    headers = AUTH if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot.url}{path}", json=body, headers=headers) as reply,
    ):
        assert reply.status < 300, await reply.text()
        return dict(await reply.json()) if reply.content_type == "application/json" else {}


async def answer(bot: BotThread, request_id: str, user: str, value: str) -> dict[str, Any]:
    """A person answering in the fake platform: its inbound route, as the platform would call it."""
    return await api_call(
        bot, "/fakechat/answers", {"request_id": request_id, "user": user, "value": value}, token=False
    )


async def step(bot: BotThread) -> StepReport:
    return await asyncio.to_thread(bot.call, Reconciler(bot.service, 1).step())


async def test_the_plugin_posts_to_a_registered_platform_and_an_answer_there_updates_its_copy(
    fakechat_bot: BotThread, api: FakeChatApi
) -> None:
    event = await hitl.new_event.aio("gate", data_type=bool, prompt="Ship it?", channels=[f"{NAME}:{ROOM}"])

    [post] = await api.wait_for(lambda: api.posts)
    assert post["room"] == ROOM and "Ship it?" in post["text"]
    [copy] = await recorded_messages(Store(fakechat_bot.settings.store), event.request_id)
    assert (copy.platform, copy.key) == (NAME, post["id"])

    saved = await answer(fakechat_bot, event.request_id, "u1", "true")
    assert (saved["saved"], saved["value"], saved["decided"]) == (True, True, True)
    assert saved["note"].startswith("Saved: Approve by u1 at ")
    [update] = await api.wait_for(lambda: api.updates)
    assert update == {"id": post["id"], "text": "gate: True by u1"}
    assert await event.wait.aio() is True

    late = await answer(fakechat_bot, event.request_id, "u2", "false")
    assert not late["saved"] and late["error"].startswith("Already answered by u1")
    await step(fakechat_bot)  # a pass repeats no post
    assert len(api.posts) == 1


async def test_the_bot_a_local_run_starts_posts_to_the_platforms_of_its_environment(
    api: FakeChatApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No HITL_CHATOPS_URL: the bot the plugin starts in-process reads every platform's settings, as
    `hitl-chatops serve` does, though the plugin itself loads no adapter (tests/test_layers.py)."""
    monkeypatch.setenv("FAKECHAT_API_URL", api.url)
    registry.register(REGISTRATION)
    try:
        await hitl.new_event.aio("gate", data_type=bool, prompt="Ship it?", channels=[f"{NAME}:{ROOM}"])
        [post] = await api.wait_for(lambda: api.posts)
        assert post["room"] == ROOM and "Ship it?" in post["text"]
    finally:
        registry.unregister(NAME)


async def test_channels_of_an_unregistered_platform_are_refused_at_the_call_site() -> None:
    with pytest.raises(ValueError, match=f'look like "slack:C0123" or "teams:<conversation id>" .*{NAME}:{ROOM}'):
        await hitl.new_event.aio("gate", data_type=bool, prompt="Ship it?", channels=[f"{NAME}:{ROOM}"])


def latest_texts(api: FakeChatApi) -> dict[str, str]:
    """What each message shows now (a copy may be re-rendered more than once: that is idempotent)."""
    return {update["id"]: update["text"] for update in api.updates}


async def test_cancel_expiry_and_the_deadline_default_re_render_the_copies(
    fakechat_bot: BotThread, api: FakeChatApi
) -> None:
    store = Store(fakechat_bot.settings.store)
    cancelled = await make_event(fakechat_bot)
    [cancelled_copy] = await recorded_messages(store, cancelled)
    await api_call(fakechat_bot, f"/api/v1/events/{cancelled}/cancel", {"reason": "rolled back"})
    await api.wait_for(lambda: latest_texts(api) == {cancelled_copy.key: "deploy_gate: cancelled (rolled back)"})

    expiring = await make_event(fakechat_bot, seconds=1)
    defaulted = await make_event(fakechat_bot, seconds=1, on_timeout={"value": False})
    [expired_copy] = await recorded_messages(store, expiring)
    [defaulted_copy] = await recorded_messages(store, defaulted)
    await asyncio.sleep(1.05)  # both deadlines pass; the reconciler's pass expires them
    assert (await step(fakechat_bot)).expired == 2
    expected = {
        cancelled_copy.key: "deploy_gate: cancelled (rolled back)",
        expired_copy.key: "deploy_gate: expired",
        defaulted_copy.key: "deploy_gate: default False applied",
    }
    await api.wait_for(lambda: latest_texts(api) == expected)
    assert set(expected) == {post["id"] for post in api.posts}


async def test_failed_post_and_failed_update_are_retried_by_the_reconciler(
    fakechat_bot: BotThread, api: FakeChatApi, caplog: pytest.LogCaptureFixture
) -> None:
    api.fail_next("POST")
    request_id = await make_event(fakechat_bot)
    [failed] = await api.wait_for(lambda: [r for r in caplog.records if r.getMessage() == f"{NAME} post failed"])
    assert failed.__dict__["error"] == "PlatformError"
    assert failed.__dict__["reason"] == "the fake chat API answered 503"
    assert api.posts == []

    assert (await step(fakechat_bot)).announced == 1
    [post] = await api.wait_for(lambda: api.posts)
    await recorded_messages(Store(fakechat_bot.settings.store), request_id)

    api.fail_next("PUT")
    assert (await answer(fakechat_bot, request_id, "u1", "true"))["saved"]
    await api.wait_for(lambda: "PUT" not in api.failing)  # the update was tried, and refused
    await asyncio.to_thread(fakechat_bot.call, fakechat_bot.service.background.drain())
    assert api.updates == []
    assert (await step(fakechat_bot)).updated == 1
    assert api.updates == [{"id": post["id"], "text": "deploy_gate: True by u1"}]
    assert (await step(fakechat_bot)).updated == 0  # out of the outbox


async def test_group_responders_are_read_through_the_platform(fakechat_bot: BotThread, api: FakeChatApi) -> None:
    api.groups["ops"] = ["u-ops"]
    request_id = await make_event(fakechat_bot, responders=[f"{NAME}:ops"])
    await recorded_messages(Store(fakechat_bot.settings.store), request_id)

    refused = await answer(fakechat_bot, request_id, "u-dev", "true")
    assert refused == {"saved": False, "error": f"Only {NAME}:ops may answer this event."}
    assert (await answer(fakechat_bot, request_id, "u-ops", "true"))["saved"]
    await api.wait_for(lambda: list(latest_texts(api).values()) == ["deploy_gate: True by u-ops"])


async def test_a_replica_without_the_platform_still_updates_the_other_copies(
    fakechat_bot: BotThread, api: FakeChatApi, start_bot: Callable[..., BotThread]
) -> None:
    """Mid-upgrade, a replica that does not run the platform lists its copies, skips them, and fails nothing."""
    request_id = await make_event(fakechat_bot)
    store = Store(fakechat_bot.settings.store)
    await recorded_messages(store, request_id)
    registry.unregister(NAME)
    older = start_bot(reconcile_seconds=0)

    answered = older.service.respond(request_id, "true", Responder(platform="api"), "api", trusted=True)
    response = await asyncio.to_thread(older.call, answered)
    updated = older.service.delivery.update_messages(await store.get_request(request_id), response)
    assert await asyncio.to_thread(older.call, updated) is True
    assert api.updates == []


async def test_an_adapter_bug_is_logged_as_an_error_with_its_traceback_and_retried(
    fakechat_bot: BotThread, api: FakeChatApi, caplog: pytest.LogCaptureFixture
) -> None:
    api.fail_next("POST", status=200)  # a reply without the message id: the adapter's `sent["id"]` raises
    await make_event(fakechat_bot)
    [failed] = await api.wait_for(lambda: [r for r in caplog.records if r.getMessage() == f"{NAME} post failed"])
    assert failed.levelno == logging.ERROR and failed.exc_info is not None
    assert (failed.__dict__["error"], failed.__dict__["reason"]) == (
        "PlatformError",
        f"{NAME} post failed unexpectedly (KeyError)",
    )
    assert (await step(fakechat_bot)).announced == 1
    await api.wait_for(lambda: api.posts)


async def test_reminders_go_to_each_copys_thread_once_and_a_failed_one_is_not_sent_twice(
    fakechat_bot: BotThread, api: FakeChatApi, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(fakechat_bot.settings.store)
    asked_earlier = utcnow() - timedelta(seconds=70)  # a reminder a minute: the first is due
    sent = make_request(store, now=asked_earlier, channels=[f"{NAME}:{ROOM}"], remind_every=60)
    failing = make_request(store, now=asked_earlier, channels=[f"{NAME}:{ROOM}"], remind_every=60)
    for request in (sent, failing):
        await store.put_request(request)
        await api_call(fakechat_bot, f"/api/v1/events/{request.request_id}/notify", {})
        await recorded_messages(store, request.request_id)
    api.fail_next("REPLY")  # whichever reminder goes first is refused

    await step(fakechat_bot)
    [failed] = [r for r in caplog.records if r.getMessage() == f"{NAME} reminder failed"]
    assert failed.__dict__["reason"] == "the fake chat API answered 503"
    [reply] = api.replies
    assert reply["text"] == "Reminder: No answer yet; waiting for anyone."
    await step(fakechat_bot)
    assert len(api.replies) == 1, "a reminder is a nudge: sent once, not retried"


async def test_an_e_mail_the_platform_cannot_look_up_just_now_is_try_again(
    fakechat_bot: BotThread, api: FakeChatApi
) -> None:
    request_id = await make_event(fakechat_bot, approvals=2, requester="erin@example.com")
    await recorded_messages(Store(fakechat_bot.settings.store), request_id)
    api.fail_next("USER")
    refused = await answer(fakechat_bot, request_id, "u1", "true")
    assert (
        refused["error"] == "Could not check whose account erin@example.com is just now. Please try again in a moment."
    )
    counted = await answer(fakechat_bot, request_id, "u1", "true")  # no account with that address: not the requester
    assert counted["note"] == "Counted your approval: 1 of 2 approvals."
