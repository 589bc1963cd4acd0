"""Agent tools behind `hitl.require_approval`, as a user writes them (real Flyte local runs).

Tasks that catch `ApprovalRejected` return what they caught as JSON, as an agent loop would hand it
to its model, so the tests can look at every part of it.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

import flyte
import flyte.errors
from pydantic import Field

import hitl_chatops.plugin as hitl
from tests.slack.slack_helpers import CHANNEL

POLL = 0.1
env = flyte.TaskEnvironment(name="hitl-chatops-gate-tests", depends_on=[hitl.env])


def rejection(rejected: hitl.ApprovalRejected) -> str:
    return json.dumps(
        {
            "message": str(rejected),
            "function": rejected.function,
            "arguments": {name: repr(value) for name, value in rejected.arguments.items()},
            "by": rejected.by.model_dump() if rejected.by else None,
            "at": rejected.at.isoformat() if rejected.at else None,
            "reason": rejected.reason,
            "via": rejected.via,
            "timed_out": rejected.timed_out,
            "request_id": rejected.request_id,
        }
    )


# -- a Flyte task behind a gate: @env.task outermost, the gate next to the function -------------


@env.task
@hitl.require_approval(poll_interval_seconds=POLL)
async def make_payment(amount: float, to: str, memo: str = "") -> str:
    """Pay a supplier from the company account.

    The rest of the docstring is not part of the prompt.
    """
    return f"paid {amount} to {to}"


@env.task
@hitl.require_approval(editable=True, poll_interval_seconds=POLL)
async def scale_service(
    service: str,
    replicas: Annotated[int, Field(ge=1, le=20)],
    region: Literal["eu", "us"] = "eu",
    dry_run: bool = False,
) -> str:
    """Change how many replicas a service runs."""
    return json.dumps({"service": service, "replicas": replicas, "region": region, "dry_run": dry_run})


# -- plain functions behind a gate, called from tasks -----------------------------------------


@hitl.require_approval(poll_interval_seconds=POLL)
def archive(path: str, keep_days: int = 30) -> str:
    """Move a folder to cold storage."""
    return f"archived {path}, kept {keep_days} days"


@env.task
def archive_folder(path: str) -> str:
    """A sync task calling a sync gated function."""
    return archive(path)


@hitl.require_approval(when=lambda call: call["amount"] > 1000, poll_interval_seconds=POLL)
async def refund(amount: float, order: str) -> str:
    """Refund an order."""
    return f"refunded {amount} on {order}"


@env.task
async def small_refund() -> str:
    return await refund(20.0, "A-1")


class Opaque:
    """An argument the JSON encoder cannot take: shown by its repr, cut at 1,000 characters."""

    def __repr__(self) -> str:
        return "Opaque(" + "x" * 2000 + ")"


@hitl.require_approval(channels=[f"slack:{CHANNEL}"], poll_interval_seconds=POLL)
async def send_email(to: str, subject: str, body: str, attachment: object = None) -> str:
    """Send an e-mail on the company's behalf."""
    return f"sent to {to}"


@env.task
async def email_agent(to: str, subject: str, body: str) -> str:
    """An agent step: the model chose the arguments; a rejection goes back to it as text."""
    try:
        return await send_email(to, subject, body, attachment=Opaque())
    except hitl.ApprovalRejected as rejected:
        return rejection(rejected)


@hitl.require_approval(timeout_seconds=1, poll_interval_seconds=POLL)
async def drop_table(name: str) -> str:
    """Drop a database table."""
    return f"dropped {name}"


@hitl.require_approval(timeout_seconds=1, on_timeout="approve", poll_interval_seconds=POLL)
async def vacuum_table(name: str) -> str:
    """Reclaim a table's free space."""
    return f"vacuumed {name}"


@env.task
@hitl.require_approval(timeout_seconds=1, poll_interval_seconds=POLL)
async def rotate_keys(service: str) -> str:
    """Rotate a service's API keys."""
    return f"rotated {service}"


@env.task
async def unattended() -> str:
    """Nobody answers: a gate rejects at its deadline, one approves as it was told to, and a gated task
    called from this one fails its own action, which reaches this task as Flyte's error."""
    try:
        dropped = await drop_table("users")
    except hitl.ApprovalRejected as rejected:
        dropped = rejection(rejected)
    vacuumed = await vacuum_table("users")
    try:
        rotated = await rotate_keys("billing")
    except flyte.errors.RuntimeUserError as failed:
        rotated = f"{type(failed).__name__} {failed.code}: {failed}"
    return json.dumps([dropped, vacuumed, rotated])


@hitl.require_approval(
    approvals=2,
    requester="dana@example.com",
    rules=[hitl.Rule(name="sre", responders=["slack:S0SRE"])],
    timeout_seconds=1,
    poll_interval_seconds=POLL,
)
async def deploy(build: int) -> str:
    """Deploy a build to production."""
    return f"deployed {build}"


@env.task
async def team_deploy() -> str:
    try:
        return await deploy(1234)
    except hitl.ApprovalRejected as rejected:
        return rejection(rejected)


@env.task
async def two_person_payment(amount: float) -> str:
    """A payment two people must approve; a rejection comes back as JSON, as an agent would get it."""
    try:
        return await _paid_by_two(amount)
    except hitl.ApprovalRejected as rejected:
        return rejection(rejected)


@hitl.require_approval(approvals=2, poll_interval_seconds=POLL)
async def _paid_by_two(amount: float) -> str:
    """Pay from the company account (two people approve)."""
    return f"paid {amount}"
