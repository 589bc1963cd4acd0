"""Workflows for structured answers and the event lifecycle (real Flyte local runs), written as a user would.

Results come back as JSON text so the tests can look at every part of them.
"""

from __future__ import annotations

import asyncio
import enum
import json
from datetime import timedelta

import flyte
from pydantic import BaseModel, ConfigDict, Field

import hitl_chatops.plugin as hitl

POLL = 0.1
env = flyte.TaskEnvironment(name="hitl-chatops-lifecycle-tests", depends_on=[hitl.env])


class ExpenseRequest(BaseModel):
    request_id: str
    amount: float
    requester: str
    department: str
    purpose: str
    has_receipts: bool


class ExpenseDecision(BaseModel):
    approved: bool = Field(description="Whether the expense is approved")
    approved_amount: float = Field(ge=0, le=10_000, description="Approved amount (may be less than requested)")
    notes: str = Field(default="", max_length=500, description="Explanation for decision")


class Review(BaseModel):
    """The "approve, with a reason" shape: one bool plus optional text."""

    approved: bool
    reason: str = Field(default="", max_length=300, description="Say why, especially when rejecting")


EXPENSE = ExpenseRequest(
    request_id="EXP-7", amount=120.5, requester="dana", department="ml", purpose="GPU hours", has_receipts=True
)

# Seed 004's step, as a user declares it once and calls it from tasks.
expense_approval = hitl.Human(
    name="expense_approval",
    title="Expense Approval",
    description="Review expense request and approve or adjust amount",
    input_type=ExpenseRequest,
    output_type=ExpenseDecision,
    timeout=timedelta(minutes=10),
    poll_interval_seconds=POLL,
)


def _result(result: hitl.EventResult[ExpenseDecision] | hitl.EventResult[int]) -> str:
    output = result.output.model_dump() if isinstance(result.output, BaseModel) else result.output
    return json.dumps(
        {
            "type": type(result.output).__name__,
            "output": output,
            "request_id": result.request_id,
            "by": result.completed_by.model_dump() if result.completed_by else None,
            "at": result.completed_at.isoformat() if result.completed_at else None,
            "via": result.via,
        }
    )


@env.task
async def decide_expense(channel: str = "") -> str:
    """A structured event with context and a proposed answer, posted to `channel` if given (a Slack or
    Teams test's channel); returns `result()` as JSON."""
    event = await hitl.new_event.aio(
        "expense_decision",
        data_type=ExpenseDecision,
        prompt="Approve this expense?",
        context=EXPENSE,
        initial=ExpenseDecision(approved=True, approved_amount=100),
        channels=[channel] if channel else None,
        poll_interval_seconds=POLL,
    )
    decision = await event.wait.aio()
    assert isinstance(decision, ExpenseDecision)
    return _result(await event.result.aio())


@env.task
async def expense_workflow(request_json: str) -> str:
    """Seed 004's `expense_workflow`, as a Flyte task."""
    request = ExpenseRequest.model_validate_json(request_json)
    result = await expense_approval(request, message=f"Expense request details: {request.amount} - {request.purpose}")
    if result.output.approved:
        return f"approved {result.output.approved_amount} for {request.request_id}: " + _result(result)
    return f"rejected {request.request_id}: " + _result(result)


@env.task
async def cancel_then_wait() -> str:
    event = await hitl.new_event.aio("to_cancel", data_type=bool, prompt="Deploy?", poll_interval_seconds=POLL)
    await event.cancel.aio("build 42 was superseded")
    try:
        await event.wait.aio()
    except hitl.EventCancelled as cancelled:
        return f"{event.request_id} EventCancelled: {cancelled}"
    return "answered"


@env.task
async def give_up_waiting(seconds: float) -> str:
    """A timeout around the wait cancels the waiting coroutine, and with it the event."""
    event = await hitl.new_event.aio("abandoned", data_type=int, prompt="How many?", poll_interval_seconds=POLL)
    try:
        await asyncio.wait_for(event.wait.aio(), timeout=seconds)
    except TimeoutError:
        return event.request_id
    return "answered"


@env.task
async def default_at_deadline(timeout_seconds: int) -> str:
    event = await hitl.new_event.aio(
        "fallback",
        data_type=int,
        prompt="How many replicas?",
        timeout_seconds=timeout_seconds,
        on_timeout=3,
        poll_interval_seconds=POLL,
    )
    return _result(await event.result.aio())


class Severity(enum.Enum):
    LOW = "low"
    HIGH = "high"


class StrictTriage(BaseModel):
    """`strict=True` with an Enum: the stored answer is JSON, and strict mode takes JSON enum values."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, title="Triage")
    severity: Severity
    score: float = Field(ge=0, le=1)
    page_oncall: bool


class ShortReason(BaseModel):
    """A setting the answer's JSON Schema cannot carry: refused where the event is created."""

    model_config = ConfigDict(str_min_length=5)
    reason: str


@env.task
async def triage() -> str:
    event = await hitl.new_event.aio("triage", data_type=StrictTriage, prompt="How bad?", poll_interval_seconds=POLL)
    answer = await event.wait.aio()
    assert isinstance(answer, StrictTriage) and isinstance(answer.severity, Severity)
    return answer.model_dump_json()


@env.task
async def ask_short_reason() -> str:
    try:
        await hitl.new_event.aio("short_reason", data_type=ShortReason, prompt="Why?", poll_interval_seconds=POLL)
    except TypeError as error:
        return f"TypeError: {error}"
    return "created"
