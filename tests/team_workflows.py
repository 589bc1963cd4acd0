"""Tasks that ask for team decisions, for real Flyte local runs and runs as in a Flyte pod (tests/flyte_pod.py)."""

from __future__ import annotations

import flyte

import hitl_chatops.plugin as hitl

POLL = 0.1
env = flyte.TaskEnvironment(name="hitl-chatops-team-tests", depends_on=[hitl.env])


@env.task
async def release_gate() -> bool:
    """One approval asked for: whatever a policy adds comes from HITL_CHATOPS_POLICY."""
    event = await hitl.new_event.aio("release_gate", data_type=bool, prompt="Ship it?", poll_interval_seconds=POLL)
    return bool(await event.wait.aio())


@env.task
async def two_approvals() -> bool:
    """A team decision without a requester: in a remote run, whoever started the run becomes it."""
    event = await hitl.new_event.aio(
        "two_approvals", data_type=bool, prompt="Ship it?", approvals=2, poll_interval_seconds=POLL
    )
    return bool(await event.wait.aio())


@env.task
async def named_requester() -> bool:
    event = await hitl.new_event.aio(
        "named_requester",
        data_type=bool,
        prompt="Ship it?",
        approvals=2,
        requester="slack:U0ERIN",
        poll_interval_seconds=POLL,
    )
    return bool(await event.wait.aio())


@env.task
async def ask_team() -> bool:
    """`ask` on a native condition, as a team decision."""
    condition = await flyte.new_condition.aio("ask_team", prompt="Ship it?", data_type=bool, timeout=600)
    return bool(await hitl.ask.aio(condition, approvals=2, poll_interval_seconds=POLL))


@env.task
async def ask_gate() -> bool:
    """`ask` on a native condition, one answer."""
    condition = await flyte.new_condition.aio("ask_gate", prompt="Ship it?", data_type=bool, timeout=600)
    return bool(await hitl.ask.aio(condition, poll_interval_seconds=POLL))


# -- team decisions decided by the bot, through the API and the fake chat platform (tests/fakechat.py) --

ROOM = "fakechat:room-1"


def _result(result: hitl.EventResult[object]) -> dict[str, object]:
    """What a task hands back about a decision: its value, the votes it counted, its history's kinds."""
    return {
        "value": result.output,
        "by": result.completed_by.user_id if result.completed_by else None,
        "votes": [[vote.voter.user_id, vote.vote, vote.reason] for vote in result.votes],
        "history": [entry.kind for entry in result.history],
    }


@env.task
async def team_gate(approvals: int, responders: list[str], requester: str | None = None) -> dict[str, object]:
    """A bool team decision posted to the fake chat room."""
    event = await hitl.new_event.aio(
        "team_gate",
        data_type=bool,
        prompt="Ship it?",
        channels=[ROOM],
        responders=responders,
        approvals=approvals,
        requester=requester,
        poll_interval_seconds=POLL,
    )
    return _result(await event.result.aio())


@env.task
async def batch_size() -> dict[str, object]:
    """A value decided by proposal and confirmation: two people must agree on it."""
    event = await hitl.new_event.aio(
        "batch_size", data_type=int, prompt="Batch size?", channels=[ROOM], approvals=2, poll_interval_seconds=POLL
    )
    return _result(await event.result.aio())


@env.task
async def escalated_gate() -> dict[str, object]:
    """Only u1 at first; after a second, the on-call group may answer too, and it is posted to their room."""
    event = await hitl.new_event.aio(
        "escalated_gate",
        data_type=bool,
        prompt="Ship it?",
        channels=[ROOM],
        responders=["fakechat:u1"],
        escalate=[hitl.Escalation(after=1, responders=["fakechat:oncall"], channels=["fakechat:room-oncall"])],
        poll_interval_seconds=POLL,
    )
    return _result(await event.result.aio())
