"""The one place a raw answer becomes a typed value.

Slack, Teams, the web form and the API all call `parse_answer`, so every surface accepts and
rejects exactly the same inputs. Rejections carry a message a person can act on.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .protocol import DataType, Value

if TYPE_CHECKING:
    from .protocol import Request

MAX_TEXT_LENGTH = 2000
TRUE_WORDS = frozenset({"true", "yes", "y", "1", "approve", "approved"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "reject", "rejected"})
_INT = re.compile(r"[+-]?\d{1,18}")


@dataclass(frozen=True)
class Accepted:
    value: Value


@dataclass(frozen=True)
class Rejected:
    message: str


Outcome = Accepted | Rejected


def type_name(data_type: type) -> DataType:
    """Map a Python type to the protocol's name; anything else is refused, not guessed."""
    names: dict[type, DataType] = {bool: "bool", int: "int", float: "float", str: "str"}
    if data_type not in names:
        raise TypeError(f"data_type must be one of bool, int, float, str (got {data_type!r})")
    return names[data_type]


def display(value: object) -> str:
    """How every surface shows an answer: bools as the button a person pressed."""
    if isinstance(value, bool):
        return "Approve" if value else "Reject"
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def format_number(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def parse_answer(request: Request, raw: object) -> Outcome:
    """Convert and check `raw` against the request's type, choices and bounds."""
    return parse_value(
        raw,
        data_type=request.data_type,
        choices=request.choices,
        min_value=request.min_value,
        max_value=request.max_value,
    )


def parse_value(
    raw: object,
    *,
    data_type: DataType,
    choices: list[Any] | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
) -> Outcome:
    converted = _CONVERTERS[data_type](raw)
    if isinstance(converted, Rejected):
        return converted
    value = converted.value
    if choices:
        return _pick_choice(value, choices)
    if data_type in ("int", "float"):
        return _check_bounds(value, data_type, min_value, max_value)
    return converted


def _to_bool(raw: object) -> Outcome:
    if isinstance(raw, bool):
        return Accepted(raw)
    word = str(raw).strip().lower() if isinstance(raw, str | int) else ""
    if word in TRUE_WORDS:
        return Accepted(True)
    if word in FALSE_WORDS:
        return Accepted(False)
    return Rejected("Answer yes or no: approve (true) or reject (false).")


def _to_int(raw: object) -> Outcome:
    if isinstance(raw, bool):
        return Rejected("Enter a whole number, like 42.")
    if isinstance(raw, int):  # JSON ints are unbounded; Flyte's are 64-bit
        return Accepted(raw) if abs(raw) < 2**63 else Rejected("Enter a whole number of at most 19 digits.")
    if isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        return Accepted(int(raw))
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        return Rejected("Enter a whole number, like 42.")
    if not _INT.fullmatch(text):
        return Rejected(f"“{_clip(text)}” is not a whole number. Enter digits only, like 42.")
    return Accepted(int(text))


def _to_float(raw: object) -> Outcome:
    if isinstance(raw, bool):
        return Rejected("Enter a number, like 0.5.")
    if isinstance(raw, int | float):
        try:
            number = float(raw)
        except OverflowError:  # an int too large for a float
            number = math.inf
    else:
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            return Rejected("Enter a number, like 0.5.")
        try:
            number = float(text) if len(text) <= 64 else math.nan
        except ValueError:
            return Rejected(f"“{_clip(text)}” is not a number. Enter something like 0.5 or 12.")
    if not math.isfinite(number):
        return Rejected("Enter a finite number; NaN and infinity are not allowed.")
    return Accepted(number)


def _to_str(raw: object) -> Outcome:
    if not isinstance(raw, str) or not raw.strip():
        return Rejected("Enter a value; the answer cannot be empty.")
    if len(raw) > MAX_TEXT_LENGTH:
        return Rejected(f"Keep the answer under {MAX_TEXT_LENGTH} characters (it has {len(raw)}).")
    if "\x00" in raw:
        return Rejected("The answer contains a NUL character; remove it and try again.")
    return Accepted(raw.strip())


_CONVERTERS = {"bool": _to_bool, "int": _to_int, "float": _to_float, "str": _to_str}


def _pick_choice(value: Value, choices: list[Any]) -> Outcome:
    for choice in choices:
        if value == choice and type(value) is type(choice):
            return Accepted(choice)
    if isinstance(value, str):
        folded = {str(c).casefold(): c for c in choices}
        if value.casefold() in folded:
            return Accepted(folded[value.casefold()])
    listed = ", ".join(str(c) for c in choices[:10]) + (", …" if len(choices) > 10 else "")
    return Rejected(f"Choose one of: {listed}.")


def _check_bounds(value: Value, data_type: DataType, low: float | None, high: float | None) -> Outcome:
    assert isinstance(value, int | float)
    if (low is not None and value < low) or (high is not None and value > high):
        return Rejected(number_hint(data_type, low, high))
    return Accepted(value)


def range_text(low: float | None, high: float | None) -> str | None:
    """The bounds in words ("from 1 to 10", "at least 0"), shared by every surface's hints."""
    if low is not None and high is not None:
        return f"from {format_number(low)} to {format_number(high)}"
    if low is not None:
        return f"of at least {format_number(low)}"
    if high is not None:
        return f"of at most {format_number(high)}"
    return None


def number_hint(data_type: DataType, low: float | None, high: float | None) -> str:
    """ "Enter a whole number from 1 to 10." — the rejection and every input's hint."""
    kind = "a whole number" if data_type == "int" else "a number"
    bounds = range_text(low, high)
    return f"Enter {kind} {bounds}." if bounds else f"Enter {kind}."


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
