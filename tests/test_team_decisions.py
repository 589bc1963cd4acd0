"""Team decisions end to end: real Flyte local runs wait on them, people vote through the fake chat
platform (tests/fakechat.py, a real socket) and the API, and the bot counts, decides, reminds and escalates.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import flyte
import pytest

from hitl_chatops.bot import registry
from hitl_chatops.bot.protocol import Responder, Vote, utcnow
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests import gate_workflows, team_workflows
from tests.conftest import AUTH
from tests.fakechat import NAME, REGISTRATION, FakeChatApi
from tests.fakes.events import make_request
from tests.fakes.flyte import Run
from tests.helpers import recorded_messages
from tests.test_flyte_e2e import pending_event
from tests.test_lifecycle_e2e import post_json
from tests.test_platform_seam import answer, api_call, latest_texts, step

pytestmark = pytest.mark.e2e
ROOM = team_workflows.ROOM
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "release_gate.py"


@pytest.fixture(scope="module", autouse=True)
def flyte_local() -> None:
    flyte.init()


@pytest.fixture
def api() -> Iterator[FakeChatApi]:
    with FakeChatApi.serving() as fake:
        yield fake


@pytest.fixture
def chat_bot(api: FakeChatApi, start_bot: Callable[..., BotThread]) -> Iterator[Callable[..., BotThread]]:
    """Start bots with the fake platform on (their reconcilers stepped by the tests), on one store."""
    registry.register(REGISTRATION)
    try:
        yield lambda **settings: start_bot(fakechat_api_url=api.url, reconcile_seconds=0, **settings)
    finally:
        registry.unregister(NAME)


@pytest.fixture
def bot(chat_bot: Callable[..., BotThread]) -> BotThread:
    return chat_bot()


async def settled(bot: BotThread, request_id: str) -> None:
    """Once the event is off the pending list (the bot settles an outcome after its reply)."""
    for _ in range(200):
        if request_id not in await bot.service.store.pending_ids():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{request_id} is still pending")


async def act(bot: BotThread, request_id: str, user: str, action: str, **fields: Any) -> dict[str, Any]:
    """A team decision's button in the fake platform: approve, reject, propose or delegate."""
    body = {"request_id": request_id, "user": user, "action": action, **fields}
    return await api_call(bot, "/fakechat/actions", body, token=False)


async def shown(bot: BotThread, request_id: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{bot.url}/api/v1/events/{request_id}", headers=AUTH) as r:
        assert r.status == 200, await r.text()
        return dict(await r.json())


async def asked(bot: BotThread, api: FakeChatApi, name: str) -> tuple[str, str]:
    """The event a run created, once its copy is posted: its id and the copy's id."""
    event = await pending_event(bot, name)
    await recorded_messages(Store(bot.settings.store), event["request_id"])
    return event["request_id"], api.posts[0]["id"]


async def test_two_approvals_decide_and_every_copy_shows_the_count(bot: BotThread, api: FakeChatApi) -> None:
    run = Run(team_workflows.team_gate, 2, [])
    request_id, copy = await asked(bot, api, "team_gate")

    first = await answer(bot, request_id, "u1", "true")
    assert (first["saved"], first["decided"], first["note"]) == (
        True,
        False,
        "Counted your approval: 1 of 2 approvals.",
    )
    await api.wait_for(
        lambda: latest_texts(api).get(copy, "").startswith("team_gate: 1 of 2 approvals; approved by u1")
    )
    twice = await answer(bot, request_id, "u1", "true")
    assert not twice["saved"] and twice["error"].startswith("You already approved this at ")

    state = await shown(bot, request_id)
    assert (state["state"], state["label"], state["outcome"]) == ("deciding", "1 of 2 approvals", None)
    assert state["decision"]["approvals"] == {"have": 1, "need": 2} and state["decision"]["anyone"]
    assert [vote["voter"]["user_id"] for vote in state["decision"]["votes"]] == ["u1"]
    async with aiohttp.ClientSession() as http:
        form = (await shown(bot, request_id))["form_url"]
        async with http.get(form) as page:
            assert page.status == 200 and "1 of 2 approvals" in await page.text()
        async with http.post(form, data={"value": "true"}) as page:
            assert page.status == 403 and "not with a shared form link" in await page.text()

    second = await answer(bot, request_id, "u2", "true")
    assert (
        second["saved"] and second["decided"] and second["note"].startswith("Decided: Approve, approved by u1 and u2")
    )
    assert await run.finish() == {
        "value": True,
        "by": "u2",
        "votes": [["u1", "approve", None], ["u2", "approve", None]],
        "history": ["vote", "vote"],
    }
    await api.wait_for(lambda: latest_texts(api).get(copy) == "team_gate: True by u2")
    late = await answer(bot, request_id, "u3", "true")
    assert late["error"].startswith("Decided already: approved by u1 and u2 at ")
    assert (await shown(bot, request_id))["state"] == "answered"


async def test_a_reject_vetoes_with_its_reason(bot: BotThread, api: FakeChatApi) -> None:
    run = Run(team_workflows.team_gate, 3, [])
    request_id, copy = await asked(bot, api, "team_gate")
    assert (await answer(bot, request_id, "u1", "true"))["saved"]
    vetoed = await act(bot, request_id, "u2", "reject", reason="the error budget is spent")
    assert vetoed["saved"] and vetoed["decided"] and vetoed["value"] is False
    assert await run.finish() == {
        "value": False,
        "by": "u2",
        "votes": [["u1", "approve", None], ["u2", "reject", "the error budget is spent"]],
        "history": ["vote", "vote"],
    }
    state = await shown(bot, request_id)
    assert (state["state"], state["label"]) == ("rejected", "Rejected")
    assert state["outcome"]["reason"] == "the error budget is spent"
    await api.wait_for(lambda: latest_texts(api).get(copy) == "team_gate: False by u2")
    late = await answer(bot, request_id, "u3", "true")
    assert late["error"].startswith("Decided already: rejected by u2 at ") and "error budget" in late["error"]


async def test_the_requester_is_refused_even_by_e_mail(bot: BotThread, api: FakeChatApi) -> None:
    api.users["erin@example.com"] = "u9"  # the platform's directory: erin's account here is u9
    run = Run(team_workflows.team_gate, 1, [], "erin@example.com")
    request_id, _ = await asked(bot, api, "team_gate")
    own = await answer(bot, request_id, "u9", "true")
    assert own == {"saved": False, "error": "You asked for this decision, so someone else must approve it."}
    handed = await act(bot, request_id, "u1", "delegate", to="u9")
    assert handed["error"] == "u9 asked for this decision, so they cannot approve it; choose someone else."
    assert (await answer(bot, request_id, "u1", "true"))["decided"]
    assert (await run.finish())["by"] == "u1"


async def test_a_value_proposed_rejected_with_a_reason_proposed_again_and_confirmed(
    bot: BotThread, api: FakeChatApi
) -> None:
    run = Run(team_workflows.batch_size)
    request_id, copy = await asked(bot, api, "batch_size")

    proposed = await answer(bot, request_id, "u1", "40")
    assert proposed["note"] == "Proposed 40: 1 of 2 approvals; others confirm or reject it."
    await api.wait_for(lambda: latest_texts(api).get(copy, "").startswith("batch_size: Proposed 40 by u1 at "))
    other = await answer(bot, request_id, "u3", "50")
    assert other["error"].startswith("u1 proposed 40 at ") and other["error"].endswith("to propose another value.")
    own = await act(bot, request_id, "u1", "approve")
    assert own["error"] == "You proposed this value, which counts as your approval; others confirm it."

    rejected = await act(bot, request_id, "u2", "reject", reason="too many for one GPU", round=1)
    assert rejected["note"] == "Rejected the proposal; a new value may be proposed now."
    nothing = await act(bot, request_id, "u3", "approve")
    assert nothing["error"].startswith("Nothing is proposed just now")
    assert (await answer(bot, request_id, "u2", "30"))["note"].startswith("Proposed 30")
    stale = await act(bot, request_id, "u3", "approve", round=1)
    assert stale["error"] == "That proposal was rejected; the one to answer now is 30 by u2."

    state = (await shown(bot, request_id))["decision"]
    assert (state["round"], state["proposal"]["value"], state["approvals"]) == (2, 30, {"have": 1, "need": 2})
    confirmed = await act(bot, request_id, "u3", "approve", round=2)
    assert confirmed["decided"] and confirmed["value"] == 30
    assert await run.finish() == {
        "value": 30,
        "by": "u3",
        "votes": [["u2", "approve", None], ["u3", "approve", None]],
        "history": ["proposal", "vote", "proposal", "vote"],
    }


async def test_reminders_name_who_still_has_to_act_once_across_replicas_and_stop_at_the_decision(
    chat_bot: Callable[..., BotThread], api: FakeChatApi
) -> None:
    bot, other = chat_bot(), chat_bot()
    store = Store(bot.settings.store)
    people = ["fakechat:u1", "fakechat:u2"]
    # Asked 70 s ago with a reminder a minute (the plugin's minimum): the first one is due.
    request = make_request(
        store, now=utcnow() - timedelta(seconds=70), channels=[ROOM], approvals=2, responders=people, remind_every=60
    )
    await store.put_request(request)
    await api_call(bot, f"/api/v1/events/{request.request_id}/notify", {})
    [copy] = await recorded_messages(store, request.request_id)
    assert (await answer(bot, request.request_id, "u1", "true"))["note"] == "Counted your approval: 1 of 2 approvals."

    await step(bot)
    await step(other)
    assert api.replies == [
        {
            "id": copy.key,
            "text": "Reminder: 1 of 2 approvals so far; waiting for fakechat:u2.",
            "mentions": ["fakechat:u2"],
        }
    ]
    assert (await shown(bot, request.request_id))["decision"]["history"][-1]["kind"] == "reminder"

    assert (await answer(bot, request.request_id, "u2", "true"))["decided"]
    await step(bot)
    await step(other)
    assert len(api.replies) == 1, "none after the decision"


async def test_an_escalation_posts_to_its_channel_and_lets_its_people_answer(bot: BotThread, api: FakeChatApi) -> None:
    api.groups["oncall"] = ["u7"]
    run = Run(team_workflows.escalated_gate)
    request_id, copy = await asked(bot, api, "escalated_gate")
    request = await bot.service.store.get_request(request_id)
    await asyncio.sleep(max((request.created_at + timedelta(seconds=1) - utcnow()).total_seconds(), 0))  # its `after`

    await step(bot)
    await api.wait_for(lambda: len(api.posts) == 2)
    assert [post["room"] for post in api.posts] == ["room-1", "room-oncall"]
    escalated = {"text": "Escalated: fakechat:oncall may answer this too now.", "mentions": ["fakechat:oncall"]}
    # in the thread of every copy, the on-call room's new one too: that mention is what pages them
    assert api.replies == [{"id": copy, **escalated}, {"id": api.posts[1]["id"], **escalated}]
    await step(bot)
    assert len(api.posts) == 2 and len(api.replies) == 2, "each level once"
    assert (await answer(bot, request_id, "u7", "true"))["decided"]
    result = await run.finish()
    assert (result["value"], result["by"], result["history"]) == (True, "u7", ["escalation", "vote"])


async def test_before_its_escalation_the_on_call_may_not_answer(bot: BotThread, api: FakeChatApi) -> None:
    api.groups["oncall"] = ["u7"]
    store = Store(bot.settings.store)
    later = [{"after": 600, "responders": ["fakechat:oncall"], "channels": ["fakechat:room-oncall"]}]
    request = make_request(store, timeout=3600, channels=[ROOM], responders=["fakechat:u1"], escalate=later)
    await store.put_request(request)
    refused = await answer(bot, request.request_id, "u7", "true")
    assert refused == {"saved": False, "error": "Only fakechat:u1 may answer this event."}


async def test_a_delegation_lets_the_delegate_answer_and_not_the_delegator(bot: BotThread, api: FakeChatApi) -> None:
    run = Run(team_workflows.team_gate, 2, ["fakechat:u1", "fakechat:u2"])
    request_id, copy = await asked(bot, api, "team_gate")
    outsider = await answer(bot, request_id, "u3", "true")
    assert outsider["error"] == "Only fakechat:u1, fakechat:u2 may answer this event."

    handed = await act(bot, request_id, "u1", "delegate", to="u3", note="on holiday until Monday")
    assert handed["note"] == "Handed to u3: they answer in your place now."
    await api.wait_for(lambda: api.replies)
    assert api.replies == [
        {
            "id": copy,
            "text": "u1 handed this to fakechat:u3. Their note: on holiday until Monday",
            "mentions": ["fakechat:u3"],
        }
    ]
    again = await answer(bot, request_id, "u1", "true")
    assert again["error"] == "You handed this to u3, so they answer it now."
    assert (await answer(bot, request_id, "u3", "true"))["note"] == "Counted your approval: 1 of 2 approvals."
    assert (await answer(bot, request_id, "u2", "true"))["decided"]
    result = await run.finish()
    assert (result["votes"], result["history"]) == (
        [["u3", "approve", None], ["u2", "approve", None]],
        ["delegation", "vote", "vote"],
    )


@pytest.mark.parametrize("where", ["store_url", "s3_store_url"])
async def test_twenty_people_approving_at_once_on_two_replicas_make_one_decision_and_each_is_told(
    where: str, request: pytest.FixtureRequest, start_bot: Callable[..., BotThread]
) -> None:
    url = str(request.getfixturevalue(where))
    replicas = [start_bot(store=url, reconcile_seconds=0) for _ in range(2)]
    store = Store(url)
    event = make_request(store, approvals=3)
    await store.put_request(event)

    async def approve(i: int) -> tuple[str, int, dict[str, Any]]:
        person = f"U0P{i:02d}"
        bot = replicas[i % 2]
        body = {"value": True, "responder": {"platform": "slack", "user_id": person}}
        status, reply = await post_json(f"{bot.url}/api/v1/events/{event.request_id}/response", body)
        return person, status, reply

    told = await asyncio.gather(*map(approve, range(20)))
    counted = {person for person, status, _ in told if status in (200, 201)}
    decided_already = {
        person for person, status, reply in told if status == 409 and "Decided already" in reply["error"]
    }
    assert counted | decided_already == {person for person, _, _ in told} and not counted & decided_already
    decision = await store.get_response(event.request_id)
    assert decision is not None and decision.value is True
    assert {vote.voter.user_id for vote in decision.votes or ()} == counted, "every vote counted is in the decision"
    assert len(counted) >= 3
    records, _ = await store.outcomes("completed", limit=10)
    assert [r.request_id for r in records] == [event.request_id], "one decision"
    for _, status, reply in told:
        if status == 409:
            assert reply["response"]["votes"] == json.loads(decision.model_dump_json())["votes"]


async def test_a_replica_killed_between_a_vote_and_the_decision_is_completed_by_the_reconciler(
    bot: BotThread, api: FakeChatApi
) -> None:
    run = Run(team_workflows.team_gate, 2, [])
    request_id, _ = await asked(bot, api, "team_gate")
    store = Store(bot.settings.store)
    request = await store.get_request(request_id)
    # What the dying replica's answer path wrote: both votes, the marker rewrite; not the decision.
    for user in ("u1", "u2"):
        voter = Responder(platform=NAME, user_id=user)
        assert await store.add_to_log(request_id, Vote(voter=voter, vote="approve", value=True, at=utcnow(), via=NAME))
    await store.touch_pending(request)
    assert await store.get_response(request_id) is None

    await step(bot)
    result = await run.finish()
    assert (result["value"], result["votes"]) == (True, [["u1", "approve", None], ["u2", "approve", None]])


async def test_a_requester_named_by_identity_is_refused_through_the_api(bot: BotThread) -> None:
    store = Store(bot.settings.store)
    request = make_request(store, approvals=2, requester="slack:U0REQ")
    await store.put_request(request)
    url = f"{bot.url}/api/v1/events/{request.request_id}/response"
    status, body = await post_json(url, {"value": True, "responder": {"platform": "slack", "user_id": "U0REQ"}})
    assert (status, body["error"]) == (403, "You asked for this decision, so someone else must approve it.")
    status, body = await post_json(url, {"vote": "approve", "responder": {"platform": "slack", "user_id": "U0ANN"}})
    assert status == 200 and body["decided"] is False and body["decision"]["approvals"] == {"have": 1, "need": 2}
    status, body = await post_json(url, {"value": "maybe", "responder": "ci"})
    assert status == 422
    status, body = await post_json(
        f"{bot.url}/api/v1/events/{request.request_id}/delegate",
        {"responder": {"platform": "slack", "user_id": "U0BOB"}, "to": {"platform": "slack", "user_id": "U0CAT"}},
    )
    assert status == 200 and body["note"] == "Handed to U0CAT: they answer in your place now."


async def test_a_two_person_approval_gate(start_bot: Callable[..., BotThread]) -> None:
    bot = start_bot()
    run = Run(gate_workflows.two_person_payment, 100.0)
    event = await pending_event(bot, "_paid_by_two")
    url = f"{bot.url}/api/v1/events/{event['request_id']}/response"
    ann = {"platform": "slack", "user_id": "U0ANN", "user_name": "ann"}
    status, body = await post_json(url, {"value": {"approved": True}, "responder": ann})
    assert status == 200 and body["note"] == "Counted your approval: 1 of 2 approvals."
    status, body = await post_json(url, {"value": {"approved": True}, "responder": ann})
    assert status == 409 and body["error"].startswith("You already approved this")
    status, body = await post_json(url, {"vote": "approve", "responder": {"platform": "slack", "user_id": "U0BOB"}})
    assert status == 201 and body["response"]["value"] == {"approved": True, "reason": ""}
    assert await run.finish() == "paid 100.0"

    vetoed = Run(gate_workflows.two_person_payment, 9000.0)
    await settled(bot, event["request_id"])
    event = await pending_event(bot, "_paid_by_two")
    url = f"{bot.url}/api/v1/events/{event['request_id']}/response"
    xi = {"platform": "slack", "user_id": "U0XI", "user_name": "xi"}
    status, body = await post_json(url, {"vote": "reject", "reason": "over the quarter's budget", "responder": xi})
    assert status == 201 and body["response"]["value"] == {"approved": False, "reason": "over the quarter's budget"}
    rejection = json.loads(await vetoed.finish())
    assert (rejection["by"]["user_id"], rejection["reason"]) == ("U0XI", "over the quarter's budget")
    assert rejection["message"].startswith("_paid_by_two(amount=9000.0) was rejected by xi via the API")


async def test_the_release_gate_example_runs_as_the_demo_runs_it(start_bot: Callable[..., BotThread]) -> None:
    """`hitl-chatops demo --workflow examples/release_gate.py`, voted through the API as its docstring says."""
    from hitl_chatops.bot.cli import _load_workflow

    bot = start_bot()
    run = Run(_load_workflow(EXAMPLE))
    event = await pending_event(bot, "release_gate")
    url = f"{bot.url}/api/v1/events/{event['request_id']}/response"
    status, body = await post_json(url, {"value": True, "responder": "dana@example.com"})
    assert (status, body["error"]) == (403, "You asked for this decision, so someone else must approve it.")
    status, body = await post_json(url, {"value": True, "responder": "ann"})
    assert status == 200 and body["decision"]["rules"][0]["met_by"][0]["user_id"] == "ann"
    status, body = await post_json(url, {"value": True, "responder": "oncall"})
    assert status == 403 and body["error"].startswith("Only slack:S0SRE, api:ann, slack:S0SECURITY, api:sam may")
    status, body = await post_json(url, {"value": True, "responder": "sam"})
    assert status == 201
    assert await run.finish() == "2.4.0 released, approved by ann and sam"
