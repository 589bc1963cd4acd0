"""`new_event` and `Event`: the Flyte side of an event (a drop-in superset of flyteplugins-hitl)."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from datetime import timedelta
from typing import Any, Generic, Literal, TypeVar, cast

import flyte
import flyte.report
from flyte.syncify import syncify

from hitl_chatops.bot.config import Settings, load_settings
from hitl_chatops.bot.protocol import DataType, Request, RunInfo, format_time, utcnow
from hitl_chatops.bot.store import Store, new_request_id
from hitl_chatops.bot.templates import render
from hitl_chatops.bot.values import Accepted, parse_value, type_name

from ._conditions import condition_ref, mirror, run_url, wait_either
from ._runtime import announce_link, endpoint

T = TypeVar("T")
EventScope = Literal["run"]
log = logging.getLogger(__name__)


class Event(Generic[T]):
    """A pending question to a person; `wait()` returns their typed answer."""

    def __init__(
        self,
        request: Request,
        data_type: type[T],
        poll_interval_seconds: float,
        form_url: str | None,
        api_url: str | None = None,
        condition: Any = None,
    ):
        self.request = request
        self.data_type = data_type
        self.poll_interval_seconds = poll_interval_seconds
        self.form_url = form_url
        self.api_url = api_url  # POST {"value": ...} with the bot's token, like stock's /submit/json
        self.condition = condition  # the native Flyte condition this event mirrors (remote runs only)

    name = property(lambda self: self.request.event_name)
    scope = property(lambda self: self.request.scope)
    prompt = property(lambda self: self.request.prompt)
    request_id = property(lambda self: self.request.request_id)
    timeout_seconds = property(lambda self: self.request.timeout_seconds)
    deadline = property(lambda self: self.request.deadline)

    @syncify
    async def wait(self) -> T:
        """Poll storage (one read per poll) until answered; `TimeoutError` at the deadline.

        The deadline is part of the request, which a task restart replays rather than
        recreates (see `_create`), so a restarted task keeps waiting for the same event.
        """
        await _write_report(self)
        if self.condition is not None:  # whichever comes first: the store or the condition (plugin/_conditions.py)
            settings = _settings()
            bot = endpoint(settings, local_run=False)
            return cast(T, await wait_either(self.request, self.condition, self._poll(), _store(settings.store), bot))
        return await self._poll()

    async def _poll(self) -> T:
        store = _store(_settings().store)
        request_id = self.request.request_id
        while True:
            response = await store.get_response(request_id)
            if response is not None and response.status == "completed":
                log.info("event answered", extra={"request_id": request_id, "event": self.name})
                return cast(T, _typed(response.value, self.request.data_type))
            remaining = (self.request.deadline - utcnow()).total_seconds()
            if remaining <= 0:
                raise TimeoutError(
                    f"Event '{self.name}' (request_id={request_id}) timed out after "
                    f"{self.timeout_seconds} seconds. No human input was received."
                )
            await asyncio.sleep(min(self.poll_interval_seconds, remaining))

    def __repr__(self) -> str:
        return (
            f"Event(name={self.name!r}, scope={self.scope!r}, "
            f"data_type={self.request.data_type}, request_id={self.request_id!r})"
        )


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
) -> Event[T]:
    """Create an event, post it to its chat channels, and return it to `wait()` on.

    Beyond flyteplugins-hitl: `channels` (`"slack:C0123"`, `"teams:<conversation id>"`),
    `choices` for str/int, `min_value`/`max_value` for numbers, `responders` (user or group ids
    who may answer; empty means anyone) and `details` (extra text shown with the prompt).
    """
    kind = type_name(data_type)
    _check_arguments(name, kind, scope, timeout_seconds, poll_interval_seconds, choices, min_value, max_value)
    condition = None if _is_local() else await mirror(name, kind, prompt, timeout_seconds)
    return await open_event(
        name,
        data_type,
        prompt,
        timeout_seconds,
        poll_interval_seconds,
        condition,
        channels=channels,
        choices=choices,
        min_value=min_value,
        max_value=max_value,
        responders=responders,
        details=details,
    )


async def open_event(
    name: str,
    data_type: type[T],
    prompt: str,
    timeout_seconds: float,
    poll_interval_seconds: float,
    condition: Any,
    *,
    channels: list[str] | None,
    choices: list[Any] | None,
    min_value: float | None,
    max_value: float | None,
    responders: list[str] | None,
    details: str | None,
) -> Event[T]:
    """Write the request (with where its native `condition` lives, if any), notify the bot, return the event."""
    kind = type_name(data_type)
    for channel in channels or []:
        platform, _, target = channel.partition(":")
        if platform not in ("slack", "teams") or not target:
            raise ValueError(f'channels entries look like "slack:C0123" or "teams:<conversation id>" (got {channel!r})')
    settings = _settings()
    fields = {
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
        "run": _run_info(linked=condition is not None).model_dump(),
        "condition": condition_ref(condition).model_dump() if condition is not None else None,
    }
    request = Request.model_validate_json(await _create(json.dumps(fields), settings.store))
    local = _is_local()
    bot = endpoint(settings, local_run=local)
    if bot is not None:
        await bot.notify(request.request_id)  # idempotent: surfaces post each target once
    url = bot.form_url(request.request_id) if bot else None
    if local:
        announce_link(name, url, request.request_id)
    api = f"{bot.public_url}/api/v1/events/{request.request_id}/response" if bot else None
    return Event(request, data_type, poll_interval_seconds, url, api, condition)


@flyte.trace
async def _create(fields_json: str, store_url: str) -> str:
    """Write the request and mark it pending, once per event.

    Traced: a restarted task replays this step and gets the same request back, instead of
    asking a second question; the notify that follows is idempotent.
    """
    fields = json.loads(fields_json)
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
    await store.put_request(request)
    log.info("event created", extra={"request_id": request_id, "event": request.event_name})
    return request.model_dump_json()


def _check_arguments(
    name: str,
    kind: DataType,
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
        if any(not isinstance(parse_value(c, data_type=kind), Accepted) for c in choices):
            raise ValueError(f"every choice must be a valid {kind}")
    if (min_value is not None or max_value is not None) and kind not in ("int", "float"):
        raise ValueError("min_value/max_value apply only to int and float events")
    if min_value is not None and max_value is not None and min_value > max_value:
        raise ValueError(f"min_value ({min_value}) is greater than max_value ({max_value})")


def _typed(value: Any, kind: DataType) -> Any:
    """Responses carry converted values; stock answers may not (a str "42"): convert them too."""
    outcome = parse_value(value, data_type=kind)
    if isinstance(outcome, Accepted):
        return outcome.value
    raise ValueError(f"the stored answer {value!r} is not a valid {kind}")


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
    return run.model_copy(update={"url": run_url(run)}) if linked else run


async def _write_report(event: Event[Any]) -> None:
    """Put the form link in the task's report, as flyteplugins-hitl does."""
    ctx = flyte.ctx()
    if not ctx or not event.form_url:
        return
    html = render("report.html", event=event.request, form_url=event.form_url, deadline=format_time(event.deadline))
    await flyte.report.replace.aio(html)
    await flyte.report.flush.aio()


__all__ = ["Event", "EventScope", "new_event"]


# flyteplugins-hitl spells creation `Event.create(...)` too (sync, or `.aio`).
Event.create = new_event  # type: ignore[attr-defined]
