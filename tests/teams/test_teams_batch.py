"""Batches for fan-out in Teams: a real Flyte local run's `batch=True` events share one card per
conversation, and Approve all there answers each of them, with its responder."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import flyte
import pytest

from hitl_chatops.bot.config import load_settings
from hitl_chatops.bot.store import Store
from tests import batch_workflows
from tests.fakes.bot_connector import card_of
from tests.fakes.flyte import Run
from tests.teams.teams_helpers import ALICE, CHANNEL, Teams, texts

pytestmark = pytest.mark.e2e
COUNT = 8


@pytest.fixture(scope="module", autouse=True)
def flyte_local() -> None:
    flyte.init()


async def batch_card(teams: Teams, counts: str, seconds: float = 30) -> tuple[str, dict[str, Any]]:
    """The batch card's activity id and the card as Teams shows it last, once it reads `counts`."""
    deadline = time.monotonic() + seconds
    while True:
        posts = [c for c in teams.connector.sent(CHANNEL) if c.body.get("attachments")]
        if posts:
            updates = teams.connector.updates(posts[0].created_id)
            shown = card_of((updates or posts)[-1].body)
            if counts in texts(shown):
                return str(posts[0].created_id), shown
        assert time.monotonic() < deadline, f"no batch card reads {counts!r}"
        await asyncio.sleep(0.05)


async def test_fan_out_events_share_one_card_and_approve_all_answers_each(teams: Teams) -> None:
    await teams.install()
    run = Run(batch_workflows.review_documents, COUNT, f"teams:{CHANNEL}")
    _, card = await batch_card(teams, f"{COUNT} waiting, 0 decided", seconds=60)
    assert len([c for c in teams.connector.sent(CHANNEL) if c.body.get("attachments")]) == 1
    approve = next(a for a in card["actions"] if a.get("title") == "Approve all")
    assert any(a.get("title") == "Review one by one" and "/form/batch/" in a["url"] for a in card["actions"])

    status, reply = await teams.invoke(approve["data"], user=ALICE, verb=approve["verb"])
    assert status == 200 and f"Answered {COUNT}." in texts(reply["value"])
    assert await run.finish(60) == COUNT

    store = Store(load_settings().store)
    listing = await store.batch(approve["data"]["hitl.batch"])
    assert len(listing.joined) == COUNT
    for request_id in listing.joined:
        response = await store.get_response(request_id)
        assert response is not None and response.value is True and response.via == "teams"
        assert response.responder is not None and response.responder.user_id == ALICE["aadObjectId"]
    _, final = await batch_card(teams, f"0 waiting, {COUNT} decided")
    assert "actions" not in final, "nothing left to answer: no controls"
