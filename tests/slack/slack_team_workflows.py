"""Workflows that ask Slack for team decisions, for the end-to-end tests (real Flyte local runs)."""

from __future__ import annotations

from typing import Any

import flyte

import hitl_chatops.plugin as hitl
from tests.team_workflows import _result as decision  # value, votes and history, as the task hands them back

POLL = 0.1
CHANNEL = "C0DEPLOYS"
ONCALL = "C0ONCALL"
env = flyte.TaskEnvironment(name="hitl-chatops-slack-team-tests", depends_on=[hitl.env])


async def _decided(name: str, data_type: type, prompt: str, **asked: Any) -> dict[str, object]:
    """Ask in the deploys channel; what the decision was, once made."""
    event = await hitl.new_event.aio(
        name, data_type=data_type, prompt=prompt, channels=[f"slack:{CHANNEL}"], poll_interval_seconds=POLL, **asked
    )
    return decision(await event.result.aio())


@env.task
async def slack_gate(approvals: int, responders: list[str], requester: str | None = None) -> dict[str, object]:
    """A bool team decision."""
    asked = {"approvals": approvals, "responders": responders, "requester": requester}
    return await _decided("slack_gate", bool, "Ship v2 to production?", **asked)


@env.task
async def slack_batch_size() -> dict[str, object]:
    """A value two people must agree on: proposed, then confirmed (or rejected and proposed again)."""
    return await _decided("slack_batch_size", int, "Batch size for the nightly training?", approvals=2)


@env.task
async def slack_escalated() -> dict[str, object]:
    """Only U0ANN at first; after a second the on-call group may answer too, and it is posted to their channel."""
    oncall = hitl.Escalation(after=1, responders=["slack:S0ONCALL"], channels=[f"slack:{ONCALL}"])
    return await _decided(
        "slack_escalated", bool, "Roll back the canary?", responders=["slack:U0ANN"], escalate=[oncall]
    )
