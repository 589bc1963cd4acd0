"""Native Flyte conditions: an event can mirror one, and the bot signals it after an answer.

The event's `condition` (project, domain, run, parent action, name) says where the condition
lives. After the bot writes an answer, `ConditionSignaller` signals it through `flyte.remote`
(ListActions to find it by name, then SignalEvent, each with a deadline). A signal that fails,
runs out of time or is cut short by shutdown is owed (`hitl-owed-signals/<id>`) and retried by the
reconciler until the event's deadline, when the condition times out by itself; a condition that
is no longer waiting is recorded, not retried.

Everything here runs without `flyte` installed; `flyte_signal` (the part that talks to the
control plane) is imported only when signalling is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from .answers import Outcome, Rejected, parse_answer
from .errors import ConfigError, HitlError
from .protocol import Request, Response, utcnow

if TYPE_CHECKING:
    from aiohttp import web

    from .config import Settings
    from .delivery import Delivery
    from .flyte_signal import Payload
    from .store import Listing, Store

__all__ = ["ConditionSignaller", "attach", "check_value", "condition_type", "payload"]

log = logging.getLogger(__name__)
_PYTHON_TYPES: dict[str, type] = {"bool": bool, "int": int, "float": float, "str": str}


# -- what an event and its condition share ---------------------------------------------------


def check_value(request: Request, raw: object) -> Outcome:
    """Validate a value signalled into an event's condition: the ONE call into the core parser.

    Answers signalled in Flyte go through here, so they are accepted and refused exactly as
    Slack, Teams and the form are. A structured event's condition is a `str` holding the
    answer's JSON object (see `payload`): it is decoded, then checked field by field.
    """
    if request.data_type == "object" and isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            message = "Send the answer as a JSON object, one key per field."
            return Rejected({"value": message}, message)
    return parse_answer(request, raw)


def condition_type(data_type: str) -> type:
    """The condition's type for an event's: scalars as they are, structured answers as JSON text."""
    return _PYTHON_TYPES.get(data_type, str)


def payload(request: Request, value: Any) -> Payload:
    """The value a condition is signalled with: the answer itself, or its JSON for structured ones."""
    if request.data_type in _PYTHON_TYPES:
        assert isinstance(value, bool | int | float | str)
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# -- the bot's side --------------------------------------------------------------------------


class ConditionSignaller:
    """Signals the condition an answered event mirrors; what fails is owed and retried."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self._settings = settings
        self._connected = False

    async def connect(self) -> None:
        """`flyte.init` from the settings, once; a bad setting is a `ConfigError` naming what to fix."""
        if self._connected:
            return
        from .flyte_signal import connect

        try:
            await connect(self._settings)
        except ImportError as error:
            raise ConfigError("Signalling Flyte conditions needs flyte: pip install 'hitl-chatops[flyte]'.") from error
        except Exception as error:  # the type only: flyte's message may quote the credential
            raise ConfigError(
                f"Could not set up the Flyte connection ({type(error).__name__}). Check "
                "HITL_CHATOPS_FLYTE_ENDPOINT, FLYTE_API_KEY or HITL_CHATOPS_FLYTE_CONFIG."
            ) from None
        self._connected = True

    async def answered(self, request: Request, response: Response) -> None:
        """After an answer the bot wrote: signal its condition (an answer from Flyte needs none)."""
        if request.condition is None or response.via == "flyte" or response.cancelled:
            return
        await self._attempt(request, response)

    async def retry_owed(self, listing: Listing) -> int:
        """The reconciler's hook: retry every owed signal of its pass's listing; returns how many were settled.

        Nothing is read for a signal still owed since the last pass (its event and answer are cached).
        A control plane that lets a call run out of time is not asked again in this pass: the other
        signals wait for the next one rather than hold every other repair for a deadline each.
        """
        from .flyte_signal import FlyteTimedOut

        settled = 0
        for request_id in listing.signals:
            try:
                request = await self.store.get_request(request_id)
                response = await self.store.get_response(request_id)
                if response is None or request.condition is None:
                    await self.store.drop_owed_signal(request_id)
                elif request.expired():  # the condition timed out with the event: nothing left to signal
                    await self._settle(request, "deadline_passed")
                    settled += 1
                elif (failure := await self._attempt(request, response)) is None:
                    settled += 1
                elif isinstance(failure, FlyteTimedOut):
                    break
            except HitlError as error:
                log.warning("owed signal not retried", extra={"request_id": request_id, "error": type(error).__name__})
        return settled

    async def _attempt(self, request: Request, response: Response) -> HitlError | None:
        """Signal once; what fails is owed, and returned (None: settled)."""
        assert request.condition is not None
        from .flyte_signal import SignalFailed, signal_condition

        try:
            await self.connect()
            seconds = self._settings.flyte_timeout_seconds
            outcome = await signal_condition(request.condition, payload(request, response.value), seconds=seconds)
            if outcome == "not_found":
                raise SignalFailed("the condition is not (yet) registered in its run")
        except (SignalFailed, ConfigError) as error:
            log.error(
                "flyte condition not signalled; the reconciler retries",
                extra={"request_id": request.request_id, "condition": request.condition.name, "error": str(error)},
            )
            await self._owe(request, str(error))
            return error
        except asyncio.CancelledError:  # shutdown cut it short: the next bot (or another replica) retries
            # With the store down too, the task itself signals it (plugin: `SETTLE_SECONDS`).
            with contextlib.suppress(HitlError):
                await self._owe(request, "cut short by shutdown")
            raise
        await self._settle(request, outcome)
        return None

    async def _owe(self, request: Request, error: str) -> None:
        await self.store.put_owed_signal(request.request_id, {"error": error, "at": utcnow().isoformat()})

    async def _settle(self, request: Request, outcome: str) -> None:
        """Record how the signal ended and stop owing it."""
        log.info("flyte condition settled", extra={"request_id": request.request_id, "outcome": outcome})
        await self.store.put_signal_record(request.request_id, {"outcome": outcome, "at": utcnow().isoformat()})
        await self.store.drop_owed_signal(request.request_id)


def attach(app: web.Application, delivery: Delivery, settings: Settings) -> ConditionSignaller:
    """Signal conditions after every answer, retry owed ones on every reconciler pass, and check
    the Flyte settings at start-up: a signal is delivery of the answer to Flyte."""
    signaller = ConditionSignaller(delivery.store, settings)
    delivery.answered_hooks.append(signaller.answered)
    delivery.repairs.append(signaller.retry_owed)

    async def connect(app: web.Application) -> None:
        await signaller.connect()

    app.on_startup.append(connect)
    return signaller
