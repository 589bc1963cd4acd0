"""The calls to Flyte's control plane through `flyte.remote`: condition signalling, and who started a run.

Used by the bot when its Flyte connection is configured and by the plugin (which always has
flyte). flyte is imported inside the functions, so the core still imports without it.

Every call to the control plane has a deadline (`FLYTE_CALL_SECONDS` unless told otherwise): a
control plane that accepts connections and never answers must not hold an answer's signal, a
reconciler pass or shutdown. The calls run on flyte's own loop (where its client lives), so the
deadline cancels the request itself rather than only our wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, Literal, TypeVar, cast

from .config import FLYTE_CALL_SECONDS, Settings
from .errors import ConfigError, HitlError
from .protocol import ConditionRef, RunInfo

__all__ = [
    "FlyteTimedOut",
    "Payload",
    "SignalFailed",
    "Signalled",
    "connect",
    "signal_condition",
    "signalled_by",
    "started_by",
]

T = TypeVar("T")
Payload = bool | int | float | str  # what a condition is signalled with (`conditions.payload`)
Signalled = Literal["signalled", "resolved", "timed_out", "not_found"]
_TIMED_OUT = "ACTION_PHASE_TIMED_OUT"
_DONE = frozenset({"ACTION_PHASE_SUCCEEDED", "ACTION_PHASE_FAILED", "ACTION_PHASE_ABORTED", _TIMED_OUT})


class SignalFailed(HitlError):
    """The control plane could not be reached or refused for a reason a retry may fix."""


class FlyteTimedOut(SignalFailed):
    """The control plane did not answer a call within its deadline (hung, or a proxy holding the call)."""


async def signal_condition(ref: ConditionRef, value: Payload, *, seconds: float = FLYTE_CALL_SECONDS) -> Signalled:
    """Find the condition by name among its run's condition actions and signal it, once.

    A condition that no longer waits (answered in Flyte, timed out) is reported, not signalled.
    Each of the two calls gets `seconds`; past that, `FlyteTimedOut`.
    """
    return await _on_flyte_loop(_signal, ref, value, seconds)


async def _signal(ref: ConditionRef, value: Payload, seconds: float) -> Signalled:
    from connectrpc.code import Code
    from connectrpc.errors import ConnectError

    try:
        with _in_project(ref.project, ref.domain):
            condition = await _within(seconds, _find(ref))
            if condition is None:
                return "not_found"
            if condition.phase == _TIMED_OUT:
                return "timed_out"
            if condition.phase in _DONE:
                return "resolved"
            await _within(seconds, condition.signal.aio(value))
    except SignalFailed:
        raise
    except ConnectError as error:
        if error.code in (Code.FAILED_PRECONDITION, Code.ALREADY_EXISTS):
            return "resolved"
        raise SignalFailed(f"{error.code.name}: {error.message}") from error
    except Exception as error:  # the client's own transport errors
        raise SignalFailed(type(error).__name__) from error
    return "signalled"


async def signalled_by(ref: ConditionRef, *, seconds: float = FLYTE_CALL_SECONDS) -> str:
    """Who signalled the condition, as Flyte tells it: a name, an email or a handle ("" if unknown).

    Each of the two calls gets `seconds`; past that, `FlyteTimedOut`.
    """
    return await _on_flyte_loop(_signalled_by, ref, seconds)


async def _signalled_by(ref: ConditionRef, seconds: float) -> str:
    from flyte.remote import ActionDetails

    with _in_project(ref.project, ref.domain):
        condition = await _within(seconds, _find(ref))
        if condition is None:
            return ""
        details = await _within(seconds, ActionDetails.get_details.aio(condition.pb2.id))
    user = details.pb2.signal_info.signalled_by.user.spec
    full_name = " ".join(part for part in (user.first_name, user.last_name) if part)
    return str(full_name or user.email or user.user_handle)


async def started_by(run: RunInfo, *, seconds: float = FLYTE_CALL_SECONDS) -> str | None:
    """Who started the run, as a requester: the e-mail of the user in its root action's
    `ActionMetadata.executed_by` (GetRunDetails). None when an application started it (a trigger, a
    service account: nobody to keep from approving) or the user has no e-mail, which chat platforms
    could not match to a person. One call, given up after `seconds` (`FlyteTimedOut`)."""
    if not (run.project and run.domain and run.run_name):
        return None
    return await _on_flyte_loop(_started_by, run, seconds)


async def _started_by(run: RunInfo, seconds: float) -> str | None:
    from flyte.remote import RunDetails

    with _in_project(run.project or "", run.domain or ""):
        details = await _within(seconds, RunDetails.get.aio(name=run.run_name))
    identity = details.pb2.action.metadata.executed_by
    if not identity.HasField("user"):
        return None
    return str(identity.user.spec.email).strip() or None


async def _on_flyte_loop(work: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """Run `work` on flyte's loop (`flyte.syncify`, which flyte.remote's calls share).

    Its outcome, error included, comes back as a value: a caller cut short (shutdown) cancels the
    call there, and the error that cancel becomes is then dropped with it, not logged by asyncio
    as "never retrieved".
    """
    from flyte.syncify import syncify

    result, error = await syncify(_caught).aio(work, *args)
    if error is not None:
        raise error
    return cast(T, result)


async def _caught(work: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> tuple[T | None, Exception | None]:
    try:
        return await work(*args), None
    except Exception as error:
        return None, error


async def _within(seconds: float, call: Awaitable[T]) -> T:
    """`call`, given up after `seconds`. connectrpc turns our cancel into its own `CANCELED`
    error, so whether the deadline passed is asked of the deadline, not read from the error."""
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await call
    except Exception:
        if deadline.expired():
            raise FlyteTimedOut(f"Flyte did not answer within {seconds:g} s") from None
        raise


async def _find(ref: ConditionRef) -> Any:
    """The condition action named `ref.name` under the task's action (ListActions), or None."""
    from flyte.remote import Condition

    return await Condition.get.aio(ref.name, run_name=ref.run_name, action_name=ref.action_name)


@contextlib.contextmanager
def _in_project(project: str, domain: str) -> Iterator[None]:
    """flyte.remote reads project and domain from its init config: scope them to this call (a task
    on flyte's loop, with its own context), so one bot serves every project."""
    from hitl_chatops._flyte import project_scope

    with project_scope(project, domain):
        yield


async def connect(settings: Settings) -> None:
    """`flyte.init` the way flyte's SDK takes credentials: a config file, an API key, or an endpoint.

    No deadline here: `flyte.init` reads settings and calls nobody (the client connects, and
    authenticates, on the first call, which has its deadline).
    """
    import flyte

    api_key = settings.flyte_api_key.get_secret_value() if settings.flyte_api_key else None
    if settings.flyte_config:
        await flyte.init_from_config.aio(settings.flyte_config)
    elif api_key and not settings.flyte_endpoint:
        await flyte.init_from_api_key.aio(api_key)
    elif settings.flyte_endpoint:
        await flyte.init.aio(endpoint=settings.flyte_endpoint, insecure=settings.flyte_insecure, api_key=api_key)
    else:
        raise ConfigError("Set HITL_CHATOPS_FLYTE_ENDPOINT (or FLYTE_API_KEY, or HITL_CHATOPS_FLYTE_CONFIG).")
