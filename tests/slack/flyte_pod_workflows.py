"""A task that runs as in a Flyte pod (tests/flyte_pod.py): `ask` on a native condition."""

from __future__ import annotations

import flyte

import hitl_chatops.plugin as hitl

POLL = 0.1
CHANNELS = ["slack:C0DEPLOYS"]
env = flyte.TaskEnvironment(name="hitl-chatops-pod-tests")


@env.task
async def replicas() -> int:
    condition = await flyte.new_condition.aio("replicas", prompt="How many replicas?", data_type=int, timeout=600)
    answer = await hitl.ask.aio(condition, channels=CHANNELS, min_value=1, max_value=10, poll_interval_seconds=POLL)
    return int(answer)
