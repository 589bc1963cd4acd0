"""Tasks that run as in a Flyte pod (tests/flyte_pod.py): `ask` on a native condition, and events
whose mirrored conditions carry a structured answer or end at a default."""

from __future__ import annotations

import flyte
from pydantic import BaseModel, Field

import hitl_chatops.plugin as hitl

POLL = 0.1
CHANNELS = ["slack:C0DEPLOYS"]
env = flyte.TaskEnvironment(name="hitl-chatops-pod-tests")


@env.task
async def replicas() -> int:
    condition = await flyte.new_condition.aio("replicas", prompt="How many replicas?", data_type=int, timeout=600)
    answer = await hitl.ask.aio(condition, channels=CHANNELS, min_value=1, max_value=10, poll_interval_seconds=POLL)
    return int(answer)


class Spend(BaseModel):
    """A structured answer: mirrored as a `str` condition holding its JSON."""

    approved: bool
    amount: float = Field(ge=0, le=100)
    notes: str = ""


@env.task
async def approve_spend() -> str:
    event = await hitl.new_event.aio(
        "approve_spend", data_type=Spend, prompt="Approve the spend?", channels=CHANNELS, poll_interval_seconds=POLL
    )
    return (await event.wait.aio()).model_dump_json()


@env.task
async def gate_with_default() -> bool:
    event = await hitl.new_event.aio(
        "gate_with_default",
        data_type=bool,
        prompt="Deploy now?",
        channels=CHANNELS,
        timeout_seconds=2,
        on_timeout=False,
        poll_interval_seconds=POLL,
    )
    return bool(await event.wait.aio())
