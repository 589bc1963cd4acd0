"""The storage protocol: request, response, message and claim objects (the contract: docs/protocol.md).

Both objects are supersets of flyteplugins-hitl's, so stock code reads ours and stock
answers satisfy our wait loop. Unknown keys are kept, never rejected. Version 2 adds structured
answers (`data_type: "object"` + `answer_schema`), `context`, `initial`, `on_timeout`, and
cancelled / defaulted outcomes; version 3 the rules of a team decision (`approvals`, `rules`,
`requester`, `remind_every`, `escalate`, `policy`, `policy_responders`). Older objects read as
before: every new field is optional.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    field_validator,
    model_validator,
)

__all__ = [
    "FORM_LINK_HOLDER",
    "MAX_APPROVALS",
    "MIN_REMIND_SECONDS",
    "NAME_PATTERN",
    "NOTE_LIMIT",
    "REQUEST_ID_PATTERN",
    "SCHEMA_VERSION",
    "BatchMessage",
    "ChannelId",
    "Claim",
    "ConditionRef",
    "DataType",
    "Default",
    "Delegation",
    "Escalation",
    "LogEntry",
    "MessageRef",
    "Nudge",
    "OutcomeKind",
    "OutcomeRecord",
    "PlatformName",
    "PromptType",
    "Proposal",
    "Request",
    "RequesterId",
    "Responder",
    "ResponderId",
    "Response",
    "Result",
    "Rule",
    "RunInfo",
    "Scalar",
    "ScalarType",
    "Via",
    "Vote",
    "decided_by_team",
    "format_time",
    "is_request_id",
    "log_name",
    "person_key",
    "seconds",
    "utcnow",
]

SCHEMA_VERSION = 3
REQUEST_ID_PATTERN = re.compile(r"^[0-9a-f-]{36}$")
# What a chat platform's name may be: it is part of store keys, so the protocol owns its shape
# (`registry` checks every registration against it).
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"

ScalarType = Literal["int", "float", "str", "bool"]
DataType = Literal["int", "float", "str", "bool", "object"]
# How surfaces show the title, prompt and details (Flyte's `new_condition(prompt_type=...)`): "text"
# literally; "markdown" with the author's emphasis and links. Never a broadcast or user mention.
PromptType = Literal["text", "markdown"]
# Where an outcome came from: a chat platform (slack, teams), the web form (web), the API (api),
# flyte, policy (approved by the policy file at creation), or timeout (the default applied at the
# deadline). A plain name, so platforms added later need no change here.
Via = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
# A chat platform's name. Not checked against the platforms registered
# here: a copy posted by a replica that runs one more platform (mid-upgrade) stays readable.
PlatformName = Annotated[str, Field(pattern=NAME_PATTERN)]
# Strict members: a choice keeps the exact type it was given ("yes" stays a str, 1 an int),
# where a lax left-to-right union would turn "yes", "on", "1" and 0/1 into bools.
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr

# -- version 3: the rules of a team decision --
MAX_APPROVALS = 50  # approvals asked of distinct people, per event and per rule
MIN_REMIND_SECONDS = 60  # reminders post into people's threads: not more often than once a minute
NOTE_LIMIT = 500  # characters of a vote's reason or a hand-over's note, on every surface
# A `responders` entry: a user or group id, optionally prefixed with its platform ("slack:S0SRE");
# "*" is anyone. Never a display name (people can change those).
ResponderId = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^\S+$")]
# Where an event is posted, "<platform>:<target>" as in `channels` ("slack:C0123").
ChannelId = Annotated[str, StringConstraints(max_length=255, pattern=rf"{NAME_PATTERN[:-1]}:\S+$")]
# Who asked: a chat identity ("slack:U0DANA", "teams:<Entra object id>") or an e-mail address the
# platforms resolve to theirs. A platform prefix is required: a bare id could be anyone's on another platform.
RequesterId = Annotated[
    str,
    StringConstraints(max_length=255, pattern=rf"({NAME_PATTERN[:-1]}:\S+$)|(^[^@\s:]+@[^@\s]+\.[^@\s]+$)"),
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """One human rendering of a timestamp, used by every surface."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def is_request_id(value: str) -> bool:
    return bool(REQUEST_ID_PATTERN.fullmatch(value))


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


_URL_KEEP = "%:/?#[]@!$&'*+,;=~"  # RFC 3986's reserved characters but ( and ), and existing escapes


class RunInfo(_Model):
    """Where the event came from, when the plugin knows it."""

    project: str | None = None
    domain: str | None = None
    run_name: str | None = None
    action: str | None = None
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _web_link_only(cls, url: str | None) -> str | None:
        """Only an http(s) URL with a host is kept, since every surface shows `url` as a link.

        Any other (`javascript:`, `data:`, unparseable) is dropped, never refused: a request.json
        from another writer stays readable. Characters that could end a link in HTML, Slack's
        `<url|text>` or Markdown's `[text](url)` are percent-encoded.
        """
        try:
            parts = urlsplit((url or "").strip())
        except ValueError:
            return None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        return quote(urlunsplit(parts), safe=_URL_KEEP)


class Default(_Model):
    """`on_timeout` as stored: a wrapper, so a default of `null` differs from no default at all."""

    value: Any


class ConditionRef(_Model):
    """Where the native Flyte condition an event mirrors lives (`action_name`: the task's action, its parent)."""

    project: str
    domain: str
    run_name: str
    action_name: str
    name: str


_TEAM_FIELDS = ("rules", "requester", "escalate", "policy_responders")


def decided_by_team(fields: Mapping[str, Any]) -> bool:
    """Whether an event with these request fields takes more than its first eligible answer: several
    approvals, rules, a requester who may not approve, escalation levels, or a policy narrowing who may
    answer. Reminders alone leave an event simple: they change who is nudged, not what decides."""
    return fields.get("approvals", 1) > 1 or any(fields.get(name) for name in _TEAM_FIELDS)


def seconds(value: float | timedelta) -> float:
    """A duration given as seconds or a `timedelta`, in seconds (what request.json stores)."""
    return value.total_seconds() if isinstance(value, timedelta) else value


class Rule(_Model):
    """One approval rule of a team decision: `approvals` distinct people among `responders` must approve.

    Every rule of an event must be met; one person's approval counts for one rule only.
    """

    responders: list[ResponderId]
    approvals: int = Field(default=1, ge=1, le=MAX_APPROVALS)
    name: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("responders")
    @classmethod
    def _someone(cls, responders: list[str]) -> list[str]:
        if not responders:
            raise ValueError('a rule needs at least one responder, a user or group id such as "slack:S0SRE"')
        return responders


class Escalation(_Model):
    """A level of escalation: still undecided `after` seconds (or a `timedelta`) from the event's creation,
    `responders` may answer too and the event is posted to `channels`."""

    after: float = Field(gt=0, allow_inf_nan=False)
    responders: list[ResponderId] = Field(default_factory=list)
    channels: list[ChannelId] = Field(default_factory=list)

    def __init__(
        self,
        *,
        after: float | timedelta,
        responders: Sequence[str] = (),
        channels: Sequence[str] = (),
        **extra: Any,
    ) -> None:
        """Typed for callers: `after` in seconds or as a `timedelta` (stored as seconds)."""
        fields: dict[str, Any] = {"after": after, "responders": list(responders), "channels": list(channels)}
        super().__init__(**fields, **extra)

    @field_validator("after", mode="before")
    @classmethod
    def _in_seconds(cls, after: Any) -> Any:
        return seconds(after) if isinstance(after, timedelta) else after

    @model_validator(mode="after")
    def _does_something(self) -> Escalation:
        if not (self.responders or self.channels):
            raise ValueError("an escalation needs responders, channels or both: otherwise nothing would happen")
        return self


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
    # version 2
    title: str | None = None
    answer_schema: dict[str, Any] | None = None  # the answer model's JSON Schema, for data_type "object"
    context: dict[str, Any] | None = None  # shown to the person as labelled fields
    initial: Any = None  # a proposed answer, pre-filled (None: nothing proposed)
    on_timeout: Default | None = None  # the answer applied at the deadline (None: the wait raises)
    condition: ConditionRef | None = None  # a native Flyte condition mirrors the event (bot/conditions.py)
    prompt_type: PromptType = "text"  # how title, prompt and details are shown (see `PromptType`)
    # version 3: a team decision, frozen at creation (the task's arguments tightened by the policy file)
    approvals: int = Field(1, ge=1, le=MAX_APPROVALS)  # distinct people who must approve, in all
    rules: list[Rule] = Field(default_factory=list)  # each must be met, besides `approvals`
    requester: RequesterId | None = None  # who asked; they may not approve
    remind_every: float | None = Field(None, ge=MIN_REMIND_SECONDS, allow_inf_nan=False)  # seconds
    escalate: list[Escalation] = Field(default_factory=list)
    policy: str | None = None  # the policy file's rule that shaped the event (HITL_CHATOPS_POLICY), for the audit
    # The policy's `responders`: when set, a person must match one of these too, whichever list let them in.
    policy_responders: list[ResponderId] = Field(default_factory=list)
    # Fan-out: open events of one run with the same name share one message per channel (bot/batch.py).
    batch: bool = False

    @field_validator("request_id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not is_request_id(value):
            raise ValueError("request_id must be a lowercase UUID")
        return value

    @model_validator(mode="after")
    def _schema_given(self) -> Request:
        if self.data_type == "object" and not self.answer_schema:
            raise ValueError('data_type "object" needs an answer_schema')
        return self

    @property
    def heading(self) -> str:
        """What surfaces show as the event's title."""
        return self.title or self.event_name

    @property
    def team_event(self) -> bool:
        """See `decided_by_team`."""
        return decided_by_team({name: getattr(self, name) for name in ("approvals", *_TEAM_FIELDS)})

    def expired(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= self.deadline


# Whoever answers through an event's shared form link: the link names no one.
FORM_LINK_HOLDER = "someone with the form link"


class Responder(_Model):
    """Who answered, as the answering surface knows them."""

    platform: Via
    user_id: str = ""
    user_name: str = ""

    @classmethod
    def form_link_holder(cls) -> Responder:
        return cls(platform="web", user_name=FORM_LINK_HOLDER)

    @property
    def identity(self) -> str:
        """`<platform>:<user id>`, as `responders` entries and personal form links name a person."""
        return f"{self.platform}:{self.user_id}"

    @property
    def label(self) -> str:
        if self.platform == "web" and not self.user_id:  # answers saved before it was named said "web form"
            return FORM_LINK_HOLDER
        return self.user_name or self.user_id or self.platform


def person_key(person: Responder) -> str:
    """A short, path-safe name for one person (`<platform>:<user id>` hashed): their vote's and their
    delegation's object names, so one person writes one of each whatever the replica."""
    return hashlib.sha256(f"{person.platform}:{person.user_id}".encode()).hexdigest()[:20]


# -- the decision log of a team event (hitl-requests/<id>/votes/, proposals/, ...) --------------
# Every object is created exclusively and never changed: a replica may keep what it read.


class Vote(_Model):
    """`votes/<round>-<person key>.json`: one person's Approve or Reject in one round.

    `value` is the answer as the person gave it (an "approve, with a reason" answer keeps its text);
    `counts_for` the indices of `request.rules` the person could fill when they voted (their groups
    read then, delegations to them included), so any replica evaluates the log without a lookup.
    """

    kind: Literal["vote"] = "vote"
    voter: Responder
    round: int = Field(1, ge=1)
    vote: Literal["approve", "reject"]
    value: Any = None
    reason: str | None = None
    counts_for: list[int] = Field(default_factory=list)
    at: AwareDatetime
    via: Via


class Proposal(_Model):
    """`proposals/<round>.json`: a value event's round, opened by its first eligible answer.

    It counts as its proposer's approval; others confirm it (a `Vote` to approve in that round) or
    reject it (a `Vote` to reject: the round ends and a new value may be proposed).
    """

    kind: Literal["proposal"] = "proposal"
    proposer: Responder
    round: int = Field(1, ge=1)
    value: Any
    counts_for: list[int] = Field(default_factory=list)
    at: AwareDatetime
    via: Via


class Delegation(_Model):
    """`delegations/<person key of delegator>.json`: a person hands their place to someone else, once.

    The delegate may answer in their place (and fill the rules they could, `counts_for`); the
    delegator may no longer answer.
    """

    kind: Literal["delegation"] = "delegation"
    delegator: Responder
    delegate: Responder
    note: str | None = Field(None, max_length=NOTE_LIMIT)
    counts_for: list[int] = Field(default_factory=list)
    at: AwareDatetime
    via: Via


class Nudge(_Model):
    """`reminders/<k>.json` (the k-th reminder) or `escalations/<i>.json` (level i reached): created by
    the replica that sends it, so each happens once; also its record. `waiting` is who it named."""

    kind: Literal["reminder", "escalation"]
    index: int = Field(ge=0)
    at: AwareDatetime
    waiting: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)  # an escalation: where the event was posted


LogEntry = Annotated[Vote | Proposal | Delegation | Nudge, Field(discriminator="kind")]


def log_name(entry: Vote | Proposal | Delegation | Nudge) -> str:
    """Where a log object lives in its event's folder, which is also its identity: one per person per
    round (votes), per round (proposals), per person (delegations), per reminder and per escalation level."""
    if isinstance(entry, Vote):
        return f"votes/{entry.round}-{person_key(entry.voter)}.json"
    if isinstance(entry, Proposal):
        return f"proposals/{entry.round}.json"
    if isinstance(entry, Delegation):
        return f"delegations/{person_key(entry.delegator)}.json"
    return f"{entry.kind}s/{entry.index}.json"


class Response(_Model):
    """`hitl-requests/<id>/response.json`: the event's one outcome, written once, first writer wins.

    An answer (`completed`), the `on_timeout` default applied at the deadline (`completed`, via
    `timeout`), or a cancellation (`cancelled`, with `reason`; `responder` is who cancelled). A team
    decision is an answer with `votes`: the votes of its deciding round that it counted (a veto:
    one of them rejects, and `reason` is the veto's).
    """

    value: Any = None
    status: Literal["completed", "cancelled"] = "completed"
    request_id: str
    data_type: str = "str"
    responder: Responder | None = None
    responded_at: AwareDatetime | None = None
    via: Via | None = None
    reason: str | None = None
    votes: list[Vote] | None = None  # a team decision's (version 3)

    @classmethod
    def cancellation(cls, request: Request, reason: str, responder: Responder, via: str) -> Response:
        return cls(
            status="cancelled",
            reason=reason,
            request_id=request.request_id,
            data_type=request.data_type,
            responder=responder,
            responded_at=utcnow(),
            via=via,
        )

    @classmethod
    def timeout_default(cls, request: Request) -> Response:
        """The `on_timeout` outcome; the same object whoever writes it (the plugin or any replica)."""
        assert request.on_timeout is not None
        return cls(
            value=request.on_timeout.value,
            request_id=request.request_id,
            data_type=request.data_type,
            responded_at=request.deadline,
            via="timeout",
        )

    @classmethod
    def by_policy(cls, request: Request, value: Any) -> Response:
        """The outcome of an event the policy file approves at creation (`auto_approve`); the same object
        whoever writes it."""
        return cls(
            value=value,
            request_id=request.request_id,
            data_type=request.data_type,
            responder=Responder(platform="policy", user_name=f"policy {request.policy}"),
            responded_at=request.created_at,
            via="policy",
        )

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"

    @property
    def vetoed(self) -> bool:
        """A team decision ended by an eligible Reject (an Approve/Reject event's veto)."""
        return any(vote.vote == "reject" for vote in self.votes or ())

    @property
    def defaulted(self) -> bool:
        """The deadline passed and the event's `on_timeout` value was applied."""
        return self.via == "timeout"

    @property
    def responder_label(self) -> str:
        if self.responder:
            return self.responder.label
        return "the deadline default" if self.defaulted else "someone outside hitl-chatops"

    @property
    def responded_text(self) -> str:
        return format_time(self.responded_at) if self.responded_at else "an unknown time"


# The folders of the outcome history (`hitl-history/<outcome>/`), one per status the API lists: an answer
# (`completed`), a Reject (`rejected`: an approval answered False, a team decision vetoed), a cancellation,
# and the deadline (`expired`, with or without a default applied).
OutcomeKind = Literal["completed", "rejected", "cancelled", "expired"]
# How an event ended, as stats and metrics count it: the folders, with a default applied at the deadline
# (`defaulted`) told apart from a plain expiry.
Result = Literal["completed", "rejected", "expired", "defaulted", "cancelled"]


class OutcomeRecord(_Model):
    """`hitl-history/<outcome>/<day>/<newest-first key>`: one line of the outcome history.

    Written when the outcome is, so listing, searching and counting ended events reads these, never
    every event. `created_at` (absent in records of development builds before 0.2.0) gives the time
    to decision.
    """

    request_id: str
    event_name: str = ""
    outcome: OutcomeKind
    at: AwareDatetime
    via: Via | None = None
    responder: Responder | None = None
    value: Any = None
    reason: str | None = None
    created_at: AwareDatetime | None = None

    @property
    def result(self) -> Result:
        """The outcome, with a default applied at the deadline told apart from a plain expiry."""
        return "defaulted" if self.outcome == "expired" and self.via == "timeout" else self.outcome

    @property
    def seconds(self) -> float | None:
        """From the event's creation to its outcome; None when the record does not say when it was created."""
        return None if self.created_at is None else (self.at - self.created_at).total_seconds()


class MessageRef(_Model):
    """Where one chat message of an event was posted, so any replica can update it.

    `key` is unique per platform and message (a channel and a timestamp, say); `data` holds what
    the platform needs to address the message again.
    """

    platform: PlatformName
    key: str
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("key")
    @classmethod
    def _safe_key(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._:-]{1,200}", value):
            raise ValueError("message key may only contain letters, digits and . _ : -")
        return value


class BatchMessage(_Model):
    """`hitl-batches/<batch id>/message.json`: where a batch's one message went, and the target it
    was posted to (the channel its updates are paced on)."""

    target: str
    message: MessageRef


class Claim(_Model):
    """`hitl-requests/<id>/claims/<name>`: one replica does a thing once; `done` stays False while it is at it."""

    claimed_at: AwareDatetime
    done: bool = True  # claims written before this field existed were only left by finished posts
