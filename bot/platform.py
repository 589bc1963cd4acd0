"""The seam between the core and a chat platform while the bot runs: what delivery calls.

The core owns every step that is the same on every platform. `HitlService` decides (answer,
cancel, who may answer, the pending list); `Delivery` (`service.delivery`) posts each target once
(claims), records where each copy went, re-renders every copy when the event ends, retries through
the outbox, and turns failures into logged, counted `HitlError`s. An adapter only translates: it
implements `Platform` (send one message, re-render one copy, read a group), which delivery calls,
and describes itself with an `adapter.Adapter` (its settings, whether it is on, and `mount`, which
adds its inbound routes and turns platform requests into `HitlService` calls and the core's verdicts
into platform replies).

A platform is registered once, in `registry`; see the README's "Add a chat platform".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .protocol import MessageRef, Request, Response

__all__ = ["Platform", "channel_targets"]


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

    async def rerender(self, request: Request, outcome: Response | None, ref: MessageRef) -> None:
        """Re-render one posted copy `ref`: answered, cancelled or defaulted (`outcome`), or
        expired when `outcome` is None. A copy that no longer exists is not an error."""
        ...

    async def group_members(self, group: str) -> set[str] | None:
        """User ids in `group` if this platform knows such a group, else None.

        Raise `MembershipUnknown` when the platform could not answer just now.
        """
        ...


def channel_targets(request: Request, name: str, *defaults: str | None) -> list[str]:
    """`<name>:<target>` entries of `request.channels`, then `defaults`, without blanks or repeats."""
    prefix = f"{name}:"
    targets = [entry.removeprefix(prefix) for entry in request.channels if entry.startswith(prefix)]
    return list(dict.fromkeys(t for t in (*targets, *defaults) if t))
