"""Native Flyte conditions, task side: the plugin in a remote run, as a Flyte pod runs it.

Seam: flyte's runtime entrypoint `load_and_run_task` with a controller whose conditions live in
the fake control plane (tests/flyte_pod.py says exactly what stands in for the cluster). The
bot, its `flyte.remote` client, the plugin's own `flyte.remote` calls and Slack (fake Web API)
are real, over loopback.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import flyte
import pytest

import hitl_chatops.plugin._conditions as task_side
from hitl_chatops.bot.server import BotThread
from tests.conftest import AUTH
from tests.fakes.flyte import DOMAIN, PROJECT, FakeCondition, FakeFlyte
from tests.fakes.slack import FakeSlack
from tests.flyte_pod import Pod
from tests.helpers import signal_record
from tests.slack.slack_helpers import (
    api_answer,
    click,
    find_element,
    post_signed,
    rich_lines,
    store,
    view_submission,
    wait_response,
)


class Started(NamedTuple):
    pod: Pod
    posted: dict[str, Any]  # its Slack message
    condition: FakeCondition
    request_id: str


async def start_pod(fake_flyte: FakeFlyte, fake_slack: FakeSlack, workdir: Path, task: str = "deploy_gate") -> Started:
    """Run `task` as its pod would; its Slack message, its condition and its event once they exist."""
    module = "tests.slack.slack_workflows" if task == "deploy_gate" else "tests.slack.flyte_pod_workflows"
    pod = Pod(fake_flyte, module, task, workdir)
    [posted] = await fake_slack.wait_for("chat.postMessage", seconds=30)
    [condition] = fake_flyte.conditions.values()
    return Started(pod, posted, condition, posted["blocks"][-1]["block_id"].removeprefix("hitl|"))


async def refused_in_task(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    """The task's log line for a value signalled in Flyte that the event refused, once it is written."""
    for _ in range(400):
        for record in caplog.records:
            if "refused" in record.getMessage() and record.name.endswith("_conditions"):
                return record
        await asyncio.sleep(0.05)
    raise AssertionError("the task never saw the value signalled in Flyte")


@pytest.fixture(autouse=True)
def in_cluster(fake_flyte: FakeFlyte) -> None:
    """What `init_in_cluster` gives a pod: a client for the control plane and the run's project."""
    flyte.init(endpoint=fake_flyte.endpoint, insecure=True, project=PROJECT, domain=DOMAIN)


async def test_event_answered_in_slack_signals_the_condition_it_mirrors(
    flyte_bot: Callable[..., BotThread], fake_flyte: FakeFlyte, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    bot = flyte_bot()
    pod, posted, condition, request_id = await start_pod(fake_flyte, fake_slack, tmp_path)
    mirrored = (await store().get_request(request_id)).condition
    assert mirrored is not None and mirrored.model_dump() == {
        "project": PROJECT,
        "domain": DOMAIN,
        "run_name": "r-remote-1",
        "action_name": "a0",
        "name": "deploy_gate",
    }
    assert condition.name == "deploy_gate" and condition.parent == "a0" and condition.data_type is bool
    run_link = f"/v2/domain/{DOMAIN}/project/{PROJECT}/runs/r-remote-1"
    assert f"{run_link}|r-remote-1>" in json.dumps(posted["blocks"]), "the run's Flyte UI link"

    await post_signed(bot.url, click("U0ALICE", find_element(posted["blocks"], "hitl_answer")[0]))
    assert await pod.finish() is True
    assert fake_flyte.signals_to(condition) == [True], "signalled once"
    assert (await signal_record(store(), request_id))["outcome"] == "signalled", "by the bot, which records it"


async def test_event_answered_in_flyte_updates_every_copy(
    flyte_bot: Callable[..., BotThread], fake_flyte: FakeFlyte, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    bot = flyte_bot()
    pod, posted, condition, request_id = await start_pod(fake_flyte, fake_slack, tmp_path)

    fake_flyte.signal_from_ui(condition, False, who="Dana")
    assert await pod.finish() is False
    response = await wait_response(request_id)
    assert (response.via, response.value, response.responder_label) == ("flyte", False, "Dana in Flyte")
    [update] = await fake_slack.wait_for("chat.update")
    assert update["text"].startswith("deploy_gate: answered Reject by Dana in Flyte at")
    lines = rich_lines(update["blocks"])
    assert "Answered by Dana in Flyte (Flyte)" in lines and "Via Flyte" in lines

    await post_signed(bot.url, click("U0BOB", find_element(posted["blocks"], "hitl_answer")[0]))
    [told] = await fake_slack.wait_for("chat.postEphemeral")
    assert "by Dana in Flyte" in told["text"] and "via Flyte" in told["text"]
    assert fake_flyte.signals == [], "an answer from Flyte is not signalled back"


async def test_task_signals_the_condition_when_the_bot_has_no_flyte_connection(
    slack_bot: Callable[..., BotThread],
    fake_flyte: FakeFlyte,
    fake_slack: FakeSlack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(task_side, "SETTLE_SECONDS", 0.2)  # how long the task leaves the bot to signal
    bot = slack_bot()
    pod, posted, condition, _ = await start_pod(fake_flyte, fake_slack, tmp_path)
    await post_signed(bot.url, click("U0ALICE", find_element(posted["blocks"], "hitl_answer")[1]))
    assert await pod.finish() is False
    assert fake_flyte.signals_to(condition) == [False], "no condition is left paused"


async def test_ask_posts_a_native_condition_and_signals_the_answer(
    flyte_bot: Callable[..., BotThread], fake_flyte: FakeFlyte, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    bot = flyte_bot()
    pod, posted, condition, request_id = await start_pod(fake_flyte, fake_slack, tmp_path, "replicas")
    assert "How many replicas?" in json.dumps(posted["blocks"])
    assert find_element(posted["blocks"], "hitl_modal"), "an int is asked in a modal"

    _, body = await post_signed(bot.url, view_submission("U0ALICE", request_id, {"value": "11"}))
    assert json.loads(body)["errors"] == {"hitl_value": "Enter a whole number from 1 to 10."}
    assert (await post_signed(bot.url, view_submission("U0ALICE", request_id, {"value": "3"})))[1] == ""
    assert await pod.finish() == 3
    assert fake_flyte.signals_to(condition) == [3]


async def test_a_value_from_flyte_the_event_refuses_keeps_the_question_open_in_chat(
    flyte_bot: Callable[..., BotThread],
    fake_flyte: FakeFlyte,
    fake_slack: FakeSlack,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = flyte_bot()
    pod, _, condition, request_id = await start_pod(fake_flyte, fake_slack, tmp_path, "replicas")
    fake_flyte.signal_from_ui(condition, 42)  # outside 1..10: Flyte's UI does not know the bounds
    await refused_in_task(caplog)
    assert pod.running and await store().get_response(request_id) is None
    assert (await post_signed(bot.url, view_submission("U0ALICE", request_id, {"value": "3"})))[1] == ""
    assert await pod.finish() == 3
    assert (await wait_response(request_id)).via == "slack"


# -- structured answers: a `str` condition holding the answer's JSON -------------------------


async def test_structured_answer_signalled_in_flyte_as_json_is_validated_and_returned(
    flyte_bot: Callable[..., BotThread], fake_flyte: FakeFlyte, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    flyte_bot()
    pod, _, condition, request_id = await start_pod(fake_flyte, fake_slack, tmp_path, "approve_spend")
    assert condition.data_type is str, "a structured event is mirrored as a str condition"

    fake_flyte.signal_from_ui(condition, '{"approved": true, "amount": "40"}', who="Dana")
    answer = {"approved": True, "amount": 40.0, "notes": ""}
    assert json.loads(await pod.finish()) == answer, "validated like any answer: defaults filled, types converted"
    response = await wait_response(request_id)
    assert (response.via, response.value, response.responder_label) == ("flyte", answer, "Dana in Flyte")
    [update] = await fake_slack.wait_for("chat.update")
    assert "Dana in Flyte" in update["text"]
    assert fake_flyte.signals == [], "an answer from Flyte is not signalled back"


async def test_structured_json_from_flyte_the_event_refuses_is_logged_per_field_and_chat_still_answers(
    flyte_bot: Callable[..., BotThread],
    fake_flyte: FakeFlyte,
    fake_slack: FakeSlack,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = flyte_bot()
    pod, _, condition, request_id = await start_pod(fake_flyte, fake_slack, tmp_path, "approve_spend")

    fake_flyte.signal_from_ui(condition, '{"approved": true, "amount": 500}')  # over the model's 100
    refused = await refused_in_task(caplog)
    assert set(refused.errors) == {"amount"}, "the errors name the field"
    assert pod.running and await store().get_response(request_id) is None
    assert await api_answer(bot, request_id, {"value": {"approved": False, "amount": 0}}) == 201
    assert json.loads(await pod.finish()) == {"approved": False, "amount": 0.0, "notes": ""}
    assert (await wait_response(request_id)).via == "api"


async def test_structured_answer_in_chat_signals_its_json(
    flyte_bot: Callable[..., BotThread], fake_flyte: FakeFlyte, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    bot = flyte_bot()
    pod, _, condition, request_id = await start_pod(fake_flyte, fake_slack, tmp_path, "approve_spend")

    answer = {"approved": True, "amount": 12.5, "notes": "within budget"}
    assert await api_answer(bot, request_id, {"value": answer}) == 201
    assert json.loads(await pod.finish()) == answer
    [signalled] = fake_flyte.signals_to(condition)
    assert json.loads(signalled) == answer, "the condition holds the answer's JSON"


# -- outcomes that are not a person's answer signal nothing ----------------------------------


async def test_a_cancelled_event_leaves_its_condition_unsignalled(
    flyte_bot: Callable[..., BotThread], fake_flyte: FakeFlyte, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    bot = flyte_bot()
    pod, _, condition, request_id = await start_pod(fake_flyte, fake_slack, tmp_path)
    url = f"{bot.url}/api/v1/events/{request_id}/cancel"
    async with aiohttp.ClientSession() as http, http.post(url, headers=AUTH, json={"reason": "rolled back"}) as reply:
        assert reply.status == 200
    with pytest.raises(AssertionError, match="rolled back"):
        await pod.finish()
    assert fake_flyte.signals == [], "a condition holds only a value someone gave"
    assert not condition.resolved.is_set()


async def test_the_default_at_the_deadline_leaves_its_condition_to_time_out(
    flyte_bot: Callable[..., BotThread], fake_flyte: FakeFlyte, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    flyte_bot()
    pod, _, condition, request_id = await start_pod(fake_flyte, fake_slack, tmp_path, "gate_with_default")
    assert await pod.finish() is False
    assert (await wait_response(request_id)).defaulted
    assert fake_flyte.signals == [], "nobody answered: the condition times out, it is not signalled"
    assert not condition.resolved.is_set()
