"""Approval gates for agent tools end to end: real Flyte local runs, a real bot, answers over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import aiohttp
import flyte
import pytest

from hitl_chatops.bot.server import BotThread
from tests import gate_workflows as flows
from tests.fakes.flyte import Run
from tests.test_flyte_e2e import pending_event
from tests.test_lifecycle_e2e import post_json

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "agent_tool_gate.py"


@pytest.fixture(scope="module", autouse=True)
def flyte_local() -> None:
    flyte.init()


def written_events(store_url: str) -> list[Path]:
    """Every event in a local folder store, asked or not."""
    return list(Path(store_url.removeprefix("file://")).glob("hitl-requests/*"))


async def test_a_gated_async_task_approved_through_the_api_runs_and_returns_its_result(
    start_bot: Callable[..., BotThread],
) -> None:
    bot = start_bot()
    run = Run(flows.make_payment, 500.0, "acme")
    event = await pending_event(bot, "make_payment")
    request = await bot.service.store.get_request(event["request_id"])
    assert (request.heading, request.prompt, request.prompt_type) == (
        "Approve make_payment?",
        "Pay a supplier from the company account.",
        "text",
    )
    assert request.context == {"amount": 500.0, "to": "acme", "memo": ""}, "the call's arguments, defaults applied"
    assert list(event["answer_schema"]["properties"]) == ["approved", "reason"]
    assert run.running, "the task's body waits for the approval"

    url = f"{bot.url}/api/v1/events/{event['request_id']}/response"
    status, body = await post_json(url, {"value": {"approved": True}, "responder": "ci"})
    assert status == 201 and body["value"] == {"approved": True, "reason": ""}
    assert await run.finish() == "paid 500.0 to acme"


async def test_a_gated_sync_function_approved_in_the_form_runs(start_bot: Callable[..., BotThread]) -> None:
    bot = start_bot()
    run = Run(flows.archive_folder, "/data/2019")
    event = await pending_event(bot, "archive")
    async with aiohttp.ClientSession() as http:
        async with http.post(event["form_url"], data={"approved": "maybe", "reason": ""}) as reply:
            assert reply.status == 422 and "yes or no" in await reply.text()
        async with http.post(event["form_url"], data={"approved": "true", "reason": ""}) as reply:
            assert reply.status == 200
    assert await run.finish() == "archived /data/2019, kept 30 days"


async def test_when_false_runs_at_once_and_writes_no_event(start_bot: Callable[..., BotThread], store_url: str) -> None:
    start_bot()
    assert await Run(flows.small_refund).finish() == "refunded 20.0 on A-1"
    assert written_events(store_url) == []


async def test_editable_arguments_run_as_the_person_changed_them(start_bot: Callable[..., BotThread]) -> None:
    bot = start_bot()
    run = Run(flows.scale_service, "api", 12)
    event = await pending_event(bot, "scale_service")
    request = await bot.service.store.get_request(event["request_id"])
    assert request.context == {"service": "api", "replicas": 12, "region": "eu", "dry_run": False}
    assert request.initial == {"service": "api", "replicas": 12, "region": "eu", "dry_run": False}
    assert list(event["answer_schema"]["properties"]) == [
        "service",
        "replicas",
        "region",
        "dry_run",
        "approved",
        "reason",
    ]
    async with aiohttp.ClientSession() as http, http.get(event["form_url"]) as reply:
        page = await reply.text()
    assert 'name="replicas" type="number"' in page and 'value="12"' in page, "the call's values are proposed"

    url = f"{bot.url}/api/v1/events/{event['request_id']}/response"
    edited = {"approved": True, "service": "api", "replicas": 50, "region": "us"}
    status, body = await post_json(url, {"value": edited})
    assert status == 422 and body["errors"] == {"replicas": "Enter a whole number from 1 to 20."}
    assert run.running, "an edit outside the parameter's bounds is refused like any answer"

    status, _ = await post_json(url, {"value": edited | {"replicas": 4, "service": "  api-canary "}})
    assert status == 201
    assert json.loads(await run.finish()) == {"service": "api-canary", "replicas": 4, "region": "us", "dry_run": False}


async def test_an_unanswered_gate_rejects_by_default_and_approves_only_when_told(
    start_bot: Callable[..., BotThread],
) -> None:
    bot = start_bot()
    dropped, vacuumed, rotated = json.loads(await Run(flows.unattended).finish())
    rejected = json.loads(dropped)
    assert rejected["message"] == "drop_table(name='users') was not run: nobody approved it before the deadline."
    assert (rejected["timed_out"], rejected["via"], rejected["by"], rejected["reason"]) == (True, "timeout", None, None)
    assert vacuumed == "vacuumed users"
    assert rotated == (
        "RuntimeUserError ApprovalRejected: rotate_keys(service='billing') was not run: "
        "nobody approved it before the deadline."
    )
    outcome = await bot.service.store.get_response(rejected["request_id"])
    assert outcome is not None and outcome.value == {"approved": False, "reason": ""}


async def test_a_team_gate_writes_its_rules_into_the_event(start_bot: Callable[..., BotThread]) -> None:
    """The team-decision keywords reach the event as given; nobody votes here, so it ends at its deadline."""
    bot = start_bot()
    rejected = json.loads(await Run(flows.team_deploy).finish())
    assert rejected["timed_out"] is True and rejected["function"] == "deploy"
    request = await bot.service.store.get_request(rejected["request_id"])
    assert (request.approvals, request.requester) == (2, "dana@example.com")
    assert [(rule.name, rule.responders) for rule in request.rules] == [("sre", ["slack:S0SRE"])]


async def test_the_agent_example_runs_as_the_demo_runs_it(start_bot: Callable[..., BotThread]) -> None:
    """`hitl-chatops demo --workflow examples/agent_tool_gate.py`, the large payment rejected in the form."""
    from hitl_chatops.bot.cli import _load_workflow

    bot = start_bot()
    run = Run(_load_workflow(EXAMPLE))
    event = await pending_event(bot, "make_payment")
    assert event["context"] == {"amount": 4800.0, "to": "Globex Ltd", "memo": "Q4 GPU reservation"}
    async with aiohttp.ClientSession() as http:
        form = {"approved": "false", "reason": "Globex is not an approved supplier"}
        async with http.post(event["form_url"], data=form) as reply:
            assert reply.status == 200
    transcript = await run.finish()
    assert "make_payment(amount=120.0, to='Acme Corp', memo='office plants') -> paid 120.00 to Acme Corp" in transcript
    assert (
        "was rejected by someone with the form link via the web form and was not run. "
        'Their reason: "Globex is not an approved supplier"' in transcript
    )
