"""The chat platforms the bot knows, in one list read by the settings, the server, the CLI, the
display names (`text.via_name`) and the plugin (`channels` entries). A name has the shape the protocol
gives it (`protocol.NAME_PATTERN`): a copy posted by a platform this replica does not run stays readable.

A plain module rather than Python entry points: the names must be known in a Flyte task image that
has no chat SDK and maybe no installed metadata for us, and an in-tree platform should need no
reinstall to be seen. A platform that lives elsewhere (a test, an app embedding the bot) calls
`register`. A plain catalogue of names: importing it imports only the protocol (for the name's shape);
`adapter.load` imports a platform's package, in the bot only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .protocol import NAME_PATTERN

__all__ = ["BUILT_IN", "Registration", "label", "names", "register", "registrations", "unregister"]


@dataclass(frozen=True)
class Registration:
    """A platform by name, before anything of it is imported."""

    name: str  # the `channels` prefix ("slack:C0123"), `MessageRef.platform`, `Responder.platform`, `via`
    label: str  # how people read it ("Slack")
    example: str  # a target as people write it after the prefix, for error messages ("C0123")
    adapter: str  # "module:attribute" of its `adapter.Adapter`; the module must not import the SDK

    def __post_init__(self) -> None:
        if not re.fullmatch(NAME_PATTERN, self.name):
            raise ValueError(f"platform name {self.name!r}: lowercase letters, digits and _, starting with a letter")


BUILT_IN = (
    Registration("slack", "Slack", "C0123", "hitl_chatops.adapters.slack:adapter"),
    Registration("teams", "Teams", "<conversation id>", "hitl_chatops.adapters.teams:adapter"),
)
_platforms: dict[str, Registration] = {r.name: r for r in BUILT_IN}


def register(registration: Registration) -> None:
    """Add a platform defined outside this package; a name is registered once."""
    if registration.name in _platforms and _platforms[registration.name] != registration:
        raise ValueError(f"a platform named {registration.name!r} is already registered")
    _platforms[registration.name] = registration


def unregister(name: str) -> None:
    """Forget a platform added with `register` (tests); built-ins stay."""
    if name not in {r.name for r in BUILT_IN}:
        _platforms.pop(name, None)


def registrations() -> tuple[Registration, ...]:
    return tuple(_platforms.values())


def names() -> tuple[str, ...]:
    return tuple(_platforms)


def label(name: str) -> str | None:
    registration = _platforms.get(name)
    return registration.label if registration else None
