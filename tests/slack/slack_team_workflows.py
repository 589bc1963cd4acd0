"""Workflows that ask Slack for team decisions, for the end-to-end tests (real Flyte local runs)."""

from __future__ import annotations

import flyte

import hitl_chatops.plugin as hitl
from tests.team_workflows import _result as decision  # value, votes and history, as the task hands them back

POLL = 0.1
CHANNEL = "C0DEPLOYS"
ONCALL = "C0ONCALL"
env = flyte.TaskEnvironment(name="hitl-chatops-slack-team-tests", depends_on=[hitl.env])


@env.task
async def slack_gate(approvals: int, responders: list[str], requester: str | None = None) -> dict[str, object]:
    """A bool team decision posted to the deploys channel."""
    event = await hitl.new_event.aio(
        "slack_gate",
        data_type=bool,
        prompt="Ship v2 to production?",
        channels=[f"slack:{CHANNEL}"],
        responders=responders,
        approvals=approvals,
        requester=requester,
        poll_interval_seconds=POLL,
    )
    return decision(await event.result.aio())


@env.task
async def slack_batch_size() -> dict[str, object]:
    """A value two people must agree on: proposed, then confirmed (or rejected and proposed again)."""
    event = await hitl.new_event.aio(
        "slack_batch_size",
        data_type=int,
        prompt="Batch size for the nightly training?",
        channels=[f"slack:{CHANNEL}"],
        approvals=2,
        poll_interval_seconds=POLL,
    )
    return decision(await event.result.aio())


@env.task
async def slack_escalated() -> dict[str, object]:
    """Only U0ANN at first; after a second the on-call group may answer too, and it is posted to their channel."""
    event = await hitl.new_event.aio(
        "slack_escalated",
        data_type=bool,
        prompt="Roll back the canary?",
        channels=[f"slack:{CHANNEL}"],
        responders=["slack:U0ANN"],
        escalate=[hitl.Escalation(after=1, responders=["slack:S0ONCALL"], channels=[f"slack:{ONCALL}"])],
        poll_interval_seconds=POLL,
    )
    return decision(await event.result.aio())
