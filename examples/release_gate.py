"""A release gate: production needs one SRE and one security engineer, never the person releasing.

Run it with `hitl-chatops demo --workflow examples/release_gate.py` (or `python
examples/release_gate.py`). The gate is a team decision, so every vote names a person: in Slack or
Teams each click is its clicker's (set `RELEASE_CHANNEL=slack:C0…` and the bot's Slack tokens). Without
a chat platform, vote through the bot's API as the demo people below, from another terminal:

    export HITL_CHATOPS_SECRET=dev-secret            # before starting the demo, so both sides know it
    curl -H "Authorization: Bearer $HITL_CHATOPS_SECRET" $BOT/api/v1/events/$ID/response \\
         -d '{"value": true, "responder": "ann"}'    # ann is an SRE: 1 of 2 approvals
    curl ... -d '{"value": true, "responder": "sam"}'  # sam is in security: approved, the release goes on
    curl ... -d '{"value": false, "responder": "sam", "reason": "CVE-2026-1234 is not fixed"}'  # a veto

`$BOT` and `$ID` are printed with the form link (the page shows how the decision stands). The person
releasing (`dana@example.com` here; in a remote run, by default, whoever started the run) is refused.
A reminder every 30 minutes names who still has to act, and after two hours the on-call may decide too.
"""

import os
from datetime import timedelta

import flyte

import hitl_chatops.plugin as hitl

# The task calls hitl-chatops, so in a remote run it needs it in its image too: hitl.env's has it.
task_env = flyte.TaskEnvironment(name="release-gate", image=hitl.env.image, depends_on=[hitl.env])

# Who decides: Slack user groups (Teams Entra groups are "teams:<group id>"), and for the demo without a
# chat platform two people who vote through the API ("api:<name>").
SRE = ["slack:S0SRE", "api:ann"]
SECURITY = ["slack:S0SECURITY", "api:sam"]
ON_CALL = ["slack:S0ONCALL", "api:oncall"]
CHANNELS = [os.environ["RELEASE_CHANNEL"]] if os.environ.get("RELEASE_CHANNEL") else []
ON_CALL_CHANNELS = [os.environ["RELEASE_ON_CALL_CHANNEL"]] if os.environ.get("RELEASE_ON_CALL_CHANNEL") else []


@task_env.task(report=True)
async def main(version: str = "2.4.0") -> str:
    gate = await hitl.new_event.aio(
        "release_gate",
        data_type=bool,
        title=f"Release {version} to production?",
        prompt="The canary has been green for an hour. Approve to roll it out everywhere.",
        context={"version": version, "canary_error_rate": 0.002, "changes": 37},
        channels=CHANNELS,
        timeout_seconds=8 * 3600,
        # Two people in all, one from each rule: one person counts for one rule only.
        approvals=2,
        rules=[hitl.Rule(name="sre", responders=SRE), hitl.Rule(name="security", responders=SECURITY)],
        requester="dana@example.com",  # who asked may not approve (default in a remote run: the run's owner)
        remind_every=timedelta(minutes=30),
        escalate=[hitl.Escalation(after=timedelta(hours=2), responders=ON_CALL, channels=ON_CALL_CHANNELS)],
    )
    result = await gate.result.aio()
    if not result.output:  # a veto: the first eligible Reject ends it, with its reason
        veto = next(vote for vote in result.votes if vote.vote == "reject")
        return f"{version} not released: rejected by {veto.voter.label} ({veto.reason or 'no reason given'})"
    approvers = " and ".join(vote.voter.label for vote in result.votes)
    return f"{version} released, approved by {approvers}"


if __name__ == "__main__":
    flyte.init()
    run = flyte.run(main)
    run.wait()
    print(f"Result: {run.outputs()}")
