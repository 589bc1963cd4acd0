"""One error hierarchy for the whole project.

`UserError` messages are written for the person answering (shown inline in Slack, Teams or the
form); every other `HitlError` is internal: logged, never echoed to a person. The refusals of an
event that has ended say what its state says (`states`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .states import expired_refusal, refusal

if TYPE_CHECKING:
    from .protocol import Response

__all__ = [
    "AlreadyAnswered",
    "AlreadyVoted",
    "ConfigError",
    "EventCancelled",
    "EventExpired",
    "EventNotFound",
    "HitlError",
    "InvalidValue",
    "MembershipUnknown",
    "NotAllowed",
    "PlatformError",
    "StoreError",
    "StoreUnavailable",
    "UserError",
]


class HitlError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(HitlError):
    """A missing or bad setting; the message names the variable to set."""


class StoreError(HitlError):
    """Object storage could not be read or written; safe to retry."""


class PlatformError(HitlError):
    """A chat platform failed or refused a call (post, card update, lookup); logged, and retried
    by the outbox or the reconciler. `retry_after`: the seconds the platform asked us to wait
    (an HTTP 429's `Retry-After`), so the next call to that channel waits that long."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UserError(HitlError):
    """An outcome a person must see; `str(error)` is safe to show."""


class EventNotFound(UserError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"No event {request_id} exists. The link may be wrong or the event was removed.")
        self.request_id = request_id


class InvalidValue(UserError):
    """The typed value does not fit the event; the message says what would.

    `errors` maps each refused field to its message (a scalar event's only field is `value`).
    """

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {"value": message}


class NotAllowed(UserError):
    """This person may not answer the event."""


class MembershipUnknown(UserError):
    """A group's members (or whose account an e-mail address is) could not be read just now (the chat
    platform failed); a retry may work."""

    def __init__(self, group: str, *, what: str | None = None) -> None:
        super().__init__(f"Could not check {what or f'who is in {group}'} just now. Please try again in a moment.")
        self.group = group


class AlreadyVoted(NotAllowed):
    """This person already acted on this round of a team decision (approved, rejected, proposed)."""


class EventExpired(UserError):
    def __init__(self, deadline_text: str) -> None:
        super().__init__(expired_refusal(deadline_text))


class AlreadyAnswered(UserError):
    """The event has its outcome; carries it so callers can say who answered (or cancelled) and when.

    Build it with `AlreadyAnswered.of(response)`, which picks `EventCancelled` for a cancellation.
    """

    def __init__(self, response: Response) -> None:
        super().__init__(refusal(response))
        self.response = response

    @staticmethod
    def of(response: Response) -> AlreadyAnswered:
        return EventCancelled(response) if response.cancelled else AlreadyAnswered(response)


class EventCancelled(AlreadyAnswered):
    """The event was cancelled: answers are refused and `wait()` raises this, with the reason."""

    def __init__(self, response: Response) -> None:
        super().__init__(response)
        self.reason = response.reason


class StoreUnavailable(UserError):
    """Storage could not be reached for something a person waits on; nothing was written, a retry may work.

    `reading` says so for a read (an event, a list) rather than an answer or a cancel being saved.
    """

    def __init__(self, *, reading: bool = False) -> None:
        if reading:
            message = "Storage is unreachable just now, so nothing could be read. Please try again in a moment."
        else:
            message = "Could not save your answer because storage is unreachable. Please try again."
        super().__init__(message)
