"""End to end: a real Flyte local run asks in (fake) Teams and resumes with the answer given there."""

from __future__ import annotations

import asyncio

import flyte
import pytest

from tests import workflows
from tests.fakes.bot_connector import card_of
from tests.fakes.flyte import Run
from tests.teams.teams_helpers import ALICE, BOB, CHANNEL, Teams, texts, typed

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", autouse=True)
def flyte_local() -> None:
    flyte.init()


async def test_int_event_answered_in_teams_resumes_the_run(teams: Teams) -> None:
    await teams.install()
    run = Run(workflows.pick_replicas, f"teams:{CHANNEL}")
    [posted] = await teams.connector.wait_for(
        lambda: [c for c in teams.connector.sent() if c.body.get("attachments")], seconds=30
    )
    card = card_of(posted.body)
    submit = next(a for a in card["actions"] if a["type"] == "Action.Execute")

    _, refused = await teams.invoke({**submit["data"], **typed(value="11")}, user=BOB)
    assert "Enter a whole number from 1 to 10." in texts(refused["value"])
    await asyncio.sleep(5 * workflows.POLL)
    assert run.running, "an invalid value leaves the run waiting"

    _, accepted = await teams.invoke({**submit["data"], **typed(value="7")}, user=ALICE)
    assert "Alice Example" in texts(accepted["value"])
    assert await run.finish() == 7
    [update] = await teams.connector.wait_for(lambda: teams.connector.updates(posted.created_id))
    assert "Alice Example" in texts(card_of(update.body))
