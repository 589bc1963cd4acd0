"""An agent's tool behind an approval gate: payments above 1,000 wait for a person's OK.

Run it with `hitl-chatops demo --workflow examples/agent_tool_gate.py` (or `python
examples/agent_tool_gate.py`). The "model" here is a fixed list of tool calls, so the example runs
without an LLM: the small payment goes through at once, the large one is asked about. Open the
printed link, see the call's arguments, and approve or reject it with a reason. The workflow prints
the transcript an agent loop would hand back to its model.
"""

import flyte

import hitl_chatops.plugin as hitl

# The task calls hitl-chatops, so in a remote run it needs it in its image too: hitl.env's has it.
task_env = flyte.TaskEnvironment(name="agent-tool-gate", image=hitl.env.image, depends_on=[hitl.env])

APPROVAL_THRESHOLD = 1_000


@hitl.require_approval(when=lambda call: call["amount"] > APPROVAL_THRESHOLD, timeout_seconds=3600)
async def make_payment(amount: float, to: str, memo: str = "") -> str:
    """Pay a supplier from the company account."""
    return f"paid {amount:.2f} to {to}"


# What a model chose to call. A real agent gets these from its LLM, so they are untrusted text:
# the gate shows them literally, wherever it asks.
TOOL_CALLS = [
    {"amount": 120.0, "to": "Acme Corp", "memo": "office plants"},
    {"amount": 4800.0, "to": "Globex Ltd", "memo": "Q4 GPU reservation"},
]


@task_env.task(report=True)
async def main() -> str:
    transcript = []
    for arguments in TOOL_CALLS:
        call = "make_payment(" + ", ".join(f"{name}={value!r}" for name, value in arguments.items()) + ")"
        try:
            result = await make_payment(**arguments)
        except hitl.ApprovalRejected as rejected:
            result = str(rejected)  # a sentence for the model: who rejected the call, and why
        transcript.append(f"{call} -> {result}")
    return "\n".join(transcript)


if __name__ == "__main__":
    flyte.init()
    run = flyte.run(main)
    run.wait()
    print(f"Result: {run.outputs()}")
