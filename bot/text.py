"""Small text helpers every surface shares, so chat messages, the form and the CLI read alike."""

from __future__ import annotations

from . import registry

VIA_NAMES = {  # besides the chat platforms, named by the registry
    "web": "the web form",
    "api": "the API",
    "flyte": "Flyte",
    "console": "the terminal",  # a local run's own terminal (plugin/_console.py)
    "policy": "the policy file",  # approved when it was created (HITL_CHATOPS_POLICY, bot/policy.py)
    "timeout": "the deadline default",
}


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, with an ellipsis when anything was cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def via_name(via: str | None) -> str:
    """How people read a platform name or a `via` value ("Slack", "the web form"); unknown names as given."""
    if not via:
        return "another surface"
    return registry.label(via) or VIA_NAMES.get(via, via)


def format_number(number: float) -> str:
    """Whole numbers without a trailing ".0" (3, not 3.0); other floats as Python writes them."""
    if isinstance(number, int):
        return str(number)
    number = float(number)
    return str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)
