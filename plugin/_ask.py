"""`ask`: put a native `flyte.new_condition` in front of people in chat, and return its answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from flyte.syncify import syncify

from hitl_chatops.bot.protocol import Escalation, Rule

from ._event import _fields, _is_local, effective, open_event

DEFAULT_TIMEOUT_SECONDS = 3600  # a condition without a timeout is asked for an hour, like new_event


@syncify
async def ask(
    condition: Any,
    *,
    channels: list[str] | None = None,
    responders: list[str] | None = None,
    details: str | None = None,
    choices: list[Any] | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
    poll_interval_seconds: float = 5,
    approvals: int = 1,
    rules: Sequence[Rule | Mapping[str, Any]] | None = None,
    requester: str | None = None,
    remind_every: float | timedelta | None = None,
    escalate: Sequence[Escalation | Mapping[str, Any]] | None = None,
    batch: bool = False,
) -> Any:
    """Post `condition` (from `flyte.new_condition`) to chat and wait for its answer.

    Its name, prompt (shown as its `prompt_type` says), type and timeout make the question; an
    answer in chat is validated like every other and signalled into the condition, and an answer
    given in Flyte instead (UI, CLI, `flyte.remote`) updates the chat messages. Returns the typed
    value; `TimeoutError` at the condition's timeout. Call it instead of `condition.wait()`. In a
    local run the condition is not awaited: the question is answered through hitl-chatops alone.
    The team-decision arguments are `new_event`'s; a team decision is counted by the bot alone (a
    value signalled in Flyte is not taken), and the decided value is signalled into the condition.
    `batch=True` shares one message per channel among this run's questions of that name (`new_event`).
    """
    timeout = condition.timeout
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout or DEFAULT_TIMEOUT_SECONDS
    fields = _fields(
        condition.name,
        condition.data_type,
        condition.prompt,
        seconds,
        scope="run",
        poll_interval_seconds=poll_interval_seconds,
        channels=channels,
        choices=choices,
        min_value=min_value,
        max_value=max_value,
        responders=responders,
        details=details,
        prompt_type=getattr(condition, "prompt_type", "text"),
        approvals=approvals,
        rules=rules,
        requester=requester,
        remind_every=remind_every,
        escalate=escalate,
        batch=batch,
    )
    planned = await effective(condition.data_type, fields)
    event = await open_event(condition.data_type, planned, poll_interval_seconds, None if _is_local() else condition)
    return await event.wait.aio()
