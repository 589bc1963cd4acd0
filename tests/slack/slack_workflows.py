"""Workflows that ask in Slack, for the end-to-end tests (real Flyte local runs)."""

from __future__ import annotations

from typing import Any

import flyte
from pydantic import create_model

import hitl_chatops.plugin as hitl

POLL = 0.2
CHANNELS = ["slack:C0DEPLOYS"]
env = flyte.TaskEnvironment(name="hitl-chatops-slack-tests", depends_on=[hitl.env])
# 120 optional text fields (`f000`…`f119`): more than a Slack dialog holds.
_WIDE: dict[str, Any] = {f"f{n:03d}": (str | None, None) for n in range(120)}
Inspection = create_model("Inspection", **_WIDE)


@env.task
async def deploy_gate() -> bool:
    event = await hitl.new_event.aio(
        "deploy_gate", data_type=bool, prompt="Deploy *v2* to prod?", channels=CHANNELS, poll_interval_seconds=POLL
    )
    return bool(await event.wait.aio())


@env.task
async def pick_region() -> str:
    event = await hitl.new_event.aio(
        "region",
        data_type=str,
        prompt="Which region?",
        channels=CHANNELS,
        choices=["eu-west", "eu-north", "us-east", "us-west", "ap-south", "ap-east"],
        poll_interval_seconds=POLL,
    )
    return str(await event.wait.aio())


@env.task
async def alice_gate() -> bool:
    """A bool event only U0ALICE may answer (her App Home lists it)."""
    event = await hitl.new_event.aio(
        "alice_gate",
        data_type=bool,
        prompt="Roll out to the EU?",
        channels=CHANNELS,
        responders=["slack:U0ALICE"],
        context={"service": "checkout", "version": "v2"},
        poll_interval_seconds=POLL,
    )
    return bool(await event.wait.aio())


@env.task
async def ann_inspection() -> dict[str, str]:
    """A 120-field event only U0ANN may answer: Slack sends her to the form with her personal link."""
    event = await hitl.new_event.aio(
        "inspection",
        data_type=Inspection,
        prompt="Inspect the rack",
        channels=CHANNELS,
        responders=["slack:U0ANN"],
        poll_interval_seconds=POLL,
    )
    answer = await event.wait.aio()
    return {name: value for name, value in answer.model_dump().items() if value}
