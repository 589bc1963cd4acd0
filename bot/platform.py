"""The seam between the core and a chat platform while the bot runs: what delivery calls.

The core owns every step that is the same on every platform. `HitlService` decides (answer,
cancel, who may answer, the pending list); `Delivery` (`service.delivery`) posts each target once
(claims), records where each copy went, re-renders every copy when the event ends, retries through
the outbox, and turns failures into logged, counted `HitlError`s. An adapter only translates: it
implements `Platform` (send one message, re-render one copy, reply in a copy's thread, read a
group; optionally find an account by e-mail, `FindsPeople`), which delivery calls, and describes
itself with an `adapter.Adapter` (its settings, whether it is on, and `mount`, which adds its
inbound routes and turns platform requests into `HitlService` calls and the core's verdicts into
platform replies).

A platform is registered once, in `registry`; see docs/development.md, "Add a chat platform".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .protocol import MessageRef, Request
    from .states import Line
    from .view import EventView

__all__ = ["FindsPeople", "Platform", "channel_targets"]


class Platform(Protocol):
    """A chat platform as the core sees it while the bot runs (one per enabled adapter).

    Raise from `send`, `rerender` and `group_members` rather than log: the core logs, counts and
    retries. A `PlatformError` whose message names the cause reads best in the logs; anything
    else is logged with its traceback, as a bug.
    """

    name: str  # the registered name: `channels` prefix, `MessageRef.platform`, `Responder.platform`

    def targets(self, request: Request) -> list[str]:
        """Where this platform posts `request`: the `<name>:<target>` entries of `request.channels`
        (use `channel_targets`), then the platform's configured defaults."""
        ...

    async def send(self, request: Request, target: str) -> MessageRef:
        """Render the event and post it to `target`; return where the message went.

        The core calls this at most once per target (across notifies, the reconciler and
        replicas), and records the returned reference so any replica can re-render the copy.
        """
        ...

    async def rerender(self, view: EventView, ref: MessageRef) -> None:
        """Re-render one posted copy `ref` as `view` shows the event now: ended (answered, rejected,
        cancelled, defaulted, expired: no controls), or a team decision under way (`view.state`
        DECIDING or PROPOSED: its progress in `view.words.status` and `.facts`, `view.tally` for
        detail, and the controls that remain in `view.controls`). A copy that no longer exists is
        not an error.

        The core calls it when the event ends and after each vote, proposal, hand-over or
        escalation of a team decision (coalesced: a burst of votes re-renders a few times).
        """
        ...

    async def remind(self, request: Request, ref: MessageRef, line: Line) -> None:
        """Reply in the thread of copy `ref` with `line`: a reminder, an escalation or a hand-over of
        a team decision (a Slack thread reply; a reply in the Teams conversation). Lay the line out
        as any other (`states.Part`s); its `Mention` parts are the people or groups to notify, ids
        the request holds (never text a person or a task wrote). Sent at most once per reminder.
        """
        ...

    async def group_members(self, group: str) -> set[str] | None:
        """User ids in `group` if this platform knows such a group, else None.

        Raise `MembershipUnknown` when the platform could not answer just now.
        """
        ...


@runtime_checkable
class FindsPeople(Protocol):
    """What a `Platform` may also do: find the account behind an e-mail address, so a team decision's
    requester given as an address is recognised there (Slack's `users.lookupByEmail`, Microsoft Graph's
    `GET /users/{address}`). A platform without it never matches an address."""

    async def user_for_email(self, email: str) -> str | None:
        """The user id of the account with that address on this platform, None if there is none.
        Raise `MembershipUnknown(email, what=...)` when the platform could not answer just now."""
        ...


def channel_targets(request: Request, name: str, *defaults: str | None) -> list[str]:
    """`<name>:<target>` entries of `request.channels`, then `defaults`, without blanks or repeats."""
    prefix = f"{name}:"
    targets = [entry.removeprefix(prefix) for entry in request.channels if entry.startswith(prefix)]
    return list(dict.fromkeys(t for t in (*targets, *defaults) if t))
