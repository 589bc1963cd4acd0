"""Structured answers and the lifecycle end to end: real Flyte local runs, a real bot, answers over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import flyte
import pytest

from hitl_chatops.bot.server import BotThread
from tests import lifecycle_workflows as flows
from tests.conftest import AUTH
from tests.fakes.flyte import Run
from tests.test_flyte_e2e import pending_event

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "expense_approval.py"


@pytest.fixture(scope="module", autouse=True)
def flyte_local() -> None:
    flyte.init()


async def post_json(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=AUTH) as reply:
        return reply.status, await reply.json()


async def outcome_of(bot: BotThread, request_id: str, seconds: float = 10) -> Any:
    for _ in range(int(seconds / 0.05)):
        if (response := await bot.service.store.get_response(request_id)) is not None:
            return response
        await asyncio.sleep(0.05)
    raise AssertionError(f"no outcome for {request_id}")


async def test_structured_answer_through_the_api(start_bot: Callable[..., BotThread]) -> None:
    bot = start_bot()
    run = Run(flows.decide_expense)
    event = await pending_event(bot, "expense_decision")
    assert event["data_type"] == "object"
    assert event["context"]["purpose"] == "GPU hours"
    assert list(event["answer_schema"]["properties"]) == ["approved", "approved_amount", "notes"]
    url = f"{bot.url}/api/v1/events/{event['request_id']}/response"

    status, body = await post_json(url, {"value": {"approved": "perhaps", "approved_amount": 1e6}})
    assert status == 422
    assert set(body["errors"]) == {"approved", "approved_amount"}
    assert "yes or no" in body["errors"]["approved"] and "from 0 to 10000" in body["errors"]["approved_amount"]
    assert run.running, "a refused answer leaves the run waiting"

    status, body = await post_json(url, {"value": {"approved": True, "approved_amount": 99.5}, "responder": "fin-bot"})
    assert status == 201 and body["value"] == {"approved": True, "approved_amount": 99.5, "notes": ""}
    result = json.loads(await run.finish())
    assert result["type"] == "ExpenseDecision"
    assert result["output"] == {"approved": True, "approved_amount": 99.5, "notes": ""}
    assert result["by"] == {"platform": "api", "user_id": "fin-bot", "user_name": "fin-bot"}
    assert result["via"] == "api" and result["request_id"] == event["request_id"] and result["at"]


async def test_human_step_runs_seed_004s_expense_workflow(start_bot: Callable[..., BotThread]) -> None:
    bot = start_bot()
    run = Run(flows.expense_workflow, flows.EXPENSE.model_dump_json())
    event = await pending_event(bot, "expense_approval")
    request = await bot.service.store.get_request(event["request_id"])
    assert (request.heading, request.prompt) == (
        "Expense Approval",
        "Review expense request and approve or adjust amount",
    )
    assert request.details == "Expense request details: 120.5 - GPU hours"
    assert request.context == flows.EXPENSE.model_dump()
    assert request.timeout_seconds == 600

    async with aiohttp.ClientSession() as http:
        form = {"approved": "true", "approved_amount": "80", "notes": "receipts for 80 only"}
        async with http.post(event["form_url"], data=form) as reply:
            assert reply.status == 200
            assert "Approved: Yes · Approved amount: 80 · Notes: receipts for 80 only" in await reply.text()
    summary = await run.finish()
    assert summary.startswith("approved 80.0 for EXP-7: ")
    result = json.loads(summary.split(": ", 1)[1])
    assert result["output"]["notes"] == "receipts for 80 only" and result["via"] == "web"


async def test_cancel_explicitly(start_bot: Callable[..., BotThread]) -> None:
    bot = start_bot()
    said = await Run(flows.cancel_then_wait).finish()
    request_id, message = said.split(" ", 1)
    assert message.startswith("EventCancelled: This event was cancelled by ")
    assert message.endswith(": build 42 was superseded.")
    outcome = await outcome_of(bot, request_id)
    assert (outcome.status, outcome.via, outcome.reason) == ("cancelled", "flyte", "build 42 was superseded")
    status, body = await post_json(f"{bot.url}/api/v1/events/{request_id}/response", {"value": True})
    assert status == 409 and "build 42 was superseded" in body["error"]


async def test_cancelling_the_waiting_task_cancels_the_event(start_bot: Callable[..., BotThread]) -> None:
    bot = start_bot()
    request_id = await Run(flows.give_up_waiting, 0.5).finish()
    outcome = await outcome_of(bot, request_id)
    assert outcome.cancelled and outcome.reason == "the task waiting for it was cancelled"
    async with aiohttp.ClientSession() as http, http.get(bot.service.form_url(request_id)) as reply:
        assert "This event was cancelled" in await reply.text()


async def test_on_timeout_returns_the_default_and_refuses_a_late_answer(start_bot: Callable[..., BotThread]) -> None:
    bot = start_bot()
    result = json.loads(await Run(flows.default_at_deadline, 1).finish())
    assert (result["output"], result["via"], result["by"]) == (3, "timeout", None)
    status, body = await post_json(f"{bot.url}/api/v1/events/{result['request_id']}/response", {"value": 5})
    assert status == 409
    assert "default answer was applied" in body["error"] and body["response"]["value"] == 3
    async with aiohttp.ClientSession() as http, http.get(bot.service.form_url(result["request_id"])) as reply:
        page = await reply.text()
    assert "This event has expired" in page and "the default answer 3 was applied" in page


async def test_the_expense_example_runs_as_the_demo_runs_it(start_bot: Callable[..., BotThread]) -> None:
    """`hitl-chatops demo --workflow examples/expense_approval.py`, answered through the form."""
    from hitl_chatops.bot.cli import _load_workflow

    bot = start_bot()
    main = _load_workflow(EXAMPLE)
    run = Run(main)
    event = await pending_event(bot, "expense_approval")
    async with aiohttp.ClientSession() as http:
        async with http.get(event["form_url"]) as reply:
            page = await reply.text()
        assert "Approve Expense Request" in page and "GPU hours for the Q4 retraining" in page
        form = {"approved": "true", "amount": "1000", "notes": ""}
        async with http.post(event["form_url"], data=form) as reply:
            assert reply.status == 200
    assert await run.finish() == "EXP-1042: approved 1000.0 by someone with the form link via web"


async def test_a_strict_model_with_an_enum_gets_the_answer_the_api_accepted(
    start_bot: Callable[..., BotThread],
) -> None:
    """issue 21: `ConfigDict(strict=True)` with an Enum field was accepted (201), then refused by `wait()`."""
    bot = start_bot()
    run = Run(flows.triage)
    event = await pending_event(bot, "triage")
    url = f"{bot.url}/api/v1/events/{event['request_id']}/response"
    status, body = await post_json(url, {"value": {"severity": "HIGH", "score": 1, "page_oncall": "yes"}})
    assert status == 201 and body["value"] == {"severity": "high", "score": 1.0, "page_oncall": True}
    assert json.loads(await run.finish()) == {"severity": "high", "score": 1.0, "page_oncall": True}


async def test_a_model_setting_the_schema_cannot_carry_is_refused_before_anything_is_written(
    start_bot: Callable[..., BotThread],
) -> None:
    """issue 21: `ConfigDict(str_min_length=5)` let the API store "ab", which `wait()` then refused."""
    bot = start_bot()
    said = await Run(flows.ask_short_reason).finish()
    assert said.startswith("TypeError: ShortReason: model_config sets str_min_length=5"), said
    assert await bot.service.store.pending_ids() == []
