"""Workflows that ask in Teams, for the end-to-end tests (real Flyte local runs)."""

from __future__ import annotations

import flyte

import hitl_chatops.plugin as hitl
from tests.teams.teams_helpers import CHANNEL

POLL = 0.2
env = flyte.TaskEnvironment(name="hitl-chatops-teams-tests", depends_on=[hitl.env])


@env.task
async def pick_replicas() -> int:
    event = await hitl.new_event.aio(
        "replicas",
        data_type=int,
        prompt="How many replicas?",
        channels=[f"teams:{CHANNEL}"],
        min_value=1,
        max_value=10,
        poll_interval_seconds=POLL,
    )
    return int(await event.wait.aio())
