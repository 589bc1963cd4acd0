"""Native Flyte conditions, bot side: every answer signals the mirrored condition once.

The bot's real `flyte.remote` client talks ConnectRPC to a fake control plane on loopback
(`tests/flyte_fake.py`); Slack is the fake Web API, the form and the API are the bot's own routes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from hitl_chatops.bot.errors import ConfigError
from hitl_chatops.bot.protocol import ConditionRef, Request
from hitl_chatops.bot.reconciler import Reconciler
from hitl_chatops.bot.server import BotThread
from tests.conftest import AUTH
from tests.fakes.events import make_request
from tests.fakes.flyte import DOMAIN, PROJECT, FakeCondition, FakeFlyte
from tests.fakes.slack import FakeSlack
from tests.helpers import recorded_messages, signal_record
from tests.slack.slack_helpers import CHANNEL, click, find_element, post_signed, store, view_submission, wait_response

RUN = "r-deploy-1"
PARENT = "a0"


async def mirrored_event(
    bot: BotThread, fake: FakeFlyte, data_type: type, **fields: Any
) -> tuple[Request, FakeCondition]:
    """A condition registered in the fake control plane and an event mirroring it, posted to Slack."""
    kind = data_type.__name__
    condition = fake.add_condition(RUN, PARENT, f"gate_{kind}", data_type)
    ref = ConditionRef(project=PROJECT, domain=DOMAIN, run_name=RUN, action_name=PARENT, name=condition.name)
    request = make_request(
        store(), event_name=condition.name, data_type=kind, channels=[f"slack:{CHANNEL}"], condition=ref, **fields
    )
    await store().put_request(request)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{bot.url}/api/v1/events/{request.request_id}/notify", headers=AUTH) as reply,
    ):
        assert reply.status == 202
    await recorded_messages(store(), request.request_id)
    return request, condition


async def test_slack_click_signals_the_bool_condition_once(
    flyte_bot: Callable[..., BotThread], fake_flyte: FakeFlyte, fake_slack: FakeSlack
) -> None:
    bot = flyte_bot()
    request, condition = await mirrored_event(bot, fake_flyte, bool)
    [posted] = fake_slack.of("chat.postMessage")
    assert "Can also be answered in Flyte" in json.dumps(posted["blocks"])

    status, _ = await post_signed(bot.url, click("U0ALICE", find_element(posted["blocks"], "hitl_answer")[0]))
    assert status == 200
    assert (await signal_record(store(), request.request_id))["outcome"] == "signalled"
    assert fake_flyte.signals_to(condition) == [True]
    [signal] = fake_flyte.signals
    assert (signal.action_id.run.name, signal.parent_action_name) == (RUN, PARENT)


async def test_slack_modal_signals_a_float(
    flyte_bot: Callable[..., BotThread], fake_flyte: FakeFlyte, fake_slack: FakeSlack
) -> None:
    bot = flyte_bot()
    request, condition = await mirrored_event(bot, fake_flyte, float, min_value=0, max_value=1)
    _, body = await post_signed(bot.url, view_submission("U0ALICE", request.request_id, {"value": "2"}))
    assert "errors" in json.loads(body), "a refused value signals nothing"
    assert (await post_signed(bot.url, view_submission("U0ALICE", request.request_id, {"value": "0.25"})))[1] == ""
    await signal_record(store(), request.request_id)
    assert fake_flyte.signals_to(condition) == [0.25]


async def test_form_answer_signals_an_int(
    flyte_bot: Callable[..., BotThread], fake_flyte: FakeFlyte, fake_slack: FakeSlack
) -> None:
    bot = flyte_bot()
    request, condition = await mirrored_event(bot, fake_flyte, int)
    form = bot.service.form_url(request.request_id)
    async with aiohttp.ClientSession() as http:
        async with http.get(form) as page:
            assert "Can also be answered in Flyte" in await page.text()
        async with http.post(form, data={"value": "7"}) as reply:
            assert reply.status == 200
    await signal_record(store(), request.request_id)
    assert fake_flyte.signals_to(condition) == [7]


async def test_api_answer_signals_a_str(
    flyte_bot: Callable[..., BotThread], fake_flyte: FakeFlyte, fake_slack: FakeSlack
) -> None:
    bot = flyte_bot()
    request, condition = await mirrored_event(bot, fake_flyte, str)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{bot.url}/api/v1/events/{request.request_id}/response", headers=AUTH, json={"value": " eu-west "}
        ) as reply,
    ):
        assert reply.status == 201
    await signal_record(store(), request.request_id)
    assert fake_flyte.signals_to(condition) == ["eu-west"], "the value as validated, not as typed"


async def test_twenty_racing_clicks_signal_once(
    flyte_bot: Callable[..., BotThread], fake_flyte: FakeFlyte, fake_slack: FakeSlack
) -> None:
    bot = flyte_bot()
    request, condition = await mirrored_event(bot, fake_flyte, bool)
    [posted] = fake_slack.of("chat.postMessage")
    buttons = find_element(posted["blocks"], "hitl_answer")
    async with aiohttp.ClientSession() as http:
        clicks = [post_signed(bot.url, click(f"U0USER{i:02d}", buttons[i % 2]), session=http) for i in range(20)]
        assert {status for status, _ in await asyncio.gather(*clicks)} == {200}
    answer = await wait_response(request.request_id)
    await signal_record(store(), request.request_id)
    await asyncio.to_thread(bot.call, bot.service.background.drain())
    assert fake_flyte.signals_to(condition) == [answer.value]


async def test_control_plane_down_keeps_the_answer_and_the_reconciler_signals_later(
    flyte_bot: Callable[..., BotThread], fake_flyte: FakeFlyte, fake_slack: FakeSlack
) -> None:
    bot = flyte_bot()
    request, condition = await mirrored_event(bot, fake_flyte, bool)
    [posted] = fake_slack.of("chat.postMessage")
    fake_flyte.stop()

    status, body = await post_signed(bot.url, click("U0ALICE", find_element(posted["blocks"], "hitl_answer")[1]))
    assert status == 200 and body == ""
    assert (await wait_response(request.request_id)).value is False
    await asyncio.to_thread(bot.call, bot.service.background.drain())  # the failed signal has run its course
    assert await store().owed_signal_ids() == [request.request_id]
    assert fake_slack.of("chat.postEphemeral") == [], "the person is not told about Flyte's trouble"
    [update] = await fake_slack.wait_for("chat.update")
    assert "Reject" in json.dumps(update["blocks"])

    fake_flyte.start()  # back on the same port
    report = await asyncio.to_thread(bot.call, Reconciler(bot.service, 1).step())
    assert report.signalled == 1
    assert fake_flyte.signals_to(condition) == [False]
    assert await store().owed_signal_ids() == []
    await asyncio.to_thread(bot.call, Reconciler(bot.service, 1).step())
    assert len(fake_flyte.signals) == 1


async def test_timed_out_condition_is_recorded_not_retried(
    flyte_bot: Callable[..., BotThread], fake_flyte: FakeFlyte, fake_slack: FakeSlack
) -> None:
    bot = flyte_bot()
    request, condition = await mirrored_event(bot, fake_flyte, bool)
    fake_flyte.time_out(condition)
    [posted] = fake_slack.of("chat.postMessage")
    await post_signed(bot.url, click("U0ALICE", find_element(posted["blocks"], "hitl_answer")[0]))
    assert (await signal_record(store(), request.request_id))["outcome"] == "timed_out"
    assert await store().owed_signal_ids() == []
    await asyncio.to_thread(bot.call, Reconciler(bot.service, 1).step())
    assert fake_flyte.signals == [], "a condition that no longer waits is never signalled"


def test_unusable_flyte_credentials_stop_the_bot_at_start(start_bot: Callable[..., BotThread]) -> None:
    with pytest.raises(ConfigError, match="FLYTE_API_KEY") as refused:
        start_bot(flyte_api_key="not-an-api-key")
    assert "not-an-api-key" not in str(refused.value)
