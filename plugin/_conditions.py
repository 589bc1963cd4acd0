"""The task's side of native Flyte conditions, in remote runs (local runs keep our own path).

An event mirrors a native condition: the same name, prompt, type (a structured event: a `str`
holding the answer's JSON) and timeout. `wait_either` returns whichever outcome comes first.
An answer from chat is signalled into the condition (by the bot; by the task itself if the bot
has not within `SETTLE_SECONDS`), so no condition is left paused; an answer signalled in Flyte
is validated by the core (`parse_answer`), written as the event's response (`via: "flyte"`) and
handed to the bot, which updates every chat copy. A cancel or the `on_timeout` default signals
nothing: the condition ends with its task, or at its own timeout, which is the event's deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import flyte

from hitl_chatops import _flyte
from hitl_chatops.bot.answers import Rejected
from hitl_chatops.bot.conditions import check_value, condition_type, payload
from hitl_chatops.bot.flyte_signal import SignalFailed, signal_condition, signalled_by
from hitl_chatops.bot.protocol import ConditionRef, Request, Responder, Response, RunInfo, utcnow

log = logging.getLogger(__name__)
SETTLE_SECONDS = 10.0  # how long the bot has to signal a chat answer before the task does it itself


async def mirror(name: str, data_type: str, prompt: str, timeout_seconds: float, prompt_type: str = "text") -> Any:
    """Register the native condition an event mirrors (structured answers: a `str` holding JSON).

    None where the run cannot hold one (a task without a controller, such as a clustered worker):
    the event then works as in a local run, through the store alone.
    """
    try:
        return await flyte.new_condition.aio(
            name,
            prompt=prompt,
            prompt_type=prompt_type,
            data_type=condition_type(data_type),
            timeout=timeout_seconds,
        )
    except RuntimeError as error:
        log.warning("no native condition for this event", extra={"event": name, "error": str(error)})
        return None


def condition_ref(condition: Any) -> ConditionRef:
    """Where `condition` lives: this task's run, with this task's action as its parent."""
    ctx = flyte.ctx()
    action = ctx.action if ctx else None
    if action is None or not (action.project and action.domain and action.run_name):
        raise RuntimeError("a native condition can only be mirrored inside a task of a remote run")
    return ConditionRef(
        project=action.project,
        domain=action.domain,
        run_name=action.run_name,
        action_name=action.name,
        name=condition.name,
    )


def run_url(run: RunInfo) -> str | None:
    """The run's page in the Flyte UI, from the task's own client (None where it has none)."""
    if not (run.project and run.domain and run.run_name):
        return None
    try:
        return _flyte.run_url(run.project, run.domain, run.run_name)  # the client `init_in_cluster` made
    except Exception:  # no client, or one that cannot tell: the messages go without a link
        return None


async def wait_either(
    request: Request,
    condition: Any,
    poll: Coroutine[Any, Any, Response],
    record: Callable[[Response], Awaitable[Response]],
) -> Response:
    """The event's outcome: the first of the store's (`poll`: an answer, a cancel, the deadline's
    default or `TimeoutError`) and a value signalled in Flyte, which `record` writes like any
    outcome (returning the one that stands). Neither wait outlives this call."""
    polling = asyncio.ensure_future(poll)
    signalled = asyncio.ensure_future(condition.wait.aio())
    try:
        await asyncio.wait({polling, signalled}, return_when=asyncio.FIRST_COMPLETED)
        if polling.done():
            response = polling.result()
            await _settle(request, signalled, response)
            return response
        answered = await _from_flyte(request, signalled)
        return await record(answered) if answered is not None else await polling
    finally:
        for task in (polling, signalled):
            task.cancel()


async def _from_flyte(request: Request, signalled: asyncio.Future[Any]) -> Response | None:
    """The value signalled in Flyte as the event's response (`via: "flyte"`); None if chat must still answer."""
    try:
        raw = signalled.result()
    except Exception as error:  # timed out or aborted in Flyte: the store's deadline decides
        log.info("flyte condition ended unanswered", extra={"request_id": request.request_id, "error": repr(error)})
        return None
    outcome = check_value(request, raw)
    if isinstance(outcome, Rejected):
        log.error(
            "answer signalled in Flyte refused; waiting for an answer in chat",
            extra={"request_id": request.request_id, "reason": outcome.message, "errors": outcome.errors},
        )
        return None
    log.info("event answered in flyte", extra={"request_id": request.request_id})
    return Response(
        value=outcome.value,
        request_id=request.request_id,
        data_type=request.data_type,
        responder=await _flyte_responder(request),
        responded_at=utcnow(),
        via="flyte",
    )


async def _flyte_responder(request: Request) -> Responder:
    """Who answered in Flyte, "someone in Flyte" when Flyte does not say (or cannot be asked)."""
    who = ""
    if request.condition is not None:
        try:
            who = await signalled_by(request.condition)
        except Exception as error:  # only a name is lost: the answer stands
            log.warning(
                "could not ask flyte who answered", extra={"request_id": request.request_id, "error": repr(error)}
            )
    return Responder(platform="flyte", user_name=f"{who or 'someone'} in Flyte")


async def _settle(request: Request, signalled: asyncio.Future[Any], response: Response) -> None:
    """Leave no condition paused after a person's answer: give the bot a moment to signal it, then
    signal it from here. A cancel or the deadline's default signals nothing: a condition holds only
    a value someone gave, and it ends with its task or at its own timeout (the event's deadline)."""
    if response.cancelled or response.defaulted or request.condition is None:
        return
    bot_signals = response.via != "policy"  # an approval the policy wrote at creation: no bot ever saw it
    done, _ = await asyncio.wait({signalled}, timeout=SETTLE_SECONDS if bot_signals else 0)
    if done:
        return
    try:
        outcome = await signal_condition(request.condition, payload(request, response.value))
    except SignalFailed as error:
        log.warning("flyte condition not signalled", extra={"request_id": request.request_id, "error": str(error)})
        return
    log.info("flyte condition settled by the task", extra={"request_id": request.request_id, "outcome": outcome})
