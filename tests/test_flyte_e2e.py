"""End to end with real Flyte local runs: the workflow pauses, a person answers over HTTP, it resumes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import aiohttp
import flyte
import pytest

from hitl_chatops.bot.protocol import Responder, Response, utcnow
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests import workflows
from tests.conftest import AUTH
from tests.fakes.flyte import Run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session", autouse=True)
def flyte_local() -> None:
    flyte.init()


async def pending_event(bot: BotThread, name: str, wait_seconds: float = 20) -> dict[str, Any]:
    """Wait until the run has created its event, then return it as the pending API lists it."""
    async with aiohttp.ClientSession() as http:
        for _ in range(int(wait_seconds / 0.1)):
            async with http.get(f"{bot.url}/api/v1/events?status=pending", headers=AUTH) as reply:
                events = [e for e in (await reply.json())["events"] if e["event_name"] == name]
            if events:
                return events[0]
            await asyncio.sleep(0.1)
    raise AssertionError(f"event {name} never appeared")


async def submit(url: str, value: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.post(url, data={"value": value}) as reply:
        return reply.status, await reply.text()


async def test_seed_workflow_resumes_with_the_answer(start_bot: Callable[..., BotThread]) -> None:
    bot = start_bot()
    run = Run(workflows.add_with_human)
    event = await pending_event(bot, "integer_input_event")
    assert event["data_type"] == "int" and event["prompt"] == "What should I add to x?"

    status, page = await submit(event["form_url"], "eight")
    assert status == 422 and "not a whole number" in page
    await asyncio.sleep(5 * workflows.POLL)
    assert run.running, "a refused value must leave the run waiting"

    status, _ = await submit(event["form_url"], "8")
    assert status == 200
    assert await run.finish() == 50
    request = await bot.service.store.get_request(event["request_id"])
    assert request.run.run_name, "the request records which run asked"


async def test_bool_maybe_is_refused(start_bot: Callable[..., BotThread]) -> None:
    bot = start_bot()
    run = Run(workflows.approve_deploy)
    event = await pending_event(bot, "deploy_gate")
    status, page = await submit(event["form_url"], "maybe")
    assert status == 422 and "yes or no" in page
    await asyncio.sleep(5 * workflows.POLL)
    assert run.running
    status, _ = await submit(event["form_url"], "false")
    assert status == 200
    assert await run.finish() is False


async def test_timeout_raises_timeout_error(start_bot: Callable[..., BotThread]) -> None:
    start_bot()
    outcome = await Run(workflows.wait_briefly, 1).finish()
    assert outcome.startswith("TimeoutError: Event 'short_fuse'") and "timed out after 1 seconds" in outcome


async def test_an_answer_accepted_at_the_deadline_and_landing_after_it_is_the_outcome(
    start_bot: Callable[..., BotThread],
) -> None:
    """The bot checks the deadline, then writes: an answer checked just before it can land just after
    it, and the bot then treats it as the outcome (and told its author "saved"). wait() raised
    TimeoutError at the deadline without looking again, so the run and the chat disagreed."""
    bot = start_bot()
    run = Run(workflows.wait_briefly, 1)
    event = await pending_event(bot, "short_fuse")
    store = Store(bot.settings.store)
    request = await store.get_request(event["request_id"])
    await asyncio.sleep(max(0.0, (request.deadline - utcnow()).total_seconds()) + 0.3)
    late = Response(
        request_id=request.request_id,
        value="go",
        data_type="str",
        responder=Responder(platform="api", user_id="ci", user_name="ci"),
        responded_at=request.deadline - timedelta(milliseconds=100),
        via="api",
    )
    await store.put_response(late)
    assert await run.finish() == "answered"


async def test_unhandled_timeout_fails_the_run(start_bot: Callable[..., BotThread]) -> None:
    start_bot()
    with pytest.raises(Exception, match=r"TimeoutError|timed out"):
        await Run(workflows.wait_unhandled).finish()


async def test_local_run_without_a_bot_starts_one_in_process(capfd: pytest.CaptureFixture[str]) -> None:
    """No HITL_CHATOPS_URL: the plugin serves the form itself on loopback and prints the link."""
    run = Run(workflows.approve_deploy)
    link = ""
    for _ in range(200):
        printed = capfd.readouterr().err
        link = next((w for w in printed.split() if "/form/" in w), "")
        if link:
            break
        await asyncio.sleep(0.1)
    assert link.startswith("http://127.0.0.1:"), "the form link is printed for the person running the workflow"
    status, _ = await submit(link, "true")
    assert status == 200
    assert await run.finish() is True


async def test_new_event_outside_a_task_serves_its_own_form(capfd: pytest.CaptureFixture[str]) -> None:
    """A plain script (no Flyte task, no bot configured) still gets a working, printed form link."""
    import hitl_chatops.plugin as hitl

    event = await hitl.new_event.aio("script_gate", data_type=bool, prompt="Go?", poll_interval_seconds=0.1)
    assert event.form_url and event.form_url.startswith("http://127.0.0.1:")
    assert event.form_url in capfd.readouterr().err
    status, _ = await submit(event.form_url, "yes")
    assert status == 200
    assert await event.wait.aio() is True


async def test_a_form_answer_wakes_a_slowly_polling_local_run(capfd: pytest.CaptureFixture[str]) -> None:
    """The in-process bot tells the waiting task at once: polling every 30 s, the run still ends
    within 10 s of the answer (without the wake-up it would sleep out its interval)."""
    run = Run(workflows.approve_slowly)
    link = ""
    for _ in range(200):
        link = next((w for w in capfd.readouterr().err.split() if "/form/" in w), "")
        if link:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # the task is asleep in its first poll interval by now
    status, _ = await submit(link, "true")
    assert status == 200
    assert await run.finish(wait_seconds=10) is True
