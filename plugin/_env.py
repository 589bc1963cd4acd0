"""`env`: the TaskEnvironment a workflow lists in `depends_on`, as with flyteplugins-hitl."""

from __future__ import annotations

from functools import cache

import flyte


@cache
def task_env() -> flyte.TaskEnvironment:
    """An environment whose image carries the plugin (without the chat SDKs the bot needs)."""
    image = flyte.Image.from_debian_base(name="hitl-chatops-task").with_pip_packages("hitl-chatops[flyte,s3]")
    return flyte.TaskEnvironment(
        name="hitl-chatops",
        image=image,
        resources=flyte.Resources(cpu=1, memory="512Mi"),
        env_vars={"HITL_CHATOPS_LOG_FORMAT": "json"},
    )
