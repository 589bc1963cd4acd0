"""`EventResult`: an answer with who gave it, when and where (Planar's `HumanTaskResult`, plus audit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from hitl_chatops.bot.protocol import Responder

__all__ = ["EventResult"]

T = TypeVar("T")


@dataclass(frozen=True)
class EventResult(Generic[T]):
    """What `event.result()` and a `Human` step return.

    `completed_by` is the responder as the answering surface knows them (`platform`, `user_id`,
    `user_name`); None for the `on_timeout` default (`via == "timeout"`) and for answers written
    by stock flyteplugins-hitl code.
    """

    output: T
    request_id: str
    completed_by: Responder | None
    completed_at: datetime | None
    via: str | None
