"""Team decisions posted to (fake) Teams, for real Flyte local runs (tests/teams/test_teams_team.py)."""

from __future__ import annotations

import hitl_chatops.plugin as hitl
from tests.team_workflows import POLL, _result, env
from tests.teams.teams_helpers import CHANNEL

ONCALL_CHANNEL = "19:oncall@thread.tacv2"
ONCALL_GROUP = "6f1c2d3e-4a5b-4c6d-8e7f-0000000000ca"  # an Entra group id


@env.task
async def teams_gate(approvals: int, responders: list[str], requester: str | None = None) -> dict[str, object]:
    """A bool team decision posted to the Teams channel."""
    event = await hitl.new_event.aio(
        "teams_gate",
        data_type=bool,
        prompt="Ship it?",
        channels=[f"teams:{CHANNEL}"],
        responders=responders,
        approvals=approvals,
        requester=requester,
        poll_interval_seconds=POLL,
    )
    return _result(await event.result.aio())


@env.task
async def teams_batch_size() -> dict[str, object]:
    """A value two people must agree on: proposed, then confirmed."""
    event = await hitl.new_event.aio(
        "teams_batch_size",
        data_type=int,
        prompt="Batch size?",
        channels=[f"teams:{CHANNEL}"],
        approvals=2,
        poll_interval_seconds=POLL,
    )
    return _result(await event.result.aio())


@env.task
async def teams_escalated_gate() -> dict[str, object]:
    """Only Alice at first; after a second, the on-call group may answer too, posted to its channel."""
    event = await hitl.new_event.aio(
        "teams_escalated_gate",
        data_type=bool,
        prompt="Ship it?",
        channels=[f"teams:{CHANNEL}"],
        responders=["teams:aad-alice"],
        escalate=[hitl.Escalation(after=1, responders=[ONCALL_GROUP], channels=[f"teams:{ONCALL_CHANNEL}"])],
        poll_interval_seconds=POLL,
    )
    return _result(await event.result.aio())
