"""Seed 004's expense approval as a Flyte workflow: a typed `Human` step answered in a generated form.

Run it with `hitl-chatops demo --workflow examples/expense_approval.py`, open the printed link,
and fill in the decision: the form shows the request as context, one input per field of
`ExpenseDecision`, and checks every field on the server. The workflow prints what was decided
and who decided it.
"""

from datetime import timedelta

import flyte
from pydantic import BaseModel, Field

import hitl_chatops.plugin as hitl

# The tasks call hitl-chatops, so in a remote run they need it in their image too: hitl.env's has it.
task_env = flyte.TaskEnvironment(name="expense-approval", image=hitl.env.image, depends_on=[hitl.env])


class ExpenseRequest(BaseModel):
    request_id: str
    amount: float
    requester: str
    department: str
    purpose: str
    has_receipts: bool


class ExpenseDecision(BaseModel):
    approved: bool = Field(description="Whether the expense is approved")
    amount: float = Field(ge=0, description="Approved amount (may be less than requested)")
    notes: str = Field(default="", max_length=500, description="Explanation for decision")


expense_approval = hitl.Human(
    name="expense_approval",
    title="Approve Expense Request",
    description="Review and approve or modify the expense request",
    input_type=ExpenseRequest,
    output_type=ExpenseDecision,
    timeout=timedelta(hours=24),
)


@task_env.task
async def validate_expense(amount: float, purpose: str) -> ExpenseRequest:
    if amount <= 0:
        raise ValueError("an expense needs a positive amount")
    return ExpenseRequest(
        request_id="EXP-1042",
        amount=amount,
        requester="dana",
        department="ml-platform",
        purpose=purpose,
        has_receipts=True,
    )


@task_env.task(report=True)
async def main() -> str:
    request = await validate_expense(1250.0, "GPU hours for the Q4 retraining")
    approval = await expense_approval(request, message=f"Expense request details: {request.amount} - {request.purpose}")
    who = approval.completed_by.label if approval.completed_by else "nobody"
    if approval.output.approved:
        return f"{request.request_id}: approved {approval.output.amount} by {who} via {approval.via}"
    return f"{request.request_id}: rejected by {who} via {approval.via} ({approval.output.notes or 'no reason given'})"


if __name__ == "__main__":
    flyte.init()
    run = flyte.run(main)
    run.wait()
    print(f"Result: {run.outputs()}")
