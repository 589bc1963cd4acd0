"""A team decision's arguments (`approvals`, `rules`, `requester`, `remind_every`, `escalate`) checked at
the call site, and the policy file (`HITL_CHATOPS_POLICY`, bot/policy.py) applied to an event's fields
before it is created. The decision itself is counted by the bot."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import flyte
import flyte.errors
from pydantic import ValidationError

from hitl_chatops.bot import registry
from hitl_chatops.bot.answers import Accepted, AnswerSchema, approval_field, parse_fields
from hitl_chatops.bot.policy import PolicyRule, configured_policy
from hitl_chatops.bot.protocol import (
    MAX_APPROVALS,
    MIN_REMIND_SECONDS,
    Escalation,
    Rule,
    decided_by_team,
    seconds,
)

__all__ = ["Escalation", "Plan", "Rule", "check_channels", "plan_event", "team_fields"]

_EMAIL = re.compile(r"[^@\s:]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Plan:
    """An event's request fields as they will be written (the policy applied), and what creation still does."""

    fields: dict[str, Any]
    requester_from_run: bool = False  # fill `requester` with whoever started the (remote) run
    approve: bool = False  # the policy decides the event at creation (`auto_approve`)

    @property
    def team(self) -> bool:
        """Decided by the bot's count of votes (a requester still to be filled in counts)."""
        return self.requester_from_run or decided_by_team(self.fields)


def team_fields(
    *,
    approvals: int,
    rules: Sequence[Rule | Mapping[str, Any]] | None,
    requester: str | None,
    remind_every: float | timedelta | None,
    escalate: Sequence[Escalation | Mapping[str, Any]] | None,
    timeout_seconds: float,
) -> dict[str, Any]:
    """The request fields of a team decision, or a `ValueError`/`TypeError` naming the argument."""
    if isinstance(approvals, bool) or not isinstance(approvals, int) or not 1 <= approvals <= MAX_APPROVALS:
        raise ValueError(f"approvals must be a whole number from 1 to {MAX_APPROVALS} (got {approvals!r})")
    checked_rules = [_model(Rule, f"rules[{i}]", rule) for i, rule in enumerate(rules or [])]
    levels = [_escalation(i, level, timeout_seconds) for i, level in enumerate(escalate or [])]
    return {
        "approvals": approvals,
        "rules": [rule.model_dump(mode="json") for rule in checked_rules],
        "requester": _requester(requester),
        "remind_every": None if remind_every is None else _period(remind_every),
        "escalate": [level.model_dump(mode="json") for level in levels],
    }


def check_channels(channels: Sequence[str], argument: str = "channels") -> None:
    """Each entry names a platform this process knows and a target: `"slack:C0123"`."""
    for channel in channels:
        platform, _, target = channel.partition(":") if isinstance(channel, str) else ("", "", "")
        if platform not in registry.names() or not target:
            shapes = " or ".join(f'"{r.name}:{r.example}"' for r in registry.registrations())
            raise ValueError(f"{argument} entries look like {shapes} (got {channel!r})")


async def plan_event(fields: dict[str, Any], schema: AnswerSchema, *, policy_url: str | None, remote: bool) -> Plan:
    """`fields` with the policy file's matching rule applied (read now: a new event sees the file as it
    is), and whether the run's owner becomes the requester. Raises `ConfigError` for a bad policy
    file and `ValueError` for an `auto_approve` the event cannot take."""
    rule = None
    if policy_url:
        policy = await asyncio.to_thread(configured_policy, policy_url)
        rule = policy.rule_for(_project(), _domain(), fields["event_name"])
    if rule is None:
        return _planned(fields, exclude_requester=False, remote=remote)
    tightened = rule.tighten(fields)
    if rule.auto_approve:
        _check_approvable(rule, tightened, schema)
        return Plan(tightened, approve=True)
    return _planned(tightened, exclude_requester=rule.exclude_requester, remote=remote)


def approval_value(fields: Mapping[str, Any], schema: AnswerSchema) -> Any:
    """What `auto_approve` answers (the event was checked approvable when it was planned)."""
    approval = _approval(fields, schema)
    assert approval is not None
    return approval.value


def _approval(fields: Mapping[str, Any], schema: AnswerSchema) -> Accepted | None:
    """An approval nobody was asked for: True for a bool event; for Approve/Reject with optional text
    (`approval_field`, an approval gate's answer), Approve with the `initial` text; else the event's
    `initial`, if it is a complete answer. None when the event has none of these."""
    if fields["data_type"] == "bool":
        return Accepted(True)
    initial = fields.get("initial")
    button = approval_field(schema)
    if button is not None:
        initial = dict(initial or {}) | {button.name: True}
    outcome = None if initial is None else parse_fields(schema, initial)
    return outcome if isinstance(outcome, Accepted) else None


def _planned(fields: dict[str, Any], *, exclude_requester: bool, remote: bool) -> Plan:
    """Whoever started a remote run may not approve their own team decision (GitLab's and Azure DevOps'
    default): their identity becomes the requester unless the task named one. A simple event stays
    simple (its asker may answer it), unless the policy says `exclude_requester`."""
    owner = remote and fields.get("requester") is None and (exclude_requester or decided_by_team(fields))
    return Plan(fields, requester_from_run=owner)


def _check_approvable(rule: PolicyRule, fields: Mapping[str, Any], schema: AnswerSchema) -> None:
    if _approval(fields, schema) is not None:
        return
    raise ValueError(
        f"the policy rule {rule.name!r} (HITL_CHATOPS_POLICY) approves events when they are created, which "
        f"takes a bool event, an Approve/Reject answer or a complete `initial` answer to approve; "
        f"{fields['event_name']!r} is none of these "
        f"(data type {fields['data_type']}, no complete `initial`): give it `initial=` or narrow the rule's `match`"
    )


def _model(kind: type[Rule] | type[Escalation], argument: str, value: Any) -> Any:
    """`value` as a `kind` (an instance, or a dict of its fields), or an error naming the argument."""
    if isinstance(value, kind):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"{argument} must be a hitl.{kind.__name__} (got {type(value).__name__})")
    try:
        return kind.model_validate(value)
    except ValidationError as error:
        problem = error.errors()[0]
        where = "".join(f".{part}" for part in problem["loc"])
        raise ValueError(f"{argument}{where}: {problem['msg'].removeprefix('Value error, ')}") from None


def _escalation(index: int, value: Any, timeout_seconds: float) -> Escalation:
    level: Escalation = _model(Escalation, f"escalate[{index}]", value)
    check_channels(level.channels, f"escalate[{index}].channels")
    if level.after >= timeout_seconds:
        raise ValueError(
            f"escalate[{index}].after ({level.after:g} s) is not before the event's timeout "
            f"({timeout_seconds:g} s): it could never happen"
        )
    return level


def _period(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
        raise TypeError(f"remind_every must be seconds or a timedelta (got {type(value).__name__})")
    every = seconds(value)
    if not math.isfinite(every) or every < MIN_REMIND_SECONDS:
        raise ValueError(f"remind_every must be at least {MIN_REMIND_SECONDS} seconds (got {value!r})")
    return float(every)


def _requester(requester: Any) -> str | None:
    if requester is None:
        return None
    text = requester.strip() if isinstance(requester, str) else ""
    platform, _, user = text.partition(":")
    if _EMAIL.fullmatch(text) or (platform in registry.names() and user and not any(c.isspace() for c in user)):
        return text
    examples = " or ".join(f'"{r.name}:<user id>"' for r in registry.registrations())
    raise ValueError(f"requester is a chat identity ({examples}) or an e-mail address (got {requester!r})")


def _project() -> str | None:
    """The run's Flyte project; in a local run, the one `flyte.init` was given (a local run has none)."""
    try:
        return flyte.current_project()
    except flyte.errors.InitializationError:
        return None


def _domain() -> str | None:
    try:
        return flyte.current_domain()
    except flyte.errors.InitializationError:
        return None
