"""Structured events asked in a chat channel given by the test (Slack or Teams), in real Flyte local runs."""

from __future__ import annotations

import flyte
from pydantic import BaseModel, Field

import hitl_chatops.plugin as hitl
from tests.lifecycle_workflows import EXPENSE, ExpenseDecision, _result

POLL = 0.1
env = flyte.TaskEnvironment(name="hitl-chatops-chat-tests", depends_on=[hitl.env])


class Review(BaseModel):
    """The "approve, with a reason" shape: one bool plus optional text."""

    approved: bool
    reason: str = Field(default="", max_length=300, description="Say why, especially when rejecting")


@env.task
async def decide_expense_in(channel: str) -> str:
    """Seed 004's expense decision asked in `channel`, with context and a proposal; `result()` as JSON."""
    event = await hitl.new_event.aio(
        "expense_decision",
        data_type=ExpenseDecision,
        prompt="Approve this expense?",
        context=EXPENSE,
        initial=ExpenseDecision(approved=True, approved_amount=100),
        channels=[channel],
        poll_interval_seconds=POLL,
    )
    decision = await event.wait.aio()
    assert isinstance(decision, ExpenseDecision)
    return _result(await event.result.aio())
