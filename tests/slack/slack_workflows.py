"""Workflows that ask in Slack, for the end-to-end tests (real Flyte local runs)."""

from __future__ import annotations

import flyte

import hitl_chatops.plugin as hitl

POLL = 0.2
CHANNELS = ["slack:C0DEPLOYS"]
env = flyte.TaskEnvironment(name="hitl-chatops-slack-tests", depends_on=[hitl.env])


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
