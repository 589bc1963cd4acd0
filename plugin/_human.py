"""`Human`: a reusable, typed human step (seed 004, Planar's `Human`), a thin layer over `new_event`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Generic, TypeVar, cast

from flyte.syncify import syncify
from pydantic import BaseModel

from hitl_chatops.bot.protocol import Escalation, PromptType, Rule

from ._event import new_event
from ._result import EventResult
from ._team import team_fields

__all__ = ["Human"]

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out")


class Human(Generic[In, Out]):
    """A person as a workflow step: `result = await step(input_data, message=None)`.

    Each call asks once: an event named `name`, headed `title`, with `description` and `message`
    as its text and `input_data` (validated against `input_type` when given) as its context. It
    returns an `EventResult` whose `output` is an `output_type` (a model, or bool/int/float/str).
    `step.run(...)` is the same call, sync (or `await step.run.aio(...)`). `approvals`, `rules`,
    `requester`, `remind_every` and `escalate` make it a team decision, as on `new_event`; they are
    checked here, where the step is defined. `batch=True`: calls of one run share one message per
    channel, as on `new_event` (fan-out over many items).
    """

    def __init__(
        self,
        name: str,
        title: str,
        output_type: type[Out],
        *,
        description: str | None = None,
        input_type: type[In] | None = None,
        timeout: int | float | timedelta = 3600,
        channels: list[str] | None = None,
        responders: list[str] | None = None,
        on_timeout: Out | None = None,
        poll_interval_seconds: float = 5,
        prompt_type: PromptType = "text",
        approvals: int = 1,
        rules: Sequence[Rule | Mapping[str, Any]] | None = None,
        requester: str | None = None,
        remind_every: float | timedelta | None = None,
        escalate: Sequence[Escalation | Mapping[str, Any]] | None = None,
        batch: bool = False,
    ) -> None:
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
        if seconds < 1:
            raise ValueError(f"timeout must be at least one second (got {timeout!r})")
        team: dict[str, Any] = {
            "approvals": approvals,
            "rules": rules,
            "requester": requester,
            "remind_every": remind_every,
            "escalate": escalate,
        }
        team_fields(**team, timeout_seconds=int(seconds))  # fail where the step is defined, not when it runs
        self.name = name
        self.title = title
        self.output_type = output_type
        self.description = description
        self.input_type = input_type
        self.timeout_seconds = int(seconds)
        self.channels = channels
        self.responders = responders
        self.on_timeout = on_timeout
        self.poll_interval_seconds = poll_interval_seconds
        self.prompt_type = prompt_type
        self.team = team
        self.batch = batch

    async def __call__(
        self, input_data: In | dict[str, Any] | None = None, message: str | None = None
    ) -> EventResult[Out]:
        return await self.run.aio(input_data, message)

    @syncify
    async def run(self, input_data: In | dict[str, Any] | None = None, message: str | None = None) -> EventResult[Out]:
        """Ask, wait, and return the answer with who gave it."""
        context = input_data
        if self.input_type is not None and input_data is not None:
            context = self.input_type.model_validate(input_data)
        event = await new_event.aio(
            self.name,
            data_type=self.output_type,
            prompt=self.description or self.title,
            timeout_seconds=self.timeout_seconds,
            poll_interval_seconds=self.poll_interval_seconds,
            channels=self.channels,
            responders=self.responders,
            details=message,
            title=self.title,
            context=context,
            on_timeout=self.on_timeout,
            prompt_type=self.prompt_type,
            batch=self.batch,
            **self.team,
        )
        return cast(EventResult[Out], await event.result.aio())

    def __repr__(self) -> str:
        return f"Human(name={self.name!r}, output_type={getattr(self.output_type, '__name__', self.output_type)})"
