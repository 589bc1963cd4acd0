"""The storage protocol: request, response, message and claim objects (DESIGN.md, contract).

Both objects are supersets of flyteplugins-hitl's, so stock code reads ours and stock
answers satisfy our wait loop. Unknown keys are kept, never rejected.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1
REQUEST_ID_PATTERN = re.compile(r"^[0-9a-f-]{36}$")

DataType = Literal["int", "float", "str", "bool"]
Via = Literal["slack", "teams", "web", "api", "flyte"]
Value = bool | int | float | str
Scalar = Annotated[Value, Field(union_mode="left_to_right")]


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """One human rendering of a timestamp, used by every surface."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def is_request_id(value: str) -> bool:
    return bool(REQUEST_ID_PATTERN.fullmatch(value))


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class RunInfo(_Model):
    """Where the event came from, when the plugin knows it."""

    project: str | None = None
    domain: str | None = None
    run_name: str | None = None
    action: str | None = None
    url: str | None = None


class ConditionRef(_Model):
    """Where the native Flyte condition an event mirrors lives (`action_name`: the task's action, its parent)."""

    project: str
    domain: str
    run_name: str
    action_name: str
    name: str


class Request(_Model):
    """`hitl-requests/<id>/request.json`: written once by the plugin."""

    request_id: str
    event_name: str
    scope: Literal["run"] = "run"
    prompt: str
    data_type: DataType
    status: Literal["pending"] = "pending"
    request_path: str
    response_path: str
    schema_version: int = SCHEMA_VERSION
    created_at: AwareDatetime
    deadline: AwareDatetime
    timeout_seconds: int
    choices: list[Scalar] | None = None
    min_value: float | None = None
    max_value: float | None = None
    responders: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    details: str | None = None
    run: RunInfo = Field(default_factory=RunInfo)
    condition: ConditionRef | None = None  # a native Flyte condition mirrors the event (bot/conditions.py)

    @field_validator("request_id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not is_request_id(value):
            raise ValueError("request_id must be a lowercase UUID")
        return value

    def expired(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= self.deadline


class Responder(_Model):
    """Who answered, as the answering surface knows them."""

    platform: Via
    user_id: str = ""
    user_name: str = ""

    @property
    def label(self) -> str:
        return self.user_name or self.user_id or self.platform


class Response(_Model):
    """`hitl-requests/<id>/response.json`: written once, first writer wins."""

    value: Any
    status: Literal["completed"] = "completed"
    request_id: str
    data_type: str = "str"
    responder: Responder | None = None
    responded_at: AwareDatetime | None = None
    via: Via | None = None

    @property
    def responder_label(self) -> str:
        return self.responder.label if self.responder else "someone outside hitl-chatops"

    @property
    def responded_text(self) -> str:
        return format_time(self.responded_at) if self.responded_at else "an unknown time"


class MessageRef(_Model):
    """Where one chat message of an event was posted, so any replica can update it.

    `key` is unique per platform and message (Slack: channel + ts; Teams: conversation + activity);
    `data` holds what the platform needs to address the message again.
    """

    platform: Literal["slack", "teams"]
    key: str
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("key")
    @classmethod
    def _safe_key(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._:-]{1,200}", value):
            raise ValueError("message key may only contain letters, digits and . _ : -")
        return value


class Claim(_Model):
    """`hitl-requests/<id>/claims/<name>`: one replica does a thing once; `done` stays False while it is at it."""

    claimed_at: AwareDatetime
    done: bool = True  # claims written before this field existed were only left by finished posts
