"""The core of batches (bot/batch.py): coalesced renders and the person's note after Approve all."""

from __future__ import annotations

import asyncio

from hitl_chatops.bot.background import Background
from hitl_chatops.bot.batch import BulkResult, Coalescer


async def test_a_burst_of_changes_costs_one_render_more_and_every_change_lands() -> None:
    renders: list[int] = []
    first = asyncio.Event()

    async def render(key: str) -> bool:
        renders.append(len(renders))
        if len(renders) == 1:
            await first.wait()  # the first render is slow: 50 changes come in meanwhile
        return True

    coalescer = Coalescer(render, Background())
    started = asyncio.ensure_future(coalescer.changed("b"))
    await asyncio.sleep(0)
    burst = [asyncio.ensure_future(coalescer.changed("b")) for _ in range(50)]
    await asyncio.sleep(0)
    first.set()
    assert await started and all(await asyncio.gather(*burst))
    assert len(renders) == 2, "the 50 changes shared the render after the one under way"


async def test_a_render_that_fails_leaves_its_changes_owed() -> None:
    async def render(key: str) -> bool:
        return key != "refused"

    coalescer = Coalescer(render, Background())
    assert await coalescer.changed("refused") is False
    assert await coalescer.changed("fine") is True


def test_the_note_counts_what_was_answered_and_what_was_skipped() -> None:
    assert (
        BulkResult(answered=38, decided=12, refused=2).text
        == "Answered 38, 12 were decided already, 2 you may not answer."
    )
    assert BulkResult(answered=0, decided=1, voted=3, failed=1).text == (
        "Answered 0, 1 was decided already, 3 you voted on already, 1 could not be saved; click again to retry them."
    )
