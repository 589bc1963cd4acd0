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
