"""Seed-style workflows for the end-to-end tests (real Flyte local runs).

Written as a user would, with `import hitl_chatops.plugin as hitl`; short poll intervals keep
the tests quick.
"""

from __future__ import annotations

import asyncio

import flyte

import hitl_chatops.plugin as hitl

POLL = 0.1
env = flyte.TaskEnvironment(name="hitl-chatops-tests", depends_on=[hitl.env])


@env.task
async def task1() -> int:
    return 42


@env.task
async def task2(x: int, y: int) -> int:
    return x + y


@env.task(report=True)
async def add_with_human() -> int:
    """The seed's workflow: task1 → int event → task2."""
    x = await task1()
    event = await hitl.new_event.aio(
        "integer_input_event", data_type=int, scope="run", prompt="What should I add to x?", poll_interval_seconds=POLL
    )
    y = await event.wait.aio()
    return await task2(x, y)


@env.task
async def approve_deploy() -> bool:
    event = await hitl.new_event.aio("deploy_gate", data_type=bool, prompt="Deploy?", poll_interval_seconds=POLL)
    return bool(await event.wait.aio())


@env.task
async def wait_briefly(timeout_seconds: int) -> str:
    event = await hitl.new_event.aio(
        "short_fuse", data_type=str, prompt="Anyone?", timeout_seconds=timeout_seconds, poll_interval_seconds=POLL
    )
    try:
        await event.wait.aio()
    except TimeoutError as error:
        return f"TimeoutError: {error}"
    return "answered"


@env.task
async def wait_unhandled() -> str:
    event = await hitl.new_event.aio("unhandled", data_type=str, timeout_seconds=1, poll_interval_seconds=POLL)
    return str(await event.wait.aio())


@env.task
async def pick_replicas(channel: str) -> int:
    """An int between 1 and 10, asked in one chat channel (`slack:…` or `teams:…`)."""
    event = await hitl.new_event.aio(
        "replicas",
        data_type=int,
        prompt="How many replicas?",
        channels=[channel],
        min_value=1,
        max_value=10,
        poll_interval_seconds=POLL,
    )
    return int(await event.wait.aio())


SLOW_POLL = 30  # longer than any test waits: such a run resumes in time only if the answer wakes it


@env.task
async def approve_slowly() -> bool:
    """`approve_deploy` polling every 30 s, as a long-waiting gate might."""
    event = await hitl.new_event.aio("slow_gate", data_type=bool, prompt="Deploy?", poll_interval_seconds=SLOW_POLL)
    return bool(await event.wait.aio())


HOSTILE = "\x1b[2J\x1b[31mred\x1b]8;;https://evil.example\x07link\x1b]8;;\x07\u202eevil\r"


@env.task
async def hostile_gate() -> bool:
    """Task text full of terminal control sequences: clear screen, colour, a hyperlink, a bidi override."""
    event = await hitl.new_event.aio(
        "hostile_gate",
        data_type=bool,
        title=f"title {HOSTILE}",
        prompt=f"prompt {HOSTILE}",
        details=f"details {HOSTILE}",
        context={f"key {HOSTILE}": f"value {HOSTILE}"},
        poll_interval_seconds=POLL,
    )
    return bool(await event.wait.aio())


@env.task
async def two_gates() -> list[bool]:
    """Two events waited for at once, as a fan-out does."""
    first = await hitl.new_event.aio("first_gate", data_type=bool, prompt="First?", poll_interval_seconds=POLL)
    second = await hitl.new_event.aio("second_gate", data_type=bool, prompt="Second?", poll_interval_seconds=POLL)
    return list(await asyncio.gather(first.wait.aio(), second.wait.aio()))
