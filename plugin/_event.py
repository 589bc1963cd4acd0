"""`new_event` and `Event`: the Flyte side of an event (a drop-in superset of flyteplugins-hitl)."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Generic, Literal, TypeVar, cast, get_args

import flyte
import flyte.report
from flyte.syncify import syncify
from pydantic import BaseModel, ValidationError

from hitl_chatops.bot.answers import (
    Accepted,
    AnswerSchema,
    parse_answer,
    parse_fields,
    schema_from_type,
    schema_of,
    type_name,
)
from hitl_chatops.bot.config import Settings, load_settings
from hitl_chatops.bot.errors import AlreadyAnswered, EventCancelled, EventExpired, StoreError
from hitl_chatops.bot.flyte_signal import started_by
from hitl_chatops.bot.protocol import (
    Escalation,
    PromptType,
    Request,
    Responder,
    Response,
    Rule,
    RunInfo,
    format_time,
    utcnow,
)
from hitl_chatops.bot.store import Store, new_request_id
from hitl_chatops.bot.templates import render

from . import _console as console
from ._conditions import condition_ref, mirror, run_url, wait_either
from ._result import EventResult
from ._runtime import BotEndpoint, announce_link, endpoint
from ._team import Plan, approval_value, check_channels, plan_event, team_fields
from ._wake import waiting, wake

__all__ = ["Event", "EventCancelled", "EventScope", "new_event"]

T = TypeVar("T")
EventScope = Literal["run"]
log = logging.getLogger(__name__)
_ABORTED = "the task waiting for it was cancelled"
# How long after the deadline an answer accepted before it may still be landing (one store write).
_LATE_WRITE_SECONDS = 2.0


@syncify
async def new_event(
    name: str,
    data_type: type[T],
    scope: EventScope = "run",
    prompt: str = "Please provide a value",
    timeout_seconds: int = 3600,
    poll_interval_seconds: int | float = 5,
    *,
    channels: list[str] | None = None,
    choices: list[Any] | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
    responders: list[str] | None = None,
    details: str | None = None,
    title: str | None = None,
    context: BaseModel | Mapping[str, Any] | None = None,
    initial: Any = None,
    on_timeout: Any = None,
    prompt_type: PromptType = "text",
    approvals: int = 1,
    rules: Sequence[Rule | Mapping[str, Any]] | None = None,
    requester: str | None = None,
    remind_every: float | timedelta | None = None,
    escalate: Sequence[Escalation | Mapping[str, Any]] | None = None,
) -> Event[T]:
    """Create an event, post it to its chat channels, and return it to `wait()` on.

    Beyond flyteplugins-hitl: `data_type` may be a pydantic model (one input per field, `wait()`
    returns an instance), `channels` (`"slack:C0123"`, `"teams:<conversation id>"`), `choices` for
    str/int, `min_value`/`max_value` for numbers, `responders` (user or group ids who may answer;
    empty means anyone), `details` (more text), `title` (the heading; default `name`), `context`
    (a model or JSON object shown as labelled fields), `initial` (a proposed answer, pre-filled)
    and `on_timeout` (the answer `wait()` returns at the deadline instead of raising). `prompt_type`
    is Flyte's: "text" (default) shows the title, prompt and details literally everywhere, "markdown"
    renders their emphasis and links; neither ever mentions a channel or a person. In a remote
    run the event also mirrors a native Flyte condition, answerable in Flyte (plugin/_conditions.py).

    A team decision, counted by the bot: `approvals` distinct people must approve, every `hitl.Rule`
    in `rules` must be met, `requester` (a chat identity or an e-mail; in a remote run, by default,
    whoever started the run) may not approve, `remind_every` (seconds or a timedelta, at least 60 s)
    nudges who still has to act, and each `hitl.Escalation` in `escalate` widens who may answer and
    where it is posted once its `after` has passed. `HITL_CHATOPS_POLICY` may tighten all of these
    (bot/policy.py). A team decision is not mirrored as a native condition: Flyte's UI takes one
    person's answer, not a vote.
    """
    fields = _fields(
        name,
        data_type,
        prompt,
        timeout_seconds,
        scope=scope,
        poll_interval_seconds=poll_interval_seconds,
        channels=channels,
        choices=choices,
        min_value=min_value,
        max_value=max_value,
        responders=responders,
        details=details,
        title=title,
        context=context,
        initial=initial,
        on_timeout=on_timeout,
        prompt_type=prompt_type,
        approvals=approvals,
        rules=rules,
        requester=requester,
        remind_every=remind_every,
        escalate=escalate,
    )
    planned = await effective(data_type, fields)
    mirrored = not (_is_local() or planned.team or planned.approve)
    condition = await mirror(name, fields["data_type"], prompt, timeout_seconds, prompt_type) if mirrored else None
    return await open_event(data_type, planned, poll_interval_seconds, condition)


def _fields(
    name: str,
    data_type: type[Any],
    prompt: str,
    timeout_seconds: float,
    *,
    scope: str,
    poll_interval_seconds: float,
    channels: list[str] | None,
    choices: list[Any] | None,
    min_value: float | None,
    max_value: float | None,
    responders: list[str] | None,
    details: str | None,
    title: str | None = None,
    context: BaseModel | Mapping[str, Any] | None = None,
    initial: Any = None,
    on_timeout: Any = None,
    prompt_type: PromptType = "text",
    approvals: int = 1,
    rules: Sequence[Rule | Mapping[str, Any]] | None = None,
    requester: str | None = None,
    remind_every: float | timedelta | None = None,
    escalate: Sequence[Escalation | Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The request's fields from `new_event`'s (or `ask`'s) arguments, checked before anything is written."""
    kind = type_name(data_type)
    _check_arguments(name, kind, scope, timeout_seconds, poll_interval_seconds, choices, min_value, max_value)
    schema = schema_from_type(data_type)
    check_channels(channels or [])
    team = team_fields(
        approvals=approvals,
        rules=rules,
        requester=requester,
        remind_every=remind_every,
        escalate=escalate,
        timeout_seconds=timeout_seconds,
    )
    return team | {
        "event_name": name,
        "data_type": kind,
        "prompt": prompt,
        "timeout_seconds": int(timeout_seconds),
        "channels": list(channels or []),
        "choices": list(choices) if choices else None,
        "min_value": min_value,
        "max_value": max_value,
        "responders": list(responders or []),
        "details": details,
        "title": title,
        "answer_schema": cast(type[BaseModel], data_type).model_json_schema() if kind == "object" else None,
        "context": _context(context),
        "initial": _proposal("initial", initial, schema, partial=True),
        "on_timeout": None if on_timeout is None else {"value": _proposal("on_timeout", on_timeout, schema)},
        "prompt_type": _prompt_type(prompt_type),
    }


async def effective(data_type: type[Any], fields: dict[str, Any]) -> Plan:
    """The event's fields with the policy file applied (`plugin/_team.py`), before anything is written."""
    return await plan_event(fields, schema_from_type(data_type), policy_url=_settings().policy, remote=not _is_local())


async def open_event(data_type: type[T], plan: Plan, poll_interval_seconds: float, condition: Any) -> Event[T]:
    """Write the request (with where its native `condition` lives, if any), notify the bot, return the event.

    A team decision does not take a value signalled in Flyte (one person's answer, not a vote): its
    condition, if any (`ask`), is only signalled with the decision.
    """
    fields = plan.fields | {
        "run": _run_info(linked=condition is not None).model_dump(),
        "condition": condition_ref(condition).model_dump() if condition is not None else None,
    }
    settings = _settings()
    created = await _create(json.dumps(fields), settings.store, plan.requester_from_run, plan.approve)
    request = Request.model_validate_json(created)
    name = request.event_name
    local = _is_local()
    bot = None if plan.approve else endpoint(settings, local_run=local)  # decided: nothing to post or answer
    if bot is not None:
        await bot.notify(request.request_id)  # idempotent: the bot posts each target once
    url = bot.form_url(request.request_id) if bot else None
    if local and not plan.approve:
        announce_link(name, url, request.request_id)
    api = f"{bot.public_url}/api/v1/events/{request.request_id}/response" if bot else None
    listened = condition if plan.approve or not request.team_event else None
    return Event(request, data_type, poll_interval_seconds, url, api, bot, listened)


def _prompt_type(prompt_type: str) -> PromptType:
    if prompt_type not in get_args(PromptType):
        raise ValueError(f'prompt_type must be "text" or "markdown" (got {prompt_type!r})')
    return cast(PromptType, prompt_type)


def _context(context: BaseModel | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The context as a JSON object, or a call-site error saying what would do."""
    if context is None:
        return None
    if isinstance(context, BaseModel):
        return context.model_dump(mode="json")
    if not isinstance(context, Mapping):
        raise TypeError(f"context must be a pydantic model instance or a dict (got {type(context).__name__})")
    try:
        return cast(dict[str, Any], json.loads(json.dumps(dict(context))))
    except (TypeError, ValueError) as error:
        raise ValueError(f"context must be JSON-serialisable: {error}") from None


def _proposal(argument: str, value: Any, schema: AnswerSchema, *, partial: bool = False) -> Any:
    """`initial` / `on_timeout` checked like an answer, so what is stored is what `wait()` returns."""
    if value is None:
        return None
    raw = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    outcome = parse_fields(schema, raw, partial=partial)
    if not isinstance(outcome, Accepted):
        raise ValueError(f"{argument} is not a valid answer for this event: {outcome.message}")
    return outcome.value


class Event(Generic[T]):
    """A pending question to a person; `wait()` returns their typed answer, `result()` who gave it too."""

    def __init__(
        self,
        request: Request,
        data_type: type[T],
        poll_interval_seconds: float,
        form_url: str | None,
        api_url: str | None = None,
        bot: BotEndpoint | None = None,
        condition: Any = None,
    ):
        self.request = request
        self.data_type = data_type
        self.poll_interval_seconds = poll_interval_seconds
        self.form_url = form_url
        self.api_url = api_url  # POST {"value": ...} with the bot's token, like stock's /submit/json
        self._bot = bot
        self.condition = condition  # the native Flyte condition this event mirrors (remote runs only)

    name = property(lambda self: self.request.event_name)
    scope = property(lambda self: self.request.scope)
    prompt = property(lambda self: self.request.prompt)
    request_id = property(lambda self: self.request.request_id)
    timeout_seconds = property(lambda self: self.request.timeout_seconds)
    deadline = property(lambda self: self.request.deadline)

    # flyteplugins-hitl spells creation `Event.create(...)` too (sync, or `.aio`).
    create = staticmethod(new_event)

    @syncify
    async def wait(self) -> T:
        """Poll storage (one read per poll) until the event has its outcome; return the typed answer
        (a team decision's once it is decided: the votes along the way are the bot's to count).

        A structured event returns an instance of its model. At the deadline: the `on_timeout`
        value if the event has one, else `TimeoutError` (after one last read, 2 s on, for an answer accepted
        just before the deadline). A cancelled event raises `EventCancelled`.
        The deadline is part of the request, which a task restart replays rather than recreates
        (see `_create`), so a restarted task keeps waiting for the same event.
        """
        return self._output(await self._outcome())

    @syncify
    async def result(self) -> EventResult[T]:
        """Wait like `wait()`, and return the answer with who gave it, when and where; for a team
        decision, the votes it counted and its history (read once the decision is made)."""
        response = await self._outcome()
        output = self._output(response)
        history: tuple[Any, ...] = ()
        if self.request.team_event or self.request.remind_every is not None:
            found = await _store(_settings().store).decision_log(self.request_id)
            history = tuple(sorted(found.entries, key=lambda entry: entry.at))
        return EventResult(
            output=output,
            request_id=self.request_id,
            completed_by=response.responder,
            completed_at=response.responded_at,
            via=response.via,
            votes=tuple(response.votes or ()),
            history=history,
        )

    @syncify
    async def cancel(self, reason: str = "cancelled by the workflow") -> None:
        """End the event without an answer: its messages say so and later answers are refused.

        Raises `AlreadyAnswered` if someone answered (or cancelled) first, `EventExpired` once the
        deadline has passed (the expiry, or the `on_timeout` default, is the outcome then).
        """
        run = self.request.run
        by = f"run {run.run_name}" if run.run_name else "the workflow"
        store = _store(_settings().store)
        if self._bot is not None and await self._bot.cancel(self.request_id, reason, by):
            response = await store.get_response(self.request_id)
            if response is None:  # the bot refused it: the deadline passed
                raise EventExpired(format_time(self.deadline))
            if not (response.cancelled and response.reason == reason):
                raise AlreadyAnswered.of(response)
            return
        if self.request.expired():  # what the bot would say, with no bot to ask
            response = await store.get_response(self.request_id)
            raise AlreadyAnswered.of(response) if response else EventExpired(format_time(self.deadline))
        cancellation = Response.cancellation(self.request, reason, Responder(platform="flyte", user_name=by), "flyte")
        await _record(self.request, cancellation)

    async def _outcome(self) -> Response:
        """The event's outcome: from the store, or (a mirrored event) from its condition if Flyte answers
        first (plugin/_conditions.py), or (a local run with a terminal) typed there (plugin/_console.py).
        Cancels the event if the waiting task is cancelled."""
        await _write_report(self)
        try:
            if self.condition is not None:
                return await wait_either(self.request, self.condition, self._poll(), self._answered_elsewhere)
            if _is_local() and console.available(_settings().console) and not self.request.team_event:
                return await console.alongside(self.request, self._answered_in_console, self._poll)
            return await self._poll()
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel_quietly(_ABORTED))
            raise

    async def _poll(self, on_waiting: Callable[[], None] | None = None) -> Response:
        """Read the store every poll interval, or as soon as this process writes (or its in-process
        bot hears of) the outcome (`_wake`), until the event has one; the deadline's otherwise.
        `on_waiting` is called once if the first read finds no outcome (the terminal asks then)."""
        store = _store(_settings().store)
        request_id = self.request.request_id
        with waiting(request_id) as waiter:
            while True:
                response = await store.get_response(request_id)
                if response is not None:
                    log.info("event answered", extra={"request_id": request_id, "event": self.name})
                    return response
                remaining = (self.request.deadline - utcnow()).total_seconds()
                if remaining <= 0:
                    return await self._at_deadline()
                if on_waiting is not None:
                    on_waiting()
                    on_waiting = None
                await waiter.sleep(min(self.poll_interval_seconds, remaining))

    async def _answered_elsewhere(self, response: Response) -> Response:
        """Record an answer given outside the bot (signalled in Flyte, typed in the terminal) like any
        outcome, wake this process's waiters, and have the bot update every chat copy now (the outbox
        covers a lost notify); the outcome that stands if another surface was first."""
        try:
            await _record(self.request, response)
        except AlreadyAnswered as first:
            return first.response
        if self._bot is not None:
            await self._bot.notify(self.request_id)  # an answered event's copies are updated, not posted
        wake(self.request_id)  # after the notify: a run that ends at once ends with its copies told
        return response

    async def _answered_in_console(self, value: Any) -> Response:
        """Record a value typed in the terminal (checked there by `parse_answer`), as the person
        running the workflow: like the API's token holder, not held to `responders`. Raises
        `AlreadyAnswered` if another surface was first, `EventExpired` past the deadline."""
        if self.request.expired():
            raise EventExpired(format_time(self.request.deadline))
        mine = Response(
            value=value,
            request_id=self.request_id,
            data_type=self.request.data_type,
            responder=console.person(),
            responded_at=utcnow(),
            via="console",
        )
        standing = await self._answered_elsewhere(mine)
        if standing is not mine:
            raise AlreadyAnswered.of(standing)
        return mine

    async def _at_deadline(self) -> Response:
        if self.request.on_timeout is None:
            # An answer the bot checked just before the deadline may land just after it, and then it is
            # the outcome (the bot's expiry defers to it): its writer has been told "saved", so look once more.
            await asyncio.sleep(_LATE_WRITE_SECONDS)
            if late := await _store(_settings().store).get_response(self.request_id):
                return late
            raise TimeoutError(
                f"Event '{self.name}' (request_id={self.request_id}) timed out after "
                f"{self.timeout_seconds} seconds. No human input was received."
            )
        try:
            await _record(self.request, Response.timeout_default(self.request))
        except AlreadyAnswered as first:  # an answer (or a bot replica's default) got there first
            return first.response
        log.info("event expired, default applied", extra={"request_id": self.request_id, "event": self.name})
        return Response.timeout_default(self.request)

    async def _cancel_quietly(self, reason: str) -> None:
        try:
            await self.cancel.aio(reason)
        except (AlreadyAnswered, EventExpired, StoreError) as error:
            log.info("event not cancelled", extra={"request_id": self.request_id, "error": type(error).__name__})

    def _output(self, response: Response) -> T:
        if response.cancelled:
            raise EventCancelled(response)
        value = _typed(response.value, self.request)
        if isinstance(self.data_type, type) and issubclass(self.data_type, BaseModel):
            try:  # as the JSON it is stored as: what `strict` models expect of enums and floats
                return cast(T, self.data_type.model_validate_json(json.dumps(value)))
            except ValidationError as error:
                raise ValueError(f"the stored answer does not fit {self.data_type.__name__}: {error}") from None
        return cast(T, value)

    def __repr__(self) -> str:
        return (
            f"Event(name={self.name!r}, scope={self.scope!r}, "
            f"data_type={self.request.data_type}, request_id={self.request_id!r})"
        )


async def _record(request: Request, response: Response) -> None:
    """Write an outcome the plugin decided (a default, or a cancel the bot did not take), and leave
    the message updates to the bot's reconciler through the outbox."""
    store = _store(_settings().store)
    await store.put_response(response, request)
    try:
        await store.put_outbox(request.request_id, "answered")
    except StoreError:  # the outcome stands; its chat copies keep their buttons, and clicks are refused
        log.warning("chat copies not queued for an update", extra={"request_id": request.request_id})


@flyte.trace
async def _create(fields_json: str, store_url: str, requester_from_run: bool = False, approve: bool = False) -> str:
    """Write the request and mark it pending, once per event.

    Traced: a restarted task replays this step and gets the same request back, instead of
    asking a second question; the notify that follows is idempotent. So the run's owner, when
    they become the requester (`requester_from_run`), is looked up here, and the policy's approval
    (`approve`) is written here: its outcome first, so no replica ever sees the event pending
    without it, then the request, then the marker dropped and the outcome indexed.
    """
    fields = json.loads(fields_json)
    if requester_from_run:
        fields["requester"] = await _run_owner(RunInfo.model_validate(fields["run"]))
    store = _store(store_url)
    request_id = new_request_id()
    now = utcnow()
    request = Request(
        request_id=request_id,
        request_path=store.request_url(request_id),
        response_path=store.response_url(request_id),
        created_at=now,
        deadline=now + timedelta(seconds=fields["timeout_seconds"]),
        **fields,
    )
    if approve:
        response = Response.by_policy(request, approval_value(fields, schema_of(request)))
        await store.create_response(response)
        await store.put_request(request)
        await store.settle(response, request)
        log.info("event approved by policy", extra={"request_id": request_id, "event": request.event_name})
        return request.model_dump_json()
    await store.put_request(request)
    log.info("event created", extra={"request_id": request_id, "event": request.event_name})
    return request.model_dump_json()


async def _run_owner(run: RunInfo) -> str | None:
    """Whoever started the run (its e-mail), as Flyte tells it; None when Flyte cannot say now: the event
    is asked all the same, without a requester (logged)."""
    try:
        return await started_by(run)
    except Exception as error:
        log.warning("who started the run is unknown", extra={"run": run.run_name, "error": repr(error)})
        return None


def _check_arguments(
    name: str,
    kind: str,
    scope: str,
    timeout_seconds: float,
    poll_interval_seconds: float,
    choices: list[Any] | None,
    min_value: float | None,
    max_value: float | None,
) -> None:
    """Fail at the call site, with a message naming the argument, before anything is written."""
    if not name.strip():
        raise ValueError("name must not be empty")
    if scope != "run":
        raise ValueError('scope must be "run" (the only scope flyteplugins-hitl supports)')
    if timeout_seconds <= 0 or poll_interval_seconds <= 0:
        raise ValueError("timeout_seconds and poll_interval_seconds must be positive")
    if choices is not None:
        if kind not in ("str", "int") or not choices:
            raise ValueError("choices need data_type str or int and at least one entry")
        if any(type(c).__name__ != kind for c in choices):  # exact: True is no int, "1" no int
            raise ValueError(f"every choice must be a {kind} (got {choices!r})")
    if (min_value is not None or max_value is not None) and kind not in ("int", "float"):
        raise ValueError("min_value/max_value apply only to int and float events")
    if min_value is not None and max_value is not None and min_value > max_value:
        raise ValueError(f"min_value ({min_value}) is greater than max_value ({max_value})")


def _typed(value: Any, request: Request) -> Any:
    """Responses carry converted values; stock answers may not (a str "42"): convert them too."""
    outcome = parse_answer(request, value)
    if isinstance(outcome, Accepted):
        return outcome.value
    raise ValueError(f"the stored answer {value!r} is not a valid {request.data_type}")


def _settings() -> Settings:
    return load_settings()


@functools.lru_cache(maxsize=8)
def _store(url: str) -> Store:
    """One `Store` per URL in this process: an S3 client is costly to build, and a read answer never changes."""
    return Store(url)


def _is_local() -> bool:
    ctx = flyte.ctx()  # outside a task: an empty, falsy context
    return not ctx or ctx.mode == "local"


def _run_info(*, linked: bool = False) -> RunInfo:
    """Where the event comes from; `linked` adds the run's Flyte UI link (remote runs)."""
    ctx = flyte.ctx()
    action = ctx.action if ctx else None
    if action is None:
        return RunInfo()
    run = RunInfo(project=action.project, domain=action.domain, run_name=action.run_name, action=action.name)
    return RunInfo.model_validate(run.model_dump() | {"url": run_url(run)}) if linked else run  # url validated


async def _write_report(event: Event[Any]) -> None:
    """Put the form link in the task's report, as flyteplugins-hitl does."""
    ctx = flyte.ctx()
    if not ctx or not event.form_url:
        return
    html = render("report.html", event=event.request, form_url=event.form_url, deadline=format_time(event.deadline))
    await flyte.report.replace.aio(html)
    await flyte.report.flush.aio()
