"""hitl-chatops for Flyte: ask a person in Slack, Teams or a web form, and wait for the answer.

A drop-in superset of `flyteplugins.hitl`: change `import flyteplugins.hitl as hitl` to
`import hitl_chatops.plugin as hitl` and nothing else.
"""

from __future__ import annotations

from typing import Any

from hitl_chatops.bot.errors import AlreadyAnswered, EventCancelled
from hitl_chatops.bot.protocol import Delegation, Escalation, Nudge, Proposal, Responder, Rule, Vote

from ._ask import ask
from ._env import env_with
from ._event import Event, EventScope, new_event
from ._gate import ApprovalRejected, require_approval
from ._human import Human
from ._result import EventResult

__all__ = [
    "AlreadyAnswered",
    "ApprovalRejected",
    "Delegation",
    "Escalation",
    "Event",
    "EventCancelled",
    "EventResult",
    "EventScope",
    "Human",
    "Nudge",
    "Proposal",
    "Responder",
    "Rule",
    "Vote",
    "ask",
    "env",
    "env_with",
    "new_event",
    "require_approval",
]


def __getattr__(name: str) -> Any:
    # `env` is built on first use, not at import: importing the plugin must not create images.
    if name == "env":
        from ._env import task_env

        return task_env()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
