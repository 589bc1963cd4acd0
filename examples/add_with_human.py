"""The flyteplugins-hitl README example, with one changed import (and, for remote runs, an image
that has hitl-chatops: `hitl.env.image`).

Run it with `hitl-chatops demo`, or `python examples/add_with_human.py`.
"""

import flyte

import hitl_chatops.plugin as hitl

# The tasks call hitl-chatops, so in a remote run they need it in their image too: hitl.env's has it.
task_env = flyte.TaskEnvironment(name="my-hitl-workflow", image=hitl.env.image, depends_on=[hitl.env])


@task_env.task
async def task1() -> int:
    """First task: an automated value."""
    return 42


@task_env.task
async def task2(x: int, y: int) -> int:
    """Second task: combines the automated and the human value."""
    return x + y


@task_env.task(report=True)
async def main() -> int:
    x = await task1()
    event = await hitl.new_event.aio(
        "integer_input_event",
        data_type=int,
        scope="run",
        prompt="What should I add to x?",
    )
    y = await event.wait.aio()
    return await task2(x, y)


if __name__ == "__main__":
    flyte.init()
    run = flyte.run(main)
    run.wait()
    print(f"Result: {run.outputs()}")
