"""Small text helpers every surface shares, so chat messages, the form and the CLI read alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import registry

if TYPE_CHECKING:
    from .protocol import Request

__all__ = ["clip", "flyte_note", "format_duration", "format_number", "via_name", "whole"]

VIA_NAMES = {  # besides the chat platforms, named by the registry
    "web": "the web form",
    "api": "the API",
    "flyte": "Flyte",
    "console": "the terminal",  # a local run's own terminal (plugin/_console.py)
    "policy": "the policy file",  # approved when it was created (HITL_CHATOPS_POLICY, bot/policy.py)
    "timeout": "the deadline default",
}
FLYTE_NOTE = "Can also be answered in Flyte"


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, with an ellipsis when anything was cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def via_name(via: str | None) -> str:
    """How people read a platform name or a `via` value ("Slack", "the web form"); unknown names as given."""
    if not via:
        return "another surface"
    return registry.label(via) or VIA_NAMES.get(via, via)


def flyte_note(request: Request) -> str | None:
    """The line every surface shows under an event that Flyte can answer too (a native condition)."""
    if request.condition is None:
        return None
    return FLYTE_NOTE


def whole(number: float) -> int | float:
    """`number` as an int when it is a whole number written without an exponent (3.0 → 3), else as it is.

    The one rule for showing numbers: text (`format_number`) and number inputs (Teams' cards) alike.
    """
    if isinstance(number, int):
        return number
    number = float(number)
    return int(number) if number.is_integer() and abs(number) < 1e16 else number


def format_number(number: float) -> str:
    """Whole numbers without a trailing ".0" (3, not 3.0); other floats as Python writes them."""
    shown = whole(number)
    return str(shown) if isinstance(shown, int) else repr(shown)


def format_duration(seconds: float) -> str:
    """A duration in its two largest units, rounded to the second: "42s", "5m 30s", "2h 05m", "3d 4h"."""
    whole_seconds = round(seconds)
    days, rest = divmod(whole_seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
