"""`require_approval`: a tool call (a plain function or a Flyte task) asks a person before it runs.

The gate is one `new_event`: its context is the call's arguments, its answer "approve, with a
reason" (or, `editable=True`, the arguments themselves typed from the function's signature, plus
that decision), so every surface, the policy file and team decisions treat it as any other event.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import reprlib
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal, TypeVar, cast

import flyte
from flyte.syncify import syncify
from pydantic import BaseModel, Field, PydanticUserError, create_model
from pydantic_core import to_jsonable_python

from hitl_chatops.bot.answers import Rejected, parse_fields, schema_from_type
from hitl_chatops.bot.errors import HitlError
from hitl_chatops.bot.protocol import Escalation, PromptType, Responder, Rule
from hitl_chatops.bot.text import clip, via_name

from ._event import _fields, new_event

__all__ = ["ApprovalRejected", "require_approval"]

F = TypeVar("F", bound=Callable[..., Any])
OnTimeout = Literal["reject", "approve"]
log = logging.getLogger(__name__)

REPR_CHARS = 1000  # an argument the JSON encoder cannot take is shown as its repr, cut to this many characters
REASON_CHARS = 500
_EDITABLE_TYPES = "an edited value is a bool, int, float, str, a Literal or Enum of those, or Optional of them"
_DECISION = ("approved", "reason")  # the answer's own fields; an editable function may not use these names
_MESSAGE_REPR = reprlib.Repr()  # arguments in the rejection's message: short, whatever their size
_MESSAGE_REPR.maxstring = _MESSAGE_REPR.maxother = 80


class Approval(BaseModel):
    """The answer of a gate: Approve/Reject buttons in chat, and a reason (asked for after the click)."""

    approved: bool = Field(description="Approve runs the call; Reject stops it")
    reason: str = Field(default="", max_length=REASON_CHARS, description="Say why, especially when rejecting")


class ApprovalRejected(HitlError):
    """A gated call was not approved, so it did not run; `str(error)` is a sentence for an agent's model.

    `by` is who rejected (a `Responder`; None when nobody answered before the deadline: `via ==
    "timeout"`), `at` when, `reason` what they wrote (None if nothing), `function` and `arguments`
    the call as it was made (defaults applied).
    """

    def __init__(
        self,
        function: str,
        arguments: Mapping[str, Any],
        *,
        by: Responder | None,
        at: datetime | None,
        reason: str | None,
        via: str | None,
        request_id: str,
    ) -> None:
        self.function = function
        self.arguments = dict(arguments)
        self.by = by
        self.at = at
        self.reason = reason
        self.via = via
        self.request_id = request_id
        super().__init__(self._sentence())

    @property
    def timed_out(self) -> bool:
        return self.via == "timeout"

    def _sentence(self) -> str:
        listed = ", ".join(f"{name}={_MESSAGE_REPR.repr(value)}" for name, value in self.arguments.items())
        call = f"{self.function}({listed})"
        if self.timed_out:
            return f"{call} was not run: nobody approved it before the deadline."
        who = self.by.label if self.by else "a person"
        said = f' Their reason: "{self.reason}"' if self.reason else " They gave no reason."
        return f"{call} was rejected by {who} via {via_name(self.via)} and was not run.{said}"


@dataclass(frozen=True)
class _Gate:
    """What a decorated function asks, fixed where it is decorated."""

    function: Callable[..., Any]
    signature: inspect.Signature
    answer: type[BaseModel]  # `Approval`, or the editable arguments plus its fields
    editable: tuple[str, ...]  # the parameters the person may change
    when: Callable[[Mapping[str, Any]], bool] | None
    on_timeout: OnTimeout
    event: dict[str, Any]  # new_event's keywords

    @property
    def name(self) -> str:
        return str(self.event["name"])

    def asks(self, call: inspect.BoundArguments) -> bool:
        if self.when is None:
            return True
        verdict = self.when(MappingProxyType(dict(call.arguments)))
        if not isinstance(verdict, bool):  # a forgotten `return` must never skip the question
            raise TypeError(
                f"require_approval(when=...) for {self.name} must return True or False (got {verdict!r}); "
                "wrap the test in bool(...)"
            )
        return verdict

    def proposal(self, call: inspect.BoundArguments) -> dict[str, Any] | None:
        """The editable arguments as the answer's proposed values, in JSON as the person edits them,
        checked as an answer would be: a value the signature refuses is the caller's error, not a question."""
        if not self.editable:
            return None
        values = {name: to_jsonable_python(call.arguments[name]) for name in self.editable}
        outcome = parse_fields(schema_from_type(self.answer), values, partial=True)
        if isinstance(outcome, Rejected):
            raise ValueError(f"{self.name} was called with values its signature refuses: {outcome.message}")
        return values

    def default(self, proposal: dict[str, Any] | None) -> dict[str, Any]:
        """The answer applied at the deadline: a rejection unless `on_timeout="approve"`."""
        return (proposal or {}) | {"approved": self.on_timeout == "approve", "reason": ""}

    def approved_call(self, call: inspect.BoundArguments, answer: BaseModel) -> inspect.BoundArguments:
        """The call to make: the person's (possibly edited) values in place of the editable arguments."""
        for name in self.editable:
            call.arguments[name] = getattr(answer, name)
        return call


def require_approval(
    *,
    when: Callable[[Mapping[str, Any]], bool] | None = None,
    name: str | None = None,
    title: str | None = None,
    prompt: str | None = None,
    details: str | None = None,
    editable: bool = False,
    timeout_seconds: int = 3600,
    on_timeout: OnTimeout = "reject",
    poll_interval_seconds: float = 5,
    channels: list[str] | None = None,
    responders: list[str] | None = None,
    prompt_type: PromptType = "text",
    approvals: int = 1,
    rules: Sequence[Rule | Mapping[str, Any]] | None = None,
    requester: str | None = None,
    remind_every: float | timedelta | None = None,
    escalate: Sequence[Escalation | Mapping[str, Any]] | None = None,
) -> Callable[[F], F]:
    """Ask a person before each call of the decorated function runs; run it only if they approve.

    For agent tools: `@hitl.require_approval(when=lambda call: call["amount"] > 1000)` (always with
    its parentheses). Works on
    sync and async functions, and on Flyte tasks in this order:

        @env.task                      # outermost: flyte sees the function's own signature
        @hitl.require_approval(...)    # then the gate: the task's own action asks before its body runs
        async def make_payment(amount: float, to: str) -> str: ...

    The other order is refused: Flyte finds a task by its function's name in its module, which would
    then hold the gate, not the task. A rejected task fails its action; a task that called it gets
    Flyte's `flyte.errors.RuntimeUserError` (`code == "ApprovalRejected"`, the same message), not
    this object. To ask in the calling task (an agent loop that catches `ApprovalRejected`, with no
    task started before the approval), gate a plain function there that calls the task.

    Each call binds its arguments (defaults applied). `when` gets them as a read-only mapping and
    returns True to ask, False to run at once (no event is written). Otherwise the call becomes one
    event named `name` (default: the function's name), headed `title` (default "Approve <name>?"),
    with `prompt` (default: the docstring's first paragraph) shown literally unless `prompt_type=
    "markdown"`, and the arguments as its context (text on every surface, never a mention or a
    link; a value the JSON encoder cannot take is shown as its repr, cut at 1,000 characters).
    Approved: the function runs and its result is returned. Rejected: `ApprovalRejected`, with who, when and why. At the
    deadline (`timeout_seconds`): `on_timeout="reject"` (the default; `ApprovalRejected` with
    `via == "timeout"`) or `"approve"` (runs). A cancelled event raises `EventCancelled`.

    `editable=True` lets the person change the arguments before approving: each parameter becomes
    an answer field typed by its annotation (bool, int, float, str, a Literal or Enum of those,
    Optional of them; `Annotated[float, Field(ge=0)]` bounds it), pre-filled with the call's values,
    checked like every answer (text is stripped), and the function runs with what was approved.
    Other types, unannotated parameters and `*args`/`**kwargs` are refused here, naming the
    parameter. The other keywords are `new_event`'s, checked here too.
    """
    if when is not None and not callable(when):
        raise TypeError(f"when must be a function of the call's arguments (got {type(when).__name__})")
    if on_timeout not in typing.get_args(OnTimeout):
        raise ValueError(f'on_timeout must be "reject" or "approve" (got {on_timeout!r})')
    event: dict[str, Any] = {
        "name": name,
        "title": title,
        "prompt": prompt,
        "details": details,
        "timeout_seconds": timeout_seconds,
        "poll_interval_seconds": poll_interval_seconds,
        "channels": channels,
        "responders": responders,
        "prompt_type": prompt_type,
        "approvals": approvals,
        "rules": rules,
        "requester": requester,
        "remind_every": remind_every,
        "escalate": escalate,
    }

    def decorate(func: F) -> F:
        return cast(F, _wrap(func, _gate(func, event, editable=editable, when=when, on_timeout=on_timeout)))

    return decorate


def _wrap(func: Callable[..., Any], gate: _Gate) -> Callable[..., Any]:
    """`func`, asking first; sync or async as `func` is, with its name, docstring and signature."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def gated_async(*args: Any, **kwargs: Any) -> Any:
            call = gate.signature.bind(*args, **kwargs)
            call.apply_defaults()
            if gate.asks(call):
                call = await _decide.aio(gate, call)
            return await func(*call.args, **call.kwargs)

        return gated_async

    @functools.wraps(func)
    def gated(*args: Any, **kwargs: Any) -> Any:
        call = gate.signature.bind(*args, **kwargs)
        call.apply_defaults()
        if gate.asks(call):
            call = _decide(gate, call)
        return func(*call.args, **call.kwargs)

    return gated


def _gate(
    func: Callable[..., Any],
    keywords: Mapping[str, Any],
    *,
    editable: bool,
    when: Callable[[Mapping[str, Any]], bool] | None,
    on_timeout: OnTimeout,
) -> _Gate:
    """The gate of `func`: new_event's keywords with the function's defaults, checked before any call."""
    if isinstance(func, flyte.TaskTemplate):
        raise TypeError(
            f"put @hitl.require_approval below @env.task, next to the function: Flyte finds the task "
            f"{func.name!r} by its function's name in its module, which would hold the gate instead. "
            "To ask in the calling task, gate a plain function there that calls the task"
        )
    if not callable(func):
        raise TypeError(f"require_approval decorates a function (got {type(func).__name__})")
    function = func.__name__
    signature = inspect.signature(func)
    answer, fields = _editable_model(func, signature) if editable else (Approval, ())
    event = dict(keywords) | {
        "name": keywords["name"] or function,
        "title": keywords["title"] or f"Approve {function}?",
        "prompt": keywords["prompt"] or _first_paragraph(func) or f"Run {function} with the arguments below?",
    }
    checked = {k: v for k, v in event.items() if k not in ("name", "prompt", "timeout_seconds")}
    # the checks new_event makes, made where the gate is written
    _fields(
        event["name"],
        answer,
        event["prompt"],
        event["timeout_seconds"],
        **checked,
        scope="run",
        choices=None,
        min_value=None,
        max_value=None,
    )
    return _Gate(func, signature, answer, fields, when, on_timeout, event)


@syncify
async def _decide(gate: _Gate, call: inspect.BoundArguments) -> inspect.BoundArguments:
    """Ask, wait, and return the call to make; `ApprovalRejected` unless it was approved."""
    keywords = dict(gate.event)
    proposal = gate.proposal(call)
    event = await new_event.aio(
        keywords.pop("name"),
        gate.answer,
        context=shown_arguments(call.arguments),
        initial=proposal,
        on_timeout=gate.default(proposal),
        **keywords,
    )
    result = await event.result.aio()
    answer = cast(BaseModel, result.output)
    facts = {"request_id": result.request_id, "function": gate.name, "via": result.via}
    if getattr(answer, "approved", False):
        log.info("gated call approved", extra=facts)
        return gate.approved_call(call, answer)
    log.info("gated call rejected", extra=facts)
    raise ApprovalRejected(
        gate.name,
        call.arguments,
        by=result.completed_by,
        at=result.completed_at,
        reason=getattr(answer, "reason", "") or None,
        via=result.via,
        request_id=result.request_id,
    )


def shown_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The call's arguments as the event's context: JSON values as they are (pydantic's encoder: models,
    dataclasses, enums, dates), anything else as its repr cut at `REPR_CHARS`."""
    return {name: _shown(value) for name, value in arguments.items()}


def _shown(value: Any) -> Any:
    try:
        jsonable = to_jsonable_python(value)
        json.dumps(jsonable, allow_nan=False)  # NaN, infinity, cycles: not JSON
    except (TypeError, ValueError):  # pydantic's PydanticSerializationError is a ValueError
        return clip(repr(value), REPR_CHARS)
    return jsonable


def _first_paragraph(func: Callable[..., Any]) -> str:
    """The docstring's first paragraph ("" without one): what the function does, in its author's words."""
    return (inspect.getdoc(func) or "").split("\n\n", 1)[0].strip()


def _editable_model(func: Callable[..., Any], signature: inspect.Signature) -> tuple[type[BaseModel], tuple[str, ...]]:
    """The answer of an editable gate: one field per parameter (typed by its annotation, with its
    default), then the decision; refuses, naming it, a parameter that cannot be asked for."""
    function = func.__name__
    hints = typing.get_type_hints(func, include_extras=True)
    fields: dict[str, Any] = {}
    for parameter in signature.parameters.values():
        where = f"require_approval(editable=True): {function}'s parameter {parameter.name!r}"
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"{where} takes any number of values, which cannot be edited; use editable=False")
        if parameter.name in _DECISION:
            raise TypeError(f"{where} has the name of the approval's own field; rename it or use editable=False")
        annotation = hints.get(parameter.name, parameter.annotation)
        if annotation is inspect.Parameter.empty:
            raise TypeError(f"{where} has no type annotation; editing needs one (bool, int, float or str)")
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)
        try:  # the core's own check of an answer field, for this parameter alone
            schema_from_type(create_model(function, **{parameter.name: fields[parameter.name]}))
        except PydanticUserError:  # a class pydantic cannot validate at all
            raise TypeError(f"{where} cannot be edited: {_EDITABLE_TYPES} (got {annotation!r})") from None
        except TypeError as error:
            raise TypeError(f"{where} cannot be edited: {error}") from None
    model = create_model(
        function,
        **fields,
        approved=(bool, Field(description="Approve runs the call with the values above; Reject stops it")),
        reason=(str, Field(default="", max_length=REASON_CHARS, description="Say why, especially when rejecting")),
    )
    return model, tuple(fields)
