"""Issue 13 through Slack and the API: choices keep their type, and no unreadable number is ever stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import hitl_chatops.plugin as hitl
from hitl_chatops.bot.server import BotThread
from tests.fakes.events import make_request
from tests.fakes.slack import FakeSlack
from tests.slack.slack_helpers import (
    api_answer,
    click,
    create_event,
    find_element,
    post_signed,
    store,
    view_submission,
    wait_response,
)

BotFactory = Callable[..., BotThread]


@pytest.mark.parametrize(
    ("data_type", "choices", "pick", "expected"),
    [(str, ["yes", "no", "later"], 0, "yes"), (str, ["on", "off", "1"], 2, "1"), (int, [0, 1, 5], 1, 1)],
)
async def test_choices_round_trip_as_given(
    slack_bot: BotFactory, fake_slack: FakeSlack, data_type: type, choices: list[Any], pick: int, expected: Any
) -> None:
    bot = slack_bot()
    request_id = await create_event("pick", data_type, choices=choices)
    on_disk = json.loads(store().fs.cat_file(f"{store().root}/hitl-requests/{request_id}/request.json"))
    assert on_disk["choices"] == choices and [type(c) for c in on_disk["choices"]] == [type(c) for c in choices]
    (post,) = await fake_slack.wait_for("chat.postMessage")
    buttons = find_element(post["blocks"], "hitl_answer")
    assert [b["text"]["text"] for b in buttons] == [str(c) for c in choices], "no Approve/Reject for look-alikes"
    assert (await post_signed(bot.url, click("U0ALICE", buttons[pick])))[0] == 200
    response = await wait_response(request_id)
    assert response.value == expected and type(response.value) is type(expected)
    event = hitl.Event(await store().get_request(request_id), data_type, 0.01, None)
    assert await event.wait.aio() == expected


@pytest.mark.parametrize("huge", ["1e19", "1e30", str(2**64)])
async def test_numbers_wait_would_refuse_are_never_stored(
    slack_bot: BotFactory, fake_slack: FakeSlack, huge: str
) -> None:
    bot = slack_bot()
    request_id = await create_event("rows", int)
    await fake_slack.wait_for("chat.postMessage")
    _, body = await post_signed(
        bot.url, view_submission("U0ALICE", request_id, {"type": "number_input", "value": huge})
    )
    assert json.loads(body)["response_action"] == "errors"
    assert await api_answer(bot, request_id, {"value": float(huge)}) == 422
    assert await api_answer(bot, request_id, {"value": int(float(huge))}) == 422
    assert await store().get_response(request_id) is None


async def test_numbers_table_through_a_slack_modal(slack_bot: BotFactory) -> None:
    """issue 21: a modal's number_input sends text; "٣" or "1_0" must be refused like everywhere else."""
    from tests.test_answers import NUMBERS

    bot = slack_bot()
    for (data_type, text), expected in NUMBERS.items():
        request = make_request(store(), data_type=data_type)
        await store().put_request(request)
        state = {"type": "number_input" if data_type == "int" else "plain_text_input", "value": text}
        status, body = await post_signed(bot.url, view_submission("U0ALICE", request.request_id, state))
        assert status == 200
        if expected is None:
            assert json.loads(body)["response_action"] == "errors", text
            assert await store().get_response(request.request_id) is None
        else:
            assert (await wait_response(request.request_id)).value == expected, text
