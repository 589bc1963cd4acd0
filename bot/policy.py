"""Policies outside the code: `HITL_CHATOPS_POLICY`, rules a platform team keeps in one YAML file.

Each rule matches events by Flyte project, domain and event name (shell-style globs); the first rule
that matches applies, so specific rules go first. A rule only ever tightens what the task asked for
(`PolicyRule.tighten`): approvals are the larger count, the policy's responders narrow who may
answer, its rules, escalations and channels are added, reminders come at the shorter period. The
plugin applies it when the event is created and writes the result into request.json, so editing the
file never changes an event already asked. `auto_approve: true` (say, for `development`) decides the
event at creation instead, recorded as approved by the policy.

A file that does not parse or fit is one `ConfigError` line naming the file and the line.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Annotated, Any

import fsspec
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, SequenceNode

from . import registry
from .errors import ConfigError
from .protocol import (
    MAX_APPROVALS,
    MIN_REMIND_SECONDS,
    ChannelId,
    Escalation,
    ResponderId,
    Rule,
)
from .text import format_number

__all__ = ["Match", "Policy", "PolicyRule", "configured_policy", "load_policy", "parse_policy"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: Any) -> Any:
    """Seconds as a number, or a short text such as "90s", "30m", "2h", "1d"."""
    if isinstance(value, str) and (found := _DURATION.fullmatch(value.strip())):
        return float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    if isinstance(value, str):
        raise ValueError(f'a duration is a number of seconds or a text such as "30m", "2h", "1d" (got {value!r})')
    return value


def _known_platform(channel: str) -> str:
    """A channel of a platform this process knows: a typo ("slak:C0123") would otherwise post nowhere."""
    platform = channel.partition(":")[0]
    if platform not in registry.names():
        raise ValueError(f"{platform!r} is not a chat platform here ({', '.join(registry.names())})")
    return channel


Duration = Annotated[float, BeforeValidator(_duration), Field(gt=0, allow_inf_nan=False)]
Channel = Annotated[ChannelId, AfterValidator(_known_platform)]
_STRICT = ConfigDict(extra="forbid", frozen=True)


class Match(BaseModel):
    """Which events a rule is for; each key is a glob (`*`, `?`, `[...]`), `*` when left out."""

    model_config = _STRICT

    project: str = "*"
    domain: str = "*"
    event: str = "*"

    def fits(self, project: str | None, domain: str | None, event: str) -> bool:
        """Case-sensitive, as Flyte's names are; an unknown project or domain (a local run with no
        Flyte config) is "", which only `*` matches."""
        pairs = ((self.project, project or ""), (self.domain, domain or ""), (self.event, event))
        return all(fnmatch.fnmatchcase(value, pattern) for pattern, value in pairs)


class PolicyApprovalRule(Rule):
    """A `Rule` as the policy file writes it (unknown keys are mistakes there)."""

    model_config = _STRICT


class PolicyEscalation(Escalation):
    """An `Escalation` as the policy file writes it: `after` may also be "2h"."""

    model_config = _STRICT

    after: Duration
    channels: list[Channel] = Field(default_factory=list)


class PolicyRule(BaseModel):
    """One rule of the policy file."""

    model_config = _STRICT

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    match: Match = Field(default_factory=Match)
    approvals: int | None = Field(None, ge=1, le=MAX_APPROVALS)
    rules: list[PolicyApprovalRule] = Field(default_factory=list)
    responders: list[ResponderId] = Field(default_factory=list)
    remind_every: Annotated[Duration | None, Field(ge=MIN_REMIND_SECONDS)] = None
    escalate: list[PolicyEscalation] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)
    exclude_requester: bool = False  # the run's owner may not approve even an event that is otherwise simple
    auto_approve: bool = False

    @model_validator(mode="after")
    def _approve_alone(self) -> PolicyRule:
        """`auto_approve` decides at creation: any other setting beside it would never apply."""
        if self.auto_approve:
            tightening = (
                "approvals",
                "rules",
                "responders",
                "remind_every",
                "escalate",
                "channels",
                "exclude_requester",
            )
            if others := [name for name in tightening if getattr(self, name)]:
                raise ValueError(f"auto_approve decides the event at creation: {', '.join(others)} would never apply")
        return self

    def tighten(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """A request's fields (as the plugin builds them, JSON values) with this rule applied: never looser.

        Escalations that would come after the event's deadline cannot happen and are left out. The
        policy's responders narrow everyone who may answer; an event open to anyone with no other
        list simply takes them as its `responders`, which keeps it on the simple path.
        """
        tightened = dict(fields) | {"policy": self.name}
        if self.auto_approve:
            return tightened
        timeout = fields["timeout_seconds"]
        reminders = [every for every in (fields.get("remind_every"), self.remind_every) if every is not None]
        tightened |= {
            "approvals": max(fields.get("approvals", 1), self.approvals or 1),
            "rules": [*fields.get("rules", []), *(rule.model_dump(mode="json") for rule in self.rules)],
            "escalate": [*fields.get("escalate", []), *(e.model_dump() for e in self.escalate if e.after < timeout)],
            "channels": list(dict.fromkeys([*fields.get("channels", []), *self.channels])),
            "remind_every": min(reminders) if reminders else None,
        }
        if self.responders:
            anyone = not [entry for entry in fields.get("responders", []) if entry != "*"]
            if anyone and not (tightened["rules"] or tightened["escalate"]):
                tightened["responders"] = list(self.responders)
            else:
                tightened["policy_responders"] = list(self.responders)
        return tightened

    def describe(self) -> list[str]:
        """What the rule does to an event, one line each (`hitl-chatops policy check`)."""
        if self.auto_approve:
            return ["approves the event when it is created (bool events, or events with an `initial` value)"]
        lines = []
        if self.approvals:
            lines.append(f"needs at least {self.approvals} approval{'s' if self.approvals > 1 else ''}")
        lines += [f"adds the rule {_rule_text(rule)}" for rule in self.rules]
        if self.responders:
            lines.append(f"only people who are also in {', '.join(self.responders)} may answer")
        if self.exclude_requester:
            lines.append("whoever started the run may not approve")
        if self.remind_every:
            lines.append(f"reminds every {_duration_text(self.remind_every)} at most")
        lines += [f"escalates: {_escalation_text(level)}" for level in self.escalate]
        if self.channels:
            lines.append(f"also posts to {', '.join(self.channels)}")
        return lines or ["changes nothing (it only names the events it matches)"]


class Policy(BaseModel):
    """The policy file: `rules`, tried in order."""

    model_config = _STRICT

    rules: list[PolicyRule]

    @model_validator(mode="after")
    def _names_once(self) -> Policy:
        names = [rule.name for rule in self.rules]
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"rule names must be unique; {', '.join(twice)} appears more than once")
        return self

    def rule_for(self, project: str | None, domain: str | None, event: str) -> PolicyRule | None:
        """The first rule that matches the event, or None (the task's own settings stand)."""
        return next((rule for rule in self.rules if rule.match.fits(project, domain, event)), None)


SETTING = "HITL_CHATOPS_POLICY"


def load_policy(url: str) -> Policy:
    """Read and check the policy file at `url` (a path or an fsspec URL). Blocking: call it on a thread
    from async code. Every problem is a one-line `ConfigError` naming the file (and the line)."""
    return parse_policy(_read(url), url)


def configured_policy(url: str) -> Policy:
    """`load_policy` for the file `HITL_CHATOPS_POLICY` names: its errors say which setting to fix."""
    try:
        return load_policy(url)
    except ConfigError as error:
        raise ConfigError(f"{SETTING}: {error}") from None


def parse_policy(text: str, source: str) -> Policy:
    """The policy in `text`; `source` names it in errors."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}{where}: not valid YAML: {error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    finally:
        loader.dispose()
    if root is None:
        raise ConfigError(f"{source}: the policy file is empty; it needs a list of `rules`")
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        problems = error.errors()
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        first = problems[0]
        line = _node_at(root, first["loc"]).start_mark.line + 1
        raise ConfigError(f"{source}, line {line}: {_where(first['loc'])}{_message(first)}{more}") from None


def _read(url: str) -> str:
    """The file's text: a local path or file:// URL directly, any other URL the way the store reaches its
    own (obstore for S3, GCS and Azure, credentials from each cloud's standard environment; fsspec else)."""
    from .store import Store

    try:
        if fsspec.utils.get_protocol(url) == "file":
            with fsspec.open(url, "rb") as file:
                data: bytes = file.read()
        else:
            folder, _, name = url.rstrip("/").rpartition("/")
            store = Store(folder)
            data = store.fs.cat_file(f"{store.root}/{name}")
    except FileNotFoundError:
        raise ConfigError(f"no policy file at {url}") from None
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(f"cannot read the policy file at {url} ({type(error).__name__})") from None
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ConfigError(f"{url}: the policy file is not UTF-8 text") from None


def _node_at(node: Node, loc: tuple[int | str, ...]) -> Node:
    """The YAML node an error's location points at, or the deepest one that exists (a missing key: its mapping)."""
    for part in loc:
        if isinstance(node, MappingNode):
            found = [value for key, value in node.value if key.value == part]
            if not found:
                return node
            node = found[0]
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def _where(loc: tuple[int | str, ...]) -> str:
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    return f"{path}: " if path else ""


def _message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key (see docs/policy.md for the keys a policy knows)"
    return str(error["msg"]).removeprefix("Value error, ")


def _duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{format_number(seconds)}s"


def _rule_text(rule: Rule) -> str:
    name = f"{rule.name}: " if rule.name else ""
    return f"{name}{rule.approvals} of {', '.join(rule.responders)}"


def _escalation_text(level: Escalation) -> str:
    parts = [f"after {_duration_text(level.after)}"]
    if level.responders:
        parts.append(f"{', '.join(level.responders)} may answer too")
    if level.channels:
        parts.append(f"posted to {', '.join(level.channels)}")
    return ", ".join(parts)
