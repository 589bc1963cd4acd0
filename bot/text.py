"""Small text helpers every surface shares, so Slack, Teams, the form and the CLI read alike."""

from __future__ import annotations

VIA_NAMES = {
    "slack": "Slack",
    "teams": "Teams",
    "web": "the web form",
    "api": "the API",
    "flyte": "Flyte",
    "timeout": "the deadline default",
}


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, with an ellipsis when anything was cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def via_name(via: str | None) -> str:
    """How people read a surface or `via` value ("the web form"); unknown names are shown as given."""
    if not via:
        return "another surface"
    return VIA_NAMES.get(via, via)


def format_number(number: float) -> str:
    """Whole numbers without a trailing ".0" (3, not 3.0); other floats as Python writes them."""
    if isinstance(number, int):
        return str(number)
    number = float(number)
    return str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)
