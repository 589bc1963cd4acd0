"""Who asked, in a remote run: the run's owner as Flyte records it (`ActionMetadata.executed_by`) becomes
the requester of a team decision that names none.

Seam: flyte's runtime entrypoint `load_and_run_task` (tests/flyte_pod.py), the plugin's real
`flyte.remote` client, and the fake control plane's GetRunDetails over ConnectRPC (tests/flyte_fake.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import flyte
import pytest

from hitl_chatops.bot.protocol import Request
from hitl_chatops.bot.server import BotThread
from tests import team_workflows
from tests.conftest import AUTH
from tests.fakes.flyte import DOMAIN, PROJECT, FakeFlyte
from tests.flyte_pod import Pod


@pytest.fixture(autouse=True)
def in_cluster(fake_flyte: FakeFlyte) -> Iterator[None]:
    """What `init_in_cluster` gives a pod: a client for the control plane and the run's project."""
    flyte.init(endpoint=fake_flyte.endpoint, insecure=True, project=PROJECT, domain=DOMAIN)
    yield


async def asked(bot: BotThread, fake: FakeFlyte, task: str, workdir: Path) -> tuple[Pod, Request]:
    """Run `task` as its pod would; the event it created, once it exists."""
    pod = Pod(fake, "tests.team_workflows", task, workdir)
    store = bot.service.store
    for _ in range(600):
        if ids := await store.pending_ids():
            return pod, await store.get_request(ids[0])
        await asyncio.sleep(0.05)
    raise AssertionError("the task created no event")


async def cancel(bot: BotThread, pod: Pod, request: Request) -> None:
    """End the event (these tests are about who asked, not the vote) and the pod with it."""
    url = f"{bot.url}/api/v1/events/{request.request_id}/cancel"
    async with aiohttp.ClientSession() as http, http.post(url, headers=AUTH, json={"reason": "done"}) as reply:
        assert reply.status == 200
    with pytest.raises(AssertionError, match="cancelled"):
        await pod.finish()


async def test_the_runs_owner_becomes_the_requester_of_a_team_decision(
    bot: BotThread, fake_flyte: FakeFlyte, tmp_path: Path
) -> None:
    fake_flyte.start_runs_as(email="dana@example.com")
    pod, request = await asked(bot, fake_flyte, "two_approvals", tmp_path)
    assert request.requester == "dana@example.com"
    assert [run_id.name for run_id in fake_flyte.run_details_asked] == ["r-remote-1"]
    assert fake_flyte.conditions == {}, "a team decision is not mirrored: Flyte's UI takes no votes"
    await cancel(bot, pod, request)


async def test_a_run_started_by_an_application_has_no_requester(
    bot: BotThread, fake_flyte: FakeFlyte, tmp_path: Path
) -> None:
    fake_flyte.start_runs_as(application="nightly-trigger")
    pod, request = await asked(bot, fake_flyte, "two_approvals", tmp_path)
    assert request.requester is None and request.approvals == 2
    await cancel(bot, pod, request)


async def test_a_requester_the_task_names_is_kept(bot: BotThread, fake_flyte: FakeFlyte, tmp_path: Path) -> None:
    fake_flyte.start_runs_as(email="dana@example.com")
    pod, request = await asked(bot, fake_flyte, "named_requester", tmp_path)
    assert request.requester == "slack:U0ERIN"
    assert fake_flyte.run_details_asked == [], "Flyte is not asked"
    await cancel(bot, pod, request)


async def test_a_simple_event_stays_answerable_by_whoever_started_the_run(
    bot: BotThread, fake_flyte: FakeFlyte, tmp_path: Path
) -> None:
    fake_flyte.start_runs_as(email="dana@example.com")
    pod, request = await asked(bot, fake_flyte, "release_gate", tmp_path)
    assert request.requester is None and not request.team_event
    assert fake_flyte.run_details_asked == [], "Flyte is not asked"
    [condition] = fake_flyte.conditions.values()
    fake_flyte.signal_from_ui(condition, True, who="Dana")
    assert await pod.finish() is True


async def test_ask_does_not_take_a_team_decision_from_a_value_signalled_in_flyte(
    bot: BotThread, fake_flyte: FakeFlyte, tmp_path: Path
) -> None:
    fake_flyte.start_runs_as(email="dana@example.com")
    pod, request = await asked(bot, fake_flyte, "ask_team", tmp_path)
    assert request.requester == "dana@example.com" and request.condition is not None, "the bot signals the decision"
    [condition] = fake_flyte.conditions.values()
    fake_flyte.signal_from_ui(condition, True, who="Dana")  # one person, in Flyte's UI: not a vote
    await asyncio.sleep(20 * team_workflows.POLL)  # the task polls the store; Flyte's value is not awaited
    assert pod.running and await bot.service.store.get_response(request.request_id) is None
    await cancel(bot, pod, request)


async def test_a_condition_the_policy_approves_is_signalled_by_the_task(
    bot: BotThread, fake_flyte: FakeFlyte, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"rules:\n  - name: dev\n    match: {{domain: {DOMAIN}}}\n    auto_approve: true\n")
    monkeypatch.setenv("HITL_CHATOPS_POLICY", str(policy))
    pod = Pod(fake_flyte, "tests.team_workflows", "ask_gate", tmp_path / "pod")
    assert await pod.finish() is True
    [condition] = fake_flyte.conditions.values()
    assert fake_flyte.signals_to(condition) == [True], "by the task: no bot saw the approval"
    [record], _ = await bot.service.store.outcomes("completed", limit=10)
    assert (record.via, record.value) == ("policy", True)
