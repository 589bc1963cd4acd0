"""The part of condition signalling that talks to Flyte's control plane through `flyte.remote`.

Used by the bot when its Flyte connection is configured and by the plugin (which always has
flyte). flyte is imported inside the functions, so the core still imports without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from .errors import ConfigError, HitlError
from .protocol import ConditionRef

if TYPE_CHECKING:
    from .conditions import Payload
    from .config import Settings

Signalled = Literal["signalled", "resolved", "timed_out", "not_found"]
_TIMED_OUT = "ACTION_PHASE_TIMED_OUT"
_DONE = frozenset({"ACTION_PHASE_SUCCEEDED", "ACTION_PHASE_FAILED", "ACTION_PHASE_ABORTED", _TIMED_OUT})


class SignalFailed(HitlError):
    """The control plane could not be reached or refused for a reason a retry may fix."""


async def signal_condition(ref: ConditionRef, value: Payload) -> Signalled:
    """Find the condition by name among its run's condition actions and signal it, once.

    A condition that no longer waits (answered in Flyte, timed out) is reported, not signalled.
    """
    from connectrpc.code import Code
    from connectrpc.errors import ConnectError

    try:
        with _in_project(ref):
            condition = await _find(ref)
            if condition is None:
                return "not_found"
            if condition.phase == _TIMED_OUT:
                return "timed_out"
            if condition.phase in _DONE:
                return "resolved"
            await condition.signal.aio(value)
    except ConnectError as error:
        if error.code in (Code.FAILED_PRECONDITION, Code.ALREADY_EXISTS):
            return "resolved"
        raise SignalFailed(f"{error.code.name}: {error.message}") from error
    except Exception as error:  # the client's own transport errors
        raise SignalFailed(type(error).__name__) from error
    return "signalled"


async def signalled_by(ref: ConditionRef) -> str:
    """Who signalled the condition, as Flyte tells it: a name, an email or a handle ("" if unknown)."""
    from flyte.remote import ActionDetails

    with _in_project(ref):
        condition = await _find(ref)
        if condition is None:
            return ""
        details = await ActionDetails.get_details.aio(condition.pb2.id)
    user = details.pb2.signal_info.signalled_by.user.spec
    full_name = " ".join(part for part in (user.first_name, user.last_name) if part)
    return str(full_name or user.email or user.user_handle)


async def _find(ref: ConditionRef) -> Any:
    """The condition action named `ref.name` under the task's action (ListActions), or None."""
    from flyte.remote import Condition

    return await Condition.get.aio(ref.name, run_name=ref.run_name, action_name=ref.action_name)


@contextlib.contextmanager
def _in_project(ref: ConditionRef) -> Iterator[None]:
    """flyte.remote reads project and domain from its init config: scope them to this call (and the
    calls it makes on flyte's own loop, which copy the context), so one bot serves every project."""
    from flyte._initialize import get_init_config, init_config_context

    with init_config_context(get_init_config().replace(project=ref.project, domain=ref.domain)):
        yield


async def connect(settings: Settings) -> None:
    """`flyte.init` the way flyte's SDK takes credentials: a config file, an API key, or an endpoint."""
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
