"""`ask` on a native condition in a real Flyte local run: answered through hitl-chatops alone."""

from __future__ import annotations

from collections.abc import Callable

import flyte
import pytest

from hitl_chatops.bot.server import BotThread
from tests.fakes.flyte import Run
from tests.slack import flyte_pod_workflows
from tests.test_flyte_e2e import pending_event, submit

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", autouse=True)
def flyte_local() -> None:
    flyte.init()


async def test_ask_posts_the_condition_and_returns_the_checked_answer(start_bot: Callable[..., BotThread]) -> None:
    bot = start_bot()
    run = Run(flyte_pod_workflows.replicas)
    event = await pending_event(bot, "replicas")
    assert (event["data_type"], event["prompt"], event["min_value"]) == ("int", "How many replicas?", 1)

    status, page = await submit(event["form_url"], "12")
    assert status == 422 and "from 1 to 10" in page
    assert (await submit(event["form_url"], "4"))[0] == 200
    assert await run.finish() == 4
