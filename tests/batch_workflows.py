"""Workflows that fan out into a batch of questions (`batch=True`), for the batch tests (real Flyte local runs)."""

from __future__ import annotations

import asyncio

import flyte

import hitl_chatops.plugin as hitl

POLL = 0.2
env = flyte.TaskEnvironment(name="hitl-chatops-batch-tests", depends_on=[hitl.env])


@env.task
async def review_documents(count: int, channel: str) -> int:
    """Ask about `count` documents at once, one event each in one batch; how many were approved."""

    async def one(index: int) -> bool:
        event = await hitl.new_event.aio(
            "publish_document",
            data_type=bool,
            prompt="Publish this document?",
            channels=[channel],
            context={"document": f"doc-{index:03d}"},
            batch=True,
            poll_interval_seconds=POLL,
        )
        return bool(await event.wait.aio())

    return sum(await asyncio.gather(*(one(i) for i in range(count))))
